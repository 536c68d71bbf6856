-- eddy: the top-level table that `require "eddy"` returns. Tasks, time,
-- the loop, and the in-thread sync primitives live here; the other modules
-- (eddy.tcp, eddy.udp, eddy.dns, eddy.timer, eddy.signal) load on first use.

local c = require "eddy.c.task"
require "eddy.coroutine"
require "eddy.require"
local sync = require "eddy.sync"

local type, error, rawget, require = type, error, rawget, require

local M = {
  _VERSION = "0.1.0",
  spawn = c.spawn,
  sleep = c.sleep,
  yield = c.yield,
  now = c.now,
  exit = c.exit,
  current = c.current,
  stats = c.stats,
  shutdown = c.shutdown,
  channel = sync.channel,
  select = sync.select,
  waitgroup = sync.waitgroup,
  semaphore = sync.semaphore,
}

-- eddy.run(fn, ...) runs the loop with fn as its main task until nothing is
-- left to do and returns fn's results; fn's error, or a deadlock, is raised.
-- Inside a running loop (a script run by the `eddy` command) it simply calls
-- fn, so one script works under both `eddy` and stock `luajit`.
local reset_loading = require("eddy.require").reset

local function after_run(ok, ...)
  -- The run left no task behind: forget the modules they were still
  -- loading, so that the next run loads them afresh.
  reset_loading()
  if not ok then error((...), 0) end
  return ...
end

function M.run(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'run' (function expected, got " .. type(fn) .. ")", 2)
  end
  if c.running() then return fn(...) end
  return after_run(c.run(fn, ...))
end

local submodules = { tcp = true, udp = true, dns = true, timer = true, signal = true, http = true, ws = true }

return setmetatable(M, {
  __index = function(t, name)
    if submodules[name] then
      local mod = require("eddy." .. name)
      rawset(t, name, mod)
      return mod
    end
    return nil
  end,
})

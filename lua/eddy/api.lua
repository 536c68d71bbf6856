-- eddy: the top-level table that `require "eddy"` returns. Tasks, time,
-- the loop, and the in-thread sync primitives live here; the other modules
-- (eddy.tcp, eddy.udp, eddy.dns, eddy.timer, eddy.signal) load on first use.

local c = require "eddy.c.task"
local threads_c = require "eddy.c.threads"
local inspect = require "eddy.c.inspect"
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
  watchdog = inspect.watchdog,
}

-- eddy.tasks([{traceback = true}]) → the live tasks of this thread, oldest
-- first: { id, name, age (s), state ("running", "ready" or "blocked"),
-- waits_on (what a blocked one waits for), traceback }.
function M.tasks(opts)
  return inspect.tasks(opts ~= nil and opts.traceback)
end

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

-- eddy.run({threads = N, task_threads = P}, fn, ...) runs fn in N reactor
-- threads ("auto": one per core), with a task pool of P threads: this
-- thread is the first, and each other thread runs fn in a Lua state of
-- its own, from its bytecode, so fn must not have
-- upvalues (require what it needs inside it), and its arguments must be
-- nil, booleans, numbers or strings. The results are the first thread's.
local function run_threads(opts, fn, ...)
  if opts.task_threads then M.task.configure({ threads = opts.task_threads }) end
  local threads = opts.threads or 1
  if threads == "auto" then threads = 0 end
  if type(threads) ~= "number" then
    error("bad option 'threads' to 'run' (number or \"auto\" expected)", 3)
  end
  if threads == 1 then return after_run(c.run(fn, ...)) end
  if debug.getupvalue(fn, 1) ~= nil then
    error("eddy.run: a function run on several threads must not have " ..
      "upvalues (upvalue '" .. debug.getupvalue(fn, 1) .. "'): require " ..
      "what it needs inside it", 3)
  end
  return after_run(threads_c.run(threads, string.dump(fn), fn, ...))
end

function M.run(fn, ...)
  if type(fn) == "table" then
    local opts, main = fn, ...
    if type(main) ~= "function" then
      error("bad argument #2 to 'run' (function expected, got " .. type(main) .. ")", 2)
    end
    if c.running() then return main(select(2, ...)) end
    return run_threads(opts, ...)
  end
  if type(fn) ~= "function" then
    error("bad argument #1 to 'run' (function expected, got " .. type(fn) .. ")", 2)
  end
  if c.running() then return fn(...) end
  return after_run(c.run(fn, ...))
end

-- eddy.init(fn): the init phase. fn runs once for the whole program, in
-- whichever thread of whichever worker gets there first, while the others
-- wait at their eddy.init until it is done; then every thread goes on
-- with the rest of the script, its per-thread main. Declare what all
-- share there (dictionaries, configuration read once). It does not run
-- again on a reload (the master keeps the record), and if it fails it
-- raises in its thread, and the next thread to arrive (or the worker that
-- replaces a failed one) runs it again. Several eddy.init calls in a
-- script are told apart by their order. Returns true where fn ran.
local init_calls = 0
local RUNNING, DONE = 1, 2

function M.init(fn)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'init' (function expected, got " .. type(fn) .. ")", 2)
  end
  local shared = M.shared
  init_calls = init_calls + 1
  local state = shared.atomic("eddy.init:" .. init_calls)
  local pid = shared.pid()
  local delay = 0.001
  while true do
    -- A running init is pid * 4 + RUNNING, so that one whose process died
    -- can be taken over.
    local mine, now = state:cas(0, pid * 4 + RUNNING)
    if mine then
      local ok, err = pcall(fn)
      state:set(ok and DONE or 0)
      if not ok then error(err, 0) end
      return true
    end
    if now == DONE then return false end
    if now % 4 == RUNNING and not shared.alive((now - RUNNING) / 4) then
      state:cas(now, 0)
    else
      c.sleep(delay)
      delay = math.min(delay * 2, 0.02)
    end
  end
end

-- Who runs this code: the reactor thread (1 to threads()) and the worker
-- process (1 to count(); one process until workers come).
local info = threads_c.info
M.worker = {
  id = function() local _, _, id = info() return id end,
  count = function() local _, _, _, n = info() return n end,
  thread = function() return (info()) end,
  threads = function() local _, n = info() return n end,
}

local submodules = { tcp = true, udp = true, dns = true, timer = true, signal = true, http = true, ws = true,
  reactor = true, codec = true, task = true, shared = true, mailbox = true, pool = true,
  metrics = true, log = true, mysql = true, redis = true,
  fs = true, process = true, queue = true, pubsub = true }

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

-- Shared by the specs: loads eddy from the build, finds the eddy command,
-- and runs commands for the tests that need a process of their own.
local build = os.getenv("EDDY_BUILD") or "build"
package.cpath = "./" .. build .. "/?.so;" .. package.cpath
package.path = "./tests/?.lua;" .. package.path

local M = {}
M.build = build
M.eddy_bin = "./" .. build .. "/eddy"
M.eddy = require "eddy"

-- Runs fn as the main task of a fresh loop and checks that it left nothing
-- behind: no task, timer or open handle.
function M.run(fn, ...)
  local results = { M.eddy.run(fn, ...) }
  local stats = M.eddy.stats()
  assert(stats.tasks == 0, "tasks left after run: " .. stats.tasks)
  assert(stats.timers == 0, "timers left after run: " .. stats.timers)
  assert(stats.open == 0, "handles left open after run: " .. stats.open)
  return (table.unpack or unpack)(results)
end

-- Runs a shell command; returns its exit status and its output (stdout and
-- stderr together).
function M.sh(cmd)
  local f = assert(io.popen(cmd .. " 2>&1; echo \"__rc=$?\""))
  local out = f:read("*a")
  f:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return rc, (out:gsub("__rc=%d+%s*$", ""))
end

-- Runs Lua code with the eddy command; returns exit status and output.
function M.eddy_run(code, args)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local rc, out = M.sh(M.eddy_bin .. " " .. path .. " " .. (args or ""))
  os.remove(path)
  return rc, out
end

return M

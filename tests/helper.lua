-- Shared by the specs: loads eddy from the build, finds the eddy command,
-- and runs commands for the tests that need a process of their own.
local build = os.getenv("EDDY_BUILD") or "build"
package.cpath = "./" .. build .. "/?.so;" .. package.cpath
package.path = "./tests/?.lua;" .. package.path

local M = {}
M.build = build
M.eddy_bin = "./" .. build .. "/eddy"
M.eddy = require "eddy"

-- Under `make test-asan` LuaJIT starts with the sanitizer runtime preloaded
-- (scripts/test.sh), which only a luajit loading the instrumented eddy.so
-- needs: the other programs the tests start (Chromium, Node, the eddy
-- command, which links the runtime itself) are slowed down or hung by it.
-- So it leaves this process's environment for EDDY_ASAN_PRELOAD (busted
-- loads this file afresh for each spec), and M.luajit puts it back.
M.luajit = "luajit"
local preload = os.getenv("LD_PRELOAD")
if preload and preload:match("asan") then
  local ffi = require "ffi"
  pcall(ffi.cdef, [[
    int setenv(const char *name, const char *value, int overwrite);
    int unsetenv(const char *name);
  ]])
  ffi.C.setenv("EDDY_ASAN_PRELOAD", preload, 1)
  ffi.C.unsetenv("LD_PRELOAD")
end
preload = os.getenv("EDDY_ASAN_PRELOAD")
if preload then M.luajit = "env LD_PRELOAD=" .. preload .. " luajit" end

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

-- The address of the redis-server or MariaDB server that scripts/test.sh
-- started for the tests (scripts/servers.sh): host, port. A spec run
-- without one fails, never skips.
function M.server(name)
  local var = "EDDY_TEST_" .. name:upper()
  local addr = os.getenv(var)
  assert(addr, var .. " is not set: run the specs with scripts/test.sh, " ..
    "or start the servers with scripts/servers.sh")
  local host, port = addr:match("^(.*):(%d+)$")
  return host, tonumber(port)
end

-- Starts a server of its own for a test that kills it (scripts/servers.sh
-- in a fresh directory): returns host, port, and a stop function.
function M.private_server(name)
  local dir = os.tmpname()
  os.remove(dir)
  local rc, out = M.sh(("scripts/servers.sh start %s %s"):format(dir, name))
  assert(rc == 0, "could not start " .. name .. ": " .. out)
  local host, port = out:match("=([%d.]+):(%d+)")
  local function stop()
    M.sh(("scripts/servers.sh stop %s; rm -rf %s"):format(dir, dir))
  end
  return host, tonumber(port), stop, dir
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

-- Runs Lua code with the eddy command (options before the script, args
-- after it); returns exit status and output.
function M.eddy_run(code, args, options)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local rc, out = M.sh(("%s %s %s %s"):format(M.eddy_bin, options or "", path, args or ""))
  os.remove(path)
  return rc, out
end

-- Runs Lua code in a luajit process of its own, with eddy and the helper
-- on its paths; returns the exit status and the output.
function M.luajit_run(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("package.cpath = './" .. build .. "/?.so;' .. package.cpath\n")
  f:write("package.path = './tests/?.lua;' .. package.path\n")
  f:write(code)
  f:close()
  local rc, out = M.sh(M.luajit .. " " .. path)
  os.remove(path)
  return rc, out
end

-- Starts eddy with args (and env, "NAME=value ...", if given) in the
-- background, its output in a file; returns
-- eddy's own pid, the output file and a file where its exit status lands
-- ("rc=N"). The pid is eddy's, not a wrapper's, so that a signal reaches
-- it without pkill (which, run under the sanitizer preload, can hang).
function M.start_eddy(args, env)
  local out, status = os.tmpname(), os.tmpname()
  local f = assert(io.popen(("sh -c '%s%s %s > %s 2>&1 & echo $!; wait $!; echo rc=$? > %s' &")
    :format(env and env .. " " or "", M.eddy_bin, args, out, status)))
  local pid = tonumber(f:read("*l"))
  f:close()
  return pid, out, status
end

function M.read_file(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Waits (up to 5 s) until the file contains pattern; returns its capture.
function M.wait_for(path, pattern)
  for _ = 1, 100 do
    local cap = M.read_file(path):match(pattern)
    if cap then return cap end
    os.execute("sleep 0.05")
  end
  error("never saw " .. pattern .. " in:\n" .. M.read_file(path))
end

-- Waits (up to 10 s) for a background pid to end. Its exit status comes
-- back through the file its wrapping shell writes.
function M.wait_exit(pid)
  for _ = 1, 200 do
    if M.sh("kill -0 " .. pid) ~= 0 then return end
    os.execute("sleep 0.05")
  end
  error("process " .. pid .. " did not end")
end

-- A fresh empty directory under /tmp; the caller removes it.
function M.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir
end

-- Polls cond() every 20 ms (with eddy.sleep inside a task, plainly outside
-- one) for up to limit seconds (default 10): a guard against hangs, not a
-- timing check. Returns its last value.
function M.wait_until(cond, limit)
  local eddy = M.eddy
  local in_task = eddy.current() ~= nil
  local clock = in_task and eddy.now or os.time
  local deadline = clock() + (limit or 10)
  repeat
    local v = cond()
    if v then return v end
    if in_task then eddy.sleep(0.02) else os.execute("sleep 0.02") end
  until clock() > deadline
  return cond()
end

-- A shell command in the background, its output (stdout and stderr) and
-- exit status in files, so that curl, openssl or nginx can run while the
-- loop keeps serving: job:output(), job:expect(pattern[, limit]) (the
-- capture once the output matches), job:kill(), job:wait([limit]) (exit
-- status, or "timeout" when it had to be killed; and the output).
local Job = {}
Job.__index = Job

function M.spawn(cmd)
  local dir = M.tmpdir()
  os.execute(("( (%s) > %s/out 2>&1 & echo $! > %s/pid; wait $!; echo $? > %s/rc.tmp;"
    .. " mv %s/rc.tmp %s/rc ) < /dev/null > /dev/null 2>&1 &"):format(cmd, dir, dir, dir, dir, dir))
  return setmetatable({ dir = dir }, Job)
end

function Job:output() return M.read_file(self.dir .. "/out") end

function Job:expect(pattern, limit)
  return M.wait_until(function() return self:output():match(pattern) end, limit)
end

function Job:kill()
  local pid = M.wait_until(function() return M.read_file(self.dir .. "/pid"):match("%d+") end, 5)
  if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
end

function Job:wait(limit)
  local function rc() return M.read_file(self.dir .. "/rc"):match("%d+") end
  local status = M.wait_until(rc, limit or 20)
  if not status then
    self:kill()
    M.wait_until(rc, 5)
  end
  local out = self:output()
  os.execute("rm -rf " .. self.dir)
  return tonumber(status) or "timeout", out
end

return M

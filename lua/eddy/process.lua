-- eddy.process: child processes. spawn{...} starts one and gives its
-- stdin, stdout and stderr as pipes that read and write as a TCP
-- connection does (read_line, read_some, read, write, shutdown, close);
-- run(cmd, args, opts) runs one to its end and captures its output, with
-- a size limit and a timeout. No shell unless asked for (shell = true).
-- See bindings/process.c.

local eddy = require "eddy"
require "eddy.c.tcp" -- the pipes' class
local c = require "eddy.c.process"

local type, error, setmetatable, tostring = type, error, setmetatable, tostring
local concat = table.concat
local unpack = table.unpack or unpack
local now, spawn_task = eddy.now, eddy.spawn

local M = {}

local DEFAULT_MAX_OUTPUT = 1048576 -- bytes of stdout, and of stderr
local DEFAULT_KILL_GRACE = 2       -- seconds from SIGTERM to SIGKILL
local DRAIN = 0.05 -- seconds past the deadline to read what an exited child wrote

local Process = {}
Process.__index = Process

-- process:wait([timeout]) → code[, signal] once the child has exited:
-- code is its exit status, or 128 + the signal's number when a signal
-- ended it, and signal that signal's name ("term", "kill", ...). nil,
-- "timeout" when it still runs after timeout seconds.
function Process:wait(timeout)
  return self._proc:wait(timeout)
end

-- process:kill([signal]) → true, or nil, "not found" once it has exited.
-- signal: a name ("term", the default; "kill", "int", "hup", "usr1", ...)
-- or a number.
function Process:kill(signal)
  return self._proc:kill(signal)
end

function Process:exited()
  return self._proc:exited()
end

-- process:close(): closes the pipes that are still open (the child reads
-- end-of-file on its stdin). The child runs on.
function Process:close()
  if self.stdin then self.stdin:close() end
  if self.stdout then self.stdout:close() end
  if self.stderr then self.stderr:close() end
end

function Process:__tostring()
  return tostring(self._proc)
end

local function check_string(v, what, fn)
  if type(v) ~= "string" then
    error("bad argument to '" .. fn .. "' (" .. what .. " must be a string, got " .. type(v) .. ")", 3)
  end
end

-- The program and its arguments, through /bin/sh -c when shell is set (the
-- arguments are then $0, $1, ...: sh -c 'echo "$1"' sh hello).
local function command(cmd, args, shell)
  if not shell then return cmd, args end
  local a = { "-c", cmd }
  if args and #args > 0 then
    a[3] = "sh"
    for i = 1, #args do a[#a + 1] = args[i] end
  end
  return "/bin/sh", a
end

-- spawn{cmd, args = {...}, env = {NAME = value}, cwd = dir, stdin =,
-- stdout =, stderr =, shell = false, group = false} → process, or nil, err ("not found"
-- for a missing program, "permission denied" for one that may not run).
-- cmd may be the first array item; args are its arguments (argv[1..]).
-- env replaces the environment (the program is looked up in its PATH).
-- stdin, stdout, stderr: "pipe" (the default: process.stdin etc. are
-- pipes), "inherit" (eddy's own) or "ignore" (/dev/null). group: the child
-- starts a session and process group of its own, and kill() signals the
-- whole group (a shell's children too), even after the child has exited,
-- until no member is left.
-- Left running, a child is not waited for by the loop; if the process
-- object is collected, the child runs on and is reaped when it ends; when
-- the runtime ends, children still running are killed (SIGKILL).
function M.spawn(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'spawn' (table expected, got " .. type(opts) .. ")", 2)
  end
  local cmd = opts.cmd or opts[1]
  check_string(cmd, "cmd", "spawn")
  local args = opts.args
  if args == nil and #opts > 1 then args = { unpack(opts, 2) } end
  if args ~= nil and type(args) ~= "table" then
    error("bad argument to 'spawn' (args must be a table)", 2)
  end
  local file, argv = command(cmd, args, opts.shell)
  local proc, stdin, stdout, stderr = c.spawn(file, argv, opts.env, opts.cwd,
    opts.stdin, opts.stdout, opts.stderr, opts.group)
  if not proc then return nil, stdin end
  return setmetatable({
    _proc = proc,
    pid = proc:pid(),
    stdin = stdin or nil,
    stdout = stdout or nil,
    stderr = stderr or nil,
  }, Process)
end

local function max0(s) return s > 0 and s or 0 end

-- Reads a pipe to its end into a string; past max bytes, calls too_much
-- and stops.
local function collect(pipe, max, too_much)
  local parts, size = {}, 0
  while true do
    local s = pipe:read_some()
    if not s then break end
    size = size + #s
    if size > max then
      too_much()
      break
    end
    parts[#parts + 1] = s
  end
  pipe:close()
  return concat(parts)
end

-- Ends a child that outlived its time, with its process group: SIGTERM,
-- then SIGKILL if it is still there after grace seconds, and SIGKILL for
-- what is left of the group (a shell's child that ignored SIGTERM).
local function stop(p, grace)
  p:kill("term")
  if not p:wait(grace) then
    p:kill("kill")
    p:wait()
  end
  p:kill("kill")
end

-- run(cmd[, args[, opts]]) → { code =, signal =, stdout =, stderr = }, or
-- nil, err: "timeout" (the child was stopped: SIGTERM, then SIGKILL after
-- opts.kill_grace seconds, default 2), "output too large" (stdout or
-- stderr passed opts.max_output bytes, default 1 MiB; the child was
-- killed), "not found", "cancelled", ... opts: timeout (seconds; default
-- none), max_output, stdin (a string written to the child's stdin, else
-- it reads /dev/null), env, cwd, shell (run cmd with /bin/sh -c). The
-- child runs in a process group of its own, which a timeout, the size
-- limit or a cancellation kills whole.
function M.run(cmd, args, opts)
  check_string(cmd, "cmd", "run")
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'run' (options table expected)", 2)
  end
  opts = opts or {}
  local max = opts.max_output or DEFAULT_MAX_OUTPUT
  local grace = opts.kill_grace or DEFAULT_KILL_GRACE
  local deadline = opts.timeout and now() + opts.timeout
  local p, err = M.spawn({ cmd, args = args, env = opts.env, cwd = opts.cwd,
    shell = opts.shell, stdin = opts.stdin and "pipe" or "ignore", group = true })
  if not p then return nil, err end

  local too_large = false
  local function too_much()
    too_large = true
    p:kill("kill")
  end
  local out = spawn_task(collect, p.stdout, max, too_much)
  local errs = spawn_task(collect, p.stderr, max, too_much)
  local writer = opts.stdin and spawn_task(function()
    p.stdin:write(opts.stdin)
    p.stdin:close()
  end)

  local code, signal = p:wait(deadline and max0(deadline - now()))
  if code == nil and signal == "timeout" then
    stop(p, grace)
  end
  if code == nil then
    -- Timed out, or this task was cancelled (which cannot wait any
    -- more): the child is killed, and the readers end as their pipes
    -- close.
    if signal ~= "timeout" then p:kill("kill") end
    p:close()
    if writer then writer:cancel() end
    return nil, signal
  end
  -- The child has exited; its output ends when the pipes close, unless a
  -- child of its own keeps them open: then the time left bounds the wait.
  -- A child that exits just at the deadline still gets its output read.
  local ok1, stdout = out:join(deadline and math.max(deadline - now(), DRAIN))
  local ok2, stderr = errs:join(deadline and math.max(deadline - now(), DRAIN))
  if writer then writer:cancel() end
  p:close()
  if too_large then return nil, "output too large" end
  if not ok1 or not ok2 then
    p:kill("kill") -- what still holds the pipes
    return nil, ok1 and stderr or stdout
  end
  return { code = code, signal = signal, stdout = stdout, stderr = stderr }
end

return M

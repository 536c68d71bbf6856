-- eddy.process: children with pipes, exit codes and signals, env and cwd,
-- run() with its timeout (a child that ignores SIGTERM) and output limit,
-- many children at once, cancelled waits, collected processes, the
-- runtime's end, worker processes, and the example.
local h = require "helper"
local eddy = h.eddy

-- Whether a process with this pid exists (a zombie counts: not reaped).
local function exists(pid)
  return h.sh("test -e /proc/" .. pid) == 0
end

-- Whether pid has ended: gone, or a zombie its parent (not us) has not
-- reaped yet.
local function dead(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return true end
  local stat = f:read("*a")
  f:close()
  return stat:match("^%d+ %b() (%a)") == "Z"
end

-- Waits up to 5 s for pid to be gone (reaped); true if it went.
local function gone(pid)
  for _ = 1, 100 do
    if not exists(pid) then return true end
    eddy.sleep(0.05)
  end
  return false
end

describe("eddy.process", function()
  it("talks to a child through its stdin and stdout", function()
    local r = h.run(function()
      local p = assert(eddy.process.spawn({ "cat" }))
      assert(p.stdin:write("hello\nworld\n"))
      local a, b = p.stdout:read_line(), p.stdout:read_line()
      assert(p.stdin:write("abc|def"))
      local until_bar = p.stdout:read_until("|")
      local three = p.stdout:read(3)
      p.stdin:close()
      local eof = { p.stdout:read_some() }
      return { a = a, b = b, until_bar = until_bar, three = three, eof = eof,
               code = { p:wait() }, pid = p.pid, str = tostring(p.stdin),
               socket_only = p.stdout.peer_addr == nil and p.stdout.set_nodelay == nil }
    end)
    assert.equal("hello", r.a)
    assert.equal("world", r.b)
    assert.equal("abc", r.until_bar)
    assert.equal("def", r.three)
    assert.same({ nil, "closed" }, r.eof)
    assert.same({ 0 }, r.code)
    assert.is_true(r.pid > 1)
    assert.equal("eddy.process.pipe (closed)", r.str)
    assert.is_true(r.socket_only)
  end)

  it("reports exit codes and the signals that ended a child", function()
    local r = h.run(function()
      local P = eddy.process
      local function code_of(cmd)
        local p = assert(P.spawn({ "sh", "-c", cmd, stdin = "ignore" }))
        return { p:wait() }
      end
      local term = assert(P.spawn({ "sleep", "30" }))
      assert(term:kill())
      local nine = assert(P.spawn({ "sleep", "30" }))
      assert(nine:kill(9))
      local usr1 = assert(P.spawn({ "sleep", "30" }))
      assert(usr1:kill("SIGUSR1"))
      local after = { term:wait() }
      return {
        zero = code_of("exit 0"), seven = code_of("exit 7"),
        term = after, kill = { nine:wait() }, usr1 = { usr1:wait() },
        again = { term:kill() }, exited = term:exited(), probe = { usr1:kill(0) },
        bad_signal = pcall(term.kill, term, "nosuch"),
      }
    end)
    assert.same({ 0 }, r.zero)
    assert.same({ 7 }, r.seven)
    assert.same({ 143, "term" }, r.term)
    assert.same({ 137, "kill" }, r.kill)
    assert.same({ 138, "usr1" }, r.usr1)
    assert.same({ nil, "not found" }, r.again)
    assert.is_true(r.exited)
    assert.same({ nil, "not found" }, r.probe)
    assert.is_false(r.bad_signal)
  end)

  it("runs a child with the environment and directory given", function()
    local r = h.run(function()
      local P = eddy.process
      local env = assert(P.run("env", nil, { env = { FOO = "bar", N = 42 } }))
      local cwd = assert(P.run("pwd", nil, { cwd = "/usr" }))
      local inherited = assert(P.run("sh", { "-c", "echo $HOME" }))
      return { env = env.stdout, cwd = cwd.stdout, home = inherited.stdout,
               bad_cwd = { P.run("pwd", nil, { cwd = "/no/such/dir" }) } }
    end)
    local lines = {}
    for l in r.env:gmatch("[^\n]+") do lines[#lines + 1] = l end
    table.sort(lines)
    assert.same({ "FOO=bar", "N=42" }, lines)
    assert.equal("/usr\n", r.cwd)
    assert.equal((os.getenv("HOME") or "") .. "\n", r.home)
    assert.same({ nil, "not found" }, r.bad_cwd)
  end)

  it("captures output, feeds stdin, and uses a shell only when asked", function()
    local r = h.run(function()
      local P = eddy.process
      local both = assert(P.run("sh", { "-c", "echo out; echo err >&2; exit 3" }))
      local big = string.rep("0123456789", 100000)
      local fed = assert(P.run("cat", nil, { stdin = big }))
      local shell = assert(P.run('echo "$1 $0"', { "there" }, { shell = true }))
      local no_shell = { P.run("echo hi | cat") }
      -- A child's SIGPIPE is back to its default, though eddy ignores it.
      local pipe = assert(P.run("sh", { "-c", "yes | head -1" }))
      return { both = both, fed = #fed.stdout == #big and fed.stdout == big,
               shell = shell.stdout, no_shell = no_shell, pipe = pipe }
    end)
    assert.same({ code = 3, stdout = "out\n", stderr = "err\n" }, r.both)
    assert.is_true(r.fed)
    assert.equal("there sh\n", r.shell)
    assert.same({ nil, "not found" }, r.no_shell)
    assert.same({ code = 0, stdout = "y\n", stderr = "" }, r.pipe)
  end)

  it("answers not found and permission denied for programs that cannot run", function()
    local r = h.run(function()
      local P = eddy.process
      local open = eddy.stats().open
      local r = { missing = { P.spawn({ "no-such-program-here" }) },
                  missing_path = { P.run("/no/such/program") },
                  denied = { P.spawn({ "/etc/passwd" }) } }
      eddy.sleep(0.01)
      r.left_open = eddy.stats().open - open -- the pipes made for them closed
      return r
    end)
    assert.equal(0, r.left_open)
    assert.same({ nil, "not found" }, r.missing)
    assert.same({ nil, "not found" }, r.missing_path)
    assert.same({ nil, "permission denied" }, r.denied)
    assert.has_error(function() h.run(function() eddy.process.spawn("ls") end) end)
    assert.has_error(function() h.run(function() eddy.process.spawn({ "ls", stdout = "file" }) end) end)
  end)

  it("ends a child that ignores SIGTERM by the timeout path", function()
    local r = h.run(function()
      local P = eddy.process
      -- exec keeps the ignored SIGTERM: the child itself ignores it.
      local ignores = { P.run("sh", { "-c", "trap '' TERM; echo ready; exec sleep 30" },
        { timeout = 0.3, kill_grace = 0.2 }) }
      local plain = { P.run("sleep", { "30" }, { timeout = 0.1 }) }
      -- The same by hand: wait gives up, the process is still there.
      local p = assert(P.spawn({ "sh", "-c", "trap '' TERM; exec sleep 30" }))
      local waited = { p:wait(0.1) }
      eddy.sleep(0.1) -- let sh set its trap
      p:kill("term")
      local after_term = { p:wait(0.2) }
      p:kill("kill")
      return { ignores = ignores, plain = plain, waited = waited,
               after_term = after_term, final = { p:wait() }, pid = p.pid }
    end)
    assert.same({ nil, "timeout" }, r.ignores)
    assert.same({ nil, "timeout" }, r.plain)
    assert.same({ nil, "timeout" }, r.waited)
    assert.same({ nil, "timeout" }, r.after_term)
    assert.same({ 137, "kill" }, r.final)
    assert.is_false(exists(r.pid))
  end)

  it("kills the whole process group of a run() that timed out", function()
    local r = h.run(function()
      local fs = eddy.fs
      local dir = assert(fs.tmpdir())
      -- The shell's child ignores SIGTERM and keeps the shell's stdout.
      local res = { eddy.process.run("sh", { "-c", "trap '' TERM; sleep 30 & echo $! > " .. dir ..
        "/pid; wait" }, { timeout = 0.3, kill_grace = 0.2 }) }
      local pid = tonumber(fs.read_file(dir .. "/pid"))
      for _ = 1, 100 do
        if dead(pid) then break end
        eddy.sleep(0.05)
      end
      assert(fs.remove(dir, { recursive = true }))
      return { res = res, dead = dead(pid) }
    end)
    assert.same({ nil, "timeout" }, r.res)
    assert.is_true(r.dead)
  end)

  it("limits the output it captures", function()
    local r = h.run(function()
      local P = eddy.process
      return { out = { P.run("yes", nil, { max_output = 100000 }) },
               err = { P.run("sh", { "-c", "yes >&2" }, { max_output = 1000 }) },
               fits = assert(P.run("head", { "-c", "1000", "/dev/zero" }, { max_output = 1000 })) }
    end)
    assert.same({ nil, "output too large" }, r.out)
    assert.same({ nil, "output too large" }, r.err)
    assert.equal(1000, #r.fits.stdout)
  end)

  it("runs many children at once", function()
    local r = h.run(function()
      local tasks = {}
      for i = 1, 40 do
        tasks[i] = eddy.spawn(function()
          local res = assert(eddy.process.run("sh", { "-c", 'echo "$1"; exit $(($1 % 7))', "sh", tostring(i) }))
          return res.stdout, res.code
        end)
      end
      local out = {}
      for i = 1, 40 do
        local ok, stdout, code = tasks[i]:join()
        out[i] = ok and stdout == i .. "\n" and code == i % 7
      end
      return out
    end)
    for i = 1, 40 do assert.is_true(r[i], "child " .. i) end
  end)

  it("lets a cancelled wait go, leaving nothing behind", function()
    local r = h.run(function()
      local p = assert(eddy.process.spawn({ "sleep", "30", stdin = "ignore", stdout = "ignore",
                                            stderr = "ignore" }))
      local t = eddy.spawn(function() return { p:wait() } end)
      eddy.yield()
      t:cancel()
      local ok, res = t:join()
      -- A run() whose task is cancelled kills its child.
      local t2 = eddy.spawn(function() return { eddy.process.run("sleep", { "30" }) } end)
      eddy.sleep(0.05)
      t2:cancel()
      local ok2, res2 = t2:join()
      assert(p:kill())
      return { ok = ok, res = res, code = { p:wait() }, ok2 = ok2, res2 = res2,
               pipes = { p.stdin, p.stdout, p.stderr } }
    end)
    assert.is_true(r.ok)
    assert.same({ nil, "cancelled" }, r.res)
    assert.same({ 143, "term" }, r.code)
    assert.is_true(r.ok2)
    assert.same({ nil, "cancelled" }, r.res2)
    assert.same({}, r.pipes)
  end)

  it("gives a child none of the sockets of a sendfile in progress", function()
    -- In a process of its own, minus the sockets it inherited itself:
    -- those other specs left open in this one would count too.
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      -- Sockets this process was given by its parents are not eddy's.
      local given = {}
      local ls = io.popen("ls -l /proc/$PPID/fd")
      for fd in ls:read("*a"):gmatch(" (%d+) %-> socket:") do given[fd] = true end
      ls:close()
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:seek("set", 64 * 1024 * 1024 - 1) -- sparse: no disk used
      f:write("x")
      f:close()
      local stdout = eddy.run(function()
        local app = eddy.http.server()
        app:get("/big", function(_, res) res:sendfile(path) end)
        local server = assert(app:listen("127.0.0.1", 0, { write_timeout = 10 }))
        local conn = assert(eddy.tcp.connect("127.0.0.1", server:port()))
        conn:write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n") -- and never reads
        eddy.sleep(0.2) -- the socket is full: the sendfile waits
        local res = assert(eddy.process.run("sh", { "-c", "ls -l /proc/$$/fd" }))
        conn:close()
        server:close()
        return res.stdout
      end)
      os.remove(path)
      for fd in stdout:gmatch(" (%d+) %-> socket:") do
        if tonumber(fd) > 2 and not given[fd] then print("inherited " .. fd) end -- 0-2: its pipes
      end
      print("done")
    ]])
    assert.equal(0, rc, out)
    assert.matches("done", out)
    assert.is_nil(out:match("inherited"), out)
  end)

  it("reaps the child of a collected process object", function()
    local pid = h.run(function()
      local p = assert(eddy.process.spawn({ "sleep", "0.2", stdin = "ignore" }))
      local id = p.pid
      p = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert(gone(id), "the child was not reaped")
      return id
    end)
    assert.is_false(exists(pid))
  end)

  it("kills the children still running when the runtime ends", function()
    local rc, out = h.luajit_run([[
local eddy = require "eddy"
eddy.run(function()
  local p = assert(eddy.process.spawn({ "sleep", "30" }))
  print("pid " .. p.pid)
end)
print("open " .. eddy.stats().open)
]])
    assert.equal(0, rc, out)
    local pid = out:match("pid (%d+)")
    assert.truthy(pid, out)
    assert.matches("open 0", out)
    h.run(function() assert.is_true(gone(pid)) end)
  end)

  it("works in several reactor threads at once, each reaping its own children", function()
    local rc, out = h.eddy_run([[
local eddy = require "eddy"
local tasks = {}
for i = 1, 5 do
  tasks[i] = eddy.spawn(function()
    return eddy.process.run("sh", { "-c", "exit " .. (eddy.worker.thread() * 10 + i) }).code
  end)
end
local codes = {}
for i = 1, 5 do codes[i] = select(2, tasks[i]:join()) end
print("thread " .. eddy.worker.thread() .. ": " .. table.concat(codes, ","))
]], "", "--threads 3")
    assert.equal(0, rc, out)
    for t = 1, 3 do
      assert.matches(("thread %d: %d1,%d2,%d3,%d4,%d5"):format(t, t, t, t, t, t), out, 1, true)
    end
  end)

  it("works in worker processes, whose master reaps only its workers", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
local eddy = require "eddy"
local ffi = require "ffi"
ffi.cdef("int getppid(void); int kill(int pid, int sig);")
local r = assert(eddy.process.run("sh", { "-c", "exit 5" }))
local p = assert(eddy.process.spawn({ "sleep", "30" }))
p:kill("usr1")
local code, sig = p:wait(5)
print(("worker %d: run %d, wait %s %s"):format(eddy.worker.id(), r.code, code, sig))
io.stdout:flush()
if eddy.worker.id() == 1 then
  eddy.sleep(0.5)
  ffi.C.kill(ffi.C.getppid(), 15) -- the master stops everyone
end
]])
    f:close()
    local rc, out = h.sh(h.eddy_bin .. " --workers 2 " .. path)
    os.remove(path)
    assert.equal(0, rc, out)
    assert.matches("worker 1: run 5, wait 138 usr1", out, 1, true)
    assert.matches("worker 2: run 5, wait 138 usr1", out, 1, true)
  end)

  it("runs examples/processes.lua", function()
    local rc, out = h.sh(h.eddy_bin .. " examples/processes.lua")
    assert.equal(0, rc, out)
    assert.matches("uname: Linux (exit 0)", out, 1, true)
    assert.matches("sorted: apple\nsorted: fig\nsorted: pear\nsort exited with 0", out, 1, true)
    assert.matches("child 1 exited with 1\nchild 2 exited with 2\nchild 3 exited with 3", out, 1, true)
    assert.matches("slow child: timeout", out, 1, true)
  end)
end)

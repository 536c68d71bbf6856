-- Worker processes under a master: `eddy --workers N`. The master holds
-- the listening sockets, replaces a worker that dies, reloads on SIGHUP
-- without losing a request, and stops gracefully on SIGTERM.
local h = require "helper"
local eddy = h.eddy

-- The app the workers run: who answers, and a slow route for in-flight
-- requests. Written to a file the tests may change between reloads.
local APP = [[
local eddy = require "eddy"
local ffi = require "ffi"
ffi.cdef("int getpid(void);")
local pid = ffi.C.getpid()
local app = eddy.http.server()
app:get("/", function(req, res)
  res:send(("%s %d/%d pid %d\n"):format(VERSION, eddy.worker.id(), eddy.worker.count(), pid))
end)
app:get("/slow", function(req, res)
  eddy.sleep(0.6)
  res:send("slow done by " .. pid .. "\n")
end)
local server = assert(app:listen("127.0.0.1", 0))
print(("worker %d listening on 127.0.0.1:%d"):format(eddy.worker.id(), server:port()))
io.stdout:flush()
]]

local function write_app(path, version, extra)
  local f = assert(io.open(path, "w"))
  f:write(("VERSION = %q\n"):format(version), extra or "", APP)
  f:close()
end

-- One GET over a fresh connection: status line and body, or nil, err.
local function get(port, path)
  local conn, err = eddy.tcp.connect("127.0.0.1", port, { timeout = 5 })
  if not conn then return nil, err end
  conn:write("GET " .. (path or "/") .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  local head, herr = conn:read_until("\r\n\r\n", { timeout = 5 })
  local len = head and tonumber(head:match("[Cc]ontent%-[Ll]ength: (%d+)"))
  local body = len and conn:read(len, { timeout = 5 })
  conn:close()
  if not body then return nil, herr or "no body" end
  return head:match("^HTTP/1%.1 (%d+)"), body
end

local function pids_answering(port, n)
  local seen = {}
  for _ = 1, n do
    local status, body = get(port)
    assert.equal("200", status, body)
    seen[body:match("pid (%d+)")] = true
  end
  return seen
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function start(args)
  local pid, out, status = h.start_eddy(args)
  local port = tonumber(h.wait_for(out, "listening on 127%.0%.0%.1:(%d+)"))
  return pid, out, status, port
end

local function stop(pid, status)
  h.sh("kill -TERM " .. pid)
  h.wait_exit(pid)
  return h.wait_for(status, "(rc=%d+)")
end

describe("eddy --workers", function()
  local app_path
  before_each(function()
    app_path = os.tmpname()
    write_app(app_path, "v1")
  end)
  after_each(function() os.remove(app_path) end)

  it("runs N workers on one port, numbered, with a pid file", function()
    local pidfile = os.tmpname()
    local pid, out, status, port = start("--workers 2 --pid-file " .. pidfile .. " " .. app_path)
    h.wait_for(out, "worker 2 listening") -- both up
    h.wait_for(out, "worker 1 listening")
    assert.equal(pid, tonumber(h.read_file(pidfile)))
    h.run(function()
      local ids = {}
      for _ = 1, 40 do
        local _, body = get(port)
        ids[body:match("v1 (%d)/2")] = true
      end
      assert.same({ ["1"] = true, ["2"] = true }, ids)
    end)
    assert.equal("rc=0", stop(pid, status))
    assert.equal("", h.read_file(pidfile)) -- removed
    assert.equal(1, h.sh("pgrep -f '[b]uild/eddy.*" .. app_path .. "'"))
  end)

  it("replaces a worker killed with SIGKILL, and the port keeps answering", function()
    local pid, out, status, port = start("--workers 2 " .. app_path)
    h.wait_for(out, "worker 2 listening")
    h.run(function()
      local before = pids_answering(port, 30)
      local victim = next(before)
      h.sh("kill -KILL " .. victim)
      -- every request is answered meanwhile (by the other worker, or the
      -- queue waits for the replacement), and a new pid shows up
      local replaced
      for _ = 1, 100 do
        local seen = pids_answering(port, 10)
        assert.is_nil(seen[victim])
        for p in pairs(seen) do
          if not before[p] then replaced = p end
        end
        if replaced then break end
        eddy.sleep(0.05)
      end
      assert.is_not_nil(replaced, "no replacement answered")
    end)
    assert.matches("worker %d %(pid %d+%) was killed by signal 9; restarting it in 0%.1 s", h.read_file(out))
    assert.equal("rc=0", stop(pid, status))
  end)

  it("reloads on SIGHUP under load without losing a request, and old workers finish theirs", function()
    local pid, out, status, port = start("--workers 2 " .. app_path)
    h.wait_for(out, "worker 2 listening")
    local failures, done, versions = {}, 0, {}
    h.run(function()
      local running = true
      local slow = eddy.spawn(function() return get(port, "/slow") end)
      eddy.sleep(0.1) -- the slow request is in flight in an old worker
      local wg = eddy.waitgroup()
      for _ = 1, 4 do
        wg:add(1)
        eddy.spawn(function()
          while running do
            local code, body = get(port)
            if code == "200" then
              done = done + 1
              versions[body:match("^(v%d)")] = true
            else
              failures[#failures + 1] = tostring(code) .. " " .. tostring(body)
            end
          end
          wg:done()
        end)
      end
      eddy.sleep(0.2)
      write_app(app_path, "v2")
      h.sh("kill -HUP " .. pid)
      eddy.sleep(0.8)
      h.sh("kill -HUP " .. pid) -- and once more, v2 again
      eddy.sleep(0.8)
      running = false
      wg:wait()
      local ok, code, body = slow:join()
      assert.is_true(ok)
      assert.equal("200", code, body)
      assert.matches("slow done by", body)
    end)
    assert.same({}, failures)
    assert.is_true(done > 50, "only " .. done .. " requests")
    assert.is_true(versions.v1 and versions.v2, "both versions should have answered")
    assert.matches("reloading: starting 2 new workers", h.read_file(out))
    assert.matches("took over from pid", h.read_file(out))
    assert.equal("rc=0", stop(pid, status))
  end)

  it("keeps the old workers when the new code fails to start", function()
    local pid, out, status, port = start("--workers 1 " .. app_path)
    write_app(app_path, "v2", "error('broken release')\n")
    h.sh("kill -HUP " .. pid)
    h.wait_for(out, "()the new worker 1 %(pid %d+%) exited with status 1 before it ran")
    h.run(function()
      local code, body = get(port)
      assert.equal("200", code)
      assert.matches("^v1 ", body)
    end)
    assert.matches("broken release", h.read_file(out))
    assert.equal("rc=0", stop(pid, status))
  end)

  it("restarts a worker that keeps dying with a growing delay", function()
    write_app(app_path, "v1", "error('dies at once')\n")
    local pid, out, status = h.start_eddy("--workers 1 " .. app_path)
    h.wait_for(out, "()restarting it in 0%.4 s")
    local log = h.read_file(out)
    assert.matches("restarting it in 0%.1 s.*restarting it in 0%.2 s.*restarting it in 0%.4 s", log)
    assert.equal("rc=0", stop(pid, status))
  end)

  it("a worker that dies while its reload replacement starts is replaced once, not twice", function()
    -- "crash": the worker dies 0.1 s after it runs, so that its restarts
    -- back off; "slow": it takes 0.3 s before it runs, then serves.
    local mode_path = os.tmpname()
    local function set_mode(mode)
      local f = assert(io.open(mode_path, "w"))
      f:write(mode)
      f:close()
    end
    set_mode("crash")
    local f = assert(io.open(app_path, "w"))
    f:write(([[
      local eddy = require "eddy"
      local ffi = require "ffi"
      ffi.cdef("int getpid(void);")
      local mf = io.open(%q)
      local mode = mf:read("*a")
      mf:close()
      if mode == "crash" then
        print("crashing worker up")
        io.stdout:flush()
        eddy.sleep(0.1)
        os.exit(3)
      end
      os.execute("sleep 0.3")
      local server = assert(eddy.tcp.listen("127.0.0.1", 0))
      print("serving pid " .. ffi.C.getpid())
      io.stdout:flush()
    ]]):format(mode_path))
    f:close()
    local pid, out, status = h.start_eddy("--workers 1 " .. app_path)
    local ok, err = pcall(function()
      h.wait_for(out, "()restarting it in 0%.4 s")
      -- The next life dies with a restart 0.8 s away; its replacement
      -- runs well before that, and must cancel the restart.
      local ups = select(2, h.read_file(out):gsub("crashing worker up", ""))
      for _ = 1, 100 do
        if select(2, h.read_file(out):gsub("crashing worker up", "")) > ups then break end
        os.execute("sleep 0.02")
      end
      set_mode("slow")
      h.sh("kill -HUP " .. pid)
      h.wait_for(out, "()serving pid")
      os.execute("sleep 1.2") -- past the restart that was pending
    end)
    local _, children = h.sh("pgrep -P " .. pid)
    local log = h.read_file(out)
    local rc = stop(pid, status)
    os.remove(mode_path)
    assert(ok, err)
    assert.equal("rc=0", rc)
    assert.matches("restarting it in 0%.8 s", log)
    assert.equal(1, select(2, children:gsub("%d+", "")), log)
    assert.equal(1, select(2, log:gsub("serving pid", "")), log)
  end)

  it("stops gracefully on SIGTERM: an in-flight request completes", function()
    local pid, out, status, port = start("--workers 2 " .. app_path)
    h.wait_for(out, "worker 2 listening")
    h.run(function()
      local slow = eddy.spawn(function() return get(port, "/slow") end)
      eddy.sleep(0.1)
      h.sh("kill -TERM " .. pid)
      local ok, code, body = slow:join()
      assert.is_true(ok)
      assert.equal("200", code, body)
    end)
    h.wait_exit(pid)
    assert.equal("rc=0", h.wait_for(status, "(rc=%d+)"))
    assert.matches("stopping the workers", h.read_file(out))
    assert.equal(1, h.sh("pgrep -f '[b]uild/eddy.*" .. app_path .. "'"))
  end)

  it("ends when every worker ends by itself", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      print("worker " .. eddy.worker.id() .. " of " .. eddy.worker.count())
    ]], "", "--workers 3")
    assert.equal(0, rc, out)
    for i = 1, 3 do assert.matches("worker " .. i .. " of 3", out) end
  end)

  it("refuses bad options", function()
    local rc, out = h.sh(h.eddy_bin .. " --workers x -e 'print(1)'")
    assert.equal(1, rc)
    assert.matches("bad %-%-workers: x", out)
    rc, out = h.sh(h.eddy_bin .. " --pid-file /tmp/x.pid -e 'print(1)'")
    assert.equal(1, rc)
    assert.matches("%-%-pid%-file and %-%-process go with %-%-workers", out)
    -- a grace of NaN would have the master kill workers at once
    rc, out = h.sh(h.eddy_bin .. " --workers 1 --grace nan -e 'print(1)'")
    assert.equal(1, rc)
    assert.matches("bad %-%-grace: nan", out)
  end)

  it("runs a --process next to the workers, restarts it, and it reaches them by mailbox", function()
    local app = os.tmpname()
    local f = assert(io.open(app, "w"))
    f:write([[
      local eddy = require "eddy"
      print("worker " .. eddy.worker.id() .. " of " .. eddy.worker.count() .. " up")
      io.stdout:flush()
      while true do
        local msg, from = eddy.mailbox.recv()
        if not msg then break end
        print(("worker %d heard tick %d from %d"):format(eddy.worker.id(), msg.tick, from))
        io.stdout:flush()
      end
    ]])
    f:close()
    local pid, out, status = h.start_eddy("--workers 2 --process examples/process.lua " .. app)
    local first = h.wait_for(out, "process 3 %(pid (%d+)%) started %(workers 1 to 2%)")
    h.wait_for(out, "()worker 1 heard tick 2 from 3")
    h.wait_for(out, "()worker 2 heard tick 2 from 3")
    h.sh("kill -KILL " .. first)
    local second = h.wait_for(out, "process 3 %(pid (%d+)%) started.*process 3 %(pid (%d+)%) started")
    assert.is_not_nil(second)
    assert.matches("worker 3 %(pid " .. first .. "%) was killed by signal 9; restarting it", h.read_file(out))
    assert.equal("rc=0", stop(pid, status))
    os.remove(app)
  end)
end)

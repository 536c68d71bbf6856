-- eddy.http: the HTTP/1.1 server against real, independent clients: curl,
-- Node's http module, wrk, and raw sockets for every malformed request and
-- every limit.
--
-- The server under test runs in a process of its own: this file, run as
-- `luajit tests/spec/http_spec.lua --serve OPTIONS READY-FILE`, serves the
-- test app (make_app below) inside h.run, so that a server that leaks a
-- task, timer or handle exits with an error, and a server that crashes
-- fails the test that crashed it instead of killing the whole busted run.
-- Each test starts a fresh server with the options it needs, talks to it,
-- then stops it with SIGTERM (a graceful close) and checks that it exited 0.
-- A few tests at the end also run a server inside the test's own loop.
package.path = "./tests/?.lua;" .. package.path -- for the server process
local h = require "helper"
local eddy = h.eddy

local SPEC = debug.getinfo(1, "S").source:gsub("^@", "")

-- =========================================================================
-- The app every test server runs

local function make_app(state)
  local app = eddy.http.server()
  local inflight, peak = 0, 0

  app:get("/", function(_, res) res:send("hello\n") end)
  app:get("/users/:id", function(req, res) res:json({ id = req.params.id }) end)
  app:get("/files/*rest", function(req, res) res:send(req.params.rest) end)

  -- What the server made of the request.
  app:get("/info", function(req, res)
    local ip, port = req:remote_addr()
    res:json({
      method = req.method, path = req.path, target = req.target,
      version = req.version, query = req.query, headers = req.headers,
      host = req:header("HOST"), ip = ip, port = port,
    })
  end)

  -- The body back, whole.
  app:route({ "POST", "PUT", "PATCH" }, "/echo", function(req, res)
    local body, err = req:body()
    if not body then
      res:send("error: " .. tostring(err))
      return
    end
    res:header("X-Method", req.method)
    res:header("X-Body-Length", tostring(#body))
    res:send(body)
  end)

  -- The body read piece by piece.
  app:post("/count", function(req, res)
    local pieces, bytes = 0, 0
    while true do
      local piece, err = req:read(1024)
      if not piece then
        if err then res:send("error: " .. err) return end
        break
      end
      pieces, bytes = pieces + 1, bytes + #piece
    end
    res:send(("pieces=%d bytes=%d"):format(pieces, bytes))
  end)

  -- Answers without reading the body.
  app:post("/ignore", function(_, res) res:send("ignored") end)

  app:get("/json", function(_, res)
    res:json({ name = "eddy", list = { 1, 2, 3 }, nested = { ok = true } })
  end)
  app:post("/created", function(_, res) res:json({ created = true }, 201) end)
  app:get("/redirect", function(_, res) res:redirect("/target") end)
  app:get("/redirect301", function(_, res) res:redirect("/target", 301) end)
  app:get("/target", function(_, res) res:send("you made it\n") end)
  app:get("/cookie/set", function(_, res)
    res:cookie("session", "abc123", { path = "/", http_only = true, max_age = 3600 })
    res:cookie("theme", "dark", { path = "/" })
    res:send("set\n")
  end)
  app:get("/cookie/show", function(req, res) res:send(req:header("cookie") or "none") end)

  -- A streamed (chunked) response, piece by piece over time.
  app:get("/stream", function(_, res)
    for i = 1, 5 do
      res:write("piece " .. i .. "\n")
      eddy.sleep(0.05)
    end
  end)

  -- A streamed response with a length set by the handler.
  app:get("/stream-length", function(_, res)
    res:header("Content-Length", "12")
    res:write("hello ")
    res:write("world\n")
    res:finish()
  end)

  app:get("/big", function(req, res) res:send(string.rep("x", tonumber(req.query.n))) end)

  -- Writes n bytes in 64 KiB pieces; stops at the first failed write.
  app:get("/big-stream", function(req, res)
    local n, piece = tonumber(req.query.n), string.rep("y", 65536)
    local sent = 0
    while sent < n do
      local ok, err = res:write(piece)
      if not ok then
        io.stderr:write("big-stream: write failed: ", tostring(err), "\n")
        return
      end
      sent = sent + #piece
    end
  end)

  app:get("/slow", function(req, res)
    eddy.sleep(tonumber(req.query.s) or 1)
    res:send("slow\n")
  end)

  -- How many requests were in their handler at once, at most.
  app:get("/concurrent", function(_, res)
    inflight = inflight + 1
    if inflight > peak then peak = inflight end
    eddy.sleep(0.3)
    inflight = inflight - 1
    res:json({ peak = peak })
  end)

  app:get("/error", function() error("boom: secret-detail-1234") end)
  app:get("/error-late", function(_, res)
    res:write("partial")
    error("late boom")
  end)
  app:get("/empty", function() end)
  app:get("/status/:code", function(req, res)
    res:status(tonumber(req.params.code))
    res:send("status " .. req.params.code)
  end)
  app:get("/connections", function(_, res) res:send(tostring(state.server:connections())) end)

  -- Tries to split the response through every door; reports what raised.
  app:get("/inject", function(_, res)
    local tries = {
      { "X-A", "a\r\nSet-Cookie: evil=1" },
      { "X-A", "a\nSet-Cookie: evil=1" },
      { "X-A", "a\rSet-Cookie: evil=1" },
      { "X-A", "a\0b" },
      { "X-A\r\nSet-Cookie", "evil=1" },
      { "X A", "b" },
      { "X:A", "b" },
      { "", "b" },
      { "Transfer-Encoding", "chunked" },
      { "transfer-encoding", "identity" },
      { "Connection", "close" },
    }
    local report = {}
    for i, t in ipairs(tries) do
      report[i] = { pcall(res.header, res, t[1], t[2]) }
      report[i] = report[i][1] and "accepted" or "raised"
    end
    report[#report + 1] = pcall(res.cookie, res, "a", "b\r\nSet-Cookie: evil=1") and "accepted" or "raised"
    report[#report + 1] = pcall(res.cookie, res, "a", "b", { path = "/\r\nSet-Cookie: evil=1" }) and "accepted" or "raised"
    report[#report + 1] = pcall(res.cookie, res, "a=b", "c") and "accepted" or "raised"
    report[#report + 1] = pcall(res.redirect, res, "/x\r\nSet-Cookie: evil=1") and "accepted" or "raised"
    res:status(200)
    res:header("X-Ok", "fine")
    res:json(report)
  end)
  return app
end

-- The server process: `luajit http_spec.lua --serve OPTIONS READY-FILE`.
-- Writes its port to READY-FILE, serves until SIGTERM, then closes and
-- waits for its connections to end; h.run checks that nothing was left.
if not describe and select(1, ...) == "--serve" then
  local _, opts_src, ready = ...
  local opts = assert(loadstring("return " .. opts_src))()
  h.run(function()
    local state = {}
    local app = make_app(state)
    local server = assert(app:listen("127.0.0.1", 0, opts))
    state.server = server
    local on_term
    on_term = eddy.signal.on("term", function()
      server:close()
      on_term:cancel()
    end)
    local f = assert(io.open(ready .. ".tmp", "w"))
    f:write(server:port())
    f:close()
    os.rename(ready .. ".tmp", ready)
  end)
  io.stderr:write("server: clean exit\n")
  os.exit(0)
end

-- =========================================================================
-- Files and processes

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir
end

-- Sleeps without blocking the loop inside a task, and plainly outside one.
local function pause(s)
  if eddy.current() then eddy.sleep(s) else os.execute("sleep " .. s) end
end

-- Polls cond() every 10 ms for up to limit seconds.
local function wait_until(cond, limit)
  local deadline = os.time() + limit
  repeat
    local v = cond()
    if v then return v end
    pause(0.01)
  until os.time() > deadline
  return cond()
end

-- Starts a shell command in the background, its output (stdout and stderr)
-- and exit status going to files: a way to run curl, node or wrk while the
-- loop keeps serving. job:wait(limit) polls (with eddy.sleep inside a
-- task) and returns the exit status ("timeout" if it had to be killed)
-- and the output.
local Job = {}
Job.__index = Job

local function spawn(cmd)
  local dir = tmpdir()
  os.execute(("( (%s) > %s/out 2>&1 & echo $! > %s/pid; wait $!; echo $? > %s/rc.tmp; mv %s/rc.tmp %s/rc )"
    .. " < /dev/null > /dev/null 2>&1 &"):format(cmd, dir, dir, dir, dir, dir))
  return setmetatable({ dir = dir }, Job)
end

function Job:wait(limit)
  local rc = wait_until(function() return read_file(self.dir .. "/rc") end, limit or 20)
  if not rc then
    local pid = read_file(self.dir .. "/pid")
    if pid then os.execute("kill -KILL " .. pid:match("%d+") .. " 2>/dev/null") end
    rc = "timeout"
  end
  local out = read_file(self.dir .. "/out") or ""
  os.execute("rm -rf " .. self.dir)
  return tonumber(rc) or rc, out
end

-- Options as a Lua table constructor (numbers and booleans only).
local function serialize(opts)
  local parts = {}
  for k, v in pairs(opts or {}) do
    parts[#parts + 1] = ("%s=%s"):format(k, tostring(v))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Starts a test server process; returns { port, pid, dir }.
local function start_server(opts)
  local dir = tmpdir()
  os.execute(("( %s %s --serve '%s' %s/ready > %s/out 2> %s/log & echo $! > %s/pid; wait $!;"
    .. " echo $? > %s/rc.tmp; mv %s/rc.tmp %s/rc ) < /dev/null > /dev/null 2>&1 &"):format(
    h.luajit, SPEC, serialize(opts), dir, dir, dir, dir, dir, dir, dir))
  local ready = wait_until(function()
    return read_file(dir .. "/ready") or read_file(dir .. "/rc")
  end, 10)
  local port = tonumber(read_file(dir .. "/ready"))
  if not port then
    local log = (read_file(dir .. "/log") or "") .. (read_file(dir .. "/out") or "")
    os.execute("rm -rf " .. dir)
    error("the test server did not start (" .. tostring(ready) .. "):\n" .. log)
  end
  local pid = wait_until(function() return read_file(dir .. "/pid") end, 5)
  return { port = port, pid = tonumber(pid:match("%d+")), dir = dir }
end

-- Stops it with SIGTERM; returns its exit status (a number, or "hung")
-- and its log.
local function stop_server(s)
  os.execute("kill -TERM " .. s.pid .. " 2>/dev/null")
  local rc = wait_until(function() return read_file(s.dir .. "/rc") end, 10)
  if not rc then
    os.execute("kill -KILL " .. s.pid .. " 2>/dev/null")
    rc = "hung"
  end
  local log = (read_file(s.dir .. "/log") or "") .. (read_file(s.dir .. "/out") or "")
  os.execute("rm -rf " .. s.dir)
  return tonumber(rc) or rc, log
end

local function message(err)
  if type(err) == "table" then return tostring(err.message or err[1] or err) end
  return tostring(err)
end

local server_log -- the log of the last server with_server ran

-- Runs fn(port) against a fresh server with opts; returns what fn
-- returned (the server's log is in server_log). A server that crashed,
-- hung or exited with an error fails the test, whatever fn found.
local function with_server(opts, fn)
  local s = start_server(opts)
  local results = { pcall(fn, s.port, s) }
  local ok = results[1]
  local rc, log = stop_server(s)
  server_log = log
  if rc ~= 0 then
    local why = rc == 139 and " (SIGSEGV: the server crashed)" or rc == 134 and " (SIGABRT)" or ""
    error(("the server process ended with status %s%s\n--- its log:\n%s%s"):format(
      tostring(rc), why, log, ok and "" or "\n--- the test's own failure:\n" .. message(results[2])), 0)
  end
  if not ok then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

-- =========================================================================
-- A raw HTTP client on eddy.tcp (inside a task)

local T = 5 -- seconds: the limit of waits for what should come at once

local function connect(port)
  return assert(eddy.tcp.connect("127.0.0.1", port, { timeout = T }))
end

-- Reads one response from conn. Returns { version, status, reason,
-- headers (lowercased names; repeats joined by ", "), names (as sent, in
-- order), body, complete (false when the body was cut short) }, or nil,
-- err when not even a head came. opts.head: a response to HEAD.
local function read_response(conn, opts)
  opts = opts or {}
  local line, err = conn:read_line({ timeout = opts.timeout or T })
  if not line then return nil, err end
  local version, status, reason = line:match("^HTTP/(%d%.%d) (%d%d%d) (.*)$")
  if not version then return nil, "bad status line: " .. line end
  local r = { version = version, status = tonumber(status), reason = reason, headers = {}, names = {} }
  while true do
    local l, e = conn:read_line({ timeout = T })
    if not l then return nil, "head cut short: " .. tostring(e) end
    if l == "" then break end
    local name, value = l:match("^([^:]+):%s*(.-)%s*$")
    if not name then return nil, "bad header line: " .. l end
    r.names[#r.names + 1] = name
    local key = name:lower()
    r.headers[key] = r.headers[key] and r.headers[key] .. ", " .. value or value
  end
  r.complete = true
  if opts.head or r.status < 200 or r.status == 204 or r.status == 304 then
    r.body = ""
    return r
  end
  local parts = {}
  if r.headers["transfer-encoding"] == "chunked" then
    r.chunks = 0
    while true do
      local size = conn:read_line({ timeout = T })
      local n = size and tonumber(size:match("^(%x+)"), 16)
      if not n then r.complete = false break end
      if n == 0 then
        repeat
          local trailer = conn:read_line({ timeout = T })
        until trailer == nil or trailer == ""
        break
      end
      local data = conn:read(n, { timeout = T })
      if not data or conn:read_line({ timeout = T }) ~= "" then
        r.complete = false
        break
      end
      r.chunks = r.chunks + 1
      parts[#parts + 1] = data
    end
  elseif r.headers["content-length"] then
    local n = tonumber(r.headers["content-length"])
    if n > 0 then
      local data, e, partial = conn:read(n, { timeout = T })
      parts[1] = data or partial
      r.complete = data ~= nil
      r.err = e
    end
  else
    while true do
      local data, e = conn:read_some(65536, { timeout = T })
      if not data then
        r.complete = e == "closed"
        break
      end
      parts[#parts + 1] = data
    end
  end
  r.body = table.concat(parts)
  return r
end

-- Whether the server closes conn now (and sends nothing more); the second
-- value is what came instead ("timeout", or bytes).
local function closed_after(conn, limit)
  local data, err = conn:read_some(4096, { timeout = limit or T })
  if data == nil and err == "closed" then return true end
  return false, data or err
end

-- A request in the usual shape: "GET /path HTTP/1.1" with a Host.
local function request(method, path, headers, body)
  local lines = { ("%s %s HTTP/1.1"):format(method, path), "Host: test" }
  for _, hd in ipairs(headers or {}) do lines[#lines + 1] = hd end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

-- One request on a connection of its own; returns the response (or nil,
-- err) and whether the server then closed.
local function exchange(port, bytes, opts)
  local conn = connect(port)
  assert(conn:write(bytes))
  local r, err = read_response(conn, opts)
  local closed, instead = closed_after(conn)
  conn:close()
  return r, err, closed, instead
end

-- GET path with Connection: close; returns the response.
local function get(port, path)
  return (exchange(port, request("GET", path, { "Connection: close" })))
end

local json = require "cjson"

local function curl(port, args)
  return h.sh("curl -sS --max-time 20 " .. args:gsub("URL", "http://127.0.0.1:" .. port))
end

-- A file of n pseudo-random printable bytes.
local function data_file(n)
  local t, x = {}, 12345
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(33 + x % 90)
  end
  local path = os.tmpname()
  write_file(path, table.concat(t))
  return path, table.concat(t)
end

local DATE = "^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$"

-- =========================================================================

describe("eddy.http server", function()
  describe("with curl", function()
    it("answers GET with a body, a length, a type and a Date", function()
      local rc, out = with_server({}, function(port) return curl(port, "-i URL/") end)
      assert.equal(0, rc, out)
      assert.matches("^HTTP/1%.1 200 OK\r\n", out)
      assert.matches("\r\nContent%-Length: 6\r\n", out)
      assert.matches("\r\nContent%-Type: text/plain; charset=utf%-8\r\n", out)
      local date = out:match("\r\nDate: ([^\r]+)\r\n")
      assert.truthy(date, out)
      assert.matches(DATE, date)
      assert.matches("\r\n\r\nhello\n$", out)
    end)

    it("answers HEAD from the GET route, with the length and no body", function()
      local out = with_server({}, function(port)
        local rc, o = curl(port, "-I URL/json")
        assert.equal(0, rc, o)
        return o
      end)
      assert.matches("^HTTP/1%.1 200 OK\r\n", out)
      assert.matches("\r\nContent%-Length: %d+\r\n", out)
      assert.matches("\r\nContent%-Type: application/json\r\n", out)
      assert.not_matches("eddy", out) -- the JSON body is not sent
    end)

    it("takes POST, PUT and PATCH bodies", function()
      local path, data = data_file(200000)
      local got = with_server({}, function(port)
        return {
          { curl(port, "--data-binary 'hello world' URL/echo") },
          { curl(port, "-X PUT --data-binary 'put me' -D - URL/echo") },
          { curl(port, "-X PATCH --data-binary 'patch' URL/echo") },
          { curl(port, "--data-binary @" .. path .. " URL/echo") },
          { curl(port, "-X POST URL/echo -w ' %{http_code}'") }, -- no body at all
        }
      end)
      os.remove(path)
      assert.same({ 0, "hello world" }, got[1])
      assert.equal(0, got[2][1])
      assert.matches("X%-Method: PUT\r\n", got[2][2])
      assert.matches("\r\n\r\nput me$", got[2][2])
      assert.same({ 0, "patch" }, got[3])
      assert.equal(0, got[4][1])
      assert.equal(#data, #got[4][2])
      assert.is_true(got[4][2] == data, "the 200 KB body came back changed")
      assert.same({ 0, " 200" }, got[5])
    end)

    it("speaks HTTP/1.0: closes after each response, and streams to the close", function()
      local r = with_server({}, function(port)
        return {
          plain = { curl(port, "--http1.0 -i URL/") },
          stream = { curl(port, "--http1.0 -i URL/stream") },
          post = { curl(port, "--http1.0 --data-binary 'ten bytes!' URL/echo") },
        }
      end)
      assert.equal(0, r.plain[1], r.plain[2])
      assert.matches("^HTTP/1%.1 200 OK\r\n", r.plain[2])
      assert.matches("\r\nConnection: close\r\n", r.plain[2])
      assert.matches("\r\n\r\nhello\n$", r.plain[2])
      assert.equal(0, r.stream[1], r.stream[2])
      assert.not_matches("Transfer%-Encoding", r.stream[2]) -- no chunked for 1.0
      assert.matches("\r\n\r\npiece 1\npiece 2\npiece 3\npiece 4\npiece 5\n$", r.stream[2])
      assert.same({ 0, "ten bytes!" }, r.post)
    end)

    it("takes chunked uploads, whole and piece by piece", function()
      local path, data = data_file(300000)
      local r = with_server({}, function(port)
        return {
          echo = { curl(port, "-H 'Transfer-Encoding: chunked' --data-binary @" .. path .. " URL/echo") },
          count = { curl(port, "-H 'Transfer-Encoding: chunked' --data-binary @" .. path .. " URL/count") },
        }
      end)
      os.remove(path)
      assert.equal(0, r.echo[1])
      assert.equal(#data, #r.echo[2])
      assert.is_true(r.echo[2] == data, "the chunked body came back changed")
      assert.equal(0, r.count[1], r.count[2])
      local pieces, bytes = r.count[2]:match("pieces=(%d+) bytes=(%d+)")
      assert.equal(300000, tonumber(bytes), r.count[2])
      assert.is_true(tonumber(pieces) >= 293, r.count[2]) -- read(1024) gives at most 1 KiB
    end)

    it("sends 100 Continue to Expect when the handler reads the body", function()
      local path, data = data_file(2 * 1024 * 1024 - 1000)
      local rc, out = with_server({ max_body = 4 * 1024 * 1024 }, function(port)
        return curl(port, "-v --expect100-timeout 15 -H 'Expect: 100-continue' --data-binary @"
          .. path .. " URL/echo -o /dev/null -w 'code=%{http_code} size=%{size_download}'")
      end)
      os.remove(path)
      assert.equal(0, rc, out)
      assert.matches("< HTTP/1%.1 100 Continue", out)
      assert.matches("code=200 size=" .. #data, out)
    end)

    it("refuses an Expect body over max_body with 413 before it is sent", function()
      local path = data_file(100000)
      local rc, out = with_server({ max_body = 50000 }, function(port)
        return curl(port, "-v --expect100-timeout 15 -H 'Expect: 100-continue' --data-binary @"
          .. path .. " URL/echo -w 'code=%{http_code}'")
      end)
      os.remove(path)
      assert.equal(0, rc, out)
      assert.not_matches("100 Continue", out)
      assert.matches("code=413", out)
    end)

    it("refuses a 3 MB body over the 1 MiB default max_body with 413, with or without a length", function()
      local path = data_file(3000000)
      local r = with_server({}, function(port)
        return {
          length = { curl(port, "-H 'Expect:' --data-binary @" .. path .. " URL/echo -o /dev/null -w '%{http_code}'") },
          chunked = { curl(port, "-H 'Expect:' -H 'Transfer-Encoding: chunked' --data-binary @" .. path
            .. " URL/echo -w ' %{http_code}'") },
          after = { curl(port, "URL/") },
        }
      end)
      os.remove(path)
      assert.same({ 0, "413" }, r.length)
      assert.same({ 0, "error: too large 413" }, r.chunked)
      assert.same({ 0, "hello\n" }, r.after)
    end)

    it("keeps one connection alive across several URLs", function()
      local rc, out = with_server({}, function(port)
        local u = "http://127.0.0.1:" .. port
        return h.sh(("curl -sS -v --max-time 20 %s/ %s/users/7 %s/json %s/target"):format(u, u, u, u))
      end)
      assert.equal(0, rc, out)
      local reused = select(2, out:gsub("Re%-using existing connection", ""))
      assert.equal(3, reused, out)
      assert.matches("hello\n", out)
      assert.matches('{"id":"7"}', out)
      assert.matches("you made it\n", out)
      assert.not_matches("Connection: close", out)
    end)

    it("sends JSON, with a status when asked", function()
      local r = with_server({}, function(port)
        return {
          json = { curl(port, "-i URL/json") },
          created = { curl(port, "-X POST -i URL/created") },
          user = { curl(port, "URL/users/42") },
        }
      end)
      assert.equal(0, r.json[1])
      assert.matches("^HTTP/1%.1 200 OK\r\n", r.json[2])
      assert.matches("\r\nContent%-Type: application/json\r\n", r.json[2])
      assert.same({ name = "eddy", list = { 1, 2, 3 }, nested = { ok = true } },
        json.decode(r.json[2]:match("\r\n\r\n(.*)$")))
      assert.matches("^HTTP/1%.1 201 Created\r\n", r.created[2])
      assert.same({ created = true }, json.decode(r.created[2]:match("\r\n\r\n(.*)$")))
      assert.same({ id = "42" }, json.decode(r.user[2]))
    end)

    it("redirects, and curl -L follows", function()
      local r = with_server({}, function(port)
        return {
          raw = { curl(port, "-i URL/redirect") },
          follow = { curl(port, "-L URL/redirect") },
          follow301 = { curl(port, "-L -w ' %{http_code} %{num_redirects}' URL/redirect301") },
        }
      end)
      assert.matches("^HTTP/1%.1 302 Found\r\n", r.raw[2])
      assert.matches("\r\nLocation: /target\r\n", r.raw[2])
      assert.same({ 0, "you made it\n" }, r.follow)
      assert.same({ 0, "you made it\n 200 1" }, r.follow301)
    end)

    it("sets cookies that curl's jar keeps and sends back", function()
      local jar = os.tmpname()
      local r = with_server({}, function(port)
        return {
          set = { curl(port, "-i -c " .. jar .. " URL/cookie/set") },
          show = { curl(port, "-b " .. jar .. " URL/cookie/show") },
        }
      end)
      local jar_text = read_file(jar)
      os.remove(jar)
      assert.equal(0, r.set[1])
      assert.matches("\r\nSet%-Cookie: session=abc123; Path=/; Max%-Age=3600; HttpOnly\r\n", r.set[2])
      assert.matches("\r\nSet%-Cookie: theme=dark; Path=/\r\n", r.set[2])
      assert.matches("#HttpOnly_127%.0%.0%.1\t[^\n]*\tsession\tabc123", jar_text)
      assert.matches("\ttheme\tdark", jar_text)
      assert.equal(0, r.show[1])
      assert.matches("session=abc123", r.show[2])
      assert.matches("theme=dark", r.show[2])
    end)

    it("routes: parameters, rest, decoded paths and queries, 404, 405 with Allow", function()
      local r = with_server({}, function(port)
        return {
          rest = { curl(port, "URL/files/a%20b/c.txt") },
          info = { curl(port, "'URL/inf%6F?a=1&b=x+y&a=2&c=%26%3D&d&e=1%2B1'") },
          missing = { curl(port, "-i URL/nowhere") },
          wrong = { curl(port, "-i -X DELETE URL/json") },
          port = port,
        }
      end)
      assert.same({ 0, "a b/c.txt" }, r.rest)
      local info = json.decode(r.info[2])
      assert.equal("/info", info.path)
      assert.equal("/inf%6F?a=1&b=x+y&a=2&c=%26%3D&d&e=1%2B1", info.target)
      assert.same({ a = { "1", "2" }, b = "x y", c = "&=", d = "", e = "1+1" }, info.query)
      assert.equal("1.1", info.version)
      assert.equal("127.0.0.1", info.ip)
      assert.equal("curl/", info.headers["user-agent"]:sub(1, 5))
      assert.equal("127.0.0.1:" .. r.port, info.host)
      assert.matches("^HTTP/1%.1 404 Not Found\r\n", r.missing[2])
      assert.matches("^HTTP/1%.1 405 Method Not Allowed\r\n", r.wrong[2])
      assert.matches("\r\nAllow: [^\r]*GET", r.wrong[2])
    end)

    it("sends a 1 MB body whole", function()
      local rc, out = with_server({}, function(port)
        return curl(port, "-o /dev/null -w '%{http_code} %{size_download}' 'URL/big?n=1000000'")
      end)
      assert.equal(0, rc, out)
      assert.equal("200 1000000", out)
    end)
  end)

  describe("with Node's http module", function()
    local SCRIPT = [[
const http = require('http');
const port = +process.argv[2];
const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
function call(method, path, chunks) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent }, res => {
      const pieces = [];
      res.setEncoding('utf8');
      res.on('data', d => pieces.push(d));
      const port = res.socket.localPort;
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
        body: pieces.join(''), events: pieces.length, port }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!chunks) return req.end();
    // Written over time with no length: node sends it chunked.
    let i = 0;
    const next = () => { if (i < chunks.length) { req.write(chunks[i++]); setTimeout(next, 20); } else req.end(); };
    next();
  });
}
(async () => {
  const out = {};
  const ids = Array.from({ length: 200 }, (_, i) => i);
  const users = await Promise.all(ids.map(i => call('GET', '/users/' + i)));
  out.users_ok = users.every((r, i) => r.status === 200 && JSON.parse(r.body).id === String(i));
  out.sockets = new Set(users.map(r => r.port)).size;
  const conc = await Promise.all(Array.from({ length: 10 }, () => call('GET', '/concurrent')));
  out.peak = Math.max(...conc.map(r => JSON.parse(r.body).peak));
  const s = await call('GET', '/stream');
  out.stream = { status: s.status, te: s.headers['transfer-encoding'], body: s.body, events: s.events };
  const up = await call('POST', '/echo', ['one ', 'two ', 'three']);
  out.upload = { status: up.status, body: up.body };
  const mixed = await Promise.all([call('GET', '/slow?s=0.5'), call('GET', '/users/7'),
    call('POST', '/echo', ['x']), call('HEAD', '/'), call('GET', '/nowhere')]);
  out.mixed = mixed.map(r => r.status + ' ' + r.body);
  agent.destroy();
  console.log(JSON.stringify(out));
})().catch(e => { console.error('client failed: ' + e.stack); process.exit(1); });
]]

    it("gets many concurrent requests, a stream and a chunked upload right", function()
      local dir = tmpdir()
      local script = dir .. "/client.js"
      write_file(script, SCRIPT)
      local rc, out = with_server({}, function(port)
        return h.sh("timeout 30 node " .. script .. " " .. port)
      end)
      os.execute("rm -rf " .. dir)
      assert.equal(0, rc, out)
      local r = json.decode(out)
      assert.is_true(r.users_ok, out)
      -- 200 requests over at most 20 keep-alive connections.
      assert.is_true(r.sockets <= 20, "connections used: " .. r.sockets)
      -- The ten slow requests were in their handlers together.
      assert.is_true(r.peak >= 5, "peak of requests in flight: " .. r.peak)
      assert.equal(200, r.stream.status)
      assert.equal("chunked", r.stream.te)
      assert.equal("piece 1\npiece 2\npiece 3\npiece 4\npiece 5\n", r.stream.body)
      assert.is_true(r.stream.events >= 2, "the stream came as one piece: " .. out)
      assert.same({ status = 200, body = "one two three" }, r.upload)
      assert.same({ "200 slow\n", '200 {"id":"7"}',
        "200 x", "200 ", "404 not found\n" }, r.mixed)
    end)
  end)

  describe("under wrk", function()
    it("serves a 2 s smoke load on 50 connections with no errors", function()
      local rc, out = with_server({}, function(port)
        return h.sh(("wrk -t2 -c50 -d2s http://127.0.0.1:%d/"):format(port))
      end)
      assert.equal(0, rc, out)
      local requests = tonumber(out:match("(%d+) requests in"))
      assert.truthy(requests, out)
      assert.is_true(requests > 0, out)
      assert.not_matches("Socket errors", out)
      assert.not_matches("Non%-2xx", out)
    end)
  end)

  describe("on raw sockets", function()
    it("answers pipelined requests in order", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          assert(conn:write(request("GET", "/users/1") .. request("POST", "/echo", nil, "second")
            .. request("HEAD", "/") .. request("GET", "/users/3", { "Connection: close" })))
          local out = {}
          for i = 1, 4 do
            local r, err = read_response(conn, { head = i == 3 })
            out[i] = r and (r.status .. " " .. r.body) or err
          end
          out[5] = closed_after(conn)
          conn:close()
          return out
        end)
      end)
      assert.same({ '200 {"id":"1"}', "200 second", "200 ", '200 {"id":"3"}', true }, got)
    end)

    it("answers many pipelined requests sent in one write, with slow handlers among them", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          local all = {}
          for i = 1, 30 do
            all[i] = i % 10 == 0 and request("GET", "/slow?s=0.05") or request("GET", "/users/" .. i)
          end
          assert(conn:write(table.concat(all)))
          local out = {}
          for i = 1, 30 do
            local r = read_response(conn)
            out[i] = r and r.body
          end
          conn:close()
          return out
        end)
      end)
      for i = 1, 30 do
        assert.equal(i % 10 == 0 and "slow\n" or '{"id":"' .. i .. '"}', got[i])
      end
    end)

    it("keeps a connection alive for HTTP/1.1 and for HTTP/1.0 that asks", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local out = {}
          local conn = connect(port)
          for i = 1, 3 do
            conn:write(request("GET", "/users/" .. i))
            local r = read_response(conn)
            out[#out + 1] = r.status .. " " .. r.body .. " " .. tostring(r.headers.connection)
          end
          conn:close()
          conn = connect(port)
          for i = 1, 2 do
            conn:write("GET /users/" .. i .. " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            local r = read_response(conn)
            out[#out + 1] = r.status .. " " .. r.body .. " " .. tostring(r.headers.connection)
          end
          conn:write("GET / HTTP/1.0\r\n\r\n")
          local r = read_response(conn)
          out[#out + 1] = r.status .. " " .. r.body .. " " .. tostring(r.headers.connection)
          out[#out + 1] = closed_after(conn)
          conn:close()
          return out
        end)
      end)
      assert.same({
        '200 {"id":"1"} nil', '200 {"id":"2"} nil', '200 {"id":"3"} nil',
        '200 {"id":"1"} keep-alive', '200 {"id":"2"} keep-alive', "200 hello\n close", true,
      }, got)
    end)

    it("closes after Connection: close, answering nothing sent after it", function()
      local r, closed = with_server({}, function(port)
        return h.run(function()
          local res, err, cl = exchange(port, request("GET", "/", { "Connection: close" }) .. request("GET", "/json"))
          return assert(res, err), cl
        end)
      end)
      assert.equal(200, r.status)
      assert.equal("close", r.headers.connection)
      assert.is_true(closed)
    end)

    it("sends chunked responses, and a handler's own Content-Length as it is", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          conn:write(request("GET", "/stream") .. request("GET", "/stream-length")
            .. request("HEAD", "/stream") .. request("GET", "/"))
          local a = read_response(conn)
          local b = read_response(conn)
          local c = read_response(conn, { head = true })
          local d = read_response(conn)
          conn:close()
          return { a = a, b = b, c = c, d = d }
        end)
      end)
      assert.equal("chunked", got.a.headers["transfer-encoding"])
      assert.is_nil(got.a.headers["content-length"])
      assert.is_true(got.a.complete)
      assert.equal(5, got.a.chunks)
      assert.equal("piece 1\npiece 2\npiece 3\npiece 4\npiece 5\n", got.a.body)
      assert.equal("12", got.b.headers["content-length"])
      assert.is_nil(got.b.headers["transfer-encoding"])
      assert.equal("hello world\n", got.b.body)
      assert.equal(200, got.c.status) -- HEAD of a stream: its head, no chunks
      assert.equal("hello\n", got.d.body) -- ... so the next response parses
    end)

    it("answers a handler that sends nothing with an empty 200, and bodiless statuses without a body", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          conn:write(request("GET", "/empty") .. request("GET", "/status/204")
            .. request("GET", "/status/304") .. request("GET", "/status/418") .. request("GET", "/"))
          local out = {}
          for i = 1, 5 do out[i] = read_response(conn) end
          conn:close()
          return out
        end)
      end)
      assert.equal(200, got[1].status)
      assert.equal("0", got[1].headers["content-length"])
      assert.equal(204, got[2].status)
      assert.is_nil(got[2].headers["content-length"])
      assert.equal(304, got[3].status)
      assert.equal(418, got[4].status)
      assert.equal("status 418", got[4].body)
      assert.equal("hello\n", got[5].body)
      for i = 1, 5 do assert.matches(DATE, got[i].headers.date) end
    end)

    it("takes absolute-form targets and empty lines before a request", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local a = exchange(port, "GET http://test/info?x=1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
          local b = exchange(port, "\r\n\r\n" .. request("GET", "/", { "Connection: close" }))
          return { a = a, b = b }
        end)
      end)
      assert.equal(200, got.a.status)
      local info = json.decode(got.a.body)
      assert.equal("/info", info.path)
      assert.same({ x = "1" }, info.query)
      assert.equal("hello\n", got.b.body)
    end)

    it("gives headers by lowercased name, repeats joined, any-case lookup, obs-text and tabs kept", function()
      local info = with_server({}, function(port)
        return h.run(function()
          local r = exchange(port, "GET /info HTTP/1.1\r\nhOsT: example.org\r\nX-Dup: a\r\nx-dup: b\r\n"
            .. "X-Utf8: caf\195\169\r\nX-Tab:\tone\ttwo \r\nX-Empty:\r\nConnection: close\r\n\r\n")
          return json.decode(r.body)
        end)
      end)
      assert.equal("example.org", info.host)
      assert.equal("example.org", info.headers.host)
      assert.equal("a, b", info.headers["x-dup"])
      assert.equal("caf\195\169", info.headers["x-utf8"])
      assert.equal("one\ttwo", info.headers["x-tab"])
      assert.equal("", info.headers["x-empty"])
      assert.equal("GET", info.method)
    end)

    it("answers 200 pipelined requests in order while they are still being written", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          local writer = eddy.spawn(function()
            for i = 1, 200, 20 do
              local batch = {}
              for k = i, i + 19 do batch[#batch + 1] = request("GET", "/users/" .. k) end
              conn:write(table.concat(batch))
              eddy.sleep(0.001)
            end
          end)
          local bad = {}
          for i = 1, 200 do
            local r = read_response(conn)
            if not r or r.body ~= '{"id":"' .. i .. '"}' then bad[#bad + 1] = i end
          end
          writer:join()
          conn:close()
          return bad
        end)
      end)
      assert.same({}, got)
    end)

    it("sends 100 Continue only once the handler reads, then the answer", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          conn:write("POST /echo HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
          local first = read_response(conn)
          conn:write("hello")
          local final = read_response(conn)
          conn:close()
          -- A handler that does not read: no 100, and the body never sent
          -- does not hold the answer back.
          conn = connect(port)
          conn:write("POST /ignore HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
          local ignored = read_response(conn)
          conn:close()
          return { first = first, final = final, ignored = ignored }
        end)
      end)
      assert.equal(100, got.first.status)
      assert.equal(200, got.final.status)
      assert.equal("hello", got.final.body)
      assert.equal(200, got.ignored.status)
      assert.equal("ignored", got.ignored.body)
    end)

    it("refuses an Expect other than 100-continue with 417", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local r, err, closed = exchange(port,
            "POST /echo HTTP/1.1\r\nHost: test\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi")
          return { r and r.status or err, closed }
        end)
      end)
      assert.same({ 417, true }, got)
    end)

    it("reads away a small unread body and keeps the connection", function()
      local got = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          conn:write(request("POST", "/ignore", nil, "unread body")
            .. "POST /ignore HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            .. request("GET", "/"))
          local out = {}
          for i = 1, 3 do
            local r = read_response(conn)
            out[i] = r and r.body
          end
          conn:close()
          return out
        end)
      end)
      assert.same({ "ignored", "ignored", "hello\n" }, got)
    end)

    it("takes chunked bodies with extensions and trailers", function()
      local r = with_server({}, function(port)
        return h.run(function()
          return exchange(port, "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
            .. "Connection: close\r\n\r\n5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
        end)
      end)
      assert.equal(200, r.status)
      assert.equal("hello 0123456789", r.body)
    end)

    it("reads a request that trickles in byte by byte", function()
      local r = with_server({}, function(port)
        return h.run(function()
          local conn = connect(port)
          local bytes = request("POST", "/echo", { "Connection: close" }, "slowly")
          for i = 1, #bytes do
            conn:write(bytes:sub(i, i))
            if i % 8 == 0 then eddy.sleep(0.001) end
          end
          local res = read_response(conn)
          conn:close()
          return res
        end)
      end)
      assert.equal(200, r.status)
      assert.equal("slowly", r.body)
    end)

    describe("refuses malformed requests and closes", function()
      -- Each case: a name, the bytes, the status. Every one is sent on a
      -- fresh connection to a fresh server; the server must answer with
      -- the status and Connection: close, close, and still serve the next
      -- client.
      local CASES = {
        { "a method with a bad byte", "G@T / HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "a lowercase method", "get / HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "an overlong method", ("A"):rep(30) .. " / HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "two spaces in the request line", "GET  / HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "a request line without a version", "GET /\r\nHost: test\r\n\r\n", 400 },
        { "a target that is not a path", "GET foo HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "a bad version string", "GET / HTTX/1.1\r\nHost: test\r\n\r\n", 400 },
        { "HTTP/2.0", "GET / HTTP/2.0\r\nHost: test\r\n\r\n", 505 },
        { "HTTP/1.2", "GET / HTTP/1.2\r\nHost: test\r\n\r\n", 505 },
        { "HTTP/0.9 written as 0.9", "GET / HTTP/0.9\r\n\r\n", 505 },
        { "a bare LF ending every line", "GET / HTTP/1.1\nHost: test\n\n", 400 },
        { "a bare LF ending one header", "GET / HTTP/1.1\r\nHost: test\nX-A: b\r\n\r\n", 400 },
        { "a bare CR", "GET / HTTP/1.1\r\nHost: test\rX-A: b\r\n\r\n", 400 },
        { "a NUL in a header value", "GET / HTTP/1.1\r\nHost: test\r\nX-A: a\0b\r\n\r\n", 400 },
        { "a NUL in the target", "GET /a\0b HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "a control byte in a header value", "GET / HTTP/1.1\r\nHost: test\r\nX-A: a\1b\r\n\r\n", 400 },
        { "a space before a colon", "GET / HTTP/1.1\r\nHost : test\r\n\r\n", 400 },
        { "a folded header (obs-fold)", "GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\n b\r\n\r\n", 400 },
        { "a header without a colon", "GET / HTTP/1.1\r\nHost: test\r\nX-A\r\n\r\n", 400 },
        { "a header name with a bad byte", "GET / HTTP/1.1\r\nHost: test\r\nX(A): b\r\n\r\n", 400 },
        { "HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400 },
        { "two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
        { "Content-Length with Transfer-Encoding",
          "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
        { "Transfer-Encoding with Content-Length",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400 },
        { "two equal Content-Lengths",
          "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400 },
        { "two different Content-Lengths",
          "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400 },
        { "a Content-Length list", "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5, 5\r\n\r\nhello", 400 },
        { "a negative Content-Length", "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: -5\r\n\r\n", 400 },
        { "a signed Content-Length", "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: +5\r\n\r\nhello", 400 },
        { "a chunked body in HTTP/1.0",
          "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400 },
        { "a bad chunk size",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400 },
        { "a negative chunk size",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400 },
        { "an overflowing chunk size",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400 },
        { "a chunk without its CRLF",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400 },
        { "a chunk size ended by a bare LF",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400 },
        { "a chunk extension over 4 KiB",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n1;" .. ("e"):rep(5000)
          .. "\r\na\r\n0\r\n\r\n", 400 },
        { "trailers over 8 KiB",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: "
          .. ("t"):rep(9000) .. "\r\n\r\n", 400 },
        { "a bad escape in the path", "GET /users/%zz HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "a cut escape in the path", "GET /users/%4 HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "an encoded NUL in the path", "GET /users/a%00b HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "a bad escape in the query", "GET /info?a=%zz HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "a cut escape in a query key", "GET /info?a%2=1 HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        -- The query is malformed whether or not the handler looks at it.
        { "a bad escape in the query of a route that never reads it",
          "GET /?a=%zz HTTP/1.1\r\nHost: test\r\n\r\n", 400 },
        { "an unknown transfer coding", "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
        { "a coding list before chunked",
          "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501 },
      }
      for _, case in ipairs(CASES) do
        local name, bytes, status = case[1], case[2], case[3]
        it(("%s: %d"):format(name, status), function()
          local got = with_server({}, function(port)
            return h.run(function()
              local conn = connect(port)
              assert(conn:write(bytes))
              local r, err = read_response(conn)
              -- (no waiting for a close that a wrong answer will not bring)
              local closed, instead = false, "not checked"
              if r and r.status == status then closed, instead = closed_after(conn) end
              conn:close()
              local next_ok = get(port, "/")
              return {
                status = r and r.status or "no response: " .. tostring(err),
                connection = r and r.headers.connection,
                leaked = r and r.body:find("traceback") ~= nil,
                closed = closed or instead,
                next = next_ok and next_ok.status,
              }
            end)
          end)
          assert.same({ status = status, connection = "close", leaked = false, closed = true, next = 200 }, got)
        end)
      end

      it("a malformed request pipelined after a good one: 200, then 400 and the close", function()
        local got = with_server({}, function(port)
          return h.run(function()
            local conn = connect(port)
            conn:write(request("GET", "/") .. "G@T / HTTP/1.1\r\nHost: test\r\n\r\n" .. request("GET", "/"))
            local a = read_response(conn)
            local b = read_response(conn)
            local closed = closed_after(conn)
            conn:close()
            return { a.status, b and b.status, closed }
          end)
        end)
        assert.same({ 200, 400, true }, got)
      end)
    end)

    describe("limits", function()
      it("431 for a head one byte over max_header_size; a head of exactly that size is fine", function()
        -- A head of n bytes, padded in one header.
        local function head_of(n)
          local base = request("GET", "/", { "Connection: close", "X-Pad: " })
          return (base:gsub("X%-Pad: ", "X-Pad: " .. ("p"):rep(n - #base)))
        end
        local got = with_server({}, function(port)
          return h.run(function()
            local at = exchange(port, head_of(8192))
            local r, err, closed = exchange(port, head_of(8193))
            local big, berr, bclosed = exchange(port, request("GET", "/", { "X-Big: " .. ("a"):rep(20000) }))
            return { at = at.status, over = r and r.status or err, closed = closed,
                     big = big and big.status or berr, big_closed = bclosed }
          end)
        end)
        assert.same({ at = 200, over = 431, closed = true, big = 431, big_closed = true }, got)
      end)

      it("431 for a request line over a small max_header_size", function()
        local got = with_server({ max_header_size = 1024 }, function(port)
          return h.run(function()
            local r, err, closed = exchange(port, request("GET", "/" .. ("p"):rep(2000)))
            local small = get(port, "/")
            return { r and r.status or err, closed, small.status }
          end)
        end)
        assert.same({ 431, true, 200 }, got)
      end)

      it("431 for a head that never ends", function()
        local got = with_server({ max_header_size = 1024 }, function(port)
          return h.run(function()
            local conn = connect(port)
            conn:write("GET / HTTP/1.1\r\nHost: test\r\n")
            for _ = 1, 40 do
              if not conn:write("X-Filler: " .. ("f"):rep(40) .. "\r\n") then break end
            end
            local r, err = read_response(conn)
            local closed = closed_after(conn)
            conn:close()
            return { r and r.status or err, closed }
          end)
        end)
        assert.same({ 431, true }, got)
      end)

      it("431 for more headers than max_headers; the limit itself is fine", function()
        local function headers(n)
          local t = {}
          for i = 1, n do t[i] = "X-H" .. i .. ": v" end
          return t
        end
        local got = with_server({}, function(port)
          return h.run(function()
            local at = headers(98)
            at[#at + 1] = "Connection: close" -- and Host: 100 in all
            local ok_r = exchange(port, request("GET", "/", at))
            local r, err, closed = exchange(port, request("GET", "/", headers(101)))
            return { ok_r and ok_r.status, r and r.status or err, closed }
          end)
        end)
        assert.same({ 200, 431, true }, got)
      end)

      it("431 past a small max_headers", function()
        local got = with_server({ max_headers = 5 }, function(port)
          return h.run(function()
            local a = exchange(port, request("GET", "/", { "A: 1", "B: 2", "C: 3", "Connection: close" }))
            local r, err, closed = exchange(port, request("GET", "/", { "A: 1", "B: 2", "C: 3", "D: 4", "E: 5" }))
            return { a.status, r and r.status or err, closed }
          end)
        end)
        assert.same({ 200, 431, true }, got)
      end)

      it("413 for a Content-Length over max_body, before the body is read", function()
        local got = with_server({}, function(port)
          return h.run(function()
            local r, err, closed = exchange(port,
              "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2000000\r\n\r\n")
            return { r and r.status or err, closed, get(port, "/").status }
          end)
        end)
        assert.same({ 413, true, 200 }, got)
      end)

      it("413 for a Content-Length over max_body with the body sent along; max_body itself is fine", function()
        local got = with_server({ max_body = 1000 }, function(port)
          return h.run(function()
            local at = exchange(port, request("POST", "/echo", { "Connection: close" }, ("b"):rep(1000)))
            local r, err, closed = exchange(port, request("POST", "/echo", nil, ("b"):rep(1001)))
            return { at.status, #at.body, r and r.status or err, closed }
          end)
        end)
        assert.same({ 200, 1000, 413, true }, got)
      end)

      it("413 for a chunked body that grows past max_body", function()
        local got = with_server({ max_body = 1000 }, function(port)
          return h.run(function()
            local chunk = ("%x\r\n%s\r\n"):format(600, ("c"):rep(600))
            local r, err, closed = exchange(port,
              "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" .. chunk .. chunk .. chunk .. "0\r\n\r\n")
            return { r and r.status or err, r and r.headers.connection, closed, get(port, "/").status }
          end)
        end)
        assert.same({ 413, "close", true, 200 }, got)
      end)

      it("408 for a head that stops halfway (slowloris), then the close", function()
        local got = with_server({ header_timeout = 0.3, keepalive_timeout = 10 }, function(port)
          return h.run(function()
            local conn = connect(port)
            conn:write("GET / HTTP/1.1\r\nHost: te")
            local r, err = read_response(conn, { timeout = 3 })
            local closed = r and closed_after(conn)
            conn:close()
            return { r and r.status or err, closed, get(port, "/").status }
          end)
        end)
        assert.same({ 408, true, 200 }, got)
      end)

      it("408 for a head that trickles in a byte at a time past header_timeout", function()
        local got = with_server({ header_timeout = 0.5, keepalive_timeout = 10 }, function(port)
          return h.run(function()
            local conn = connect(port)
            local bytes = "GET / HTTP/1.1\r\nHost: test\r\nX-Slow: " .. ("s"):rep(100)
            local writer = eddy.spawn(function()
              for i = 1, #bytes do
                if not conn:write(bytes:sub(i, i)) then return end
                eddy.sleep(0.05)
              end
            end)
            local r, err = read_response(conn, { timeout = 4 })
            local closed = r and closed_after(conn)
            conn:close()
            writer:join()
            return { r and r.status or err, closed }
          end)
        end)
        assert.same({ 408, true }, got)
      end)

      it("408 for the second request of a connection arriving halfway", function()
        local got = with_server({ header_timeout = 0.3, keepalive_timeout = 10 }, function(port)
          return h.run(function()
            local conn = connect(port)
            conn:write(request("GET", "/") .. "GET / HTTP/1.1\r\nHo")
            local a = read_response(conn)
            local r, err = read_response(conn, { timeout = 3 })
            local closed = closed_after(conn)
            conn:close()
            return { a.status, r and r.status or err, closed }
          end)
        end)
        assert.same({ 200, 408, true }, got)
      end)

      it("closes a keep-alive connection idle past keepalive_timeout, with no bytes sent", function()
        local got = with_server({ keepalive_timeout = 0.3 }, function(port)
          return h.run(function()
            local conn = connect(port)
            conn:write(request("GET", "/"))
            local first = read_response(conn)
            -- Busy connections are not idle: two more requests, 0.2 s apart.
            eddy.sleep(0.2)
            conn:write(request("GET", "/users/2"))
            local second = read_response(conn)
            local closed, instead = closed_after(conn)
            conn:close()
            -- A connection that never sends a byte is idle too.
            local quiet = connect(port)
            local quiet_closed = closed_after(quiet)
            quiet:close()
            return { first.status, second.status, closed or instead, quiet_closed }
          end)
        end)
        assert.same({ 200, 200, true, true }, got)
      end)

      it("gives a handler 'timeout' from a body that stops coming, then closes", function()
        local got = with_server({ body_timeout = 0.3 }, function(port)
          return h.run(function()
            local conn = connect(port)
            conn:write("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly some")
            local r, err = read_response(conn)
            local closed = closed_after(conn)
            conn:close()
            return { r and r.body or err, closed }
          end)
        end)
        assert.same({ "error: timeout", true }, got)
      end)

      it("cuts a client that stops reading past write_timeout: never a truncated response that looks whole", function()
        local got = with_server({ write_timeout = 0.3, write_buffer = 16384 }, function(port)
          return h.run(function()
            local conn = connect(port)
            conn:write(request("GET", "/big-stream?n=" .. 64 * 1024 * 1024))
            eddy.sleep(1.5) -- reads nothing: the kernel's buffers fill, the handler waits
            local r, err = read_response(conn, { timeout = 10 })
            -- (a response that looks whole fails below: no need to wait)
            local closed = r and not r.complete and closed_after(conn)
            conn:close()
            return { status = r and r.status or err, complete = r and r.complete,
                     bytes = r and #r.body, closed = closed, next = get(port, "/").status }
          end)
        end)
        assert.matches("write failed: timeout", server_log)
        assert.equal(200, got.status)
        assert.is_true(got.bytes < 64 * 1024 * 1024)
        -- The client must be able to tell that the body was cut.
        assert.is_false(got.complete, ("a %d-byte body of 64 MiB came as a complete chunked response"):format(got.bytes))
        assert.is_true(got.closed)
        assert.equal(200, got.next)
      end)

      it("max_connections: one more client waits until a connection ends", function()
        local got = with_server({ max_connections = 2 }, function(port)
          return h.run(function()
            local a, b = connect(port), connect(port)
            for _, conn in ipairs({ a, b }) do
              conn:write(request("GET", "/"))
              assert(read_response(conn))
            end
            a:write(request("GET", "/connections"))
            local n = read_response(a).body
            -- A third client, curl in the background: it waits.
            local job = spawn(("curl -sS --max-time 20 http://127.0.0.1:%d/users/3"):format(port))
            local c = connect(port)
            c:write(request("GET", "/users/4"))
            local early, err = read_response(c, { timeout = 0.5 })
            a:close()
            local late = read_response(c)
            b:close()
            local rc, out = job:wait(20)
            c:close()
            return { n = n, early = early and early.status or err, late = late and late.body,
                     curl = rc == 0 and out or rc .. " " .. out }
          end)
        end)
        assert.same({ n = "2", early = "timeout", late = '{"id":"4"}', curl = '{"id":"3"}' }, got)
      end)
    end)

    describe("handlers", function()
      it("a slow handler does not delay a fast request on another connection", function()
        local got = with_server({}, function(port)
          return h.run(function()
            local order = {}
            local slow = eddy.spawn(function()
              local r = exchange(port, request("GET", "/slow?s=1.5", { "Connection: close" }))
              order[#order + 1] = "slow " .. (r and r.status or "none")
            end)
            eddy.sleep(0.1)
            local fast = {}
            for i = 1, 5 do
              local r = exchange(port, request("GET", "/users/" .. i, { "Connection: close" }))
              fast[i] = r.status
            end
            order[#order + 1] = "fast " .. table.concat(fast, ",")
            slow:join()
            return order
          end)
        end)
        assert.same({ "fast 200,200,200,200,200", "slow 200" }, got)
      end)

      it("a raising handler gives 500 with no traceback sent, logs it, and the server serves on", function()
        local got = with_server({}, function(port)
          return h.run(function()
            local r, _, closed = exchange(port, request("GET", "/error"))
            local next_r = get(port, "/users/9")
            local late, _, late_closed = exchange(port, request("GET", "/error-late"))
            return { r = r, closed = closed, next = next_r.body, late = late, late_closed = late_closed,
                     after = get(port, "/").status }
          end)
        end)
        assert.equal(500, got.r.status)
        assert.equal("close", got.r.headers.connection)
        assert.equal("Internal Server Error", got.r.body)
        assert.not_matches("secret", got.r.body)
        assert.not_matches("traceback", got.r.body)
        assert.is_true(got.closed)
        assert.equal('{"id":"9"}', got.next)
        -- Once the response has started, the connection is cut instead:
        -- the chunked body never ends.
        assert.equal(200, got.late.status)
        assert.is_false(got.late.complete)
        assert.equal("partial", got.late.body)
        assert.is_true(got.late_closed)
        assert.equal(200, got.after)
        assert.matches("boom: secret%-detail%-1234", server_log)
        assert.matches("stack traceback", server_log)
        assert.matches("late boom", server_log)
      end)

      it("res:header refuses every response-splitting attempt", function()
        local r = with_server({}, function(port)
          return h.run(function() return get(port, "/inject") end)
        end)
        assert.equal(200, r.status)
        assert.equal("fine", r.headers["x-ok"])
        assert.is_nil(r.headers["set-cookie"])
        assert.is_nil(r.headers["x-a"])
        for _, name in ipairs(r.names) do assert.not_equal("X A", name) end
        local report = json.decode(r.body)
        assert.equal(15, #report)
        for i, v in ipairs(report) do assert.equal("raised", v, "attempt " .. i) end
      end)

      it("a client that leaves mid-request does not hurt the server", function()
        local got = with_server({}, function(port)
          return h.run(function()
            -- Gone while its handler sleeps.
            local conn = connect(port)
            conn:write(request("GET", "/slow?s=0.2"))
            eddy.sleep(0.05)
            conn:close()
            -- Gone halfway through its body.
            conn = connect(port)
            conn:write("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nabc")
            eddy.sleep(0.05)
            conn:close()
            -- Gone while a big response is written.
            conn = connect(port)
            conn:write(request("GET", "/big-stream?n=" .. 8 * 1024 * 1024))
            conn:read_some(1000)
            conn:close()
            -- Half-closed after its request: still answered.
            conn = connect(port)
            conn:write(request("GET", "/users/5"))
            conn:shutdown()
            local r = read_response(conn)
            conn:close()
            eddy.sleep(0.3)
            return { r and r.body, get(port, "/").status }
          end)
        end)
        assert.same({ '{"id":"5"}', 200 }, got)
      end)
    end)
  end)

  describe("in the test's own loop", function()
    it("serves curl, run in the background, while the loop runs; closes cleanly", function()
      local got = h.run(function()
        local app = eddy.http.server()
        app:get("/hi/:name", function(req, res) res:send("hi " .. req.params.name) end)
        local server = assert(app:listen("127.0.0.1", 0))
        local u = "http://127.0.0.1:" .. server:port()
        local job = spawn(("curl -sS --max-time 20 %s/hi/a %s/hi/b -w ' %%{num_connects}'"):format(u, u))
        local rc, out = job:wait(20)
        server:close()
        return { rc, out }
      end)
      assert.same({ 0, "hi a 1hi b 0" }, got) -- b on a's connection
    end)

    it("uses app:fallback for unmatched paths, and counts connections", function()
      local got = h.run(function()
        local app = eddy.http.server({ keepalive_timeout = 5 })
        app:get("/", function(_, res) res:send("root") end)
        app:fallback(function(req, res) res:status(404); res:send("fallback for " .. req.path) end)
        local server = assert(app:listen("127.0.0.1", 0))
        local port = server:port()
        local conn = connect(port)
        conn:write(request("GET", "/nowhere/at%20all"))
        local r = read_response(conn)
        local n = server:connections()
        -- close(): the idle keep-alive connection closes too.
        server:close()
        local closed = closed_after(conn)
        conn:close()
        return { r.status, r.body, n, closed }
      end)
      assert.same({ 404, "fallback for /nowhere/at all", 1, true }, got)
    end)

    it("finishes a response in progress when closed, then stops", function()
      local got = h.run(function()
        local app = eddy.http.server()
        app:get("/slow", function(_, res) eddy.sleep(0.2); res:send("done") end)
        local server = assert(app:listen("127.0.0.1", 0))
        local conn = connect(server:port())
        conn:write(request("GET", "/slow"))
        eddy.sleep(0.05)
        server:close()
        local r = read_response(conn)
        local closed = closed_after(conn)
        conn:close()
        return { r and r.body, r and r.headers.connection, closed }
      end)
      assert.same({ "done", "close", true }, got)
    end)

    it("survives a sendfile cut by write_timeout while the collector frees the response", function()
      -- The cancelled sendfile's callback comes from its poll handle's
      -- close, after the connection may have been freed (an ASan build
      -- caught the use after free).
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:seek("set", 512 * 1024 * 1024 - 1) -- sparse: no disk used
      f:write("x")
      f:close()
      local got = h.run(function()
        local app = eddy.http.server()
        local result
        app:get("/big", function(_, res) result = { res:sendfile(path) } end)
        local server = assert(app:listen("127.0.0.1", 0, { write_timeout = 0.3 }))
        local gc = eddy.spawn(function()
          local deadline = eddy.now() + 1.5
          while eddy.now() < deadline do collectgarbage(); eddy.yield() end
        end)
        local conn = connect(server:port())
        conn:write(request("GET", "/big")) -- and never reads
        gc:join()
        conn:close()
        server:close()
        return result
      end)
      os.remove(path)
      assert.same({ nil, "timeout" }, got)
    end)

    it("raises on misuse: bad patterns, handlers and options", function()
      local app = eddy.http.server()
      assert.has_error(function() app:get("no-slash", function() end) end)
      assert.has_error(function() app:get("/x", "not a function") end)
      assert.has_error(function() app:get("/a/*rest/b", function() end) end)
      assert.has_error(function() app:fallback(42) end)
      assert.has_error(function() eddy.http.server("nope") end)
      h.run(function()
        assert.has_error(function() app:listen("127.0.0.1", 0, { max_headers = 0 }) end)
        assert.has_error(function() app:listen(42, 0) end)
      end)
    end)
  end)
end)

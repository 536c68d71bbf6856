-- eddy.http.request and friends: the HTTP client on libcurl's multi
-- interface, against an independent server (Python's http.server,
-- tests/fixtures/http_server.py) and eddy's own.
local h = require "helper"
local eddy = h.eddy

local py_pid, base, full_port, h2_pid, h2_base, h2_tls_base, tls_dir

-- Starts a fixture server (a command line); its pid and base URL, and
-- the file of what it prints.
local function start(cmd)
  local out = os.tmpname()
  local f = assert(io.popen(("%s > %s 2>&1 & echo $!"):format(cmd, out)))
  local pid = tonumber(f:read("*l"))
  f:close()
  return pid, "http://127.0.0.1:" .. h.wait_for(out, "listening on (%d+)"), out
end

setup(function()
  local out
  py_pid, base, out = start("python3 tests/fixtures/http_server.py")
  full_port = tonumber(h.wait_for(out, "full on (%d+)"))
  -- Node's HTTP/2 server, in the clear and over TLS (a throw-away
  -- self-signed certificate: requests to it do not verify)
  tls_dir = os.tmpname()
  os.remove(tls_dir)
  assert(os.execute(("mkdir -p %s && openssl req -x509 -newkey rsa:2048 -nodes -days 1 " ..
    "-subj /CN=localhost -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1"):format(tls_dir, tls_dir, tls_dir)) == 0)
  h2_pid, h2_base, out = start(("node tests/fixtures/h2_server.js %s/key.pem %s/cert.pem"):format(tls_dir, tls_dir))
  h2_tls_base = "https://127.0.0.1:" .. h.wait_for(out, "tls on (%d+)")
end)

teardown(function()
  if py_pid then h.sh("kill " .. py_pid) end
  if h2_pid then h.sh("kill " .. h2_pid) end
  if tls_dir then h.sh("rm -rf " .. tls_dir) end
end)

-- libcurl's version as a number (7.88.1: 0x075801), from the curl tool
-- that comes with it.
local function libcurl_version()
  local rc, out = h.sh("curl --version")
  assert.equal(0, rc)
  local a, b, c = out:match("libcurl/(%d+)%.(%d+)%.(%d+)")
  return tonumber(a) * 0x10000 + tonumber(b) * 0x100 + tonumber(c)
end

-- Runs 4 tasks, each with 5 requests to URL at once (fetch_all); checks
-- every answer came over HTTP/2 and returns the server's stats (JSON).
local function h2_burst(url, opts)
  local wg = eddy.waitgroup()
  local bodies, versions = {}, {}
  for _ = 1, 4 do
    wg:spawn(function()
      local list = {}
      for i = 1, 5 do
        list[i] = { url = url .. "/slow?ms=300", http_version = "2", verify_tls = opts.verify_tls }
      end
      for _, r in ipairs(eddy.http.fetch_all(list, { concurrency = 5 })) do
        local res = r[1]
        bodies[#bodies + 1] = res and res.body or r[2] .. ": " .. r[3]
        if res then versions[res.http_version] = true end
      end
    end)
  end
  wg:wait()
  assert.equal(20, #bodies)
  for _, body in ipairs(bodies) do assert.equal("h2 2.0", body) end
  assert.same({ ["2"] = true }, versions)
  return assert(eddy.http.get(url .. "/stats", opts)).body
end

-- The sha256 of a string, by sha256sum.
local function sha256(bytes)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  local rc, out = h.sh("sha256sum " .. path)
  os.remove(path)
  assert.equal(0, rc)
  return out:match("^(%x+)")
end

-- A body function giving n chunks of size bytes (chunk i is a letter),
-- waiting on the loop every few; the chunks in a list, for comparing.
local function chunks_of(n, size)
  local list = {}
  for i = 1, n do list[i] = string.char(64 + i % 26 + 1):rep(size) end
  local i = 0
  local function source()
    i = i + 1
    if i % 7 == 0 then h.eddy.sleep(0) end
    return list[i]
  end
  return source, table.concat(list), function() return i end
end

local function requests_seen()
  local rc, out = h.sh("curl -s " .. base .. "/count")
  assert.equal(0, rc)
  return tonumber(out)
end

describe("eddy.http client", function()
  it("gets a response: status, headers (repeated ones kept), body", function()
    h.run(function()
      local res = assert(eddy.http.get(base .. "/hello"))
      assert.equal(200, res.status)
      assert.equal("hello from python\n", res.body)
      assert.equal("text/plain", res.headers["content-type"])
      assert.equal(base .. "/hello", res.url)
      assert.equal("1.1", res.http_version)
      res = assert(eddy.http.get(base .. "/cookies"))
      assert.same({ "a=1", "b=2" }, res.headers["set-cookie"])
      res = assert(eddy.http.get(base .. "/nowhere"))
      assert.equal(404, res.status) -- a status is an answer, not an error
      res = assert(eddy.http.request({ url = base .. "/hello", method = "HEAD" }))
      assert.equal(200, res.status)
      assert.equal("", res.body)
    end)
  end)

  it("runs requests concurrently: 20 of 1 s each take about 1 s", function()
    h.run(function()
      local urls = {}
      for i = 1, 20 do urls[i] = base .. "/slow?s=1" end
      local t0 = eddy.now()
      local results = eddy.http.fetch_all(urls, { concurrency = 20 })
      local took = eddy.now() - t0
      for i = 1, 20 do
        assert.equal(200, results[i][1].status)
      end
      assert.is_true(took < 2.5, ("20 requests of 1 s took %.2f s"):format(took))
    end)
  end)

  it("fetch_all keeps the input order, and a failure does not cancel the rest", function()
    h.run(function()
      local results = eddy.http.fetch_all({
        base .. "/slow?s=0.2", "http://127.0.0.1:1/", base .. "/hello", "ftp://x/",
      }, { concurrency = 2 })
      assert.equal("slow\n", results[1][1].body)
      assert.same({ nil, "refused" }, { results[2][1], results[2][2] })
      assert.equal("hello from python\n", results[3][1].body)
      assert.same({ nil, "unsupported scheme" }, { results[4][1], results[4][2] })
    end)
  end)

  it("follows redirects, or not, and stops at a maximum", function()
    h.run(function()
      local res = assert(eddy.http.get(base .. "/redirect"))
      assert.equal(200, res.status)
      assert.equal(base .. "/hello", res.url)
      res = assert(eddy.http.get(base .. "/redirect", { follow_redirects = false }))
      assert.equal(302, res.status)
      assert.equal("/hello", res.headers.location)
      local none, err = eddy.http.get(base .. "/loop", { max_redirects = 3 })
      assert.is_nil(none)
      assert.equal("too many redirects", err)
    end)
  end)

  it("decodes chunked and gzip responses", function()
    h.run(function()
      assert.equal("one two three", assert(eddy.http.get(base .. "/chunked")).body)
      local res = assert(eddy.http.get(base .. "/gzip"))
      assert.equal(("squeezed "):rep(100), res.body)
    end)
  end)

  it("uploads bodies with any method and sends headers", function()
    h.run(function()
      local res = assert(eddy.http.post(base .. "/echo", "posted body",
        { headers = { ["X-Test"] = "yes", ["Content-Type"] = "text/plain" } }))
      assert.equal("POST\nX-Test=yes\nContent-Type=text/plain\nposted body", res.body)
      local big = ("0123456789"):rep(100000)
      res = assert(eddy.http.request({ url = base .. "/echo", method = "put", body = big }))
      assert.is_true(res.body == "PUT\n" .. big, "the echoed upload differs")
      res = assert(eddy.http.request({ url = base .. "/echo", method = "DELETE" }))
      assert.equal("DELETE\n", res.body)
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(("file bytes "):rep(50000))
      f:close()
      for _, method in ipairs({ "POST", "PUT", "PATCH" }) do
        res = assert(eddy.http.request({ url = base .. "/echo", method = method, body_file = path }))
        assert.is_true(res.body == method .. "\n" .. ("file bytes "):rep(50000), method .. " of a file")
      end
      os.remove(path)
      local none, err = eddy.http.request({ url = base .. "/echo", body_file = path })
      assert.is_nil(none)
      assert.equal("not found", err)
    end)
  end)

  it("answers each failure with a clear error while the loop keeps serving", function()
    h.run(function()
      local ticks = 0
      local ticker = eddy.timer.every(0.02, function() ticks = ticks + 1 end)
      local before = requests_seen()
      local function fails(want, ...)
        local res, err, detail = ...
        assert.is_nil(res)
        assert.equal(want, err, detail)
        assert.is_string(detail)
      end
      fails("bad url", eddy.http.get("not a url"))
      fails("unsupported scheme", eddy.http.get("gopher://127.0.0.1/"))
      assert.equal(before + 1, requests_seen()) -- only the count itself came
      fails("dns failure", eddy.http.get("http://no-such-host.invalid/"))
      fails("refused", eddy.http.get("http://127.0.0.1:1/"))
      fails("timeout", eddy.http.get(base .. "/stall", { timeout = 0.3 }))
      -- TLS spoken to a server that speaks plain HTTP
      fails("tls failure", eddy.http.get(base:gsub("^http:", "https:") .. "/hello", { timeout = 2 }))
      fails("too large", eddy.http.get(base .. "/big?n=200000", { max_body = 100000 }))
      assert.equal(200000, #assert(eddy.http.get(base .. "/big?n=200000")).body)
      ticker:cancel()
      assert.is_true(ticks >= 10, "the loop stalled")
      assert.has_error(function() eddy.http.request("x") end)
      assert.has_error(function() eddy.http.request({ url = base, body = {} }) end)
    end)
  end)

  it("a cancelled or timed-out waiter takes its transfer off at once", function()
    h.run(function()
      local t = eddy.spawn(function() return eddy.http.get(base .. "/slow?s=3") end)
      eddy.sleep(0.1)
      local t0 = eddy.now()
      t:cancel()
      assert.same({ true, nil, "cancelled" }, { t:join() })
      assert.is_true(eddy.now() - t0 < 0.5)
      -- the connection pool is fine afterwards
      assert.equal(200, assert(eddy.http.get(base .. "/hello")).status)
    end)
  end)

  it("talks to eddy's own server, reusing keep-alive connections across requests and tasks", function()
    h.run(function()
      local app = eddy.http.server()
      local peers = {}
      app:get("/", function(req, res)
        local _, port = req:remote_addr()
        peers[port] = true
        res:send("own")
      end)
      local server = assert(app:listen("127.0.0.1", 0))
      local url = "http://localhost:" .. server:port() .. "/"
      for _ = 1, 5 do
        assert.equal("own", assert(eddy.http.get(url)).body)
      end
      for _ = 1, 3 do
        local t = eddy.spawn(function() return assert(eddy.http.get(url)).body end)
        assert.same({ true, "own" }, { t:join() })
      end
      local n = 0
      for _ in pairs(peers) do n = n + 1 end
      assert.equal(1, n) -- one connection served all eight
      server:close()
    end)
  end)

  it("streams a large body through a reader, pausing the transfer while unread", function()
    h.run(function()
      local res = assert(eddy.http.request({ url = base .. "/big?n=3000000", stream = true }))
      assert.equal(200, res.status)
      assert.equal("3000000", res.headers["content-length"])
      assert.is_nil(res.body)
      local total, biggest, n = 0, 0, 0
      while true do
        local chunk, err = res:read(5)
        if not chunk then
          assert.is_nil(err)
          break
        end
        n = n + 1
        total = total + #chunk
        biggest = math.max(biggest, #chunk)
        if n == 2 then eddy.sleep(0.3) end -- a slow reader: curl pauses
      end
      assert.equal(3000000, total)
      assert.is_true(biggest <= 256 * 1024 + 64 * 1024, "a chunk of " .. biggest .. " bytes")
    end)
  end)

  it("a streamed response's head comes before its body", function()
    h.run(function()
      local t0 = eddy.now()
      local res = assert(eddy.http.request({ url = base .. "/late", stream = true }))
      assert.is_true(eddy.now() - t0 < 0.6, "the head waited for the body")
      assert.equal(200, res.status)
      assert.equal("late", res:read(3))
      assert.is_nil(res:read(3))
      res = assert(eddy.http.request({ url = base .. "/redirect", stream = true }))
      assert.equal(200, res.status) -- the head of the redirect's target
      assert.equal("hello from python\n", res:read(3))
    end)
  end)

  it("a streamed body reports a stall, a body too large, and can be closed early", function()
    h.run(function()
      local res = assert(eddy.http.request({ url = base .. "/stall", stream = true, timeout = 0.4 }))
      assert.equal(500, #res:read())
      local none, err = res:read()
      assert.is_nil(none)
      assert.equal("timeout", err)
      res = assert(eddy.http.request({ url = base .. "/big?n=300000", stream = true, max_body = 100000 }))
      local got = 0
      while true do
        local chunk, why = res:read()
        if not chunk then
          assert.equal("too large", why)
          break
        end
        got = got + #chunk
      end
      assert.is_true(got <= 100000)
      res = assert(eddy.http.request({ url = base .. "/big?n=3000000", stream = true }))
      assert.is_string(res:read())
      res:close()
      assert.has_error(function() res:read() end)
      local r2, e2 = eddy.http.request({ url = "http://127.0.0.1:1/", stream = true })
      assert.is_nil(r2)
      assert.equal("refused", e2)
    end)
  end)

  it("uploads a body from a function, chunked or with a length, called in the requesting task", function()
    h.run(function()
      -- 80 chunks of 64 KiB (5 MiB), chunked: no length given
      local source, all = chunks_of(80, 65536)
      local me = coroutine.running()
      local where = {}
      local res = assert(eddy.http.post(base .. "/upload", function()
        where[coroutine.running()] = true
        return source()
      end))
      assert.equal("POST " .. #all .. " " .. sha256(all) .. " chunked", res.body)
      assert.same({ [me] = true }, where)
      -- with body_length, any method
      source, all = chunks_of(30, 10000)
      res = assert(eddy.http.request({ url = base .. "/upload", method = "PUT", body = source, body_length = #all }))
      assert.equal("PUT " .. #all .. " " .. sha256(all) .. " length", res.body)
      -- an empty body
      res = assert(eddy.http.post(base .. "/upload", function() return nil end))
      assert.matches("^POST 0 ", res.body)
      -- an open file, its length from its size
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(all)
      f:close()
      f = assert(io.open(path, "rb"))
      res = assert(eddy.http.request({ url = base .. "/upload", method = "PATCH", body = f }))
      f:close()
      os.remove(path)
      assert.equal("PATCH " .. #all .. " " .. sha256(all) .. " length", res.body)
      assert.has_error(function() eddy.http.request({ url = base, body = "x", body_length = 1 }) end)
      assert.has_error(function() eddy.http.request({ url = base, body = source, body_length = -1 }) end)
    end)
  end)

  it("holds one chunk of a body function at a time: a server that reads nothing stops the calls", function()
    h.run(function()
      local calls = 0
      local chunk = ("z"):rep(65536)
      local none, err = eddy.http.request({
        url = base .. "/sink", method = "PUT", timeout = 1,
        body = function() calls = calls + 1; return chunk end,
        body_length = 1e9,
      })
      assert.is_nil(none)
      assert.equal("timeout", err)
      -- what the sockets' buffers took, no more: 500 chunks are 32 MiB
      assert.is_true(calls > 1 and calls < 500, calls .. " calls")
    end)
  end)

  it("a body function that raises aborts its request with a clear error", function()
    h.run(function()
      local n = 0
      local none, err, detail = eddy.http.post(base .. "/upload", function()
        n = n + 1
        if n == 4 then error("no more data here") end
        return ("x"):rep(100000)
      end)
      assert.is_nil(none)
      assert.equal("upload failed", err)
      assert.matches("no more data here", detail)
      -- a body shorter than its body_length (the server would wait for more)
      local once = false
      none, err, detail = eddy.http.post(base .. "/upload", function()
        if once then return nil end
        once = true
        return "0123456789"
      end, { body_length = 100 })
      assert.is_nil(none)
      assert.equal("upload failed", err)
      assert.equal("the body ended after 10 of its 100 bytes (body_length)", detail)
      none, err, detail = eddy.http.post(base .. "/upload", function() return {} end)
      assert.is_nil(none)
      assert.equal("upload failed", err)
      assert.matches("returned a table", detail)
      -- nothing is left behind: the next upload goes through
      local res = assert(eddy.http.post(base .. "/upload", "after"))
      assert.matches("^POST 5 ", res.body)
    end)
  end)

  it("uploads from a function to eddy's own server, streaming the response back", function()
    h.run(function()
      local app = eddy.http.server()
      app:post("/count", function(req, res)
        local n, pieces = 0, 0
        while true do
          local piece, err = req:read()
          if not piece then
            assert(err == nil, err)
            break
          end
          n, pieces = n + #piece, pieces + 1
        end
        res:send(("%d %s"):format(n, req:header("transfer-encoding") or "-"))
      end)
      local server = assert(app:listen("127.0.0.1", 0, { max_body = 16 * 1024 * 1024 }))
      local url = "http://127.0.0.1:" .. server:port() .. "/count"
      local source, all = chunks_of(64, 100000)
      local res = assert(eddy.http.post(url, source))
      assert.equal(#all .. " chunked", res.body)
      source, all = chunks_of(3, 1000)
      res = assert(eddy.http.request({ url = url, method = "POST", body = source, stream = true }))
      assert.equal(200, res.status)
      assert.equal(#all .. " chunked", res:read(3))
      assert.is_nil(res:read(3))
      server:close()
    end)
  end)

  it("multiplexes concurrent HTTP/2 requests from several tasks over one connection (Node's http2, TLS)", function()
    h.run(function()
      local t0 = eddy.now()
      local stats = h2_burst(h2_tls_base, { verify_tls = false, http_version = "2" })
      local took = eddy.now() - t0
      assert.matches('"sessions":1,', stats) -- one connection, this request's too
      assert.matches('"streams":21,', stats)
      local most = tonumber(stats:match('"most_concurrent":(%d+)'))
      assert.is_true(most > 1, stats)
      assert.is_true(took < 20 * 0.3 / 2, ("took %.2f s"):format(took))
    end)
  end)

  it("speaks HTTP/2 in the clear with prior knowledge (h2c, Node's http2)", function()
    h.run(function()
      local stats = h2_burst(h2_base, { http_version = "2" })
      if libcurl_version() >= 0x080000 then
        assert.matches('"sessions":1,', stats)
        assert.is_true(tonumber(stats:match('"most_concurrent":(%d+)')) > 1, stats)
      else
        -- libcurl 7 cannot reuse a prior-knowledge connection (curl issue
        -- 10634): a connection each, and each one's stream alone
        assert.matches('"sessions":21,', stats)
        assert.matches('"most_concurrent":1}', stats)
      end
      assert.has_error(function() eddy.http.get(h2_base, { http_version = "3" }) end)
    end)
  end)

  it("keeps a connect timeout apart from the request's", function()
    h.run(function()
      local t0 = eddy.now()
      local none, err = eddy.http.get("http://127.0.0.1:" .. full_port .. "/", { connect_timeout = 0.3 })
      assert.is_nil(none)
      assert.equal("timeout", err)
      assert.is_true(eddy.now() - t0 < 2, "the connect timeout did not apply")
      -- a slow answer on a made connection is no connect timeout
      assert.equal("slow\n", assert(eddy.http.get(base .. "/slow?s=0.5", { connect_timeout = 0.3 })).body)
    end)
  end)

  it("goes through a proxy, which resolves the URL's host", function()
    h.run(function()
      local res = assert(eddy.http.get("http://no-such-host.invalid/x?y=1", { proxy = base }))
      assert.equal("proxied GET http://no-such-host.invalid/x?y=1", res.body)
      -- a proxy named by host name, resolved by eddy
      local port = base:match(":(%d+)$")
      res = assert(eddy.http.post("http://example.invalid/p", "b", { proxy = "localhost:" .. port }))
      assert.equal("proxied POST http://example.invalid/p", res.body)
      local none, err = eddy.http.get("http://example.invalid/", { proxy = "http://127.0.0.1:1" })
      assert.is_nil(none)
      assert.equal("refused", err)
      none, err = eddy.http.get("http://example.invalid/", { proxy = "http://no-such-proxy.invalid:8080" })
      assert.is_nil(none)
      assert.equal("dns failure", err)
      assert.has_error(function() eddy.http.get(base, { proxy = 8080 }) end)
    end)
  end)

  it("fetch_all's timeout applies to each request that has none", function()
    h.run(function()
      local results = eddy.http.fetch_all({
        base .. "/slow?s=2", base .. "/hello", { url = base .. "/slow?s=0.6", timeout = 5 },
      }, { timeout = 0.3, concurrency = 3 })
      assert.same({ nil, "timeout" }, { results[1][1], results[1][2] })
      assert.equal("hello from python\n", results[2][1].body)
      assert.equal("slow\n", results[3][1].body)
    end)
  end)

  it("refuses a certificate it cannot verify unless told not to", function()
    h.run(function()
      local none, err, detail = eddy.http.get(h2_tls_base .. "/slow?ms=1")
      assert.is_nil(none)
      assert.equal("tls failure", err)
      assert.matches("certificate", detail)
      assert.equal(200, assert(eddy.http.get(h2_tls_base .. "/slow?ms=1", { verify_tls = false })).status)
    end)
  end)

  it("a cancelled task's upload from a function stops at once", function()
    h.run(function()
      local calls = 0
      local t = eddy.spawn(function()
        return eddy.http.request({ url = base .. "/upload", method = "PUT", body = function()
          calls = calls + 1
          eddy.sleep(0.05) -- a slow producer
          return ("p"):rep(1000)
        end })
      end)
      eddy.sleep(0.3)
      t:cancel()
      local ok, res, err = t:join()
      assert.is_true(ok)
      assert.is_nil(res)
      assert.equal("cancelled", err)
      local seen = calls
      eddy.sleep(0.2)
      assert.equal(seen, calls) -- no more calls
      -- cancelled while it waits for the answer, past its body
      t = eddy.spawn(function()
        local sent = false
        return eddy.http.request({ url = base .. "/slow?s=3", body = function()
          if sent then return nil end
          sent = true
          return "x"
        end })
      end)
      eddy.sleep(0.3)
      t:cancel()
      assert.same({ true, nil, "cancelled" }, { t:join() })
      assert.equal(200, assert(eddy.http.get(base .. "/hello")).status)
    end)
  end)

  it("keeps to a per-host connection limit, the rest waiting their turn", function()
    h.run(function()
      local app = eddy.http.server()
      local peers, now, most = {}, 0, 0
      app:get("/slow", function(req, res)
        local _, port = req:remote_addr()
        peers[port] = true
        now = now + 1
        most = math.max(most, now)
        eddy.sleep(0.2)
        now = now - 1
        res:send("done")
      end)
      local server = assert(app:listen("127.0.0.1", 0))
      assert.is_true(eddy.http.configure({ max_host_connections = 2 }))
      local urls = {}
      for i = 1, 10 do urls[i] = "http://127.0.0.1:" .. server:port() .. "/slow" end
      local t0 = eddy.now()
      local results = eddy.http.fetch_all(urls, { concurrency = 10 })
      local took = eddy.now() - t0
      eddy.http.configure({}) -- no limits again
      for i = 1, 10 do assert.equal("done", results[i][1].body) end
      local n = 0
      for _ in pairs(peers) do n = n + 1 end
      assert.is_true(n <= 2, n .. " connections")
      assert.equal(2, most)
      assert.is_true(took >= 0.9, ("took %.2f s"):format(took))
      server:close()
    end)
    assert.has_error(function() eddy.http.configure(5) end)
  end)

  it("runs the example over HTTP/2 (h2c)", function()
    local rc, out = h.sh(h.eddy_bin .. " examples/fetch_many.lua --http2 " ..
      h2_base .. "/slow?ms=300 " .. h2_base .. "/slow?ms=300")
    assert.equal(0, rc, out)
    local n = 0
    for _ in out:gmatch("200%s+6 B%s+[%d.]+ s HTTP/2") do n = n + 1 end
    assert.equal(2, n, out)
  end)

  it("runs the example: total time against the sum of the single times", function()
    local rc, out = h.sh(h.eddy_bin .. " examples/fetch_many.lua " ..
      base .. "/slow?s=0.5 " .. base .. "/slow?s=0.5 " .. base .. "/hello http://127.0.0.1:1/")
    assert.equal(0, rc, out)
    assert.matches("200%s+%d+ B", out)
    assert.matches("refused", out)
    local total, sum = out:match("all in ([%d.]+) s, against ([%d.]+) s one after another")
    assert.is_true(tonumber(total) < tonumber(sum), out)
  end)

  it("runs the upload example: a body made chunk by chunk", function()
    local rc, out = h.sh(h.eddy_bin .. " examples/fetch_upload.lua " .. base .. "/upload 20000")
    assert.equal(0, rc, out)
    local want = {}
    for n = 1, 20000 do want[n] = ("line %d\n"):format(n) end
    want = table.concat(want)
    assert.matches("200%s+POST " .. #want .. " " .. sha256(want) .. " chunked", out)
  end)
end)

-- TLS (core/tls.c, eddy.tcp's tls options, HTTPS, wss://) against
-- independent peers: `openssl s_client` and `curl --cacert` against eddy's
-- servers; eddy's client against `openssl s_server` and nginx; the
-- certificates made here with `openssl` (examples/https/make-certs.sh): a
-- throw-away CA, names for SNI, an expired and a self-signed certificate,
-- and a second CA for a reload.
--
-- The outside programs run in the background (output and exit status in
-- files) while the loop keeps serving; waits poll with eddy.sleep, with
-- generous limits that only stop a hang.
local h = require "helper"
local eddy = h.eddy

local read_file, sh, tmpdir = h.read_file, h.sh, h.tmpdir

-- =========================================================================
-- Certificates

local D, D2 -- the CA with localhost, a.test, b.test; a second CA
local EXPIRED, SELF -- directories of an expired and a self-signed localhost

local function make_certs()
  D, D2, EXPIRED, SELF = tmpdir(), tmpdir(), tmpdir(), tmpdir()
  local mk = "sh examples/https/make-certs.sh "
  assert(sh(mk .. D .. " localhost a.test b.test") == 0)
  assert(sh(mk .. D2 .. " localhost") == 0)
  assert(sh(("cp %s/ca.pem %s/ca.key %s/"):format(D, D, EXPIRED)) == 0)
  assert(sh("DAYS=-1 " .. mk .. EXPIRED .. " localhost") == 0)
  local rc, out = sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    .. " -keyout %s/localhost.key -out %s/localhost.pem -days 30 -subj /CN=localhost"
    .. " -addext subjectAltName=DNS:localhost,IP:127.0.0.1"):format(SELF, SELF))
  assert(rc == 0, out)
end

local function server_tls(dir, extra)
  local t = { cert = dir .. "/localhost.pem", key = dir .. "/localhost.key" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- =========================================================================
-- Servers

local spawn, wait_until = h.spawn, h.wait_until

local function free_port()
  local s = assert(eddy.tcp.listen("127.0.0.1", 0, { reuseport = false }))
  local port = s:port()
  s:close()
  return port
end

-- A TLS echo server on a free port; returns it and its port.
local function echo_server(tls, seen)
  local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
    while true do
      local line, err, reason = conn:read_line()
      if seen then seen[#seen + 1] = { line = line, err = err, reason = reason, tls = conn:tls() } end
      if not line then return end
      conn:write("echo " .. line .. "\n")
    end
  end, { tls = tls }))
  return srv, srv:port()
end

local function echo_once(port, tls, name)
  local conn, err, reason = eddy.tcp.connect(name or "localhost", port, { tls = tls, connect_timeout = 5 })
  if not conn then return nil, err, reason end
  assert(conn:write("hi\n"))
  local line, rerr = conn:read_line({ timeout = 5 })
  local info = conn:tls()
  conn:close()
  return line, rerr or info
end

-- =========================================================================

describe("eddy TLS", function()
  setup(make_certs)
  teardown(function()
    os.execute(("rm -rf %s %s %s %s"):format(D, D2, EXPIRED, SELF))
  end)

  it("openssl s_client talks to eddy's TLS echo server, and verifies it", function()
    local got = h.run(function()
      local seen = {}
      local srv, port = echo_server(server_tls(D), seen)
      local job = spawn(("(printf 'hello\\n'; sleep 3) | openssl s_client -brief -connect 127.0.0.1:%d"
        .. " -servername localhost -verify_return_error -CAfile %s/ca.pem"):format(port, D))
      local echoed = job:expect("echo hello")
      job:kill()
      local _, out = job:wait()
      wait_until(function() return #seen >= 2 end, 5)
      srv:close()
      return { echoed = echoed, out = out, seen = seen }
    end)
    assert.equal("echo hello", got.echoed)
    assert.matches("Verification: OK", got.out)
    assert.matches("TLSv1.3", got.out)
    assert.equal("hello", got.seen[1].line)
    assert.equal("TLSv1.3", got.seen[1].tls.version)
    assert.equal("localhost", got.seen[1].tls.server_name)
    assert.is_nil(got.seen[2].line) -- then the client went away
  end)

  it("curl --cacert gets pages over HTTPS, keep-alive, and a file sent through TLS", function()
    local dir = tmpdir()
    local f = assert(io.open(dir .. "/big.bin", "wb"))
    for i = 1, 3000 do f:write(("%07d "):format(i):rep(16)) end -- 384000 bytes
    f:close()
    local got = h.run(function()
      local app = eddy.http.server()
      app:get("/", function(req, res) res:send("hello " .. req:tls().version .. "\n") end)
      app:get("/big", function(_, res) assert(res:sendfile(dir .. "/big.bin")) end)
      local srv = assert(app:listen("127.0.0.1", 0, { tls = server_tls(D, { alpn = { "http/1.1" } }) }))
      local base = ("https://localhost:%d"):format(srv:port())
      local job = spawn(("curl -sS -v --cacert %s/ca.pem %s/ %s/ -o %s/one -o %s/two %s/big -o %s/big.got")
        :format(D, base, base, dir, dir, base, dir))
      local rc, out = job:wait()
      srv:close()
      return { rc = rc, out = out }
    end)
    assert.equal(0, got.rc, got.out)
    assert.equal("hello TLSv1.3\n", read_file(dir .. "/one"))
    assert.equal("hello TLSv1.3\n", read_file(dir .. "/two"))
    assert.equal(read_file(dir .. "/big.bin"), read_file(dir .. "/big.got"))
    assert.matches("ALPN: server accepted http/1.1", got.out)
    assert.matches("Re%-using existing connection", got.out)
    os.execute("rm -rf " .. dir)
  end)

  it("eddy's client talks to openssl s_server, with ALPN", function()
    local got = h.run(function()
      local port = free_port()
      local job = spawn(("sleep 20 | openssl s_server -accept 127.0.0.1:%d -cert %s/localhost.pem -key %s/localhost.key -www -alpn http/1.1")
        :format(port, D, D))
      assert(job:expect("ACCEPT"))
      local conn, err, reason = eddy.tcp.connect("localhost", port,
        { tls = { ca = D .. "/ca.pem", alpn = { "h2", "http/1.1" } } })
      assert(conn, tostring(err) .. " " .. tostring(reason))
      local info = conn:tls()
      assert(conn:write("GET / HTTP/1.0\r\n\r\n"))
      local parts = {}
      repeat
        local piece = conn:read_some(65536, { timeout = 5 })
        parts[#parts + 1] = piece
      until not piece
      conn:close()
      job:kill()
      job:wait()
      return { info = info, page = table.concat(parts) }
    end)
    assert.equal("http/1.1", got.info.alpn)
    assert.equal("TLSv1.3", got.info.version)
    assert.matches("^HTTP/1.0 200 ok", got.page)
    assert.matches("TLSv1.3", got.page)
  end)

  it("eddy's client talks to nginx over HTTPS, and resumes its session", function()
    local dir = tmpdir()
    local got = h.run(function()
      local port = free_port()
      local conf = ([[
daemon off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;
  uwsgi_temp_path %s; scgi_temp_path %s;
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/localhost.pem;
    ssl_certificate_key %s/localhost.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    location / { return 200 "nginx says hi\n"; }
  }
}
]]):format(dir, dir, dir, dir, dir, dir, dir, port, D, D)
      local f = assert(io.open(dir .. "/nginx.conf", "w"))
      f:write(conf)
      f:close()
      local job = spawn(("nginx -p %s -c %s/nginx.conf -e %s/error.log"):format(dir, dir, dir))
      local function get()
        local conn, err, reason = eddy.tcp.connect("localhost", port, { tls = { ca = D .. "/ca.pem" } })
        if not conn then return { err = err, reason = reason } end
        assert(conn:write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
        local head = conn:read_until("\r\n\r\n", { timeout = 5 })
        local body = conn:read_line({ timeout = 5 })
        local info = conn:tls()
        conn:close()
        return { head = head, body = body, resumed = info.resumed }
      end
      local first = wait_until(function()
        local r = get()
        return not r.err and r or nil
      end, 10)
      local second = get()
      job:kill()
      job:wait()
      return { first = first, second = second, log = read_file(dir .. "/error.log") }
    end)
    os.execute("rm -rf " .. dir)
    assert.truthy(got.first, got.log)
    assert.matches("^HTTP/1.1 200", got.first.head)
    assert.equal("nginx says hi", got.first.body)
    assert.is_false(got.first.resumed)
    assert.equal("nginx says hi", got.second.body)
    assert.is_true(got.second.resumed)
  end)

  it("refuses an expired, a self-signed, an unknown CA's certificate and a wrong name, with OpenSSL's reason", function()
    local got = h.run(function()
      local r = {}
      local good, gport = echo_server(server_tls(D))
      local old, oport = echo_server(server_tls(EXPIRED))
      local self, sport = echo_server(server_tls(SELF))
      local ca = { ca = D .. "/ca.pem" }
      r.good = { echo_once(gport, ca) }
      r.expired = { echo_once(oport, ca) }
      r.self = { echo_once(sport, ca) }
      r.unknown = { echo_once(gport, true) } -- the system's store
      r.name = { echo_once(gport, { ca = ca.ca, server_name = "a.test" }, "127.0.0.1") }
      r.ip = { echo_once(gport, ca, "127.0.0.1") } -- the certificate names the IP
      r.noverify = { echo_once(sport, { verify = false }) }
      r.badfile = { eddy.tcp.listen("127.0.0.1", 0, { tls = { cert = D .. "/none.pem", key = D .. "/none.key" } }) }
      good:close(); old:close(); self:close()
      return r
    end)
    assert.equal("echo hi", got.good[1])
    assert.same({ nil, "tls failure", "certificate verify failed: certificate has expired" }, got.expired)
    assert.equal("tls failure", got.self[2])
    assert.matches("certificate verify failed: self.signed certificate", got.self[3])
    assert.same({ nil, "tls failure", "certificate verify failed: unable to get local issuer certificate" }, got.unknown)
    assert.same({ nil, "tls failure", "certificate verify failed: hostname mismatch" }, got.name)
    assert.equal("echo hi", got.ip[1])
    assert.equal("echo hi", got.noverify[1])
    assert.equal("tls failure", got.badfile[2])
    assert.matches("none.pem", got.badfile[3])
  end)

  it("SNI chooses the certificate by the name the client asks for", function()
    local got = h.run(function()
      local seen = {}
      local srv, port = echo_server(server_tls(D, { names = {
        ["a.test"] = { cert = D .. "/a.test.pem", key = D .. "/a.test.key" },
        ["b.test"] = { cert = D .. "/b.test.pem", key = D .. "/b.test.key" },
      } }), seen)
      local ca = D .. "/ca.pem"
      local r = {}
      for _, name in ipairs({ "a.test", "b.test", "localhost" }) do
        r[name] = { echo_once(port, { ca = ca, server_name = name }, "127.0.0.1") }
      end
      local job = spawn(("openssl s_client -connect 127.0.0.1:%d -servername b.test < /dev/null"):format(port))
      r.subject = job:expect("subject=[^\n]*")
      job:wait()
      wait_until(function() return #seen >= 6 end, 5)
      srv:close()
      r.names = {}
      for _, s in ipairs(seen) do
        if s.line then r.names[#r.names + 1] = s.tls.server_name end
      end
      return r
    end)
    assert.equal("echo hi", got["a.test"][1])
    assert.equal("echo hi", got["b.test"][1])
    assert.equal("echo hi", got["localhost"][1])
    assert.matches("CN = b.test", got.subject)
    table.sort(got.names)
    assert.same({ "a.test", "b.test", "localhost" }, got.names)
  end)

  it("ALPN takes the server's preference, and no common protocol fails", function()
    local got = h.run(function()
      local srv, port = echo_server(server_tls(D, { alpn = { "h2", "http/1.1" } }))
      local ca = D .. "/ca.pem"
      local r = {}
      r.both = { echo_once(port, { ca = ca, alpn = { "http/1.1", "h2" } }) }
      r.one = { echo_once(port, { ca = ca, alpn = { "http/1.1" } }) }
      r.none = { echo_once(port, { ca = ca, alpn = { "x-other" } }) }
      r.absent = { echo_once(port, { ca = ca }) }
      srv:close()
      return r
    end)
    assert.equal("h2", got.both[2].alpn)
    assert.equal("http/1.1", got.one[2].alpn)
    assert.same({ nil, "tls failure", "tlsv1 alert no application protocol" }, got.none)
    assert.equal("echo hi", got.absent[1])
    assert.is_nil(got.absent[2].alpn)
  end)

  it("speaks TLS 1.2 and 1.3, and a version mismatch fails", function()
    local got = h.run(function()
      local ca = D .. "/ca.pem"
      local srv, port = echo_server(server_tls(D))
      local only13, port13 = echo_server(server_tls(D, { min_version = "1.3" }))
      local r = {}
      r.v12 = { echo_once(port, { ca = ca, max_version = "1.2" }) }
      r.v13 = { echo_once(port, { ca = ca, min_version = "1.3" }) }
      r.mismatch = { echo_once(port13, { ca = ca, max_version = "1.2" }) }
      r.resume12 = { echo_once(port, { ca = ca, max_version = "1.2" }) }
      srv:close(); only13:close()
      return r
    end)
    assert.equal("TLSv1.2", got.v12[2].version)
    assert.equal("TLSv1.3", got.v13[2].version)
    assert.equal("tls failure", got.mismatch[2])
    assert.matches("protocol version", got.mismatch[3])
    assert.is_true(got.resume12[2].resumed)
  end)

  it("reloads the certificate while a connection is open: it keeps its own", function()
    local got = h.run(function()
      local srv, port = echo_server(server_tls(D))
      local r = {}
      local open = assert(eddy.tcp.connect("localhost", port, { tls = { ca = D .. "/ca.pem" } }))
      assert(open:write("before\n"))
      r.before = open:read_line({ timeout = 5 })
      r.bad = { srv:reload_tls(server_tls(D2, { cert = D2 .. "/missing.pem" })) }
      r.reload = { srv:reload_tls(server_tls(D2)) }
      assert(open:write("after\n"))
      r.after = open:read_line({ timeout = 5 })
      open:close()
      r.old_ca = { echo_once(port, { ca = D .. "/ca.pem" }) }
      r.new_ca = { echo_once(port, { ca = D2 .. "/ca.pem" }) }
      srv:close()
      return r
    end)
    assert.equal("echo before", got.before)
    assert.equal("tls failure", got.bad[2])
    assert.same({ true }, got.reload)
    assert.equal("echo after", got.after)
    assert.same({ nil, "tls failure", "certificate verify failed: unable to get local issuer certificate" }, got.old_ca)
    assert.equal("echo hi", got.new_ca[1])
  end)

  it("garbage, a stalled handshake, a cut record and an oversized record cost one connection each", function()
    local got = h.run(function()
      local seen = {}
      local srv, port = echo_server(server_tls(D, { handshake_timeout = 0.3 }), seen)
      local function raw(bytes, close_early)
        local conn = assert(eddy.tcp.connect("127.0.0.1", port))
        assert(conn:write(bytes))
        if close_early then conn:close() return "closed by us" end
        local parts = {}
        local t0 = eddy.now()
        repeat
          local piece, err = conn:read_some(65536, { timeout = 5 })
          parts[#parts + 1] = piece or err
        until not piece
        conn:close()
        return parts[#parts], eddy.now() - t0 < 4
      end
      local r = {}
      r.garbage = { raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }
      -- the start of a ClientHello, then nothing: the handshake timeout
      r.stall = { raw("\22\3\1\2\0\1\0\1\252\3\3") }
      r.cut = { raw("\22\3\1\2\0\1\0", true) }
      -- a record of 20480 bytes, over TLS's limit
      r.oversized = { raw("\22\3\3\80\0" .. ("\0"):rep(64)) }
      r.after = { echo_once(port, { ca = D .. "/ca.pem" }) }
      wait_until(function() return #seen >= 5 end, 5)
      srv:close()
      r.errs = {}
      for _, s in ipairs(seen) do r.errs[#r.errs + 1] = s.err or s.line end
      return r
    end)
    assert.same({ "closed", true }, got.garbage)
    assert.same({ "closed", true }, got.stall)
    assert.same({ "closed", true }, got.oversized)
    assert.equal("echo hi", got.after[1])
    -- each bad connection ended its handler's read with an error
    table.sort(got.errs)
    assert.same({ "closed", "hi", "timeout", "tls failure", "tls failure" }, got.errs)
  end)

  it("a bad client costs a log line that says why", function()
    local rc, out = h.eddy_run(([[
      local eddy = require "eddy"
      local D = %q
      local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
        local line = conn:read_line()
        if line then conn:write(line .. "\n") end
      end, { tls = { cert = D .. "/localhost.pem", key = D .. "/localhost.key" } }))
      local raw = assert(eddy.tcp.connect("127.0.0.1", srv:port()))
      raw:write("GET / HTTP/1.1\r\n\r\n")
      print("raw", raw:read_some(100, { timeout = 5 }) and "bytes" or "nothing")
      raw:close()
      local conn = assert(eddy.tcp.connect("localhost", srv:port(), { tls = { ca = D .. "/ca.pem" } }))
      conn:write("still serving\n")
      print(conn:read_line({ timeout = 5 }))
      srv:close()
    ]]):format(D))
    assert.equal(0, rc, out)
    assert.matches("tls: handshake failed from 127%.0%.0%.1 port %d+: http request", out)
    assert.matches("still serving", out)
  end)

  it("starttls upgrades a plain connection; a silent server times it out", function()
    local got = h.run(function()
      local srv, port = echo_server(server_tls(D))
      local silent = assert(eddy.tcp.listen("127.0.0.1", 0))
      local r = {}
      local conn = assert(eddy.tcp.connect("127.0.0.1", port))
      r.plain = conn:tls()
      r.up = { conn:starttls({ ca = D .. "/ca.pem", server_name = "localhost" }) }
      assert(conn:write("up\n"))
      r.line = conn:read_line({ timeout = 5 })
      conn:close()
      local c2 = assert(eddy.tcp.connect("127.0.0.1", silent:port()))
      r.timeout = { c2:starttls({ ca = D .. "/ca.pem", timeout = 0.2 }) }
      r.closed = c2:closed()
      r.connect_timeout = { eddy.tcp.connect("127.0.0.1", silent:port(),
        { tls = { ca = D .. "/ca.pem" }, connect_timeout = 0.2 }) }
      silent:close()
      srv:close()
      return r
    end)
    assert.is_nil(got.plain)
    assert.same({ true }, got.up)
    assert.equal("echo up", got.line)
    assert.same({ nil, "timeout" }, got.timeout)
    assert.is_true(got.closed)
    assert.same({ nil, "timeout" }, got.connect_timeout)
  end)

  it("starttls without any timeout still gives up on a silent server (10 s default)", function()
    local got = h.run(function()
      local silent = assert(eddy.tcp.listen("127.0.0.1", 0))
      local conn = assert(eddy.tcp.connect("127.0.0.1", silent:port()))
      local r = { conn:starttls({ ca = D .. "/ca.pem", server_name = "localhost" }) }
      silent:close()
      return r
    end)
    assert.same({ nil, "timeout" }, got)
  end)

  it("starttls verifying without a server_name checks the peer's IP address", function()
    local got = h.run(function()
      local r = {}
      for _, name in ipairs({ "a.test", "localhost" }) do -- localhost's names 127.0.0.1
        local srv, port = echo_server({ cert = D .. "/" .. name .. ".pem", key = D .. "/" .. name .. ".key" })
        local conn = assert(eddy.tcp.connect("127.0.0.1", port))
        local res = { conn:starttls({ ca = D .. "/ca.pem", timeout = 5 }) }
        r[name] = { res[1], res[2] }
        conn:close()
        srv:close()
      end
      return r
    end)
    assert.same({ nil, "tls failure" }, got["a.test"])
    assert.same({ true }, got.localhost)
  end)

  it("takes a negative or infinite handshake_timeout as no limit", function()
    local got = h.run(function()
      local r = {}
      for _, limit in ipairs({ -1, math.huge, 0 }) do
        local srv, port = echo_server(server_tls(D, { handshake_timeout = limit }))
        local conn, err = eddy.tcp.connect("localhost", port, { tls = { ca = D .. "/ca.pem" } })
        if conn then
          conn:write("hi\n")
          r[#r + 1] = conn:read_line({ timeout = 5 })
          conn:close()
        else
          r[#r + 1] = err
        end
        srv:close()
      end
      return r
    end)
    assert.same({ "echo hi", "echo hi", "echo hi" }, got)
  end)

  it("delivers what a server wrote before the handshake ended, then shut down or returned", function()
    local got = h.run(function()
      local r = {}
      for _, mode in ipairs({ "shutdown", "return" }) do
        local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
          conn:write(mode .. "\n") -- the handshake is not through yet
          if mode == "shutdown" then
            assert(conn:shutdown())
            conn:read_some(nil, { timeout = 5 })
          end
        end, { tls = server_tls(D) }))
        local conn, err = eddy.tcp.connect("localhost", srv:port(), { tls = { ca = D .. "/ca.pem" } })
        if conn then
          r[mode] = { conn:read_line({ timeout = 5 }) }
          r[mode .. " then"] = { conn:read_some(nil, { timeout = 5 }) }
          conn:close()
        else
          r[mode] = { err }
        end
        srv:close()
      end
      return r
    end)
    assert.same({ "shutdown" }, got.shutdown)
    assert.same({ nil, "closed" }, got["shutdown then"])
    assert.same({ "return" }, got["return"])
    assert.same({ nil, "closed" }, got["return then"])
  end)

  it("makes writers wait at write_buffer before the handshake too", function()
    local got = h.run(function()
      local r = {}
      local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
        r.small = { conn:write(string.rep("x", 1000), { timeout = 0 }) }
        r.big = { conn:write(string.rep("x", 1024 * 1024), { timeout = 0 }) }
      end, { tls = server_tls(D), write_buffer = 65536 }))
      local conn = assert(eddy.tcp.connect("127.0.0.1", srv:port())) -- no handshake
      eddy.sleep(0.2)
      conn:close()
      eddy.sleep(0.1)
      srv:close()
      return r
    end)
    assert.same({ true }, got.small)
    assert.same({ nil, "timeout" }, got.big)
  end)

  it("starttls refuses plaintext that came before the upgrade (injection)", function()
    local got = h.run(function()
      local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
        conn:write("220 ready\r\nINJECTED\r\n") -- one write: one read
        conn:read_some()
      end))
      local conn = assert(eddy.tcp.connect("127.0.0.1", srv:port()))
      local banner = conn:read_line({ timeout = 5 })
      local r = { conn:starttls({ ca = D .. "/ca.pem", server_name = "localhost", timeout = 5 }) }
      r.closed = conn:closed()
      r.banner = banner
      conn:close()
      srv:close()
      return r
    end)
    assert.equal("220 ready", got.banner)
    assert.equal("tls failure", got[2])
    assert.matches("plaintext", got[3])
    assert.is_nil(got[1])
    assert.is_true(got.closed)
  end)

  it("asks clients for certificates (verify on a server); a server that speaks first waits for the handshake", function()
    local got = h.run(function()
      local peers = {}
      local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
        conn:write("banner\n") -- before the handshake is through
        local line = conn:read_line()
        if line then
          peers[#peers + 1] = conn:tls().peer
          conn:write("echo " .. line .. "\n")
        end
      end, { tls = server_tls(D, { verify = true, ca = D .. "/ca.pem" }) }))
      local port = srv:port()
      local r = {}
      local conn, err, reason = eddy.tcp.connect("localhost", port, { tls = {
        ca = D .. "/ca.pem", cert = D .. "/a.test.pem", key = D .. "/a.test.key" } })
      assert(conn, tostring(err) .. " " .. tostring(reason))
      r.banner = conn:read_line({ timeout = 5 })
      assert(conn:write("x\n"))
      r.echo = conn:read_line({ timeout = 5 })
      r.server_cert = conn:tls().peer
      conn:close()
      -- TLS 1.3: the client hears of its missing certificate at its first read
      local c2 = eddy.tcp.connect("localhost", port, { tls = { ca = D .. "/ca.pem" } })
      r.nocert = c2 and { c2:read_line({ timeout = 5 }) } or "refused at connect"
      if c2 then c2:close() end
      srv:close()
      r.peers = peers
      return r
    end)
    assert.equal("banner", got.banner)
    assert.equal("echo x", got.echo)
    assert.same({ "/CN=a.test" }, got.peers)
    assert.equal("/CN=localhost", got.server_cert)
    assert.equal("tls failure", got.nocert[2])
  end)

  it("wss:// between eddy's WebSocket client and eddy's HTTPS server", function()
    local got = h.run(function()
      local app = eddy.http.server()
      app:websocket("/ws", function(ws)
        local msg = ws:recv()
        if msg then ws:send("back " .. msg) end
      end)
      local srv = assert(app:listen("127.0.0.1", 0, { tls = server_tls(D) }))
      local url = ("wss://localhost:%d/ws"):format(srv:port())
      local ws = assert(eddy.ws.connect(url, { tls = { ca = D .. "/ca.pem" } }))
      assert(ws:send("x"))
      local back = ws:recv()
      ws:close()
      local bad = { eddy.ws.connect(url) } -- the system's CAs do not know ours
      srv:close()
      return { back = back, bad = bad }
    end)
    assert.equal("back x", got.back)
    assert.same({ nil, "tls failure", "certificate verify failed: unable to get local issuer certificate" }, got.bad)
  end)

  it("the HTTP client uses the same tls option names on libcurl", function()
    local got = h.run(function()
      local app = eddy.http.server()
      app:get("/", function(_, res) res:send("ok") end)
      local srv = assert(app:listen("127.0.0.1", 0, { tls = server_tls(D) }))
      local url = ("https://localhost:%d/"):format(srv:port())
      local r = {}
      local res = eddy.http.get(url, { tls = { ca = D .. "/ca.pem" } })
      r.ok = res and res.body
      r.unknown = { eddy.http.get(url) }
      local res2 = eddy.http.get(url, { tls = { verify = false } })
      r.noverify = res2 and res2.body
      srv:close()
      return r
    end)
    assert.equal("ok", got.ok)
    assert.equal("tls failure", got.unknown[2])
    assert.equal("ok", got.noverify)
  end)

  it("examples/https: the TLS echo and the HTTPS hello run", function()
    local rc, out = h.sh(h.eddy_bin .. " examples/https/echo.lua " .. D)
    assert.equal(0, rc, out)
    assert.matches("echo: line 1 %(TLSv1.3, resumed: false%)", out)
    assert.matches("echo: line 3 %(TLSv1.3, resumed: true%)", out)
    assert.matches("wrong name:%s+nil%s+tls failure%s+certificate verify failed: hostname mismatch", out)
    rc, out = h.sh(h.eddy_bin .. " examples/https/hello.lua " .. D .. " test")
    assert.equal(0, rc, out)
    assert.matches("https: hello over TLSv1.3 %(http/1.1%)", out)
    assert.matches("wss: ping over wss", out)
  end)
end)

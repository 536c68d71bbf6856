-- eddy.tcp: servers, clients, every read mode, timeouts, backpressure,
-- cancellation, limits, IPv6, many connections, and interop with nc.
local h = require "helper"
local eddy = h.eddy

-- A server on a free port of 127.0.0.1 (or of host).
local function listen(opts, host)
  return assert(eddy.tcp.listen(host or "127.0.0.1", 0, opts))
end

local function connect(port, opts, host)
  return assert(eddy.tcp.connect(host or "127.0.0.1", port, opts))
end

-- A port nothing listens on (it was free a moment ago).
local function free_port()
  local s = listen({ reuseport = false })
  local port = s:port()
  s:close()
  return port
end

-- A server that writes back each line it reads; its handler ends when the
-- client leaves.
local function echo_server(opts)
  local srv = listen(opts)
  srv:serve(function(conn)
    while true do
      local line = conn:read_line()
      if not line then return end
      conn:write(line .. "\n")
    end
  end)
  return srv
end

-- Waits (inside a task) until cond() is true or about `limit` seconds pass.
local function wait_for(cond, limit)
  local deadline = eddy.now() + (limit or 5)
  while not cond() do
    if eddy.now() > deadline then return false end
    eddy.sleep(0.01)
  end
  return true
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

describe("eddy.tcp", function()
  describe("echo", function()
    it("round-trips lines through serve and connect", function()
      local got = h.run(function()
        local srv = echo_server()
        local conn = connect(srv:port())
        local out = {}
        for i = 1, 3 do
          assert(conn:write("line " .. i .. "\n"))
          out[#out + 1] = conn:read_line({ timeout = 5 })
        end
        conn:close()
        srv:close()
        return out
      end)
      assert.same({ "line 1", "line 2", "line 3" }, got)
    end)

    it("eddy.tcp.serve listens and serves in one call", function()
      local line = h.run(function()
        local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
          conn:write("hello " .. conn:read_line() .. "\n")
        end))
        local conn = connect(srv:port())
        conn:write("you\n")
        local l = conn:read_line({ timeout = 5 })
        conn:close()
        srv:close()
        return l
      end)
      assert.equal("hello you", line)
    end)

    it("connects to 'localhost'", function()
      local line = h.run(function()
        local srv = echo_server()
        local conn = assert(eddy.tcp.connect("localhost", srv:port()))
        conn:write("via localhost\n")
        local l = conn:read_line({ timeout = 5 })
        conn:close()
        srv:close()
        return l
      end)
      assert.equal("via localhost", line)
    end)

    it("gives matching local and peer addresses on both ends", function()
      h.run(function()
        local srv = listen()
        assert.equal("127.0.0.1", (srv:local_addr()))
        assert.equal(srv:port(), select(2, srv:local_addr()))
        local client = connect(srv:port())
        local server_side = assert(srv:accept(5))
        local cip, cport = client:local_addr()
        local pip, pport = server_side:peer_addr()
        assert.equal("127.0.0.1", cip)
        assert.equal(cip, pip)
        assert.equal(cport, pport)
        local rip, rport = client:peer_addr()
        assert.equal("127.0.0.1", rip)
        assert.equal(srv:port(), rport)
        assert.equal(srv:port(), select(2, server_side:local_addr()))
        client:close()
        server_side:close()
        srv:close()
      end)
    end)

    it("writes an array of strings as one message", function()
      local got = h.run(function()
        local srv = echo_server()
        local conn = connect(srv:port())
        local ok, err = conn:write({ "ab", "cd", "\n" })
        local line = ok and conn:read_line({ timeout = 5 })
        conn:close()
        srv:close()
        return { ok = ok, err = err, line = line }
      end)
      assert.same({ ok = true, line = "abcd" }, got)
    end)

    it("writes an array of many (more than 32) pieces", function()
      local line = h.run(function()
        local srv = echo_server()
        local conn = connect(srv:port())
        local parts = {}
        for i = 1, 100 do parts[i] = tostring(i % 10) end
        parts[#parts + 1] = "\n"
        assert(conn:write(parts, { timeout = 5 }))
        local l = conn:read_line({ timeout = 5 })
        conn:close()
        srv:close()
        return l
      end)
      assert.equal(100, #line)
      assert.equal("1234567890", line:sub(1, 10))
    end)
  end)

  describe("read modes", function()
    -- Runs fn(client, server_side) with an accepted pair; closes them after.
    local function with_pair(fn, opts)
      return h.run(function()
        local srv = listen(opts)
        local client = connect(srv:port(), opts)
        local server_side = assert(srv:accept(5))
        local r = { pcall(fn, client, server_side) }
        client:close()
        server_side:close()
        srv:close()
        assert(r[1], r[2])
        return (unpack or table.unpack)(r, 2)
      end)
    end

    it("read(n) returns exactly n bytes, across writes", function()
      local a, b, c = with_pair(function(client, s)
        client:write("abcdefgh")
        local a = s:read(3, 5)
        local b = s:read(5, 5)
        eddy.spawn(function()
          client:write("12")
          eddy.sleep(0.02)
          client:write("345")
        end)
        local c = s:read(5, 5)
        return a, b, c
      end)
      assert.equal("abc", a)
      assert.equal("defgh", b)
      assert.equal("12345", c)
    end)

    it("read(0) returns an empty string at once", function()
      local v = with_pair(function(_, s) return s:read(0) end)
      assert.equal("", v)
    end)

    it("read_line splits pipelined lines that arrive in one packet", function()
      local lines = with_pair(function(client, s)
        client:write("one\ntwo\r\nthree\n\r\nfour\n")
        local out = {}
        for _ = 1, 5 do out[#out + 1] = s:read_line({ timeout = 5 }) end
        return out
      end)
      assert.same({ "one", "two", "three", "", "four" }, lines)
    end)

    it("read_line joins a line split across packets", function()
      local lines = with_pair(function(client, s)
        eddy.spawn(function()
          for _, piece in ipairs({ "hel", "lo wo", "rld\r", "\nsec", "ond\n" }) do
            client:write(piece)
            eddy.sleep(0.02)
          end
        end)
        return { s:read_line({ timeout = 5 }), s:read_line({ timeout = 5 }) }
      end)
      assert.same({ "hello world", "second" }, lines)
    end)

    it("read_until finds a multi-byte delimiter split across packets", function()
      local parts = with_pair(function(client, s)
        eddy.spawn(function()
          for _, piece in ipairs({ "GET / HTTP/1.1\r\nHost: x\r", "\n\r", "\nbody--", "END--tail" }) do
            client:write(piece)
            eddy.sleep(0.02)
          end
        end)
        local head = s:read_until("\r\n\r\n", { timeout = 5 })
        local body = s:read_until("--END--", { timeout = 5 })
        local rest = s:read(4, 5)
        return { head, body, rest }
      end)
      assert.same({ "GET / HTTP/1.1\r\nHost: x", "body", "tail" }, parts)
    end)

    it("read_until keeps the rest of the buffer for the next read", function()
      local parts = with_pair(function(client, s)
        client:write("a;b;;c;")
        return { s:read_until(";", 5), s:read_until(";", 5), s:read_until(";", 5), s:read_until(";", 5) }
      end)
      assert.same({ "a", "b", "", "c" }, parts)
    end)

    it("read_until rejects a bad delimiter", function()
      with_pair(function(_, s)
        assert.has_error(function() s:read_until("") end)
        assert.has_error(function() s:read_until(string.rep("x", 65)) end)
      end)
    end)

    it("read_some returns what has arrived, at most max", function()
      local r = with_pair(function(client, s)
        client:write("0123456789")
        local first = s:read_some(4, 5)
        local rest = {}
        local n = #first
        while n < 10 do
          local d = assert(s:read_some(nil, 5))
          rest[#rest + 1] = d
          n = n + #d
        end
        return { first, table.concat(rest) }
      end)
      assert.same({ "0123", "456789" }, r)
    end)

    it("mixes read modes on one connection", function()
      local r = with_pair(function(client, s)
        client:write("HDR 5\r\nhelloX|rest\n")
        local hdr = s:read_line(5)
        local n = tonumber(hdr:match("%d+"))
        local body = s:read(n, 5)
        local x = s:read_until("|", 5)
        local line = s:read_line(5)
        return { hdr, body, x, line }
      end)
      assert.same({ "HDR 5", "hello", "X", "rest" }, r)
    end)

    it("read_line answers 'too large' beyond opts.max, and keeps the bytes", function()
      local r = with_pair(function(client, s)
        eddy.spawn(function()
          client:write(string.rep("x", 30))
          eddy.sleep(0.02)
          client:write(string.rep("x", 30))
        end)
        local line, err = s:read_line({ max = 40, timeout = 5 })
        local data = s:read(60, 5)
        return { line = line, err = err, n = data and #data }
      end)
      assert.same({ err = "too large", n = 60 }, r)
    end)

    it("read_line answers 'too large' for a long line that arrives whole", function()
      -- The limit must not depend on how the bytes were packetized.
      local r = with_pair(function(client, s)
        client:write("<" .. string.rep("x", 100) .. "\n")
        s:read_some(1, 5) -- the whole line is buffered now
        local line, err = s:read_line({ max = 10, timeout = 5 })
        return { len = line and #line, err = err }
      end)
      assert.same({ err = "too large" }, r)
    end)

    it("large reads span many buffer blocks", function()
      local r = with_pair(function(client, s)
        local big = {}
        for i = 1, 20000 do big[i] = string.format("%07d\n", i) end -- 160 000 bytes
        local blob = table.concat(big)
        eddy.spawn(function()
          client:write(blob)
          client:write(string.rep("L", 200000) .. "\r\n")
          client:write(string.rep("u", 70000) .. "<END>" .. "tail")
        end)
        local exact = s:read(#blob, 10)
        local line = s:read_line({ max = 300000, timeout = 10 })
        local upto = s:read_until("<END>", { max = 300000, timeout = 10 })
        local tail = s:read(4, 10)
        return { exact_ok = exact == blob, line_len = line and #line,
                 line_ok = line == string.rep("L", 200000), upto_len = upto and #upto, tail = tail }
      end)
      assert.same({ exact_ok = true, line_len = 200000, line_ok = true, upto_len = 70000, tail = "tail" }, r)
    end)

    it("the max_line connection option limits read_line", function()
      local r = with_pair(function(client, s)
        client:write(string.rep("y", 20))
        local line, err = s:read_line({ timeout = 5 })
        return { line = line, err = err }
      end, { max_line = 16 })
      assert.same({ err = "too large" }, r)
    end)

    it("a second task reading the same connection raises", function()
      local msg = with_pair(function(client, s)
        local first = eddy.spawn(function() return s:read_line({ timeout = 5 }) end)
        eddy.sleep(0.02)
        local ok, err = pcall(s.read_line, s, { timeout = 1 })
        client:write("for the first\n")
        local jok, line = first:join(5)
        assert.is_true(jok)
        assert.equal("for the first", line)
        assert.is_false(ok)
        return tostring(err)
      end)
      assert.matches("another task is reading", msg)
    end)
  end)

  describe("end of stream", function()
    it("a peer that closes mid-read gives nil, 'closed' and the partial data", function()
      local r = h.run(function()
        local srv = listen()
        srv:serve(function(conn)
          local what = conn:read_line()
          if what == "n" then conn:write("partial")
          elseif what == "line" then conn:write("first\nunterminated")
          elseif what == "until" then conn:write("abc||def")
          end
        end)
        local out = {}
        local c1 = connect(srv:port())
        c1:write("n\n")
        out.n = { c1:read(100, 5) }
        out.after = { c1:read(1, 5) }
        c1:close()
        local c2 = connect(srv:port())
        c2:write("line\n")
        out.line1 = { c2:read_line(5) }
        out.line2 = { c2:read_line(5) }
        c2:close()
        local c3 = connect(srv:port())
        c3:write("until\n")
        out.u1 = { c3:read_until("||", 5) }
        out.u2 = { c3:read_until("||", 5) }
        c3:close()
        local c4 = connect(srv:port())
        c4:write("nothing\n")
        out.some = { c4:read_some(10, 5) }
        c4:close()
        srv:close()
        return out
      end)
      assert.same({ nil, "closed", "partial" }, r.n)
      assert.same({ nil, "closed" }, r.after)
      assert.same({ "first" }, r.line1)
      assert.same({ nil, "closed", "unterminated" }, r.line2)
      assert.same({ "abc" }, r.u1)
      assert.same({ nil, "closed", "def" }, r.u2)
      assert.same({ nil, "closed" }, r.some)
    end)

    it("shutdown half-closes: the peer reads the end, the reply still comes back", function()
      local r = h.run(function()
        local srv = listen()
        srv:serve(function(conn)
          local got = {}
          while true do
            local d, err, partial = conn:read_some(nil, 5)
            if d then got[#got + 1] = d
            else
              if partial then got[#got + 1] = partial end
              conn:write("got " .. table.concat(got) .. " then " .. tostring(err))
              return
            end
          end
        end)
        local conn = connect(srv:port())
        conn:write("request")
        assert(conn:shutdown())
        local _, err, reply = conn:read(1000, 5)
        conn:close()
        srv:close()
        return { err = err, reply = reply }
      end)
      assert.same({ err = "closed", reply = "got request then closed" }, r)
    end)

    it("shutdown then close (a handler's return) still delivers every queued byte", function()
      local r = h.run(function()
        local srv = listen({ write_buffer = 64 * 1024 * 1024 })
        local size = 8 * 1024 * 1024
        srv:serve(function(conn)
          assert(conn:write(string.rep("x", size))) -- under write_buffer: no wait
          assert(conn:shutdown())
        end)
        local conn = connect(srv:port())
        eddy.sleep(0.2) -- the handler has returned with its bytes queued
        local n = 0
        while true do
          local d = conn:read_some(nil, 5)
          if not d then break end
          n = n + #d
        end
        conn:close()
        srv:close()
        return { n = n, want = size }
      end)
      assert.equal(r.want, r.n)
    end)

    it("close wakes tasks waiting on the connection with nil, 'closed'", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port(), { write_buffer = 1024 })
        local s = assert(srv:accept(5))
        local reader = eddy.spawn(function() return client:read_line() end)
        eddy.sleep(0.02)
        assert.equal("waiting", reader:status())
        local was_open = client:close()
        local again = client:close()
        local _, line, err = reader:join(5)
        local after = { client:read(1) }
        local w = { client:write("x") }
        local closed = client:closed()
        local addr = { client:peer_addr() }
        s:close()
        srv:close()
        return { was_open = was_open, again = again, line = line, err = err, after = after,
                 w = w, closed = closed, addr = addr }
      end)
      assert.same({ was_open = true, again = false, err = "closed",
                    after = { nil, "closed" }, w = { nil, "closed" }, closed = true,
                    addr = { nil, "closed" } }, r)
    end)

    it("queued writes still go out after close", function()
      local n = h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        local s = assert(srv:accept(5))
        local big = string.rep("z", 4 * 1024 * 1024)
        client:write(big, { timeout = 0 }) -- queues what the socket cannot take
        client:close()
        local total = 0
        while true do
          local d, _, partial = s:read_some(1048576, 5)
          total = total + #(d or partial or "")
          if not d then break end
        end
        s:close()
        srv:close()
        return total
      end)
      assert.equal(4 * 1024 * 1024, n)
    end)
  end)

  describe("timeouts", function()
    it("a read times out per call, and the connection stays usable", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        local s = assert(srv:accept(5))
        local out = {}
        out.line = { s:read_line({ timeout = 0.05 }) }
        client:write("par")
        out.n = { s:read(10, 0.05) }
        out.some_zero = { s:read_until("!", { timeout = 0 }) }
        client:write("tial\n")
        out.after = s:read_line({ timeout = 5 })
        out.some = { s:read_some(nil, { timeout = 0.05 }) }
        client:close()
        s:close()
        srv:close()
        return out
      end)
      assert.same({ nil, "timeout" }, r.line)
      assert.same({ nil, "timeout" }, r.n)
      assert.same({ nil, "timeout" }, r.some_zero)
      assert.equal("partial", r.after)
      assert.same({ nil, "timeout" }, r.some)
    end)

    it("timeout 0 answers at once from buffered data", function()
      local v = h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        local s = assert(srv:accept(5))
        client:write("ready\n")
        assert(s:read_some(1, 5) == "r")
        local line = s:read_line({ timeout = 0 })
        client:close()
        s:close()
        srv:close()
        return line
      end)
      assert.equal("eady", v)
    end)

    it("a connection's default timeout comes from connect opts, and a call can override it", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port(), { timeout = 0.05 })
        local s = assert(srv:accept(5))
        local t0 = eddy.now()
        local out = { default = { client:read_line() } }
        out.elapsed = eddy.now() - t0
        eddy.spawn(function() eddy.sleep(0.15); s:write("late\n") end)
        out.override = { client:read_line({ timeout = 5 }) }
        client:close()
        s:close()
        srv:close()
        return out
      end)
      assert.same({ nil, "timeout" }, r.default)
      assert.is_true(r.elapsed >= 0.04 and r.elapsed < 3)
      assert.same({ "late" }, r.override)
    end)

    it("set_timeout changes the default of each call; nil removes it", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        local s = assert(srv:accept(5))
        client:set_timeout(0.05)
        local out = { first = { client:read(1) } }
        client:set_timeout(nil)
        eddy.spawn(function() eddy.sleep(0.15); s:write("x") end)
        out.second = { client:read(1) }
        client:set_nodelay(false)
        client:set_keepalive(30)
        client:set_keepalive(false)
        client:close()
        s:close()
        srv:close()
        return out
      end)
      assert.same({ nil, "timeout" }, r.first)
      assert.same({ "x" }, r.second)
    end)

    it("a server's timeout option is the default of its connections", function()
      local line = h.run(function()
        local srv = listen({ timeout = 0.05 })
        srv:serve(function(conn)
          local l, err = conn:read_line()
          conn:write(tostring(l) .. " " .. tostring(err) .. "\n", { timeout = 5 })
        end)
        local client = connect(srv:port())
        local l = client:read_line({ timeout = 5 })
        client:close()
        srv:close()
        return l
      end)
      assert.equal("nil timeout", line)
    end)

    it("a bad timeout raises", function()
      h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        assert.has_error(function() client:read_line({ timeout = -1 }) end)
        assert.has_error(function() client:read(1, "soon") end)
        assert.has_error(function() client:read_line({ timeout = "soon" }) end)
        client:close()
        srv:close()
      end)
    end)
  end)

  describe("connect", function()
    it("answers nil, 'refused' when nothing listens", function()
      local r = h.run(function()
        return { eddy.tcp.connect("127.0.0.1", free_port(), { connect_timeout = 5 }) }
      end)
      assert.same({ nil, "refused" }, r)
    end)

    it("answers nil, 'timeout' when the handshake never completes", function()
      local r = h.run(function()
        -- A listener that never accepts and whose backlog is full drops
        -- new SYNs, so the next handshake hangs.
        local srv = listen({ backlog = 1 })
        local conns, err = {}, nil
        local t0, elapsed
        for _ = 1, 50 do
          t0 = eddy.now()
          local c, e = eddy.tcp.connect("127.0.0.1", srv:port(), { connect_timeout = 0.2 })
          if not c then err, elapsed = e, eddy.now() - t0 break end
          conns[#conns + 1] = c
        end
        for _, c in ipairs(conns) do c:close() end
        srv:close()
        return { err = err, elapsed = elapsed }
      end)
      assert.equal("timeout", r.err)
      assert.is_true(r.elapsed >= 0.15 and r.elapsed < 3, "elapsed " .. tostring(r.elapsed))
    end)

    it("answers nil, 'not found' for a name that does not exist", function()
      local r = h.run(function()
        return { eddy.tcp.connect("no-such-host.invalid", 80, { connect_timeout = 5 }) }
      end)
      assert.same({ nil, "not found" }, r)
    end)

    it("raises on bad arguments", function()
      h.run(function()
        assert.has_error(function() eddy.tcp.connect(nil, 80) end)
        assert.has_error(function() eddy.tcp.connect("127.0.0.1", 70000) end)
        assert.has_error(function() eddy.tcp.connect("127.0.0.1", 80, "opts") end)
        assert.has_error(function() eddy.tcp.listen("127.0.0.1", -1) end)
      end)
    end)
  end)

  describe("listen", function()
    it("answers nil, 'address in use' for a taken port without reuseport", function()
      local r = h.run(function()
        local a = listen({ reuseport = false })
        local b, err = eddy.tcp.listen("127.0.0.1", a:port(), { reuseport = false })
        if b then b:close() end
        a:close()
        return { b = b, err = err }
      end)
      assert.same({ err = "address in use" }, r)
    end)

    it("lets two reuseport listeners share a port", function()
      local ok = h.run(function()
        local a = listen()
        local b, err = eddy.tcp.listen("127.0.0.1", a:port())
        local same = b and b:port() == a:port()
        if b then b:close() end
        a:close()
        return same or err
      end)
      assert.is_true(ok)
    end)

    it("listens on '*' (every IPv4 address) and 'localhost'", function()
      local r = h.run(function()
        local any = assert(eddy.tcp.listen("*", 0))
        local lo = assert(eddy.tcp.listen("localhost", 0))
        local out = { any = (any:local_addr()), lo = (lo:local_addr()) }
        local c = connect(any:port())
        local s = assert(any:accept(5))
        out.accepted = s ~= nil
        c:close()
        s:close()
        any:close()
        lo:close()
        return out
      end)
      assert.same({ any = "0.0.0.0", lo = "127.0.0.1", accepted = true }, r)
    end)

    it("answers nil, 'not found' for a host name that does not exist", function()
      local r = h.run(function() return { eddy.tcp.listen("no-such-host.invalid", 0) } end)
      assert.same({ nil, "not found" }, r)
    end)

    it("a closed server refuses new connections and answers 'closed'", function()
      local r = h.run(function()
        local srv = listen()
        local port = srv:port()
        assert.is_true(srv:close())
        assert.is_false(srv:close())
        local out = { accept = { srv:accept(0) }, port = { srv:port() } }
        eddy.sleep(0.01)
        out.connect = { eddy.tcp.connect("127.0.0.1", port, { connect_timeout = 5 }) }
        return out
      end)
      assert.same({ nil, "closed" }, r.accept)
      assert.same({ nil, "closed" }, r.port)
      assert.same({ nil, "refused" }, r.connect)
    end)
  end)

  describe("handlers", function()
    it("a handler that raises closes its connection and the server keeps serving", function()
      local r = h.run(function()
        local srv = listen()
        local n = 0
        srv:serve(function(conn)
          n = n + 1
          local line = conn:read_line()
          if line == "boom" then error("handler failed on purpose") end
          conn:write("ok " .. line .. "\n")
        end)
        local c1 = connect(srv:port())
        c1:write("boom\n")
        local first = { c1:read_line({ timeout = 5 }) }
        c1:close()
        local c2 = connect(srv:port())
        c2:write("fine\n")
        local second = c2:read_line({ timeout = 5 })
        c2:close()
        assert(wait_for(function() return srv:connections() == 0 end))
        srv:close()
        return { first = first, second = second, n = n }
      end)
      assert.same({ nil, "closed" }, r.first)
      assert.equal("ok fine", r.second)
      assert.equal(2, r.n)
    end)

    it("serve and accept cannot be mixed", function()
      h.run(function()
        local srv = listen()
        srv:serve(function() end)
        assert.has_error(function() srv:accept(0) end)
        assert.has_error(function() srv:serve(function() end) end)
        srv:close()
      end)
    end)
  end)

  describe("backpressure", function()
    it("a write to a peer that never reads fills the buffer, then waits, memory bounded", function()
      local wbuf = 65536
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port(), { write_buffer = wbuf })
        local s = assert(srv:accept(5))
        local chunk = string.rep("x", 65536)
        local sent, err, max_queued = 0, nil, 0
        for _ = 1, 2000 do -- at most 128 MiB: far beyond any socket buffer
          local ok, e = client:write(chunk, { timeout = 0.2 })
          local _, queued = client:pending()
          if queued > max_queued then max_queued = queued end
          if not ok then err = e break end
          sent = sent + #chunk
          assert(queued <= wbuf, "a write returned with " .. queued .. " bytes queued")
        end
        local _, queued_after = client:pending()
        -- A writer without a timeout now waits...
        local writer = eddy.spawn(function() return client:write(chunk) end)
        eddy.sleep(0.05)
        local status = writer:status()
        -- ...until the peer reads.
        local expected = sent + 2 * #chunk
        local got = 0
        while got < expected do
          local d = s:read_some(1048576, 5)
          if not d then break end
          got = got + #d
        end
        local jok, wres = writer:join(5)
        assert(wait_for(function() return select(2, client:pending()) == 0 end))
        client:close()
        s:close()
        srv:close()
        return { err = err, max_queued = max_queued, queued_after = queued_after,
                 status = status, got = got, expected = expected, jok = jok, wres = wres }
      end)
      assert.equal("timeout", r.err)
      assert.is_true(r.queued_after > wbuf)
      assert.is_true(r.max_queued <= wbuf + 65536, "queued " .. r.max_queued)
      assert.equal("waiting", r.status)
      assert.equal(r.expected, r.got)
      assert.is_true(r.jok)
      assert.is_true(r.wres)
    end)

    it("a write to a peer that has gone answers nil, 'closed', never SIGPIPE", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        local s = assert(srv:accept(5))
        s:close()
        local err
        for _ = 1, 200 do
          local ok, e = client:write(string.rep("w", 1024), { timeout = 5 })
          if not ok then err = e break end
          eddy.sleep(0.01)
        end
        local again = { client:write("more") }
        local read = { client:read(1, 5) }
        client:close()
        srv:close()
        return { err = err, again = again, read = read }
      end)
      assert.equal("closed", r.err)
      assert.same({ nil, "closed" }, r.again)
      assert.same({ nil, "closed" }, r.read)
    end)

    it("a writer waiting on a full buffer wakes with nil, 'closed' when the peer goes", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port(), { write_buffer = 1024 })
        local s = assert(srv:accept(5))
        local chunk = string.rep("c", 1024 * 1024)
        local res
        local writer = eddy.spawn(function()
          for _ = 1, 200 do
            local ok, err = client:write(chunk)
            if not ok then res = err return end
          end
          res = "never blocked"
        end)
        eddy.sleep(0.1)
        local status = writer:status()
        s:close() -- unread data: the peer resets the connection
        writer:join(5)
        client:close()
        srv:close()
        return { status = status, res = res }
      end)
      assert.equal("waiting", r.status)
      assert.equal("closed", r.res)
    end)

    it("a write times out per call and per connection default", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port(), { write_buffer = 1024, timeout = 0.1 })
        local s = assert(srv:accept(5))
        local chunk = string.rep("t", 1024 * 1024)
        local out = {}
        for _ = 1, 200 do
          local ok, err = client:write(chunk) -- the connection's default: 0.1 s
          if not ok then out.default = err break end
        end
        local t0 = eddy.now()
        out.call = { client:write("more", { timeout = 0.05 }) }
        out.elapsed = eddy.now() - t0
        out.zero = { client:write("more", 0) }
        s:close()
        client:close()
        srv:close()
        return out
      end)
      assert.equal("timeout", r.default)
      assert.same({ nil, "timeout" }, r.call)
      assert.is_true(r.elapsed >= 0.04 and r.elapsed < 3)
      assert.same({ nil, "timeout" }, r.zero)
    end)

    it("a connection nobody references any more is closed when collected", function()
      local r = h.run(function()
        local srv = listen()
        do
          local c = connect(srv:port())
          c:write("bye\n")
        end
        local s = assert(srv:accept(5))
        collectgarbage()
        collectgarbage()
        local line = s:read_line(5)
        local res = { s:read_line(5) }
        s:close()
        srv:close()
        return { line = line, res = res }
      end)
      assert.equal("bye", r.line)
      assert.same({ nil, "closed" }, r.res)
    end)

    it("pending counts the bytes received and not read yet", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        local s = assert(srv:accept(5))
        client:write("abc\ndef")
        assert.equal("abc", s:read_line(5))
        local rin, rout = s:pending()
        client:close()
        s:close()
        srv:close()
        return { rin, rout }
      end)
      assert.same({ 3, 0 }, r)
    end)
  end)

  describe("cancellation", function()
    it("cancelling a task waiting in read answers nil, 'cancelled', and frees the connection for others", function()
      local r = h.run(function()
        local srv = listen()
        local client = connect(srv:port())
        local s = assert(srv:accept(5))
        local seen
        local t = eddy.spawn(function()
          seen = { client:read_line() }
          -- Cancellation is sticky: a later wait answers at once.
          local again = { client:read_line() }
          return again
        end)
        eddy.sleep(0.02)
        t:cancel()
        local jok, again = t:join(5)
        s:write("still works\n")
        local line = client:read_line({ timeout = 5 })
        client:close()
        s:close()
        srv:close()
        return { seen = seen, jok = jok, again = again, line = line, cancelled = t:cancelled() }
      end)
      assert.same({ nil, "cancelled" }, r.seen)
      assert.same({ nil, "cancelled" }, r.again)
      assert.equal("still works", r.line)
      assert.is_true(r.cancelled)
    end)

    it("cancelling a task waiting in write or accept answers nil, 'cancelled'", function()
      local r = h.run(function()
        local srv = listen({ backlog = 1 })
        local client = connect(srv:port(), { write_buffer = 1024 })
        local s = assert(srv:accept(5))
        local out = {}
        local big = string.rep("b", 8 * 1024 * 1024)
        local w = eddy.spawn(function() out.write = { client:write(big) } end)
        local acc = listen()
        local a = eddy.spawn(function() out.accept = { acc:accept() } end)
        eddy.sleep(0.05)
        w:cancel()
        a:cancel()
        w:join(5)
        a:join(5)
        acc:close()
        client:close()
        s:close()
        srv:close()
        return out
      end)
      assert.same({ nil, "cancelled" }, r.write)
      assert.same({ nil, "cancelled" }, r.accept)
    end)
    it("cancelling a task waiting in connect answers nil, 'cancelled'", function()
      local r = h.run(function()
        -- Fill a listener's backlog so that the next handshake hangs.
        local srv = listen({ backlog = 1 })
        local conns = {}
        for _ = 1, 50 do
          local c = eddy.tcp.connect("127.0.0.1", srv:port(), { connect_timeout = 0.2 })
          if not c then break end
          conns[#conns + 1] = c
        end
        local out
        local t = eddy.spawn(function()
          out = { eddy.tcp.connect("127.0.0.1", srv:port(), { connect_timeout = 10 }) }
        end)
        eddy.sleep(0.05)
        local status = t:status()
        t:cancel()
        t:join(5)
        for _, c in ipairs(conns) do c:close() end
        srv:close()
        return { status = status, out = out }
      end)
      assert.equal("waiting", r.status)
      assert.same({ nil, "cancelled" }, r.out)
    end)
  end)

  describe("accept mode", function()
    it("accept waits for a connection, with a timeout", function()
      local r = h.run(function()
        local srv = listen()
        local out = {}
        local t0 = eddy.now()
        out.timeout = { srv:accept(0.05) }
        out.elapsed = eddy.now() - t0
        out.zero = { srv:accept({ timeout = 0 }) }
        eddy.spawn(function()
          eddy.sleep(0.02)
          local c = connect(srv:port())
          c:write("hi\n")
          c:read_line({ timeout = 5 })
          c:close()
        end)
        local conn = srv:accept(5)
        out.line = conn and conn:read_line({ timeout = 5 })
        out.count = srv:connections()
        conn:write("bye\n")
        conn:close()
        assert(wait_for(function() return srv:connections() == 0 end))
        srv:close()
        return out
      end)
      assert.same({ nil, "timeout" }, r.timeout)
      assert.is_true(r.elapsed >= 0.04 and r.elapsed < 3)
      assert.same({ nil, "timeout" }, r.zero)
      assert.equal("hi", r.line)
      assert.equal(1, r.count)
    end)

    it("closing the server wakes a waiting accept with nil, 'closed'", function()
      local r = h.run(function()
        local srv = listen()
        local t = eddy.spawn(function() return srv:accept() end)
        eddy.sleep(0.02)
        srv:close()
        return { t:join(5) }
      end)
      assert.same({ true, nil, "closed" }, r)
    end)
  end)

  describe("max_connections", function()
    it("holds further connections until one closes", function()
      local r = h.run(function()
        local srv = listen({ max_connections = 2 })
        local started = 0
        srv:serve(function(conn)
          started = started + 1
          conn:write("welcome " .. started .. "\n")
          conn:read_line()
        end)
        local c1, c2, c3 = connect(srv:port()), connect(srv:port()), connect(srv:port())
        local out = {}
        out.l1 = c1:read_line({ timeout = 5 })
        out.l2 = c2:read_line({ timeout = 5 })
        out.held = { c3:read_line({ timeout = 0.2 }) }
        out.count = srv:connections()
        c1:close()
        out.l3 = c3:read_line({ timeout = 5 })
        out.count_after = srv:connections()
        c2:close()
        c3:close()
        assert(wait_for(function() return srv:connections() == 0 end))
        srv:close()
        return out
      end)
      assert.equal("welcome 1", r.l1)
      assert.equal("welcome 2", r.l2)
      assert.same({ nil, "timeout" }, r.held)
      assert.equal(2, r.count)
      assert.equal("welcome 3", r.l3)
      assert.equal(2, r.count_after)
    end)
    it("in accept mode, holds the next connection until one closes", function()
      local r = h.run(function()
        local srv = listen({ max_connections = 1 })
        local c1 = connect(srv:port())
        local c2 = connect(srv:port())
        local a1 = assert(srv:accept(5))
        local out = { held = { srv:accept(0.1) } }
        eddy.spawn(function() eddy.sleep(0.02); a1:close() end)
        local a2 = srv:accept(5)
        out.second = a2 ~= nil
        out.count = srv:connections()
        c2:write("from c2\n")
        out.line = a2 and a2:read_line(5)
        c1:close()
        c2:close()
        if a2 then a2:close() end
        srv:close()
        return out
      end)
      assert.same({ nil, "timeout" }, r.held)
      assert.is_true(r.second)
      assert.equal(1, r.count)
      assert.equal("from c2", r.line)
    end)
  end)

  describe("server close", function()
    it("leaves the connections it is serving running", function()
      local r = h.run(function()
        local srv = listen()
        srv:serve(function(conn)
          local line = conn:read_line({ timeout = 5 })
          conn:write("still served: " .. tostring(line) .. "\n")
        end)
        local c = connect(srv:port())
        assert(wait_for(function() return srv:connections() == 1 end))
        srv:close()
        local count = srv:connections()
        c:write("hi\n")
        local line = c:read_line({ timeout = 5 })
        c:close()
        return { count = count, line = line }
      end)
      assert.equal(1, r.count)
      assert.equal("still served: hi", r.line)
    end)
  end)

  describe("IPv6", function()
    it("serves and connects over ::1", function()
      local r = h.run(function()
        local srv = assert(eddy.tcp.listen("::1", 0))
        srv:serve(function(conn)
          local ip = conn:peer_addr()
          conn:write(ip .. " " .. conn:read_line() .. "\n")
        end)
        local c = assert(eddy.tcp.connect("::1", srv:port()))
        c:write("hello6\n")
        local line = c:read_line({ timeout = 5 })
        local pip, pport = c:peer_addr()
        local sip = srv:local_addr()
        local same_port = pport == srv:port()
        c:close()
        srv:close()
        return { line = line, pip = pip, same_port = same_port, sip = sip }
      end)
      assert.same({ line = "::1 hello6", pip = "::1", same_port = true, sip = "::1" }, r)
    end)

    it("ipv6only keeps IPv4 clients off a '::' listener", function()
      local r = h.run(function()
        local srv = assert(eddy.tcp.listen("::", 0, { ipv6only = true }))
        local c, err = eddy.tcp.connect("127.0.0.1", srv:port(), { connect_timeout = 2 })
        if c then c:close() end
        srv:close()
        return { c = c, err = err }
      end)
      assert.same({ err = "refused" }, r)
    end)
  end)

  describe("many connections", function()
    it("serves 200 concurrent clients", function()
      local r = h.run(function()
        local srv = echo_server()
        local port = srv:port()
        local n, ok, bad = 200, 0, {}
        local tasks = {}
        for i = 1, n do
          tasks[i] = eddy.spawn(function()
            local c, err = eddy.tcp.connect("127.0.0.1", port, { connect_timeout = 10 })
            if not c then bad[#bad + 1] = err return end
            for k = 1, 3 do
              c:write("client " .. i .. " msg " .. k .. "\n")
              local line, e = c:read_line({ timeout = 10 })
              if line ~= "client " .. i .. " msg " .. k then
                bad[#bad + 1] = tostring(line) .. " " .. tostring(e)
                c:close()
                return
              end
            end
            c:close()
            ok = ok + 1
          end)
        end
        local peak = srv:connections()
        for i = 1, n do tasks[i]:join(20) end
        assert(wait_for(function() return srv:connections() == 0 end))
        srv:close()
        return { ok = ok, bad = bad, peak = peak }
      end)
      assert.same({}, r.bad)
      assert.equal(200, r.ok)
    end)
  end)

  describe("interop with nc", function()
    local tmp
    before_each(function() tmp = os.tmpname() end)
    after_each(function() os.remove(tmp); os.remove(tmp .. ".done") end)

    it("nc as a client talks to an eddy server", function()
      local r = h.run(function()
        local srv = listen()
        local got = {}
        srv:serve(function(conn)
          while true do
            local line = conn:read_line({ timeout = 5 })
            if not line then return end
            got[#got + 1] = line
            conn:write("echo: " .. line .. "\r\n")
          end
        end)
        -- nc sends its input, half-closes (-N), and prints what comes back.
        os.execute(string.format(
          "(printf 'one\\ntwo\\r\\n' | timeout 10 nc -N 127.0.0.1 %d > %s 2>&1; touch %s.done) &",
          srv:port(), tmp, tmp))
        local done = wait_for(function() return read_file(tmp .. ".done") ~= nil end, 10)
        srv:close()
        return { done = done, got = got, out = read_file(tmp) }
      end)
      assert.is_true(r.done)
      assert.same({ "one", "two" }, r.got)
      assert.equal("echo: one\r\necho: two\r\n", r.out)
    end)

    it("nc as a server talks to an eddy client", function()
      local r = h.run(function()
        local port = free_port()
        os.execute(string.format(
          "(printf 'hello from nc\\n' | timeout 10 nc -l 127.0.0.1 %d > %s 2>&1; touch %s.done) &",
          port, tmp, tmp))
        -- nc needs a moment to listen.
        local conn, err
        for _ = 1, 500 do
          conn, err = eddy.tcp.connect("127.0.0.1", port, { connect_timeout = 5 })
          if conn or err ~= "refused" then break end
          eddy.sleep(0.01)
        end
        assert(conn, err)
        local line = conn:read_line({ timeout = 5 })
        conn:write("hello from eddy\n")
        conn:close()
        local done = wait_for(function() return read_file(tmp .. ".done") ~= nil end, 10)
        return { line = line, done = done, out = read_file(tmp) }
      end)
      assert.equal("hello from nc", r.line)
      assert.is_true(r.done)
      assert.equal("hello from eddy\n", r.out)
    end)
  end)
end)

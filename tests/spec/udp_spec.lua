-- eddy.udp: datagrams between sockets, addresses, timeouts, close.
local h = require "helper"
local eddy = h.eddy

local function bind(host)
  return assert(eddy.udp.bind(host or "127.0.0.1", 0))
end

describe("eddy.udp", function()
  it("sends and receives a datagram, with the sender's address", function()
    local r = h.run(function()
      local a, b = bind(), bind()
      local aip, aport = a:local_addr()
      local bip, bport = b:local_addr()
      assert(a:send_to("ping", bip, bport))
      local data, ip, port = b:recv_from(5)
      assert(b:send_to("pong:" .. data, ip, port))
      local reply, rip, rport = a:recv_from(5)
      a:close()
      b:close()
      return { data = data, ip = ip, port = port, aip = aip, aport = aport,
               reply = reply, rip = rip, rport = rport, bport = bport }
    end)
    assert.equal("ping", r.data)
    assert.equal("127.0.0.1", r.aip)
    assert.equal(r.aip, r.ip)
    assert.equal(r.aport, r.port)
    assert.equal("pong:ping", r.reply)
    assert.equal("127.0.0.1", r.rip)
    assert.equal(r.bport, r.rport)
  end)

  it("keeps datagram boundaries and order", function()
    local got = h.run(function()
      local a, b = bind(), bind()
      local _, bport = b:local_addr()
      for i = 1, 5 do assert(a:send_to(string.rep(tostring(i), i), "127.0.0.1", bport)) end
      local out = {}
      for i = 1, 5 do out[i] = (b:recv_from(5)) end
      a:close()
      b:close()
      return out
    end)
    assert.same({ "1", "22", "333", "4444", "55555" }, got)
  end)

  it("carries an empty datagram and a large one", function()
    local r = h.run(function()
      local a, b = bind(), bind()
      local _, bport = b:local_addr()
      local big = string.rep("L", 60000)
      assert(a:send_to("", "127.0.0.1", bport))
      assert(a:send_to(big, "127.0.0.1", bport))
      local e = { b:recv_from(5) }
      local l = b:recv_from(5)
      a:close()
      b:close()
      return { empty = e[1], empty_port = e[3] ~= nil, big_ok = l == big, big_len = l and #l }
    end)
    assert.same({ empty = "", empty_port = true, big_ok = true, big_len = 60000 }, r)
  end)

  it("binds to any free port by default and resolves 'localhost' for send_to", function()
    local r = h.run(function()
      local any = assert(eddy.udp.bind())
      local ip, port = any:local_addr()
      local b = bind()
      local _, bport = b:local_addr()
      assert(any:send_to("by name", "localhost", bport))
      local data, from_ip, from_port = b:recv_from(5)
      any:close()
      b:close()
      return { ip = ip, port = port, data = data, from_ip = from_ip, same = from_port == port }
    end)
    assert.equal("0.0.0.0", r.ip)
    assert.is_true(r.port > 0)
    assert.equal("by name", r.data)
    assert.equal("127.0.0.1", r.from_ip)
    assert.is_true(r.same)
  end)

  it("binds to 'localhost'", function()
    local r = h.run(function()
      local s = assert(eddy.udp.bind("localhost", 0))
      local ip, port = s:local_addr()
      s:close()
      return { ip = ip, port_ok = port > 0 }
    end)
    assert.same({ ip = "127.0.0.1", port_ok = true }, r)
  end)

  it("works over IPv6", function()
    local r = h.run(function()
      local a, b = bind("::1"), bind("::1")
      local aip, aport = a:local_addr()
      local _, bport = b:local_addr()
      assert(a:send_to("six", "::1", bport))
      local data, ip, port = b:recv_from(5)
      a:close()
      b:close()
      return { aip = aip, data = data, ip = ip, same = port == aport }
    end)
    assert.same({ aip = "::1", data = "six", ip = "::1", same = true }, r)
  end)

  it("recv_from times out, per call, and a later datagram still arrives", function()
    local r = h.run(function()
      local a, b = bind(), bind()
      local _, bport = b:local_addr()
      local out = {}
      local t0 = eddy.now()
      out.timeout = { b:recv_from(0.05) }
      out.elapsed = eddy.now() - t0
      out.table_timeout = { b:recv_from({ timeout = 0.02 }) }
      out.zero = { b:recv_from(0) }
      eddy.spawn(function() eddy.sleep(0.05); a:send_to("late", "127.0.0.1", bport) end)
      out.late = b:recv_from(5)
      a:close()
      b:close()
      return out
    end)
    assert.same({ nil, "timeout" }, r.timeout)
    assert.is_true(r.elapsed >= 0.04 and r.elapsed < 3)
    assert.same({ nil, "timeout" }, r.table_timeout)
    assert.same({ nil, "timeout" }, r.zero)
    assert.equal("late", r.late)
  end)

  it("close wakes a waiting receiver with nil, 'closed'", function()
    local r = h.run(function()
      local s = bind()
      local t = eddy.spawn(function() return s:recv_from() end)
      eddy.sleep(0.02)
      local status = t:status()
      local was_open = s:close()
      local again = s:close()
      local res = { t:join(5) }
      return { status = status, res = res, was_open = was_open, again = again,
               recv = { s:recv_from(0) }, send = { s:send_to("x", "127.0.0.1", 9) },
               addr = { s:local_addr() } }
    end)
    assert.equal("waiting", r.status)
    assert.same({ true, nil, "closed" }, r.res)
    assert.is_true(r.was_open)
    assert.is_false(r.again)
    assert.same({ nil, "closed" }, r.recv)
    assert.same({ nil, "closed" }, r.send)
    assert.same({ nil, "closed" }, r.addr)
  end)

  it("cancelling a waiting receiver answers nil, 'cancelled' and the socket still works", function()
    local r = h.run(function()
      local a, b = bind(), bind()
      local _, bport = b:local_addr()
      local seen
      local t = eddy.spawn(function() seen = { b:recv_from() } end)
      eddy.sleep(0.02)
      t:cancel()
      t:join(5)
      a:send_to("after cancel", "127.0.0.1", bport)
      local data = b:recv_from(5)
      a:close()
      b:close()
      return { seen = seen, data = data }
    end)
    assert.same({ nil, "cancelled" }, r.seen)
    assert.equal("after cancel", r.data)
  end)

  it("a second concurrent receiver raises", function()
    local msg = h.run(function()
      local s = bind()
      local t = eddy.spawn(function() return s:recv_from(5) end)
      eddy.sleep(0.01)
      local ok, err = pcall(s.recv_from, s, 1)
      s:close()
      t:join(5)
      assert.is_false(ok)
      return tostring(err)
    end)
    assert.matches("another task is receiving", msg)
  end)

  it("answers nil, 'address in use' for a taken port", function()
    local r = h.run(function()
      local a = bind()
      local _, port = a:local_addr()
      local b, err = eddy.udp.bind("127.0.0.1", port)
      if b then b:close() end
      a:close()
      return { b = b, err = err }
    end)
    assert.same({ err = "address in use" }, r)
  end)

  it("raises on bad arguments", function()
    h.run(function()
      local s = bind()
      assert.has_error(function() s:send_to("x", "127.0.0.1", 70000) end)
      assert.has_error(function() s:send_to(nil, "127.0.0.1", 9) end)
      assert.has_error(function() s:send_to("x", nil, 9) end)
      assert.has_error(function() s:recv_from(-1) end)
      s:close()
    end)
  end)

  it("send_to a name that does not exist answers nil, 'not found'", function()
    local r = h.run(function()
      local s = bind()
      local res = { s:send_to("x", "no-such-host.invalid", 9) }
      s:close()
      return res
    end)
    assert.same({ nil, "not found" }, r)
  end)
end)

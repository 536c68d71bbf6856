-- eddy.pool: a bounded pool of real TCP connections to a line-echo server
-- of the test's own, which counts the connections it has open at once.

local h = require "helper"
local eddy = h.eddy
local pool = require "eddy.pool"

-- A line-echo server: "ping" answers "pong"; "close" closes the server's
-- side. It records how many connections were open at most at once.
local function echo_server()
  local srv = { now = 0, max = 0, accepted = 0, conns = {} }
  srv.listener = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
    srv.accepted = srv.accepted + 1
    srv.now = srv.now + 1
    if srv.now > srv.max then srv.max = srv.now end
    srv.conns[conn] = true
    while true do
      local line = conn:read_line()
      if not line or line == "close" then break end
      conn:write((line == "ping" and "pong" or line) .. "\n")
    end
    srv.conns[conn] = nil
    srv.now = srv.now - 1
    conn:close()
  end))
  srv.port = srv.listener:port()
  function srv.drop_all()
    for conn in pairs(srv.conns) do conn:close() end
  end
  function srv.close() srv.listener:close() end
  return srv
end

local function ask(conn, line)
  assert(conn:write(line .. "\n"))
  return conn:read_line({ timeout = 2 })
end

local function tcp_pool(srv, opts)
  local o = {
    name = "echo",
    open = function() return eddy.tcp.connect("127.0.0.1", srv.port) end,
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return pool.new(o)
end

describe("eddy.pool", function()
  it("passes along every value a failed open gave, from get too", function()
    local r = h.run(function()
      local srv = echo_server()
      local port = srv.port
      srv.close() -- nothing listens there now: refused
      local p = pool.new({
        name = "refused",
        open = function()
          local c, err = eddy.tcp.connect("127.0.0.1", port)
          if c then return c end
          return nil, err, "no echo server on " .. port, 111
        end,
      })
      local r = { p:get() }
      r.n = select("#", p:get())
      p:close()
      return r
    end)
    assert.equal(4, r.n)
    assert.is_nil(r[1])
    assert.equal("refused", r[2])
    assert.matches("no echo server", r[3])
    assert.equal(111, r[4])
  end)

  it("hands a put-back connection to the next get", function()
    local same, st = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv)
      local a = assert(p:get())
      assert.equal("pong", ask(a, "ping"))
      p:put(a)
      local b = assert(p:get())
      local same = a == b
      p:put(b)
      local st = p:stats()
      p:close()
      srv.close()
      return same, st
    end)
    assert.is_true(same)
    assert.equal(1, st.created)
    assert.equal(1, st.open)
    assert.equal(1, st.idle)
    assert.equal(0, st.in_use)
  end)

  it("never opens more than max_open, and every waiting task is served", function()
    local max, done, created = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, { max_open = 3 })
      local wg = eddy.waitgroup()
      local done = 0
      for i = 1, 12 do
        wg:spawn(function()
          local conn = assert(p:get(5))
          assert.equal("hi " .. i, ask(conn, "hi " .. i))
          eddy.sleep(0.02)
          p:put(conn)
          done = done + 1
        end)
      end
      wg:wait()
      local created = p:stats().created
      p:close()
      srv.close()
      return srv.max, done, created
    end)
    assert.equal(12, done)
    assert.equal(3, created)
    assert.is_true(max <= 3)
  end)

  it("answers nil, 'timeout' when none frees up before the deadline", function()
    local r = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, { max_open = 1, wait_timeout = 0.1 })
      local held = assert(p:get())
      local t0 = eddy.now()
      local conn, err = p:get()
      local waited = eddy.now() - t0
      local conn2, err2 = p:get(0)
      local st = p:stats()
      p:put(held)
      p:close()
      srv.close()
      return { conn = conn, err = err, waited = waited, conn2 = conn2, err2 = err2, st = st }
    end)
    assert.is_nil(r.conn)
    assert.equal("timeout", r.err)
    assert.is_true(r.waited >= 0.09)
    assert.is_nil(r.conn2)
    assert.equal("timeout", r.err2)
    assert.equal(2, r.st.timeouts)
    assert.equal(0, r.st.waiting)
  end)

  it("serves waiting tasks in the order they came", function()
    local order = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, { max_open = 1 })
      local held = assert(p:get())
      local order = {}
      local wg = eddy.waitgroup()
      for i = 1, 4 do
        wg:spawn(function()
          local conn = assert(p:get(5))
          order[#order + 1] = i
          eddy.sleep(0.01)
          p:put(conn)
        end)
      end
      eddy.sleep(0.05)
      assert.equal(4, p:stats().waiting)
      p:put(held)
      wg:wait()
      p:close()
      srv.close()
      return order
    end)
    assert.same({ 1, 2, 3, 4 }, order)
  end)

  it("checks an idle connection on checkout and replaces one that fails", function()
    local r = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, {
        check = function(conn) return ask(conn, "ping") == "pong" end,
      })
      local a = assert(p:get())
      p:put(a)
      eddy.sleep(0.05) -- the server's task has taken the connection
      srv.drop_all() -- the server goes away from under the idle one
      eddy.sleep(0.05)
      local b = assert(p:get())
      local answer = ask(b, "ping")
      p:put(b)
      local st = p:stats()
      p:close()
      srv.close()
      return { replaced = a ~= b, answer = answer, st = st }
    end)
    assert.is_true(r.replaced)
    assert.equal("pong", r.answer)
    assert.equal(1, r.st.check_failures)
    assert.equal(2, r.st.created)
    assert.equal(1, r.st.open)
  end)

  it("closes instead of keeping a connection reusable() refuses, or one closed by its user", function()
    local st = h.run(function()
      local srv = echo_server()
      local dirty = {}
      local p = tcp_pool(srv, { reusable = function(conn) return not dirty[conn] end })
      local a, b = assert(p:get()), assert(p:get())
      dirty[a] = true
      p:put(a)
      b:close()
      p:put(b)
      local st = p:stats()
      p:close()
      srv.close()
      return st
    end)
    assert.equal(0, st.open)
    assert.equal(0, st.idle)
    assert.equal(2, st.closed)
  end)

  it("keeps at most max_idle idle connections", function()
    local st = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, { max_open = 5, max_idle = 2 })
      local conns = {}
      for i = 1, 5 do conns[i] = assert(p:get()) end
      for i = 1, 5 do p:put(conns[i]) end
      local st = p:stats()
      p:close()
      srv.close()
      return st
    end)
    assert.equal(2, st.idle)
    assert.equal(2, st.open)
    assert.equal(3, st.closed)
  end)

  it("closes connections idle longer than idle_timeout", function()
    local st, server_open = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, { idle_timeout = 0.1 })
      p:put(assert(p:get()))
      eddy.sleep(0.2)
      local st = p:stats()
      eddy.sleep(0.05)
      local server_open = srv.now
      p:close()
      srv.close()
      return st, server_open
    end)
    assert.equal(0, st.idle)
    assert.equal(0, st.open)
    assert.equal(1, st.closed)
    assert.equal(0, server_open)
  end)

  it("answers open's error and frees the slot for the next try", function()
    local r = h.run(function()
      local srv = echo_server()
      local port = srv.port
      srv.close()
      eddy.sleep(0.01)
      local p = pool.new({ max_open = 1, open = function() return eddy.tcp.connect("127.0.0.1", port) end })
      local conn, err = p:get()
      local st = p:stats()
      local raising = pool.new({ open = function() error("no way") end })
      local conn2, err2 = raising:get()
      p:close()
      raising:close()
      return { conn = conn, err = err, st = st, conn2 = conn2, err2 = err2 }
    end)
    assert.is_nil(r.conn)
    assert.equal("refused", r.err)
    assert.equal(0, r.st.open)
    assert.equal(1, r.st.open_errors)
    assert.is_nil(r.conn2)
    assert.matches("no way", r.err2)
  end)

  it("with() gives the connection back, and discards it when fn raises", function()
    local r = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv)
      local answer = p:with(function(conn, line) return ask(conn, line) end, "hello")
      local ok, err = pcall(p.with, p, function() error("handler failed") end)
      local st = p:stats()
      p:close()
      srv.close()
      return { answer = answer, ok = ok, err = err, st = st }
    end)
    assert.equal("hello", r.answer)
    assert.is_false(r.ok)
    assert.matches("handler failed", r.err)
    assert.equal(0, r.st.open)
    assert.equal(1, r.st.closed)
  end)

  it("close() wakes the waiting tasks with 'closed' and closes what comes back", function()
    local r = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, { max_open = 1 })
      local held = assert(p:get())
      local waiter = eddy.spawn(function() return p:get(5) end)
      eddy.sleep(0.02)
      p:close()
      local _, conn, err = waiter:join()
      p:put(held)
      local conn2, err2 = p:get()
      local st = p:stats()
      srv.close()
      return { conn = conn, err = err, conn2 = conn2, err2 = err2, st = st }
    end)
    assert.is_nil(r.conn)
    assert.equal("closed", r.err)
    assert.is_nil(r.conn2)
    assert.equal("closed", r.err2)
    assert.equal(0, r.st.open)
  end)

  it("a cancelled waiter leaves the line, and the next one gets the connection", function()
    local r = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv, { max_open = 1 })
      local held = assert(p:get())
      local first = eddy.spawn(function() return p:get(5) end)
      local second = eddy.spawn(function()
        local conn = p:get(5)
        p:put(conn)
        return conn == held
      end)
      eddy.sleep(0.02)
      first:cancel()
      p:put(held)
      local _, got_held = second:join()
      local st = p:stats()
      p:close()
      srv.close()
      return { got_held = got_held, st = st }
    end)
    assert.is_true(r.got_held)
    assert.equal(0, r.st.waiting)
    assert.equal(1, r.st.open)
  end)

  it("refuses a connection it did not give out", function()
    local ok, err = h.run(function()
      local srv = echo_server()
      local p = tcp_pool(srv)
      local stranger = assert(eddy.tcp.connect("127.0.0.1", srv.port))
      local ok, err = pcall(p.put, p, stranger)
      stranger:close()
      p:close()
      srv.close()
      return ok, err
    end)
    assert.is_false(ok)
    assert.matches("does not belong to pool 'echo'", err)
  end)

  it("shared() gives one pool per key in the thread", function()
    local same, other = h.run(function()
      local open = function() return nil, "unused" end
      local a = pool.shared("k1", { open = open })
      local b = pool.shared("k1", { open = open, max_open = 99 })
      local c = pool.shared("k2", { open = open })
      a:close()
      c:close()
      return a == b, a ~= c
    end)
    assert.is_true(same)
    assert.is_true(other)
  end)

  it("on_idle lets an idle TCP connection that was read stop keeping the run going", function()
    -- The server is a process of its own, so that only the pool's idle
    -- connection could keep this run going.
    local pid, out = h.start_eddy("examples/hello.lua 0")
    local port = tonumber(h.wait_for(out, "listening on 127%.0%.0%.1:(%d+)"))
    local t0 = os.time()
    local idle = h.run(function()
      local p = pool.new({
        open = function() return eddy.tcp.connect("127.0.0.1", port) end,
        on_idle = function(conn) conn:read_stop() end,
      })
      local conn = assert(p:get())
      assert.matches("hello from eddy", conn:read_line({ timeout = 2 }))
      conn:write("ping\n")
      assert.equal("PING", conn:read_line({ timeout = 2 }))
      p:put(conn)
      return p:stats().idle
    end)
    local took = os.time() - t0
    h.sh("kill -INT " .. pid)
    h.wait_exit(pid)
    assert.equal(1, idle)
    assert.is_true(took <= 2)
  end)

  it("rejects bad options", function()
    assert.has_error(function() pool.new({}) end)
    assert.has_error(function() pool.new({ open = function() end, max_open = 0 }) end)
    assert.has_error(function() pool.new({ open = function() end, idle_timeout = -1 }) end)
  end)
end)

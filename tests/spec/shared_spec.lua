-- eddy.shared.dict: dictionaries in shared memory, one API in a single
-- thread, across reactor threads and across worker processes.
local h = require "helper"
local eddy = h.eddy

local counter = 0
local function fresh(opts)
  counter = counter + 1
  return eddy.shared.dict("spec" .. counter, opts or { size = "1m" })
end

describe("eddy.shared.dict", function()
  it("stores strings, numbers, booleans and tables", function()
    local d = fresh()
    assert.is_true(d:set("s", "text\0with nul"))
    assert.is_true(d:set("n", 2.5))
    assert.is_true(d:set("b", false))
    assert.is_true(d:set("t", { 1, 2, x = { y = "z" } }))
    assert.equal("text\0with nul", d:get("s"))
    assert.equal(2.5, d:get("n"))
    assert.equal(false, d:get("b"))
    assert.same({ 1, 2, x = { y = "z" } }, d:get("t"))
    assert.is_nil(d:get("absent"))
    assert.is_true(d:set("s", nil)) -- set to nil deletes
    assert.is_nil(d:get("s"))
    assert.has_error(function() d:set("f", print) end)
    local t = {}
    t.t = t
    assert.has_error(function() d:set("c", t) end, "eddy.shared: value 1: a table that contains itself cannot be encoded")
  end)

  it("add, replace, delete and incr", function()
    local d = fresh()
    assert.is_true(d:add("k", 1))
    assert.same({ nil, "exists" }, { d:add("k", 2) })
    assert.equal(1, d:get("k"))
    assert.same({ nil, "not found" }, { d:replace("other", 1) })
    assert.is_true(d:replace("k", 3))
    assert.equal(3, d:get("k"))
    assert.equal(13, d:incr("k", 10))
    assert.equal(12, d:incr("k", -1))
    assert.same({ nil, "not found" }, { d:incr("new", 1) })
    assert.equal(101, d:incr("new", 1, 100))
    d:set("str", "x")
    assert.same({ nil, "not a number" }, { d:incr("str", 1) })
    assert.is_true(d:delete("k"))
    assert.is_false(d:delete("k"))
  end)

  it("expires entries, and ttl and expire read and change it", function()
    local d = fresh()
    d:set("short", "v", 0.05)
    d:set("forever", "v")
    local left = d:ttl("short")
    assert.is_true(left > 0 and left <= 0.05)
    assert.is_false(d:ttl("forever"))
    assert.same({ nil, "not found" }, { d:ttl("absent") })
    assert.is_true(d:expire("forever", 0.05))
    assert.is_true(d:expire("short", 0)) -- no expiry any more
    h.run(function() eddy.sleep(0.1) end)
    assert.equal("v", d:get("short"))
    assert.is_nil(d:get("forever"))
    assert.same({ nil, "not found" }, { d:expire("forever", 1) })
  end)

  it("lists: push at either end, pop from either, length", function()
    local d = fresh()
    assert.equal(1, d:rpush("q", "a"))
    assert.equal(2, d:rpush("q", { n = 2 }))
    assert.equal(3, d:lpush("q", 0))
    assert.equal(3, d:llen("q"))
    assert.equal(0, d:lpop("q"))
    assert.same({ n = 2 }, d:rpop("q"))
    assert.equal("a", d:rpop("q"))
    assert.is_nil(d:lpop("q"))
    assert.equal(0, d:llen("q"))
    d:set("plain", 1)
    assert.same({ nil, "not a list" }, { d:lpush("plain", 1) })
    assert.same({ nil, "not a list" }, { d:llen("plain") })
    d:rpush("l", 1)
    assert.same({ nil, "a list: use lpop or llen" }, { d:get("l") })
  end)

  it("keys, flush_all and stats", function()
    local d = fresh()
    for i = 1, 5 do d:set("k" .. i, i) end
    d:set("gone", 1, 0.001)
    h.run(function() eddy.sleep(0.01) end)
    local keys = d:keys()
    table.sort(keys)
    assert.same({ "k1", "k2", "k3", "k4", "k5" }, keys)
    assert.equal(2, #d:keys(2))
    local st = d:stats()
    assert.is_true(st.capacity > 1000000 * 0.9 and st.used > 0)
    d:flush_all()
    assert.same({}, d:keys())
    assert.equal(0, d:stats().count)
  end)

  it("when full, evicts the least recently used, or answers no memory", function()
    local lru = fresh({ size = "64k" })
    for i = 1, 2000 do assert.is_true(lru:set("k" .. i, ("x"):rep(100))) end
    assert.is_nil(lru:get("k1"))
    assert.equal(100, #lru:get("k2000"))
    assert.is_true(lru:stats().evicted > 0)
    -- a key read often stays
    local keep = fresh({ size = "64k" })
    keep:set("hot", "stay")
    for i = 1, 2000 do
      keep:get("hot")
      keep:set("k" .. i, ("x"):rep(100))
    end
    assert.equal("stay", keep:get("hot"))

    local strict = fresh({ size = "64k", evict = false })
    local n = 0
    while strict:set("k" .. n, ("x"):rep(100)) do n = n + 1 end
    assert.same({ nil, "no memory" }, { strict:set("more", ("x"):rep(100)) })
    assert.equal(("x"):rep(100), strict:get("k0")) -- nothing was lost
    assert.same({ nil, "too large" }, { strict:set("big", ("x"):rep(2 * 1024 * 1024)) })
  end)

  it("finds a dictionary by name, and refuses bad declarations", function()
    local d = eddy.shared.dict("by-name", { size = "128k" })
    d:set("x", 1)
    assert.equal(1, eddy.shared.dict("by-name"):get("x"))
    assert.equal(1, eddy.shared.dict("by-name", { size = 128 * 1024 }):get("x"))
    assert.has_error(function() eddy.shared.dict("by-name", { size = "1m" }) end)
    assert.has_error(function() eddy.shared.dict("never-made") end)
    assert.has_error(function() eddy.shared.dict("tiny", { size = "1k" }) end)
    assert.has_error(function() eddy.shared.dict("bad", { size = "12q" }) end)
    assert.has_error(function() eddy.shared.dict(("n"):rep(64), { size = "1m" }) end)
  end)

  it("is one dictionary for every reactor thread", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local d = eddy.shared.dict("threads", { size = "1m" })
      for _ = 1, 1000 do d:incr("n", 1, 0) end
      d:rpush("who", eddy.worker.thread())
      while d:llen("who") < 4 do eddy.sleep(0.01) end
      if eddy.worker.thread() == 1 then print("total " .. d:get("n")) end
    ]], "", "--threads 4")
    assert.equal(0, rc, out)
    assert.equal("total 4000\n", out)
  end)

  it("is one dictionary for every worker process, and outlives a reload", function()
    local pid, out, status = h.start_eddy("--workers 2 --threads 2 examples/shared.lua 0")
    local port = h.wait_for(out, "listening on 127%.0%.0%.1:(%d+)")
    local url = "http://127.0.0.1:" .. port
    local served = {}
    for i = 1, 40 do
      local _, body = h.sh("curl -s -H 'Connection: close' " .. url .. "/p" .. i)
      assert.matches("^hit " .. i .. " ", body)
      served[body:match("worker (%d)")] = true
    end
    assert.same({ ["1"] = true, ["2"] = true }, served) -- both workers counted
    local _, first = h.sh("curl -s " .. url .. "/stats")
    h.sh("kill -HUP " .. pid)
    h.wait_for(out, "()worker 2: pid %d+ took over")
    h.wait_for(out, "()worker 1: pid %d+ took over")
    local started = first:match('"started":(%d+)')
    assert.is_not_nil(started, first)
    local _, body = h.sh("curl -s " .. url .. "/after-reload")
    assert.matches("^hit 41 ", body)
    _, body = h.sh("curl -s " .. url .. "/stats")
    assert.matches('"started":' .. started, body) -- init did not run again
    assert.matches('"hits":41', body)
    assert.matches('"path":"\\/after%-reload"', body)
    h.sh("kill -TERM " .. pid)
    h.wait_exit(pid)
    assert.equal("rc=0", h.wait_for(status, "(rc=%d+)"))
  end)

  it("atomics: get, set, add, cas, shared by threads", function()
    local a = eddy.shared.atomic("spec-atomic", 5)
    assert.equal(5, a:get())
    assert.equal(6, a:add())
    assert.equal(16, a:add(10))
    assert.is_true(a:cas(16, 20))
    assert.same({ false, 20 }, { a:cas(1, 2) })
    a:set(-3)
    assert.equal(-3, eddy.shared.atomic("spec-atomic", 99):get()) -- init only once
    assert.has_error(function() a:set(0.5) end)
    assert.has_error(function() a:add(2 ^ 60) end)
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local n = eddy.shared.atomic("n")
      local done = eddy.shared.atomic("done")
      for _ = 1, 100000 do n:add(1) end
      done:add(1)
      while done:get() < 4 do eddy.sleep(0.01) end
      if eddy.worker.thread() == 1 then print(n:get()) end
    ]], "", "--threads 4")
    assert.equal(0, rc, out)
    assert.equal("400000\n", out)
  end)

  it("a lock across threads keeps a read-modify-write whole", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local d = eddy.shared.dict("locked", { size = "1m" })
      local lock = eddy.shared.lock("counter")
      local done = eddy.shared.atomic("done")
      local wg = eddy.waitgroup()
      for _ = 1, 5 do
        wg:spawn(function()
          for _ = 1, 40 do
            assert(lock:with(function()
              local v = d:get("v") or 0
              eddy.sleep(0) -- others run here, and must wait for the lock
              d:set("v", v + 1)
            end, 10))
          end
        end)
      end
      wg:wait()
      done:add(1)
      while done:get() < 3 do eddy.sleep(0.01) end
      if eddy.worker.thread() == 1 then print(d:get("v")) end
    ]], "", "--threads 3")
    assert.equal(0, rc, out)
    assert.equal("600\n", out)
  end)

  it("lock: timeout, cancel, misuse", function()
    h.run(function()
      local a, b = eddy.shared.lock("spec-lock"), eddy.shared.lock("spec-lock")
      assert.is_true(a:acquire())
      assert.is_true(a:held())
      local t0 = eddy.now()
      assert.same({ nil, "timeout" }, { b:acquire(0.05) })
      assert.is_true(eddy.now() - t0 >= 0.04)
      local waiter = eddy.spawn(function() return b:acquire() end)
      eddy.sleep(0.02)
      waiter:cancel()
      assert.same({ true, nil, "cancelled" }, { waiter:join() })
      assert.has_error(function() a:acquire() end)
      local releaser = eddy.spawn(function()
        eddy.sleep(0.02)
        assert.has_error(function() a:release() end) -- not this task's
      end)
      releaser:join()
      assert.is_true(a:release())
      assert.is_true(b:acquire(1)) -- handed over once released
      assert.is_false(a:held())
      assert.has_error(function() a:release() end)
      assert.is_true(b:release())
      assert.same({ true, 1, 2 }, { b:with(function() return 1, 2 end) })
      assert.has_error(function() b:with(function() error("inside", 0) end) end, "inside")
      assert.is_false(b:held()) -- released on the way out
    end)
  end)

  it("a lock whose holder's process died is taken over", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local ffi = require "ffi"
      ffi.cdef("int getpid(void);")
      local flags = eddy.shared.dict("flags", { size = "64k" })
      local lock = eddy.shared.lock("dies")
      if eddy.worker.id() == 1 and not flags:get("died") then
        assert(lock:acquire())
        flags:set("died", true)
        os.execute("kill -9 " .. ffi.C.getpid()) -- dies holding it
      elseif eddy.worker.id() == 2 then
        while not flags:get("died") do eddy.sleep(0.01) end
        local t0 = eddy.now()
        assert(lock:acquire(5))
        print(("took over after %.2f s"):format(eddy.now() - t0))
        lock:release()
      end
    ]], "", "--workers 2")
    assert.equal(0, rc, out)
    assert.matches("took over after 0%.%d%d s", out)
    assert.matches("killed by signal 9", out)
  end)
end)

-- The cases every durable backend of eddy.queue passes, through the backend
-- interface itself (push, pop, pop_batch, ack, nack, length, close). A spec
-- calls this inside its describe with open(name, opts) for its backend;
-- each case uses queue names of its own. busted's it and assert are
-- passed in: they live in the spec's environment, not in _G.
local h = require "helper"
local eddy = h.eddy

return function(it, assert, open)
  local n = 0
  local function name(what)
    n = n + 1
    return ("cases_%s_%d_%d"):format(what, n, os.time())
  end

  -- Pops one message (waiting up to 2 s), checks it, returns it.
  local function pop(b, payload)
    local m, err = b:pop(2)
    assert(m, err)
    if payload then assert.equal(payload, m.payload) end
    return m
  end

  it("pushes, pops and acks in order, and counts ready and in flight", function()
    h.run(function()
      local b = open(name("basic"))
      for i = 1, 3 do assert.truthy(b:push("m" .. i)) end
      local ready, flying = b:length()
      assert.equal(3, ready)
      assert.equal(0, flying)
      local m = pop(b, "m1")
      assert.equal(1, m.attempts)
      ready, flying = b:length()
      assert.equal(2, ready)
      assert.equal(1, flying)
      assert.is_true(b:ack(m.id))
      local ok, err = b:ack(m.id)
      assert.is_nil(ok)
      assert.equal("not found", err)
      pop(b, "m2")
      pop(b, "m3")
      assert.same({ nil, "timeout" }, { b:pop(0) })
      b:close()
    end)
  end)

  it("keeps binary payloads byte for byte", function()
    h.run(function()
      local b = open(name("binary"))
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local s = table.concat(bytes):rep(40) -- 10 KiB with NULs
      assert.truthy(b:push(s))
      assert.truthy(b:push(""))
      local m = pop(b, s)
      b:ack(m.id)
      m = pop(b, "")
      b:ack(m.id)
      b:close()
    end)
  end)

  it("answers full at the maximum at once, and takes pushes again after an ack", function()
    h.run(function()
      local b = open(name("full"), { max = 2 })
      assert.truthy(b:push("a"))
      assert.truthy(b:push("b"))
      local t0 = eddy.now()
      assert.same({ nil, "full" }, { b:push("c") })
      assert.is_true(eddy.now() - t0 < 1)
      -- In flight still counts.
      local m = pop(b, "a")
      assert.same({ nil, "full" }, { b:push("c") })
      b:ack(m.id)
      assert.truthy(b:push("c"))
      b:close()
    end)
  end)

  it("a push with a timeout waits for room", function()
    h.run(function()
      local b = open(name("room"), { max = 1 })
      assert.truthy(b:push("a"))
      local waiter = eddy.spawn(function() return b:push("b", { timeout = 5 }) end)
      eddy.sleep(0.1)
      local m = pop(b, "a")
      b:ack(m.id)
      local ok, id = waiter:join()
      assert.is_true(ok)
      assert.truthy(id)
      pop(b, "b")
      assert.same({ nil, "full" }, { b:push("c", { timeout = 0.1 }) })
      b:close()
    end)
  end)

  it("a waiting pop is woken by a push, and times out when none comes", function()
    h.run(function()
      local b = open(name("wait"))
      local t0 = eddy.now()
      assert.same({ nil, "timeout" }, { b:pop(0.2) })
      assert.is_true(eddy.now() - t0 >= 0.19)
      local popper = eddy.spawn(function() return b:pop(5) end)
      eddy.sleep(0.05)
      b:push("late")
      local ok, m = popper:join()
      assert.is_true(ok)
      assert.equal("late", m.payload)
      b:close()
    end)
  end)

  it("pop_batch takes up to n", function()
    h.run(function()
      local b = open(name("batch"))
      for i = 1, 5 do b:push("b" .. i) end
      local msgs = assert(b:pop_batch(3, 1))
      assert.equal(3, #msgs)
      assert.equal("b1", msgs[1].payload)
      msgs = assert(b:pop_batch(10, 1))
      assert.equal(2, #msgs)
      assert.equal("b5", msgs[2].payload)
      b:close()
    end)
  end)

  it("a delayed push becomes visible after its delay", function()
    h.run(function()
      local b = open(name("delay"))
      b:push("later", { delay = 0.3 })
      b:push("now")
      pop(b, "now")
      local t0 = eddy.now()
      pop(b, "later")
      assert.is_true(eddy.now() - t0 >= 0.15)
      b:close()
    end)
  end)

  it("a nack redelivers after its delay with the attempt counted", function()
    h.run(function()
      local b = open(name("nack"), { backoff = 0.05 })
      b:push("x")
      local m = pop(b, "x")
      assert.is_true(b:nack(m.id, 0.3))
      assert.same({ nil, "timeout" }, { b:pop(0.1) })
      m = pop(b, "x")
      assert.equal(2, m.attempts)
      -- Without a delay: the backoff (0.05 s doubled: 0.1 s before the third).
      assert.is_true(b:nack(m.id))
      m = pop(b, "x")
      assert.equal(3, m.attempts)
      assert.is_true(b:ack(m.id))
      assert.same({ nil, "not found" }, { b:nack(m.id) })
      b:close()
    end)
  end)

  it("moves a message to <name>.dead after max_attempts, where it can be popped", function()
    h.run(function()
      local qname = name("dead")
      local b = open(qname, { max_attempts = 2, backoff = 0.01 })
      b:push("poison")
      local m = pop(b, "poison")
      assert.is_true(b:nack(m.id))
      m = pop(b, "poison")
      assert.equal(2, m.attempts)
      assert.is_true(b:nack(m.id))
      assert.same({ nil, "timeout" }, { b:pop(0.2) })
      assert.same({ 0, 0 }, { b:length() })
      local d = open(qname .. ".dead")
      assert.equal(1, (d:length()))
      m = pop(d, "poison")
      assert.is_true(d:ack(m.id))
      d:close()
      b:close()
    end)
  end)

  it("returns a message whose consumer vanished after the visibility timeout", function()
    h.run(function()
      local qname = name("vis")
      local gone = open(qname, { visibility = 0.2 })
      local other = open(qname, { visibility = 0.2 })
      gone:push("orphan")
      local m1 = pop(gone, "orphan")
      local t0 = eddy.now()
      local m2 = pop(other, "orphan")
      assert.is_true(eddy.now() - t0 >= 0.1)
      assert.equal(2, m2.attempts)
      -- The first delivery is over: its late ack finds nothing.
      assert.same({ nil, "not found" }, { gone:ack(m1.id) })
      assert.is_true(other:ack(m2.id))
      gone:close()
      other:close()
    end)
  end)

  it("an expired delivery past max_attempts goes to the dead letters", function()
    h.run(function()
      local qname = name("visdead")
      local b = open(qname, { visibility = 0.1, max_attempts = 1 })
      b:push("slow")
      pop(b, "slow")
      assert.same({ nil, "timeout" }, { b:pop(0.4) })
      local d = open(qname .. ".dead")
      pop(d, "slow")
      d:close()
      b:close()
    end)
  end)

  it("many tasks pushing and popping deliver every message once when all are acked", function()
    h.run(function()
      local b = open(name("many"))
      local N, P, C = 400, 4, 8
      local seen, count = {}, 0
      local producers, consumers = {}, {}
      for p = 1, P do
        producers[p] = eddy.spawn(function()
          for i = 1, N / P do assert(b:push(p .. ":" .. i)) end
        end)
      end
      for c = 1, C do
        consumers[c] = eddy.spawn(function()
          while count < N do
            local m = b:pop(0.5)
            if m then
              seen[m.payload] = (seen[m.payload] or 0) + 1
              count = count + 1
              assert(b:ack(m.id))
            end
          end
        end)
      end
      for _, t in ipairs(producers) do assert(t:join()) end
      for _, t in ipairs(consumers) do assert(t:join()) end
      local distinct = 0
      for _, k in pairs(seen) do
        assert.equal(1, k)
        distinct = distinct + 1
      end
      assert.equal(N, distinct)
      b:close()
    end)
  end)

  it("a burst into a full queue answers full and memory stays flat", function()
    h.run(function()
      local b = open(name("burst"), { max = 100 })
      for i = 1, 100 do assert(b:push("seed" .. i)) end
      collectgarbage()
      local before = collectgarbage("count")
      local full = 0
      local tasks = {}
      for t = 1, 20 do
        tasks[t] = eddy.spawn(function()
          for _ = 1, 100 do
            local ok, err = b:push(("x"):rep(1000))
            if not ok and err == "full" then full = full + 1 end
          end
        end)
      end
      for _, t in ipairs(tasks) do assert(t:join()) end
      assert.equal(2000, full)
      collectgarbage()
      -- 2 MB of refused payloads: none of it is kept.
      assert.is_true(collectgarbage("count") - before < 500)
      assert.same({ 100, 0 }, { b:length() })
      b:close()
    end)
  end)

  it("after close, calls answer closed and a waiting pop ends", function()
    h.run(function()
      local b = open(name("close"))
      local popper = eddy.spawn(function() return b:pop(5) end)
      eddy.sleep(0.05)
      b:close()
      local ok, m, err = popper:join()
      assert.is_true(ok)
      assert.is_nil(m)
      assert.equal("closed", err)
      assert.same({ nil, "closed" }, { b:push("x") })
    end)
  end)

  it("a cancelled pop leaves nothing behind", function()
    h.run(function()
      local b = open(name("cancel"))
      local popper = eddy.spawn(function() return b:pop(5) end)
      eddy.sleep(0.05)
      popper:cancel()
      local ok, m, err = popper:join()
      assert.is_true(ok)
      assert.is_nil(m)
      assert.equal("cancelled", err)
      b:push("after")
      pop(b, "after")
      b:close()
    end)
  end)
end

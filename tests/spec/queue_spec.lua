-- eddy.queue (memory backend) and eddy.pubsub: at-least-once delivery,
-- bounds, consumers, threads, and the examples of examples/queues/.
-- The sqlite and redis backends have specs of their own.
local h = require "helper"
local eddy = h.eddy

local n = 0
local function fresh(prefix)
  n = n + 1
  return ("%s-%d-%d"):format(prefix or "q", os.time(), n)
end

-- Drains q, acking; returns the bodies in order.
local function drain(q)
  local got = {}
  while true do
    local m = q:pop(0)
    if not m then return got end
    got[#got + 1] = m.body
    assert(q:ack(m))
  end
end

describe("eddy.queue", function()
  it("pushes, pops and acks values of any codec type, in order", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh()))
      assert.equal("memory", q.backend)
      assert.truthy(q:push({ user = 42, tags = { "a", "b" } }))
      assert.truthy(q:push("two"))
      assert.truthy(q:push(3.5))
      assert.same({ 3, 0 }, { q:length() })
      local m = q:pop()
      assert.same({ user = 42, tags = { "a", "b" } }, m.body)
      assert.equal(1, m.attempts)
      assert.same({ 2, 1 }, { q:length() })
      assert.is_true(q:ack(m))
      assert.same({ nil, "not found" }, { q:ack(m) })
      assert.same({ "two", 3.5 }, drain(q))
      assert.same({ 0, 0 }, { q:length() })
      -- A closed queue object answers "closed"; the queue lives on for
      -- the process's other users.
      q:push("kept")
      q:close()
      assert.same({ nil, "closed" }, { q:push(1) })
      assert.same({ nil, "closed" }, { q:pop() })
      assert.same({ "kept" }, drain(eddy.queue.open(q.name)))
    end)
  end)

  it("acks and nacks many messages in flight in any order", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh()))
      local msgs = {}
      for i = 1, 5000 do q:push(i) end
      for i = 1, 5000 do msgs[i] = q:pop(0) end
      assert.same({ 0, 5000 }, { q:length() })
      for i = 5000, 1, -2 do assert.is_true(q:ack(msgs[i])) end
      for i = 1, 5000, 2 do assert.is_true(q:nack(msgs[i], 0)) end
      assert.same({ 2500, 0 }, { q:length() })
      local sum = 0
      for _, v in ipairs(drain(q)) do sum = sum + v end
      assert.equal(2500 * 2500, sum) -- the odd numbers 1 .. 4999
    end)
  end)

  it("answers full at the maximum at once, and a push with a timeout waits for room", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh(), { max = 2 }))
      assert.truthy(q:push(1))
      assert.truthy(q:push(2))
      local t0 = eddy.now()
      assert.same({ nil, "full" }, { q:push(3) })
      assert.same({ nil, "full" }, { q:push(3, { timeout = 0.05 }) })
      assert.is_true(eddy.now() - t0 >= 0.05)
      -- A popped message still counts until it is acked.
      local m = q:pop()
      assert.same({ nil, "full" }, { q:push(3) })
      eddy.spawn(function() eddy.sleep(0.02) q:ack(m) end)
      assert.truthy(q:push(3, { timeout = 2 }))
      assert.same({ 2, 3 }, drain(q))
    end)
  end)

  it("keeps memory flat under a burst at the maximum", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh(), { max = 100 }))
      local accepted, full = 0, 0
      for i = 1, 20000 do
        local ok, err = q:push({ i = i, pad = ("x"):rep(100) })
        if ok then accepted = accepted + 1 elseif err == "full" then full = full + 1 end
      end
      assert.equal(100, accepted)
      assert.equal(19900, full)
      assert.same({ 100, 0 }, { q:length() })
      -- Refused pushes cost nothing that stays: the queue holds what it
      -- held (a refused push allocates nothing), and Lua's heap is back
      -- where it was once collected.
      local held = q:stats()
      collectgarbage() collectgarbage()
      local lua_kib = collectgarbage("count")
      local pad, push = ("y"):rep(200), q.push
      for i = 1, 50000 do
        if push(q, { i = i, pad = pad }) then error("a push past max") end
        if i % 1000 == 0 then eddy.yield() end
      end
      collectgarbage() collectgarbage()
      assert.same(held, q:stats())
      assert.is_true(collectgarbage("count") - lua_kib < 64, "Lua memory grew")
      assert.equal(100, #drain(q))
    end)
  end)

  it("pop waits for a push from another task, and times out", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh()))
      assert.same({ nil, "timeout" }, { q:pop(0.03) })
      eddy.spawn(function() eddy.sleep(0.02) q:push("late") end)
      local m = assert(q:pop(2))
      assert.equal("late", m.body)
      q:ack(m)
      -- A cancelled pop answers "cancelled" and leaves no waiter behind.
      local t = eddy.spawn(function() return q:pop() end)
      eddy.sleep(0.01)
      t:cancel()
      assert.same({ true, nil, "cancelled" }, { t:join() })
      assert.truthy(q:push("after"))
      assert.same({ "after" }, drain(q))
    end)
  end)

  it("passes a wake-up on when the woken waiter is cancelled before it runs", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh()))
      local a = eddy.spawn(function() return q:pop() end)
      local b = eddy.spawn(function() local m = q:pop(5) q:ack(m) return m.body end)
      eddy.sleep(0.01) -- both wait; a is first in line
      q:push("one") -- wakes a ...
      a:cancel()    -- ... which goes before its wake-up lands
      assert.same({ true, nil, "cancelled" }, { a:join() })
      assert.same({ true, "one" }, { b:join(2) })
    end)
  end)

  it("redelivers a nacked message after its delay, then gives it to <name>.dead", function()
    h.run(function()
      local name = fresh()
      local q = assert(eddy.queue.open(name, { max_attempts = 3, backoff = 0.01 }))
      q:push("poison")
      local seen = {}
      for _ = 1, 3 do
        local m = assert(q:pop(2))
        seen[#seen + 1] = m.attempts
        assert.is_true(q:nack(m))
      end
      assert.same({ 1, 2, 3 }, seen)
      assert.same({ 0, 0 }, { q:length() })
      local dead = assert(q:dead())
      assert.equal(name .. ".dead", dead.name)
      local d = assert(dead:pop(0))
      assert.equal("poison", d.body)
      dead:ack(d)
      -- An explicit delay holds the message back that long.
      q:push("later")
      local m = q:pop()
      q:nack(m, 0.1)
      assert.same({ nil, "timeout" }, { q:pop(0.05) })
      m = assert(q:pop(1))
      assert.equal(2, m.attempts)
      q:ack(m)
    end)
  end)

  it("returns the message of a consumer that vanished once its visibility passes", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh(), { visibility = 0.1 }))
      q:push("job")
      local t = eddy.spawn(function()
        assert(q:pop())
        eddy.sleep(10) -- cancelled: it never acks
      end)
      eddy.sleep(0.01)
      t:cancel()
      t:join()
      assert.same({ 0, 1 }, { q:length() })
      local m = assert(q:pop(2))
      assert.equal("job", m.body)
      assert.equal(2, m.attempts)
      assert.is_true(q:ack(m))
      assert.same({ 0, 0 }, { q:length() })
    end)
  end)

  it("wakes an idle consumer for a delayed push, a delayed nack and an expired delivery", function()
    local got = h.run(function()
      local name = fresh()
      local q = assert(eddy.queue.open(name, { visibility = 0.2, backoff = 0.1 }))
      local got = {}
      -- Consumers already asleep on the empty queue, with no timeout.
      local c = eddy.queue.consume(q, { concurrency = 3, on_error = function() end }, function(msg)
        got[#got + 1] = msg.body .. "#" .. msg.attempts
        if msg.body == "stuck" and msg.attempts == 1 then eddy.sleep(10) end -- never acks in time
        if msg.body == "nacked" and msg.attempts == 1 then error("retry me") end
      end)
      eddy.sleep(0.05)
      q:push("later", { delay = 0.1 })
      eddy.sleep(0.3)
      q:push("stuck")
      eddy.sleep(0.6) -- past its visibility: another consumer takes it again
      q:push("nacked")
      eddy.sleep(0.5)
      c:stop(0.1)
      return got
    end)
    table.sort(got)
    assert.same({ "later#1", "nacked#1", "nacked#2", "stuck#1", "stuck#2" }, got)
  end)

  it("consume: a handler that raises gets its message again, with attempts counting up", function()
    h.run(function()
      local name = fresh()
      local q = assert(eddy.queue.open(name, { max_attempts = 3, backoff = 0.01 }))
      local attempts, errors = {}, 0
      local c = eddy.queue.consume(q, { concurrency = 2, on_error = function() errors = errors + 1 end },
        function(msg)
          attempts[msg.body] = msg.attempts
          if msg.body == "bad" or (msg.body == "flaky" and msg.attempts < 2) then error("no") end
        end)
      q:push("good") q:push("flaky") q:push("bad")
      local dead = q:dead()
      local d = assert(dead:pop(5))
      assert.equal("bad", d.body)
      dead:ack(d)
      assert.is_true(c:stop(1))
      assert.same({ good = 1, flaky = 2, bad = 3 }, attempts)
      assert.equal(4, errors)
      assert.equal(2, c.handled)
      assert.equal(4, c.failed)
      assert.same({ 0, 0 }, { q:length() })
    end)
  end)

  it("consume: stop lets in-flight handlers finish and ends idle consumers at once", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh()))
      local started, finished = 0, 0
      local c = eddy.queue.consume(q, { concurrency = 4 }, function()
        started = started + 1
        eddy.sleep(0.1)
        finished = finished + 1
      end)
      q:push(1) q:push(2)
      eddy.sleep(0.02)
      assert.equal(2, started)
      assert.is_true(c:stop(2))
      assert.equal(2, finished)
      assert.equal(2, c.handled)
      assert.same({ 0, 0 }, { q:length() })
      -- Past the timeout, busy handlers are cancelled; their messages come
      -- back rather than being lost.
      local q2 = assert(eddy.queue.open(fresh()))
      local c2 = eddy.queue.consume(q2, {}, function() eddy.sleep(10) end)
      q2:push("stuck")
      eddy.sleep(0.02)
      assert.same({ nil, "timeout" }, { c2:stop(0.05) })
      local m = assert(q2:pop(0))
      assert.equal("stuck", m.body)
      assert.equal(2, m.attempts)
      q2:ack(m)
    end)
  end)

  it("consume: batches hand the handler up to batch messages", function()
    h.run(function()
      local q = assert(eddy.queue.open(fresh()))
      for i = 1, 25 do q:push(i) end
      local sizes, sum = {}, 0
      local c = eddy.queue.consume(q, { batch = 10 }, function(msgs)
        sizes[#sizes + 1] = #msgs
        for _, m in ipairs(msgs) do sum = sum + m.body end
      end)
      local deadline = eddy.now() + 5
      while sum < 325 and eddy.now() < deadline do eddy.sleep(0.01) end
      c:stop(1)
      assert.same({ 10, 10, 5 }, sizes)
      assert.equal(325, sum)
    end)
  end)

  it("is shared by the reactor threads of a program", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local q = eddy.queue.open("threads-x")
      local back = eddy.queue.open("threads-back")
      if eddy.worker.thread() == 1 then
        for i = 1, 500 do q:push(i) if i % 50 == 0 then eddy.sleep(0.001) end end
        local sum = 0
        for _ = 1, 500 do local m = assert(back:pop(10)) sum = sum + m.body back:ack(m) end
        print("producer got " .. sum)
      else
        local sum = 0
        for _ = 1, 500 do local m = assert(q:pop(10)) sum = sum + m.body q:ack(m) back:push(m.body) end
        print("consumer summed " .. sum)
      end
    ]], "", "--threads 2")
    assert.equal(0, rc, out)
    assert.matches("consumer summed 125250", out)
    assert.matches("producer got 125250", out)
  end)

  it("takes pushes from the task pool (the Lua module)", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      eddy.run(function()
        local sub = eddy.pubsub.subscribe("pooltopic")
        assert(eddy.task.run("fixtures.queuework", "produce", "pooled", 100, "pooltopic") == 100)
        local q = eddy.queue.open("pooled")
        local sum = 0
        for _ = 1, 100 do local m = assert(q:pop(5)) sum = sum + m.body.i q:ack(m) end
        print("sum " .. sum, sub:recv(5))
      end)
    ]])
    assert.equal(0, rc, out)
    assert.matches("sum 5050\tfrom the pool", out)
  end)

  it("takes pushes from the task pool (the eddy command, with threads)", function()
    local rc, out = h.eddy_run([[
      package.path = "./tests/?.lua;" .. package.path
      local eddy = require "eddy"
      local sub = eddy.pubsub.subscribe("pooltopic")
      local q = eddy.queue.open("pooled")
      if eddy.worker.thread() == 2 then
        assert(eddy.task.run("fixtures.queuework", "produce", "pooled", 100, "pooltopic") == 100)
      end
      local sum = 0
      for _ = 1, 50 do local m = assert(q:pop(5)) sum = sum + m.body.i q:ack(m) end
      print("thread " .. eddy.worker.thread() .. " took 50", sub:recv(5))
    ]], "", "--threads 2")
    assert.equal(0, rc, out)
    assert.matches("thread 1 took 50\tfrom the pool", out)
    assert.matches("thread 2 took 50\tfrom the pool", out)
  end)

  it("outlives a run: later runs of the Lua state, threaded or not, and its pool see the same queue", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      eddy.run(function()
        assert(eddy.task.run("fixtures.queuework", "produce", "kept", 10) == 10)
      end)
      local lengths = {}
      eddy.run({ threads = 2 }, function()
        local eddy = require "eddy"
        if eddy.worker.thread() == 2 then
          eddy.queue.open("kept"):push({ i = 11 })
        end
      end)
      eddy.run(function()
        local q = eddy.queue.open("kept")
        lengths[1] = q:length()
        local sum = 0
        for _ = 1, 11 do local m = assert(q:pop(5)) sum = sum + m.body.i q:ack(m) end
        print("sum " .. sum, lengths[1])
      end)
    ]])
    assert.equal(0, rc, out)
    assert.matches("sum 66	11", out)
  end)

  it("names its backend by option or URL, and raises for an unknown one", function()
    h.run(function()
      assert.has_error(function() eddy.queue.open("x", { backend = "nosuch://here" }) end)
      local ok, err = pcall(eddy.queue.open, "x", { backend = "nosuch" })
      assert.is_false(ok)
      assert.matches("no backend 'nosuch'", err)
      assert.has_error(function() eddy.queue.open("") end)
      assert.has_error(function() eddy.queue.open("x", { max = -1 }) end)
      assert.has_error(function() eddy.queue.consume("x", {}, nil) end)
      local q = eddy.queue.open(fresh())
      assert.has_error(function() q:push(print) end)
      assert.has_error(function() q:ack({}) end)
    end)
  end)
end)

describe("eddy.pubsub", function()
  it("gives every subscriber every message, and recv times out", function()
    h.run(function()
      local topic = fresh("topic")
      local a, b = eddy.pubsub.subscribe(topic), eddy.pubsub.subscribe(topic)
      assert.equal(2, eddy.pubsub.publish(topic, { n = 1 }))
      assert.equal(2, eddy.pubsub.publish(topic, "two"))
      assert.same({ n = 1 }, a:recv(1))
      assert.same({ n = 1 }, b:recv(1))
      assert.equal("two", a:recv(1))
      assert.equal("two", b:recv(1))
      assert.same({ nil, "timeout" }, { a:recv(0.02) })
      eddy.spawn(function() eddy.sleep(0.02) eddy.pubsub.publish(topic, "late") end)
      assert.equal("late", a:recv(2))
      a:close()
      assert.equal(1, eddy.pubsub.publish(topic, "after"))
      assert.same({ nil, "closed" }, { a:recv(0) })
      -- Closing ends a recv that waits.
      assert.equal("late", b:recv(0))
      assert.equal("after", b:recv(0))
      local t = eddy.spawn(function() return b:recv() end)
      eddy.sleep(0.01)
      b:close()
      assert.same({ true, nil, "closed" }, { t:join(1) })
    end)
  end)

  it("keeps a slow subscriber's buffer bounded: the oldest go, counted", function()
    h.run(function()
      local topic = fresh("topic")
      local slow = eddy.pubsub.subscribe(topic, { buffer = 10 })
      for i = 1, 1000 do eddy.pubsub.publish(topic, i) end
      assert.same({ 990, 10 }, { slow:dropped() })
      for i = 991, 1000 do assert.equal(i, slow:recv(0)) end
      assert.same({ nil, "timeout" }, { slow:recv(0) })
      slow:close()
    end)
  end)

  it("reaches subscribers of every reactor thread", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local ready = eddy.queue.open("pubsub-ready")
      local sub = eddy.pubsub.subscribe("pubsub-threads")
      if eddy.worker.thread() == 2 then
        ready:push(true)
        print("thread 2 heard " .. tostring(sub:recv(10)))
      else
        local m = assert(ready:pop(10)) ready:ack(m)
        print("published to " .. eddy.pubsub.publish("pubsub-threads", "hello"))
        print("thread 1 heard " .. tostring(sub:recv(10)))
      end
    ]], "", "--threads 2")
    assert.equal(0, rc, out)
    assert.matches("published to 2", out)
    assert.matches("thread 1 heard hello", out)
    assert.matches("thread 2 heard hello", out)
  end)
end)

describe("eddy.pubsub across worker processes", function()
  it("reaches every subscriber of every worker once, through the mailbox relays", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local subs = eddy.shared.atomic("pubsub-workers-subs")
      local sub = eddy.pubsub.subscribe("pubsub-workers")
      subs:add(1)
      local me = eddy.worker.id() .. "." .. eddy.worker.thread()
      if me == "1.1" then
        local deadline = eddy.now() + 10
        while subs:get() < 4 and eddy.now() < deadline do eddy.sleep(0.01) end
        print("in this process " .. eddy.pubsub.publish("pubsub-workers", { text = "hello" }))
      end
      print(me .. " heard " .. tostring(sub:recv(10).text))
      print(me .. " then " .. tostring(select(2, sub:recv(0.2))))
    ]], "", "--workers 2 --threads 2")
    assert.equal(0, rc, out)
    assert.matches("in this process 2", out)
    for _, me in ipairs({ "1.1", "1.2", "2.1", "2.2" }) do
      assert.matches(me .. " heard hello", out, 1, true)
      assert.matches(me .. " then timeout", out, 1, true)
    end
  end)
end)

describe("examples/queues", function()
  local function run(name)
    return h.sh("QUEUE_BACKEND=memory " .. h.eddy_bin .. " examples/queues/" .. name .. ".lua")
  end

  it("signup.lua: each user gets exactly one e-mail and one SMS, the e-mails retried", function()
    local rc, out = run("signup")
    assert.equal(0, rc, out)
    assert.matches("50 users signed up in [%d.]+ s; 50 e%-mails %(50 retried%), 50 SMS; 50 users got exactly one of each", out)
  end)

  it("orders.lua: orders taken while inventory is down are applied when it returns", function()
    local rc, out = run("orders")
    assert.equal(0, rc, out)
    assert.matches("200 orders taken %(100 while inventory was down, %d+ waiting when it came back%); 200 applied, 20 retried; stock right", out)
  end)

  it("flash_sale.lua: 100 of 1000 accepted, the rest busy at once, then shipped", function()
    local rc, out = run("flash_sale")
    assert.equal(0, rc, out)
    assert.matches("1000 buyers: 100 accepted, 900 busy %(a push took at most [%d.]+ ms%); queue held 100; 100 shipped", out)
  end)

  it("logs.lua: 10 producers x 1000 lines, every line processed once", function()
    local rc, out = run("logs")
    assert.equal(0, rc, out)
    assert.matches("10 producers, 10000 lines, 10000 processed in [%d.]+ s: info 6000, warn 2000, error 2000", out)
  end)

  it("chat.lua: 50 members each hear all 50 messages", function()
    local rc, out = run("chat")
    assert.equal(0, rc, out)
    assert.matches("50 members, 50 messages; 50 members heard all 50", out)
  end)
end)

-- eddy.timer.after and eddy.timer.every: each firing runs fn(timer) as a
-- task.
local h = require "helper"
local eddy = h.eddy
local timer = eddy.timer

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Waits (in a task) until cond() holds or `limit` seconds have passed;
-- returns cond(). Generous, so that a slow machine does not fail a test.
local function wait_until(cond, limit)
  local deadline = eddy.now() + (limit or 5)
  while not cond() and eddy.now() < deadline do
    eddy.sleep(0.005)
    eddy.yield() -- callbacks due with the sleep run before we look
  end
  return cond()
end

describe("timer.after", function()
  it("runs fn once, as a task, with the timer as its argument", function()
    h.run(function()
      local calls, arg, in_task, slept = 0, nil, false, nil
      local tm = timer.after(0.01, function(t)
        calls = calls + 1
        arg = t
        in_task = eddy.current() ~= nil
        slept = eddy.sleep(0.001) -- a callback may wait: it is a task
      end)
      assert.is_true(tm:active())
      assert.is_true(wait_until(function() return slept ~= nil end))
      eddy.sleep(0.02)
      assert.equal(1, calls)
      assert.equal(tm, arg)
      assert.is_true(in_task)
      assert.is_true(slept)
      assert.is_false(tm:active())
      assert.is_false(tm:cancel())
    end)
  end)

  it("fires no sooner than its delay", function()
    h.run(function()
      local t0 = eddy.now()
      local fired_at
      timer.after(0.05, function() fired_at = eddy.now() end)
      assert.is_true(wait_until(function() return fired_at ~= nil end))
      assert.is_true(fired_at - t0 >= 0.049)
    end)
  end)

  it("after(0) fires on the next turn of the loop", function()
    h.run(function()
      local fired = false
      timer.after(0, function() fired = true end)
      assert.is_false(fired)
      eddy.sleep(0.001)
      eddy.yield()
      assert.is_true(fired)
    end)
  end)

  it("a cancelled timer never fires", function()
    h.run(function()
      local fired = false
      local tm = timer.after(0.01, function() fired = true end)
      assert.equal(1, eddy.stats().timers)
      assert.is_true(tm:cancel())
      assert.is_false(tm:active())
      assert.is_false(tm:cancel())
      assert.equal(0, eddy.stats().timers)
      eddy.sleep(0.03)
      assert.is_false(fired)
    end)
  end)

  it("a pending timer keeps the run going until it fires", function()
    local fired = false
    h.run(function()
      timer.after(0.03, function() fired = true end)
    end)
    assert.is_true(fired)
  end)

  it("its callback can wake a task waiting on a channel", function()
    h.run(function()
      local ch = eddy.channel()
      timer.after(0.01, function() ch:send("tick") end)
      assert.equal("tick", ch:recv(5))
    end)
  end)

  it("timers with the same delay fire in the order they were made", function()
    h.run(function()
      local order = {}
      for i = 1, 50 do
        timer.after(0.01, function() order[#order + 1] = i end)
      end
      assert.is_true(wait_until(function() return #order == 50 end))
      for i = 1, 50 do assert.equal(i, order[i]) end
    end)
  end)

  it("20,000 timers with random delays all fire, each in due order and never early", function()
    h.run(function()
      local N = 20000
      local lo, hi = {}, {} -- bounds of each timer's due time
      local fired = {}
      for i = 1, N do
        local d = math.random(0, 200) / 1000
        local before = eddy.now()
        timer.after(d, function() fired[#fired + 1] = { i, eddy.now() } end)
        local after = eddy.now()
        lo[i] = before + d
        hi[i] = after + d + 0.001 -- the delay may round up to a whole ms
      end
      assert.is_true(wait_until(function() return #fired == N end))
      local seen = {}
      local latest_lo = -math.huge -- the latest lower bound fired so far
      local early, out_of_order = 0, 0
      for k = 1, N do
        local i, at = fired[k][1], fired[k][2]
        assert.is_nil(seen[i])
        seen[i] = true
        if at < lo[i] - 1e-9 then early = early + 1 end
        -- A timer firing after one that surely was due later is out of order.
        if hi[i] < latest_lo - 1e-9 then out_of_order = out_of_order + 1 end
        if lo[i] > latest_lo then latest_lo = lo[i] end
      end
      assert.equal(0, early)
      assert.equal(0, out_of_order)
    end)
  end)

  it("timers cancelled among many never fire, the others all do", function()
    h.run(function()
      local N = 2000
      local timers, fired, count = {}, {}, 0
      for i = 1, N do
        timers[i] = timer.after(math.random(1, 30) / 1000, function()
          fired[i] = true
          count = count + 1
        end)
      end
      local cancelled = 0
      for i = 1, N, 3 do
        assert.is_true(timers[i]:cancel())
        cancelled = cancelled + 1
      end
      assert.is_true(wait_until(function() return count == N - cancelled end))
      eddy.sleep(0.035) -- past every delay: nothing more fires
      assert.equal(N - cancelled, count)
      for i = 1, N do
        if i % 3 == 1 then
          assert.is_nil(fired[i])
        else
          assert.is_true(fired[i])
        end
      end
    end)
  end)

  it("rejects bad arguments", function()
    h.run(function()
      assert.is_false(pcall(timer.after, -1, function() end))
      assert.is_false(pcall(timer.after, math.huge, function() end))
      assert.is_false(pcall(timer.after, 0.01, "not a function"))
      assert.is_false(pcall(timer.after, "soon", function() end))
      assert.equal(0, eddy.stats().timers)
    end)
  end)
end)

describe("timer.every", function()
  it("fires again and again until its callback cancels it", function()
    h.run(function()
      local t0 = eddy.now()
      local n = 0
      local done = eddy.channel(1)
      local tm = timer.every(0.01, function(t)
        n = n + 1
        if n == 3 then
          assert(t:cancel())
          done:send(eddy.now())
        end
      end)
      local last = done:recv(5)
      assert.equal(3, n)
      assert.is_false(tm:active())
      assert.is_true(last - t0 >= 0.029)
      eddy.sleep(0.03)
      assert.equal(3, n)
    end)
  end)

  it("can be cancelled from another task", function()
    h.run(function()
      local n = 0
      local tm = timer.every(0.005, function() n = n + 1 end)
      assert.is_true(wait_until(function() return n >= 2 end))
      assert.is_true(tm:active())
      assert.is_true(tm:cancel())
      assert.is_false(tm:active())
      local seen = n
      assert.is_true(seen >= 2)
      eddy.sleep(0.03)
      assert.equal(seen, n)
      assert.equal(0, eddy.stats().timers)
    end)
  end)

  it("skips firings while its callback still runs, never running two at once", function()
    h.run(function()
      local n, running, most = 0, 0, 0
      local tm = timer.every(0.01, function()
        n = n + 1
        running = running + 1
        if running > most then most = running end
        eddy.sleep(0.045)
        running = running - 1
      end)
      eddy.sleep(0.25)
      tm:cancel()
      assert.equal(1, most)
      assert.is_true(n >= 2)
      assert.is_true(tm:skipped() >= 1)
    end)
  end)

  it("a firing whose callback fails does not stop the timer", function()
    h.run(function()
      local failed0 = eddy.stats().failed
      local n = 0
      local tm = timer.every(0.005, function(t)
        n = n + 1
        if n >= 3 then t:cancel() end
        error("every failure " .. n)
      end)
      assert.is_true(wait_until(function() return n == 3 and not tm:active() end))
      eddy.sleep(0.02)
      eddy.yield()
      assert.equal(3, n)
      assert.is_false(tm:active())
      assert.equal(failed0 + 3, eddy.stats().failed)
    end)
  end)

  it("rejects an interval that is not > 0", function()
    h.run(function()
      assert.is_false(pcall(timer.every, 0, function() end))
      assert.is_false(pcall(timer.every, -0.5, function() end))
      assert.is_false(pcall(timer.every, math.huge, function() end))
      assert.equal(0, eddy.stats().timers)
    end)
  end)
end)

describe("timer errors", function()
  it("a failing callback does not stop the program or the other timers", function()
    h.run(function()
      local failed0 = eddy.stats().failed
      local later = false
      timer.after(0.005, function() error("timer failure") end)
      timer.after(0.02, function() later = true end)
      assert.is_true(wait_until(function() return later end))
      assert.equal(failed0 + 1, eddy.stats().failed)
    end)
  end)

  it("with the eddy command, the failure is logged and the program ends with status 0", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      eddy.timer.after(0.005, function() error("timer went wrong") end)
      eddy.timer.after(0.02, function() print("later timer ran") end)
    ]])
    assert.equal(0, rc, out)
    assert.matches("eddy: error: task %d+ failed: [^\n]*timer went wrong", out)
    assert.matches("later timer ran", out)
  end)
end)

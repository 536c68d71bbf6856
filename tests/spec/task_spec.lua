-- Tasks, join, cancel, errors and status; sleep, yield and now; eddy.run
-- and deadlocks; waits outside a task; user coroutines; require.
local h = require "helper"
local eddy = h.eddy

local function pack(...)
  return { n = select("#", ...), ... }
end

local function assert_clean()
  local s = eddy.stats()
  assert.equal(0, s.tasks, "tasks left")
  assert.equal(0, s.timers, "timers left")
  assert.equal(0, s.open, "handles left open")
end

-- Runs fn as the main task expecting eddy.run to raise; checks that the run
-- left nothing behind all the same, and returns the error.
local function run_error(fn, ...)
  local ok, err = pcall(eddy.run, fn, ...)
  assert.is_false(ok, "eddy.run should have raised")
  assert_clean()
  return err
end

local luajit = h.luajit_run

-- The line after the one that calls it.
local function next_line()
  return debug.getinfo(2, "l").currentline + 1
end

describe("eddy.spawn and task:join", function()
  it("runs fn with its arguments; join returns true and all its results", function()
    h.run(function()
      local t = eddy.spawn(function(...)
        return select("#", ...), ...
      end, 1, nil, 3)
      local r = pack(t:join())
      assert.equal(5, r.n)
      assert.is_true(r[1])
      assert.equal(3, r[2]) -- fn saw three arguments, the nil counted
      assert.equal(1, r[3])
      assert.is_nil(r[4])
      assert.equal(3, r[5])
    end)
  end)

  it("join of a task that returned nothing is just true", function()
    h.run(function()
      local r = pack(eddy.spawn(function() end):join())
      assert.equal(1, r.n)
      assert.is_true(r[1])
    end)
  end)

  it("a task that returns nil, err is not mistaken for a failed one", function()
    h.run(function()
      local r = pack(eddy.spawn(function() return nil, "not found" end):join())
      assert.same({ n = 3, true, nil, "not found" }, r)
    end)
  end)

  it("an error ends that task only; join returns false and the error with its traceback", function()
    h.run(function()
      local failed_before = eddy.stats().failed
      local bad = eddy.spawn(function()
        eddy.sleep(0.001)
        error("boom")
      end)
      local good = eddy.spawn(function()
        eddy.sleep(0.01)
        return "still here"
      end)
      local ok, err = bad:join()
      assert.is_false(ok)
      assert.is_string(err)
      assert.matches("task_spec%.lua:%d+: boom", err)
      assert.matches("stack traceback:", err)
      assert.same({ true, "still here" }, { good:join() })
      assert.equal("done", bad:status())
      assert.equal(failed_before + 1, eddy.stats().failed)
    end)
  end)

  it("a non-string error value comes back from join unchanged", function()
    h.run(function()
      local e = { code = 42 }
      local ok, err = eddy.spawn(function() error(e) end):join()
      assert.is_false(ok)
      assert.equal(e, err)
    end)
  end)

  it("join waits for the task to finish", function()
    h.run(function()
      local t0 = eddy.now()
      local t = eddy.spawn(function()
        eddy.sleep(0.05)
        return "late"
      end)
      assert.same({ true, "late" }, { t:join() })
      assert.is_true(eddy.now() - t0 >= 0.049)
    end)
  end)

  it("join with a timeout answers false, 'timeout' and leaves the task running", function()
    h.run(function()
      local ch = eddy.channel()
      local t = eddy.spawn(function() return ch:recv() end)
      local t0 = eddy.now()
      assert.same({ false, "timeout" }, { t:join(0.01) })
      assert.is_true(eddy.now() - t0 >= 0.009)
      assert.equal("waiting", t:status())
      assert.same({ false, "timeout" }, { t:join(0) })
      ch:send("late")
      assert.same({ true, "late" }, { t:join() })
    end)
  end)

  it("several tasks can join the same task, and join can be repeated", function()
    h.run(function()
      local t = eddy.spawn(function()
        eddy.sleep(0.01)
        return "r", 2
      end)
      local joiners = {}
      for i = 1, 3 do
        joiners[i] = eddy.spawn(function() return t:join() end)
      end
      for i = 1, 3 do
        assert.same({ true, true, "r", 2 }, { joiners[i]:join() })
      end
      assert.same({ true, "r", 2 }, { t:join() })
      assert.same({ true, "r", 2 }, { t:join() })
    end)
  end)

  it("a task cannot join itself", function()
    h.run(function()
      local ok, err = pcall(function() return eddy.current():join() end)
      assert.is_false(ok)
      assert.matches("cannot join itself", err)
    end)
  end)

  it("spawned tasks start after the spawner waits, in the order they were spawned", function()
    h.run(function()
      local log = {}
      for i = 1, 3 do
        eddy.spawn(function() log[#log + 1] = i end)
      end
      assert.same({}, log)
      eddy.yield()
      assert.same({ 1, 2, 3 }, log)
    end)
  end)

  it("eddy.yield lets the other ready tasks run in turn", function()
    h.run(function()
      local log = {}
      local function worker(name)
        for i = 1, 3 do
          log[#log + 1] = name .. i
          eddy.yield()
        end
      end
      local a = eddy.spawn(worker, "a")
      local b = eddy.spawn(worker, "b")
      a:join()
      b:join()
      assert.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
    end)
  end)

  it("status goes ready, running, waiting, done", function()
    h.run(function()
      local seen
      local t
      t = eddy.spawn(function()
        seen = t:status()
        eddy.sleep(0.01)
      end)
      assert.equal("ready", t:status())
      eddy.yield()
      assert.equal("running", seen)
      assert.equal("waiting", t:status())
      t:join()
      assert.equal("done", t:status())
      assert.equal("running", eddy.current():status())
    end)
  end)

  it("ids are unique; eddy.current is the running task", function()
    h.run(function()
      local a = eddy.spawn(function() return eddy.current():id() end)
      local b = eddy.spawn(function() return eddy.current() end)
      assert.is_number(a:id())
      assert.are_not.equal(a:id(), b:id())
      assert.are_not.equal(a:id(), eddy.current():id())
      assert.is_true(b:id() > a:id())
      assert.same({ true, a:id() }, { a:join() })
      local _, cur = b:join()
      assert.is_true(cur == b)
      assert.is_false(cur == a)
      assert.is_true(eddy.current() == eddy.current())
    end)
    assert.is_nil(eddy.current())
  end)

  it("eddy.stats counts spawned, finished and failed tasks", function()
    h.run(function()
      local before = eddy.stats()
      local ts = {}
      for i = 1, 5 do
        ts[i] = eddy.spawn(function() eddy.sleep(0.001) end)
      end
      assert.equal(before.tasks + 5, eddy.stats().tasks)
      assert.equal(before.spawned + 5, eddy.stats().spawned)
      for i = 1, 5 do ts[i]:join() end
      local after = eddy.stats()
      assert.equal(before.tasks, after.tasks)
      assert.equal(before.finished + 5, after.finished)
      assert.equal(before.failed, after.failed)
    end)
  end)

  it("many tasks run to completion", function()
    h.run(function()
      local sum = 0
      local ts = {}
      for i = 1, 2000 do
        ts[i] = eddy.spawn(function()
          eddy.sleep(0)
          sum = sum + i
          return i
        end)
      end
      for i = 1, 2000 do
        assert.same({ true, i }, { ts[i]:join() })
      end
      assert.equal(2000 * 2001 / 2, sum)
    end)
  end)
end)

describe("task:cancel", function()
  it("a task that never started never runs", function()
    h.run(function()
      local ran = false
      local t = eddy.spawn(function() ran = true end)
      assert.is_false(t:cancelled())
      assert.is_true(t:cancel())
      assert.is_true(t:cancelled())
      assert.equal("done", t:status())
      assert.same({ false, "cancelled" }, { t:join() })
      eddy.sleep(0.01)
      assert.is_false(ran)
    end)
  end)

  it("a waiting task wakes with nil, 'cancelled' and its cleanup code runs", function()
    h.run(function()
      local got, cleaned
      local t = eddy.spawn(function()
        got = pack(eddy.sleep(math.huge))
        cleaned = true
      end)
      eddy.yield()
      assert.equal("waiting", t:status())
      assert.is_true(t:cancel())
      assert.is_true(t:cancelled())
      t:join()
      assert.equal("done", t:status())
      assert.same({ n = 2, nil, "cancelled" }, got)
      assert.is_true(cleaned)
    end)
  end)

  it("is sticky: every later wait in the task answers 'cancelled' at once", function()
    h.run(function()
      local release = eddy.channel(1)
      local other = eddy.spawn(function() release:recv() end)
      local r = {}
      local t = eddy.spawn(function()
        r.sleep1 = pack(eddy.sleep(math.huge))
        r.sleep2 = pack(eddy.sleep(math.huge))
        local ch = eddy.channel()
        r.recv = pack(ch:recv())
        r.send = pack(ch:send("x"))
        r.join = pack(other:join())
        r.acquire = pack(eddy.semaphore(0):acquire())
        local wg = eddy.waitgroup()
        wg:add(1)
        r.wait = pack(wg:wait())
        r.select = pack(eddy.select({ ch }))
        r.yield = pack(eddy.yield())
      end)
      eddy.yield()
      t:cancel()
      t:join()
      local cancelled = { n = 2, nil, "cancelled" }
      assert.same(cancelled, r.sleep1)
      assert.same(cancelled, r.sleep2)
      assert.same(cancelled, r.recv)
      assert.same(cancelled, r.send)
      assert.same({ n = 2, false, "cancelled" }, r.join)
      assert.same(cancelled, r.acquire)
      assert.same(cancelled, r.wait)
      assert.same(cancelled, r.select)
      assert.same(cancelled, r.yield)
      assert.equal("waiting", other:status())
      release:send(true)
      assert.same({ true }, { other:join() })
    end)
  end)

  it("a task can cancel itself: it runs on until its next wait", function()
    h.run(function()
      local r
      local t = eddy.spawn(function()
        local first = eddy.current():cancel()
        local ran_on = true
        r = pack(first, ran_on, eddy.sleep(1))
      end)
      t:join()
      assert.same({ n = 4, true, true, nil, "cancelled" }, r)
    end)
  end)

  it("cancel of a finished task returns false and keeps its results", function()
    h.run(function()
      local t = eddy.spawn(function() return 7 end)
      t:join()
      assert.is_false(t:cancel())
      assert.is_false(t:cancelled())
      assert.same({ true, 7 }, { t:join() })
    end)
  end)

  it("a value handed over just before the cancel is not lost", function()
    h.run(function()
      local ch = eddy.channel()
      local got, after
      local t = eddy.spawn(function()
        got = pack(ch:recv())
        after = pack(eddy.sleep(1))
      end)
      eddy.yield()
      assert.is_true(ch:send("v")) -- taken by the waiting receiver
      t:cancel()
      t:join()
      assert.same({ n = 1, "v" }, got)
      assert.same({ n = 2, nil, "cancelled" }, after)
    end)
  end)

  it("cancelling a task that waits in join leaves the joined task alone", function()
    h.run(function()
      local go = eddy.channel(1)
      local target = eddy.spawn(function()
        go:recv()
        return "target done"
      end)
      local jr
      local joiner = eddy.spawn(function() jr = pack(target:join()) end)
      eddy.yield()
      joiner:cancel()
      joiner:join()
      assert.same({ n = 2, false, "cancelled" }, jr)
      assert.equal("waiting", target:status())
      go:send(true)
      assert.same({ true, "target done" }, { target:join() })
    end)
  end)
end)

describe("sleep, yield and now", function()
  it("sleep waits at least the time asked and returns true", function()
    h.run(function()
      local t0 = eddy.now()
      local r = pack(eddy.sleep(0.05))
      assert.same({ n = 1, true }, r)
      assert.is_true(eddy.now() - t0 >= 0.049)
    end)
  end)

  it("sleepers wake in the order of their deadlines", function()
    h.run(function()
      local order = {}
      local ts = {}
      for _, d in ipairs({ 0.03, 0.01, 0.02 }) do
        ts[#ts + 1] = eddy.spawn(function()
          eddy.sleep(d)
          order[#order + 1] = d
        end)
      end
      for _, t in ipairs(ts) do t:join() end
      assert.same({ 0.01, 0.02, 0.03 }, order)
    end)
  end)

  it("sleep(0) returns true", function()
    h.run(function()
      local t = eddy.spawn(function() return "other" end)
      assert.same({ n = 1, true }, pack(eddy.sleep(0)))
      assert.same({ true, "other" }, { t:join() })
    end)
  end)

  it("sleep rejects negative and non-number times", function()
    h.run(function()
      local ok, err = pcall(eddy.sleep, -1)
      assert.is_false(ok)
      assert.matches("bad time", err)
      ok = pcall(eddy.sleep, "soon")
      assert.is_false(ok)
      ok = pcall(eddy.sleep)
      assert.is_false(ok)
      assert.is_true(eddy.sleep(0.001))
    end)
  end)

  it("yield returns nothing and the task goes on", function()
    h.run(function()
      local r = pack(eddy.yield())
      assert.equal(0, r.n)
    end)
  end)

  it("now is monotonic, in seconds with millisecond precision", function()
    h.run(function()
      local prev = eddy.now()
      assert.is_number(prev)
      for _ = 1, 5 do
        eddy.sleep(0.002)
        local n = eddy.now()
        assert.is_true(n >= prev + 0.001)
        local ms = n * 1000
        assert.is_true(math.abs(ms - math.floor(ms + 0.5)) < 1e-6)
        prev = n
      end
    end)
  end)
end)

describe("eddy.run", function()
  -- In a process of its own: a crash here must not take the other specs with it.
  it("passes its arguments and returns the main function's results, nils included", function()
    local rc, out = luajit([[
      local h = require "helper"
      local eddy = h.eddy
      local function show(...)
        local t = { select("#", ...) }
        for i = 1, select("#", ...) do t[#t + 1] = tostring((select(i, ...))) end
        print(table.concat(t, " "))
      end
      -- eddy.run itself: h.run's unpack would stop at the first nil.
      show(eddy.run(function(a, b, c)
        eddy.sleep(0.001)
        return a, b, c, "x"
      end, 1, nil, "c"))
      show(h.run(function() return 42 end))
      show(h.run(function() end))
    ]])
    assert.equal(0, rc, out)
    assert.equal("4 1 nil c x\n1 42\n0\n", out)
  end)

  it("passes its arguments to the main function", function()
    local got
    h.run(function(...) got = pack(...) end, 1, nil, "c")
    assert.same({ n = 3, 1, nil, "c" }, got)
  end)

  it("waits for spawned tasks that outlive the main function", function()
    local done = false
    h.run(function()
      eddy.spawn(function()
        eddy.sleep(0.03)
        done = true
      end)
    end)
    assert.is_true(done)
  end)

  it("raises the main function's error with its traceback", function()
    local err = run_error(function()
      eddy.sleep(0.001)
      error("main failed")
    end)
    assert.matches("task_spec%.lua:%d+: main failed", err)
    assert.matches("stack traceback:", err)
  end)

  it("raises a non-string error of the main function unchanged", function()
    local e = { reason = "table" }
    local err = run_error(function() error(e) end)
    assert.equal(e, err)
  end)

  it("fails and runs again many times over, with compiled code between", function()
    -- Raising from C after resuming coroutines once corrupted a pooled
    -- coroutine through a stale LuaJIT trace exit (LuaJIT issue 1066).
    local function pick(x) if x then return 1 else return 0 end end
    for i = 1, 300 do
      local ok, err = pcall(eddy.run, function()
        eddy.sleep(0)
        error("round " .. i)
      end)
      assert.is_false(ok)
      assert.matches("round " .. i, err)
      assert.equal(i % 2, pick(i % 2 == 1))
      assert.equal(i, h.run(function() eddy.sleep(0) return i end))
    end
  end)

  it("a main error ends the tasks still waiting and leaves nothing behind", function()
    local reached = false
    local t0 = os.time()
    local err = run_error(function()
      eddy.spawn(function()
        eddy.sleep(5)
        reached = true
      end)
      eddy.sleep(0.01)
      error("bail out")
    end)
    assert.matches("bail out", err)
    assert.is_false(reached)
    assert.is_true(os.time() - t0 < 4)
    -- The next run starts clean.
    local ran = false
    h.run(function() ran = eddy.sleep(0.001) end)
    assert.is_true(ran)
  end)

  it("inside a running loop it just calls fn", function()
    local r
    h.run(function()
      r = pack(eddy.run(function(x)
        eddy.sleep(0.001)
        return x + 1, eddy.current() ~= nil
      end, 41))
    end)
    assert.same({ n = 2, 42, true }, r)
  end)

  it("rejects a non-function", function()
    local ok, err = pcall(eddy.run, 42)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'run'", err)
    h.run(function() end)
  end)

  it("eddy.exit(n) ends the process with status n (Lua module face)", function()
    local rc, out = luajit([[
      local eddy = require "eddy"
      eddy.run(function()
        eddy.spawn(function() eddy.sleep(5); print("task not reached") end)
        eddy.sleep(0.01)
        eddy.exit(5)
        print("main not reached")
      end)
      print("after run not reached")
    ]])
    assert.equal(5, rc, out)
    assert.not_matches("not reached", out)
  end)
end)

describe("deadlock", function()
  it("a task that waits on something nothing can wake raises 'deadlock' and says where", function()
    local line
    local err = run_error(function()
      local ch = eddy.channel()
      line = next_line()
      ch:recv()
    end)
    assert.matches("^deadlock: 1 task waiting", err)
    assert.matches("task %d+ waits on channel recv at [^\n]*task_spec%.lua:" .. line, err)
  end)

  it("lists every waiting task and what it waits on", function()
    local recv_line, join_line
    local err = run_error(function()
      local ch = eddy.channel()
      local t = eddy.spawn(function()
        recv_line = next_line()
        ch:recv()
      end)
      join_line = next_line()
      t:join()
    end)
    assert.matches("^deadlock: 2 tasks waiting", err)
    assert.matches("task %d+ waits on channel recv at [^\n]*task_spec%.lua:" .. recv_line, err)
    assert.matches("task %d+ waits on join at [^\n]*task_spec%.lua:" .. join_line, err)
  end)

  it("sleep(math.huge) with nothing to cancel it is a deadlock, not a hang", function()
    local err = run_error(function()
      eddy.spawn(function() eddy.sleep(math.huge) end)
    end)
    assert.matches("^deadlock: 1 task waiting", err)
    assert.matches("waits on sleep at", err)
  end)

  it("a deadlock among sync primitives is named too", function()
    local err = run_error(function()
      local sem = eddy.semaphore(0)
      local wg = eddy.waitgroup()
      wg:add(1)
      eddy.spawn(function() sem:acquire() end)
      wg:wait()
    end)
    assert.matches("^deadlock: 2 tasks waiting", err)
    assert.matches("waits on semaphore at", err)
    assert.matches("waits on waitgroup at", err)
  end)
end)

describe("outside a task", function()
  it("waiting functions raise 'must be called inside a task'", function()
    local ch = eddy.channel()
    local sem = eddy.semaphore(0)
    local wg = eddy.waitgroup()
    wg:add(1)
    local calls = {
      sleep = function() return eddy.sleep(0.01) end,
      yield = function() return eddy.yield() end,
      recv = function() return ch:recv() end,
      send = function() return ch:send(1) end,
      select = function() return eddy.select({ ch }) end,
      acquire = function() return sem:acquire() end,
      wait = function() return wg:wait() end,
    }
    for name, f in pairs(calls) do
      local ok, err = pcall(f)
      assert.is_false(ok, name .. " should raise")
      assert.matches("must be called inside a task", err)
    end
    -- Nothing of those attempts stayed behind.
    h.run(function()
      assert.same({ nil, "full" }, { ch:send("x", 0) })
      assert.same({ nil, "timeout" }, { ch:recv(0) })
    end)
  end)

  it("in a plain coroutine outside eddy.run, waits raise too", function()
    local co = coroutine.create(function() return eddy.sleep(0.01) end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("must be called inside a task", err)
    h.run(function() end)
  end)

  it("waiting inside a table.sort comparator or a gsub callback raises 'cannot wait here'", function()
    h.run(function()
      local t = { 3, 1, 2 }
      local ok, err = pcall(table.sort, t, function(a, b)
        eddy.sleep(0)
        return a < b
      end)
      assert.is_false(ok)
      assert.matches("cannot wait here", err)
      ok, err = pcall(string.gsub, "abc", "%w", function(c)
        eddy.sleep(0)
        return c
      end)
      assert.is_false(ok)
      assert.matches("cannot wait here", err)
      -- The task itself can still wait.
      assert.is_true(eddy.sleep(0.001))
    end)
  end)
end)

describe("user coroutines inside a task", function()
  it("a coroutine.wrap iterator can wait inside", function()
    h.run(function()
      local function gen(n)
        return coroutine.wrap(function()
          for i = 1, n do
            eddy.sleep(0.001)
            coroutine.yield(i)
          end
        end)
      end
      local got = {}
      for v in gen(4) do got[#got + 1] = v end
      assert.same({ 1, 2, 3, 4 }, got)
    end)
  end)

  it("tasks iterating their own generators at once each get their own values", function()
    h.run(function()
      local function gen(name)
        return coroutine.wrap(function()
          for i = 1, 5 do
            eddy.sleep(0.001 * ((i % 2) + 1))
            coroutine.yield(name .. i)
          end
        end)
      end
      local ts = {}
      for _, name in ipairs({ "a", "b", "c" }) do
        ts[#ts + 1] = eddy.spawn(function()
          local got = {}
          for v in gen(name) do got[#got + 1] = v end
          return table.concat(got, ",")
        end)
      end
      assert.same({ true, "a1,a2,a3,a4,a5" }, { ts[1]:join() })
      assert.same({ true, "b1,b2,b3,b4,b5" }, { ts[2]:join() })
      assert.same({ true, "c1,c2,c3,c4,c5" }, { ts[3]:join() })
    end)
  end)

  it("a wait in a nested coroutine resumes the right one", function()
    h.run(function()
      local inner = coroutine.wrap(function()
        for i = 1, 3 do
          eddy.sleep(0.001)
          coroutine.yield(i * 10)
        end
      end)
      local outer = coroutine.wrap(function()
        for _ = 1, 3 do
          local v = inner()
          eddy.sleep(0.001)
          coroutine.yield(v + 1)
        end
      end)
      assert.equal(11, outer())
      assert.equal(21, outer())
      assert.equal(31, outer())
    end)
  end)

  it("coroutine.resume passes values both ways across an eddy wait", function()
    h.run(function()
      local co = coroutine.create(function(a)
        local slept = eddy.sleep(0.001)
        local b = coroutine.yield(a + 1, slept)
        eddy.yield()
        return b * 2
      end)
      assert.same({ true, 2, true }, { coroutine.resume(co, 1) })
      assert.equal("suspended", coroutine.status(co))
      assert.same({ true, 10 }, { coroutine.resume(co, 5) })
      assert.equal("dead", coroutine.status(co))
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("dead", err)
    end)
  end)

  it("a channel recv inside a generator gets what another task sends", function()
    h.run(function()
      local ch = eddy.channel()
      eddy.spawn(function()
        for i = 1, 3 do ch:send(i) end
        ch:close()
      end)
      local function values(c)
        return coroutine.wrap(function()
          while true do
            local v = c:recv()
            if v == nil then return end
            coroutine.yield(v)
          end
        end)
      end
      local got = {}
      for v in values(ch) do got[#got + 1] = v end
      assert.same({ 1, 2, 3 }, got)
    end)
  end)

  it("an error after a wait inside coroutine.wrap reaches the caller", function()
    h.run(function()
      local f = coroutine.wrap(function()
        eddy.sleep(0.001)
        error("gen failed")
      end)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.matches("gen failed", err)
    end)
  end)

  it("another task cannot resume a coroutine that waits in eddy", function()
    h.run(function()
      local co = coroutine.create(function()
        eddy.sleep(0.03)
        return "woke"
      end)
      local owner = eddy.spawn(function() return coroutine.resume(co) end)
      eddy.yield()
      assert.equal("waiting", owner:status())
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("waiting in eddy", err)
      assert.same({ true, true, "woke" }, { owner:join() })
    end)
  end)

  it("coroutine.yield at a task's top level raises", function()
    h.run(function()
      local ok, err = pcall(coroutine.yield, 1)
      assert.is_false(ok)
      assert.matches("attempt to yield from outside a coroutine", err)
      local t = eddy.spawn(function() coroutine.yield("x") end)
      local jok, jerr = t:join()
      assert.is_false(jok)
      assert.matches("attempt to yield from outside a coroutine", jerr)
    end)
  end)

  it("coroutine.running in a task gives its coroutine, never handed to another task", function()
    h.run(function()
      local _, co1 = eddy.spawn(function() return coroutine.running() end):join()
      local _, co2 = eddy.spawn(function() return coroutine.running() end):join()
      assert.equal("thread", type(co1))
      assert.equal("thread", type(co2))
      assert.are_not.equal(co1, co2)
    end)
  end)
end)

describe("require in tasks", function()
  local dir, old_path
  local made = {}
  local serial = 0

  -- Writes a module file with a fresh name; returns the name.
  local function module(code)
    serial = serial + 1
    local name = ("eddy_spec_mod_%d_%d"):format(serial, math.random(1e9))
    local path = dir .. "/" .. name .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write(code)
    f:close()
    made[#made + 1] = { name = name, path = path }
    return name
  end

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir '" .. dir .. "'"))
    old_path = package.path
    package.path = dir .. "/?.lua;" .. package.path
  end)

  after_each(function()
    package.path = old_path
    for _, m in ipairs(made) do
      package.loaded[m.name] = nil
      os.remove(m.path)
    end
    made = {}
    os.remove(dir)
    _G.EDDY_SPEC_LOADS = nil
  end)

  it("a module whose main chunk sleeps can be required from a task", function()
    local name = module([[
      local eddy = require "eddy"
      eddy.sleep(0.02)
      return { value = 42 }
    ]])
    h.run(function()
      local t0 = eddy.now()
      local m = require(name)
      assert.equal(42, m.value)
      assert.is_true(eddy.now() - t0 >= 0.019)
      assert.equal(m, require(name))
      assert.equal(m, package.loaded[name])
    end)
  end)

  it("two tasks requiring it at once get the same module, loaded once", function()
    local name = module([[
      local eddy = require "eddy"
      _G.EDDY_SPEC_LOADS = (_G.EDDY_SPEC_LOADS or 0) + 1
      eddy.sleep(0.02)
      return { loaded_at = eddy.now() }
    ]])
    h.run(function()
      local a = eddy.spawn(function() return require(name) end)
      local b = eddy.spawn(function() return require(name) end)
      local oka, ma = a:join()
      local okb, mb = b:join()
      assert.is_true(oka)
      assert.is_true(okb)
      assert.is_table(ma)
      assert.equal(ma, mb)
      assert.equal(1, _G.EDDY_SPEC_LOADS)
    end)
  end)

  it("a module that fails after a wait fails both requirers and is not cached", function()
    local name = module([[
      local eddy = require "eddy"
      eddy.sleep(0.01)
      error("module broke")
    ]])
    h.run(function()
      local a = eddy.spawn(function() return require(name) end)
      local b = eddy.spawn(function() return require(name) end)
      local oka, ea = a:join()
      local okb, eb = b:join()
      assert.is_false(oka)
      assert.matches("module broke", ea)
      assert.is_false(okb)
      assert.matches(name, eb, 1, true)
      assert.is_nil(package.loaded[name])
    end)
  end)

  it("a module that returns nothing is stored as true", function()
    local name = module([[
      require("eddy").sleep(0.001)
    ]])
    h.run(function()
      assert.is_true(require(name))
      assert.is_true(package.loaded[name])
    end)
  end)

  it("standard modules load as before and a missing one raises 'not found'", function()
    h.run(function()
      assert.equal(string, require("string"))
      assert.equal(eddy, require("eddy"))
      local ok, err = pcall(require, "eddy_spec_no_such_module")
      assert.is_false(ok)
      assert.matches("module 'eddy_spec_no_such_module' not found", err, 1, true)
    end)
  end)
end)

-- eddy.queue's SQLite backend: the backend contract (tests/queue_backend_cases.lua)
-- on a fresh file, then what is SQLite's own: the file, its writer thread
-- with group commit, several stores on one file, and a file that cannot be
-- opened.
local h = require "helper"
local eddy = h.eddy
local sqlite = require "eddy.queue.sqlite"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local DB = dir .. "/queues.db"

local function open(name, opts)
  local o = { path = DB, poll = 0.02 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return assert(sqlite.open(name, o))
end

describe("eddy.queue.sqlite", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  describe("backend contract", function()
    require("queue_backend_cases")(it, assert, open)
  end)

  it("keeps messages in the file across opens, in WAL mode", function()
    local path = dir .. "/reopen.db"
    h.run(function()
      local b = assert(sqlite.open("keep", { path = path }))
      for i = 1, 3 do assert(b:push("k" .. i)) end
      b:close()
    end)
    h.run(function()
      local b = assert(sqlite.open("keep", { url = "sqlite://" .. path }))
      assert.same({ 3, 0 }, { b:length() })
      assert.equal("k1", b:pop(1).payload)
      b:close()
    end)
    -- The file header's read and write versions (bytes 19, 20) are 2 in
    -- WAL mode, which stays set in the file.
    local f = assert(io.open(path, "rb"))
    local header = f:read(100)
    f:close()
    assert.equal("SQLite format 3\0", header:sub(1, 16))
    assert.same({ 2, 2 }, { header:byte(19, 20) })
  end)

  it("commits the pushes queued meanwhile in one transaction (group commit)", function()
    h.run(function()
      local b = open("group")
      local tasks = {}
      for i = 1, 200 do
        tasks[i] = eddy.spawn(function() return b:push("g" .. i) end)
      end
      local before = b:stats()
      for i = 1, 200 do assert(select(2, tasks[i]:join())) end
      local after = b:stats()
      assert.same({ 200, 0 }, { b:length() })
      -- 200 pushes (and the length) in far fewer transactions.
      assert.is_true(after.ops - before.ops >= 200)
      assert.is_true(after.commits - before.commits < 100)
      b:close()
    end)
  end)

  it("reactor threads of one program share the file's one writer", function()
    local path = dir .. "/threads.db"
    local rc, out = h.eddy_run([[
      local b = assert(require("eddy.queue.sqlite").open("t", { path = "]] .. path .. [[" }))
      for _ = 1, 100 do assert(b:push("x")) end
      local got = 0
      while true do
        local m = b:pop(0.5)
        if not m then break end
        got = got + 1
        b:ack(m.id)
      end
      print(("got %d ops %d"):format(got, b:stats().ops))
      b:close()
    ]], "", "--threads 2")
    assert.equal(0, rc, out)
    local total, most = 0, 0
    for got, ops in out:gmatch("got (%d+) ops (%d+)") do
      total = total + tonumber(got)
      most = math.max(most, tonumber(ops))
    end
    assert.equal(200, total)
    -- The writer's counts take both threads' 200 pushes, pops and acks.
    assert.is_true(most >= 600, out)
  end)

  it("wakes a pop waiting in one thread for a push from another, and a push waiting for room for an ack, long before the poll", function()
    local path = dir .. "/wake.db"
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local b = assert(require("eddy.queue.sqlite").open("w", { path = "]] .. path .. [[", poll = 30, max = 1 }))
      if eddy.worker.thread() == 1 then
        eddy.sleep(0.3) -- thread 2 is waiting by then
        assert(b:push("first"))
        local t0 = eddy.now()
        assert(b:push("second", { timeout = 20 })) -- full until thread 2 acks
        print(("room after %.1f s"):format(eddy.now() - t0))
      else
        local t0 = eddy.now()
        local m = assert(b:pop(20))
        print(("popped %s after %.1f s"):format(m.payload, eddy.now() - t0))
        eddy.sleep(0.3) -- thread 1 is waiting for room by then
        assert(b:ack(m.id))
        m = assert(b:pop(20))
        assert(b:ack(m.id))
        print("then " .. m.payload)
      end
      b:close()
    ]], "", "--threads 2")
    assert.equal(0, rc, out)
    local popped = tonumber(out:match("popped first after ([%d.]+) s"))
    local room = tonumber(out:match("room after ([%d.]+) s"))
    assert.is_true(popped ~= nil and popped < 10, out)
    assert.is_true(room ~= nil and room < 10, out)
    assert.matches("then second", out)
  end)

  it("wakes a push waiting for room when a pop moves an expired delivery to the dead letters", function()
    local path = dir .. "/expire.db"
    h.run(function()
      local b = assert(sqlite.open("x", { path = path, poll = 30, max = 1,
        max_attempts = 1, visibility = 0.2 }))
      assert(b:push("first"))
      assert(b:pop(1)) -- in flight, never acked: its one attempt is spent
      local t0, pushed = eddy.now(), nil
      local pusher = eddy.spawn(function()
        pushed = b:push("second", { timeout = 20 }) -- full until then
      end)
      eddy.sleep(0.4) -- the delivery has expired
      local m = b:pop(0) -- moves it to x.dead; "second" is not there yet
      assert(pusher:join())
      assert.is_truthy(pushed)
      assert.is_true(eddy.now() - t0 < 10)
      m = m or assert(b:pop(1))
      assert.equal("second", m.payload)
      local dead = assert(sqlite.open("x.dead", { path = path }))
      assert.equal("first", assert(dead:pop(1)).payload)
      dead:close()
      b:close()
    end)
  end)

  it("wakes a pop waiting in one worker process for a push from another, long before the poll", function()
    local path = dir .. "/workers.db"
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local b = assert(require("eddy.queue.sqlite").open("w", { path = "]] .. path .. [[", poll = 30 }))
      if eddy.worker.id() == 1 then
        eddy.sleep(0.5) -- worker 2 is waiting by then
        for i = 1, 3 do assert(b:push("m" .. i)) end
        local done = eddy.shared.atomic("sqlite-workers-done")
        for _ = 1, 400 do
          if done:get() == 1 then break end
          eddy.sleep(0.05)
        end
        eddy.exit(0)
      else
        local t0, got = eddy.now(), {}
        for i = 1, 3 do
          local m = assert(b:pop(20))
          got[i] = m.payload
          assert(b:ack(m.id))
        end
        print(("worker 2 popped %s after %.1f s"):format(table.concat(got, ","), eddy.now() - t0))
        io.stdout:flush()
        eddy.shared.atomic("sqlite-workers-done"):set(1)
        eddy.exit(0)
      end
    ]], "", "--workers 2")
    assert.equal(0, rc, out)
    local took = tonumber(out:match("worker 2 popped m1,m2,m3 after ([%d.]+) s"))
    assert.is_true(took ~= nil and took < 10, out)
  end)

  it("a pop keeps to its timeout while another process holds the file's lock", function()
    local path = dir .. "/locked.db"
    local r = h.run(function()
      local b = assert(sqlite.open("locked", { path = path }))
      assert(b:push("warm"))
      -- Another process takes the write lock and keeps it for 4 s.
      local ready = dir .. "/locked.ready"
      os.execute(([[python3 -c 'import sqlite3, time, os
c = sqlite3.connect("%s", isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open("%s", "w").close()
time.sleep(4)
c.execute("COMMIT")' &]]):format(path, ready))
      for _ = 1, 100 do
        local f = io.open(ready)
        if f then f:close() break end
        eddy.sleep(0.05)
      end
      local t0 = eddy.now()
      local msgs, err = b:pop_batch(1, 0.2)
      local took = eddy.now() - t0
      eddy.sleep(4) -- the lock goes; the pop that ran on comes back later
      b:close()
      return { msgs = msgs, err = err, took = took }
    end)
    assert.is_nil(r.msgs)
    assert.equal("timeout", r.err)
    assert.is_true(r.took < 2, "took " .. r.took .. " s")
  end)

  it("a file that cannot be opened answers nil, err", function()
    h.run(function()
      local b, err = sqlite.open("x", { path = dir .. "/no/such/dir/q.db" })
      assert.is_nil(b)
      assert.matches("cannot open", err)
    end)
  end)

  it("raises on bad options and arguments", function()
    assert.has_error(function() sqlite.open("") end)
    assert.has_error(function() sqlite.open("x", { synchronous = "sometimes" }) end)
    assert.has_error(function() sqlite.open("x", { url = "redis://x" }) end)
    h.run(function()
      local b = open("args")
      assert.has_error(function() b:push(42) end)
      assert.has_error(function() b:pop(-1) end)
      assert.has_error(function() b:ack("x") end)
      b:close()
    end)
  end)

  it("two processes share one file", function()
    local path = dir .. "/shared.db"
    local code = [[
      package.cpath = "./]] .. h.build .. [[/?.so;" .. package.cpath
      local eddy = require "eddy"
      assert(eddy.run(function()
        local b = assert(require("eddy.queue.sqlite").open("shared", { path = "]] .. path .. [[" }))
        for i = 1, 100 do assert(b:push("p" .. i)) end
        b:close()
        return true
      end))
    ]]
    -- Both children write the file at once (in the background), then this
    -- process takes what they pushed.
    local f = assert(io.open(dir .. "/child.lua", "w"))
    f:write(code)
    f:close()
    -- Both on a new file: they race to make it (WAL mode, the schema).
    local rc, out = h.sh(("(%s %s/child.lua & a=$!; %s %s/child.lua & b=$!; " ..
      "wait $a && wait $b) 2>&1"):format(h.luajit, dir, h.luajit, dir))
    assert.equal(0, rc, out)
    h.run(function()
      local b = assert(sqlite.open("shared", { path = path, poll = 0.02 }))
      local got = 0
      while got < 200 do
        local m = assert(b:pop(10))
        b:ack(m.id)
        got = got + 1
      end
      assert.same({ nil, "timeout" }, { b:pop(0) })
      b:close()
    end)
  end)
end)

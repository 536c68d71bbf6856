-- eddy.task: the task pool. Functions of tests/fixtures/taskwork.lua run in
-- pool threads with Lua states of their own while the calling task waits.
local h = require "helper"
local eddy = h.eddy

local W = "fixtures.taskwork"

describe("eddy.task.run", function()
  it("calls module.fn in the pool and returns its results", function()
    h.run(function()
      assert.equal(5, eddy.task.run(W, "add", 2, 3))
      local a, b, c, d = eddy.task.run(W, "echo", "x", nil, true, 1.5)
      assert.same({ "x", nil, true, 1.5 }, { a, b, c, d })
      assert.equal(4, select("#", eddy.task.run(W, "echo", 1, nil, nil, nil)))
      assert.equal(0, select("#", eddy.task.run(W, "echo")))
      local s = eddy.task.run(W, "shape", { 10, 20, 30, nested = { deep = "yes" } })
      assert.same({ n = 3, first = 10, nested = "yes" }, s)
    end)
  end)

  it("answers nil, err with the traceback when the function raises", function()
    h.run(function()
      local r, err = eddy.task.run(W, "fail", "boom in the pool")
      assert.is_nil(r)
      assert.matches("taskwork.lua:%d+: boom in the pool", err)
      assert.matches("stack traceback", err)
      r, err = eddy.task.run(W, "fail_table")
      assert.is_nil(r)
      assert.equal("(error object is not a string)", err:match("^[^\n]*"))
    end)
  end)

  it("answers nil, err for a missing module or function, or results that cannot cross", function()
    h.run(function()
      local r, err = eddy.task.run("fixtures.no_such_module", "f")
      assert.is_nil(r)
      assert.matches("module 'fixtures.no_such_module' not found", err)
      r, err = eddy.task.run(W, "missing")
      assert.is_nil(r)
      assert.equal("module '" .. W .. "' has no function 'missing'", err)
      r, err = eddy.task.run(W, "not_a_function")
      assert.is_nil(r)
      assert.matches("has no function 'not_a_function'", err)
      r, err = eddy.task.run(W, "returns_function")
      assert.is_nil(r)
      assert.equal("results: value 1: a function cannot be encoded", err)
    end)
  end)

  it("raises for arguments that cannot cross, and bad names", function()
    h.run(function()
      local t = {}
      t.self = t
      assert.has_error(function() eddy.task.run(W, "echo", print) end,
        "eddy.task.run: arguments: value 1: a function cannot be encoded")
      assert.has_error(function() eddy.task.run(W, "echo", 1, t) end,
        "eddy.task.run: arguments: value 2: a table that contains itself cannot be encoded")
      assert.has_error(function() eddy.task.run(W, "echo", io.stdout) end)
      assert.has_error(function() eddy.task.run(nil, "f") end)
      assert.has_error(function() eddy.task.run(W) end,
        "bad argument #2 to 'run' (function name expected)")
      assert.has_error(function() eddy.task.run({ W }) end,
        "bad argument #1 to 'run' (function name expected at [2])")
    end)
    assert.has_error(function() eddy.task.run(W, "add", 1, 2) end) -- not in a task
  end)

  it("a blocking call in the pool does not delay the reactor thread", function()
    h.run(function()
      local app = eddy.http.server()
      app:get("/", function(req, res) res:send("still here") end)
      local server = assert(app:listen("127.0.0.1", 0))
      local slept = eddy.spawn(function() return eddy.task.run(W, "sleep", 1) end)
      eddy.sleep(0.05) -- the job is running
      local t0 = eddy.now()
      local conn = assert(eddy.tcp.connect("127.0.0.1", server:port()))
      conn:write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local reply = conn:read_until("still here")
      conn:close()
      local took = eddy.now() - t0
      assert.matches("200 OK", reply)
      assert.is_true(took < 0.5, ("the request took %.3f s"):format(took))
      assert.same({ true, 1 }, { slept:join() })
      server:close()
    end)
  end)

  it("runs jobs in parallel, one per pool thread", function()
    h.run(function()
      local n = eddy.task.threads()
      assert.is_true(n >= 1)
      local wg = eddy.waitgroup()
      local t0 = eddy.now()
      for _ = 1, n do
        wg:add(1)
        eddy.spawn(function()
          assert.equal(0.5, eddy.task.run(W, "sleep", 0.5))
          wg:done()
        end)
      end
      wg:wait()
      local took = eddy.now() - t0
      assert.is_true(took < 0.5 * n - 0.2 or n == 1, ("%d jobs of 0.5 s took %.2f s"):format(n, took))
    end)
  end)

  it("times out, is cancelled, and interrupts interpreted Lua so the thread is free again", function()
    h.run(function()
      local n = eddy.task.threads()
      for _ = 1, n do
        local r, err = eddy.task.run({ W, "spin", timeout = 0.1 })
        assert.is_nil(r)
        assert.equal("timeout", err)
      end
      local t = eddy.spawn(function() return eddy.task.run(W, "spin") end)
      eddy.sleep(0.05)
      t:cancel()
      assert.same({ true, nil, "cancelled" }, { t:join() })
      -- every pool thread was interrupted: a new job runs at once
      local r, err = eddy.task.run({ W, "add", timeout = 2 }, 1, 1)
      assert.equal(2, r, err)
    end)
  end)

  it("keeps interrupting a job that catches the interrupt in a pcall of its own", function()
    local prefix = os.tmpname()
    local f = assert(io.open(prefix .. "_pcallspin.lua", "w"))
    f:write([[
      local M = {}
      function M.spin()
        jit.off(true, true)
        while true do pcall(function() for _ = 1, 1e7 do end end) end
      end
      function M.add(a, b) return a + b end
      return M
    ]])
    f:close()
    local rc, out = h.eddy_run(([[
      package.path = %q .. package.path
      local eddy = require "eddy"
      print(eddy.task.run({ "pcallspin", "spin", timeout = 0.1 }))
      print(eddy.task.run({ "pcallspin", "add", timeout = 2 }, 1, 2))
    ]]):format(prefix .. "_?.lua;"), "", "--task-threads 1")
    os.remove(prefix .. "_pcallspin.lua")
    os.remove(prefix)
    assert.equal(0, rc, out)
    assert.equal("nil\ttimeout\n3\n", out)
  end)

  it("gives each pool thread a Lua state of its own, kept between jobs", function()
    h.run(function()
      local seen = {}
      for _ = 1, 20 do
        local c = eddy.task.run(W, "thread_global")
        seen[#seen + 1] = c
      end
      local most = math.max(unpack(seen))
      assert.is_true(most >= 20 / eddy.task.threads(), "globals were not kept")
    end)
  end)

  it("sizes the pool from --task-threads, shared by every reactor thread", function()
    local rc, out = h.eddy_run([[
      package.path = "./tests/?.lua;" .. package.path
      local eddy = require "eddy"
      -- One write per line: print writes the text and its newline apart,
      -- and the two threads' lines could interleave.
      io.write("threads " .. eddy.task.threads() .. "\n")
      io.write("sum " .. eddy.task.run("fixtures.taskwork", "add", eddy.worker.thread(), 10) .. "\n")
    ]], "", "--threads 2 --task-threads 3")
    assert.equal(0, rc, out)
    assert.matches("threads 3\n.*threads 3\n", out)
    assert.matches("sum 11", out)
    assert.matches("sum 12", out)
    rc, out = h.sh(h.eddy_bin .. " --task-threads 0 -e 'print(1)'")
    assert.equal(1, rc)
    assert.matches("bad %-%-task%-threads", out)
  end)

  for _, mode in ipairs({ "", "--threads 2", "--workers 2" }) do
    it("a job reaches the program's shared dictionaries, opening them first or not (" .. (mode == "" and "one thread" or mode) .. ")", function()
      local rc, out = h.eddy_run([[
        package.path = "./tests/?.lua;" .. package.path
        local eddy = require "eddy"
        local me = eddy.worker.id() .. "." .. eddy.worker.thread()
        -- the job opens "first" before this thread does; "second" after
        assert(eddy.task.run("fixtures.taskwork", "dict_set", "first", me, "job") == "job")
        local second = eddy.shared.dict("second", { size = "1m" })
        assert(eddy.task.run("fixtures.taskwork", "dict_set", "second", me, "job") == "job")
        local first = eddy.shared.dict("first", { size = "1m" })
        eddy.sleep(0.3) -- every thread and worker has set its keys
        local seen = 0
        for _, d in ipairs({ first, second }) do
          for _, k in ipairs({ "1.1", "1.2", "2.1" }) do
            if d:get(k) == "job" then seen = seen + 1 end
          end
        end
        io.write(me .. " sees " .. seen .. "\n")
        eddy.exit(0)
      ]], "", mode)
      assert.equal(0, rc, out)
      local want = mode == "" and 2 or 4 -- two dictionaries, 1 or 2 setters each
      for who in out:gmatch("(%d%.%d) sees") do
        assert.matches(who .. " sees " .. want, out)
      end
      assert.matches("1.1 sees " .. want, out)
    end)
  end

  it("configure sets the size before the first job, not after", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      eddy.run({ task_threads = 3 }, function()
        print("size " .. eddy.task.threads())
        assert(eddy.task.run("fixtures.taskwork", "add", 1, 1) == 2)
        print(pcall(eddy.task.configure, { threads = 2 }))
      end)
    ]])
    assert.equal(0, rc, out)
    assert.matches("size 3", out)
    assert.matches("false\t.*the pool has started", out)
  end)

  it("a program ends while a job it gave up on still runs", function()
    local rc, out = h.eddy_run([[
      package.path = "./tests/?.lua;" .. package.path
      local eddy = require "eddy"
      print(eddy.task.run({ "fixtures.taskwork", "sleep", timeout = 0.1 }, 3))
    ]])
    assert.equal(0, rc, out)
    assert.equal("nil\ttimeout\n", out)
  end)

  it("runs the example: the server answers while the pool works", function()
    local pid, out, status = h.start_eddy("examples/pool/main.lua 0")
    local port = h.wait_for(out, "listening on 127%.0%.0%.1:(%d+)")
    local url = "http://127.0.0.1:" .. port
    local rc, body = h.sh("curl -s " .. url .. "/block & sleep 0.2; curl -s -w ' %{time_total}' " .. url .. "/ping; wait")
    assert.equal(0, rc)
    local took = tonumber(body:match("pong\n ([%d.]+)"))
    assert.is_true(took and took < 0.5, body)
    assert.matches("slept 1 s in the pool", body)
    rc, body = h.sh("curl -s " .. url .. "/prime/1000")
    assert.equal("prime #1000 is 7919\n", body)
    h.sh("kill -INT " .. pid)
    h.wait_exit(pid)
    assert.equal("rc=0", h.wait_for(status, "(rc=%d+)"))
  end)
end)

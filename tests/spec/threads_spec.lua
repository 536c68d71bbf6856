-- Reactor threads: `eddy --threads N`, eddy.run({threads = N}, fn) under
-- stock LuaJIT, eddy.worker, one port shared by every thread's listener,
-- and the threads ending together (eddy.exit, an error, SIGTERM).
local h = require "helper"

local function lines_matching(out, pattern)
  local found = {}
  for cap in out:gmatch(pattern) do found[#found + 1] = cap end
  return found
end

-- GETs url n times over fresh connections; counts the answers by body.
local function count_answers(url, n)
  local urls = {}
  for i = 1, n do urls[i] = url end
  local rc, out = h.sh("curl -s -H 'Connection: close' " .. table.concat(urls, " "))
  assert.equal(0, rc, out)
  local seen = {}
  for line in out:gmatch("[^\n]+") do seen[line] = (seen[line] or 0) + 1 end
  return seen
end

describe("eddy --threads", function()
  it("runs the script once in each thread, in a Lua state of its own", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      shared_global = (shared_global or 0) + 1
      print(("thread %d of %d sees %d, worker %d of %d"):format(eddy.worker.thread(),
        eddy.worker.threads(), shared_global, eddy.worker.id(), eddy.worker.count()))
    ]], "", "--threads 3")
    assert.equal(0, rc, out)
    local threads = lines_matching(out, "thread (%d) of 3 sees 1, worker 1 of 1")
    table.sort(threads)
    assert.same({ "1", "2", "3" }, threads)
  end)

  it("is one thread, numbered 1 of 1, without the option", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      print(eddy.worker.thread(), eddy.worker.threads())
    ]])
    assert.equal(0, rc, out)
    assert.equal("1\t1\n", out)
  end)

  it("auto runs a thread per core", function()
    local _, cores = h.sh("nproc")
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      if eddy.worker.thread() == 1 then print(eddy.worker.threads()) end
    ]], "", "--threads auto")
    assert.equal(0, rc, out)
    assert.equal(tonumber(cores), tonumber(out))
  end)

  it("refuses a bad thread count", function()
    for _, bad in ipairs({ "0", "-2", "many", "2x" }) do
      local rc, out = h.sh(h.eddy_bin .. " --threads " .. bad .. " -e 'print(1)'")
      assert.equal(1, rc)
      assert.matches("bad %-%-threads: " .. bad:gsub("%-", "%%-"), out)
    end
    local rc, out = h.sh("echo 'print(1)' | " .. h.eddy_bin .. " --threads 2 -")
    assert.equal(1, rc)
    assert.matches("give a file", out)
  end)

  it("gives every thread the same port for each listen on port 0", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local a = assert(eddy.tcp.listen("127.0.0.1", 0))
      local b = assert(eddy.http.server():listen("127.0.0.1", 0))
      print(("ports %d %d"):format(a:port(), b:port()))
      a:close()
      b:close()
    ]], "", "--threads 4")
    assert.equal(0, rc, out)
    local ports = lines_matching(out, "ports (%d+ %d+)")
    assert.equal(4, #ports)
    for i = 2, 4 do assert.equal(ports[1], ports[i]) end
    local a, b = ports[1]:match("(%d+) (%d+)")
    assert.not_equal(a, b)
  end)

  it("spreads connections over the threads and stops them all on SIGTERM", function()
    local pid, out, status = h.start_eddy("--threads 2 examples/threads.lua 0")
    local port = h.wait_for(out, "listening on 127%.0%.0%.1:(%d+) with 2 threads")
    local seen = count_answers("http://127.0.0.1:" .. port .. "/", 60)
    assert.is_true((seen["hello from thread 1 of 2"] or 0) > 0, "thread 1 answered none")
    assert.is_true((seen["hello from thread 2 of 2"] or 0) > 0, "thread 2 answered none")
    assert.equal(60, (seen["hello from thread 1 of 2"] or 0) + (seen["hello from thread 2 of 2"] or 0))
    h.sh("kill -TERM " .. pid)
    h.wait_exit(pid)
    assert.equal("rc=0", h.wait_for(status, "(rc=%d+)"))
  end)

  it("ends every thread when one calls eddy.exit, with its status", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local server = assert(eddy.tcp.listen("127.0.0.1", 0))
      if eddy.worker.thread() == 2 then
        eddy.sleep(0.05)
        eddy.exit(7)
      end
      eddy.spawn(function()
        -- the stop cancels it once the grace period is over
        local _, err = eddy.sleep(30)
        print("thread " .. eddy.worker.thread() .. " woke: " .. err)
      end)
    ]], "", "--threads 3 --grace 0.2")
    assert.equal(7, rc, out)
    local woke = lines_matching(out, "thread (%d) woke: cancelled")
    table.sort(woke)
    assert.same({ "1", "3" }, woke)
  end)

  it("ends every thread when one fails, and the log says which", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local server = assert(eddy.tcp.listen("127.0.0.1", 0))
      if eddy.worker.thread() == 3 then error("thread three breaks") end
    ]], "", "--threads 3 --grace 1")
    assert.equal(1, rc, out)
    assert.matches("eddy%[3%]: error: .*thread three breaks", out)
    assert.not_matches("eddy%[[12]%]: error", out)
  end)

  it("tells a script that does not compile once", function()
    local rc, out = h.eddy_run("local x = = 1", "", "--threads 3")
    assert.equal(1, rc)
    local _, n = out:gsub("unexpected symbol", "")
    assert.equal(1, n, out)
  end)
end)

describe("eddy.run with threads (stock LuaJIT)", function()
  it("runs fn in each thread with its arguments; the first thread's results return", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      local a, b = eddy.run({ threads = 3 }, function(word, n)
        local eddy = require "eddy"
        print(("thread %d: %s %d"):format(eddy.worker.thread(), word, n))
        return eddy.worker.thread(), eddy.worker.threads()
      end, "hi", 42)
      print("results", a, b)
      -- and a plain run afterwards is a single thread again
      eddy.run(function() print("after", eddy.worker.thread(), eddy.worker.threads()) end)
    ]])
    assert.equal(0, rc, out)
    local threads = lines_matching(out, "thread (%d): hi 42")
    table.sort(threads)
    assert.same({ "1", "2", "3" }, threads)
    assert.matches("results\t1\t3", out)
    assert.matches("after\t1\t1", out)
  end)

  it("shares port 0 and stops all threads when one exits", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      eddy.run({ threads = 2 }, function()
        local eddy = require "eddy"
        local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
        print("port " .. srv:port())
        if eddy.worker.thread() == 2 then eddy.sleep(0.05) eddy.exit(5) end
      end)
      print("not reached")
    ]])
    assert.equal(5, rc, out)
    local ports = lines_matching(out, "port (%d+)")
    assert.equal(2, #ports)
    assert.equal(ports[1], ports[2])
    assert.not_matches("not reached", out)
  end)

  it("raises when another thread fails", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      local ok, err = pcall(eddy.run, { threads = 2 }, function()
        local eddy = require "eddy"
        if eddy.worker.thread() == 2 then error("second thread fails") end
        eddy.sleep(0.05)
      end)
      print(ok, err)
    ]])
    assert.equal(0, rc, out)
    assert.matches("eddy%[2%]: error: .*second thread fails", out)
    assert.matches("false\teddy.run: a thread ended with status 1", out)
  end)

  it("refuses a function with upvalues, and arguments that cannot cross", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      local ok, err = pcall(eddy.run, { threads = 2 }, function() return eddy end)
      print(err)
      ok, err = pcall(eddy.run, { threads = 2 }, function() end, {})
      print(err)
      ok, err = pcall(eddy.run, { threads = "lots" }, function() end)
      print(err)
      ok, err = pcall(eddy.run, { threads = 2 ^ 32 + 2 }, function() end)
      print(err)
    ]])
    assert.equal(0, rc, out)
    assert.matches("must not have upvalues %(upvalue 'eddy'%)", out)
    assert.matches("only nil, booleans, numbers and strings cross", out)
    assert.matches("bad option 'threads'", out)
    assert.matches("threads must be 0 %(one per core%) to 1024", out)
  end)

  it("keeps the task pool the first thread made in an earlier run, and starts no other", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      local ffi = require "ffi"
      ffi.cdef "int usleep(unsigned int usec);"
      -- A thread that eddy has joined (the watchdog's, at the end of a run)
      -- can still be counted for a moment while the kernel reaps it: the
      -- steady count is the least seen over 100 ms.
      local function threads()
        local least = math.huge
        for _ = 1, 10 do
          local f = io.open("/proc/self/status")
          local n = tonumber(f:read("*a"):match("Threads:%s*(%d+)"))
          f:close()
          least = math.min(least, n)
          ffi.C.usleep(10000)
        end
        return least
      end
      local function job()
        local eddy = require "eddy"
        assert(eddy.task.run("fixtures.taskwork", "add", 1, 1) == 2)
      end
      eddy.run({ task_threads = 2 }, job)
      local before = threads()
      for _ = 1, 3 do
        eddy.run({ threads = 2 }, job)
        eddy.run(job)
      end
      print("threads", before, threads())
    ]])
    assert.equal(0, rc, out)
    local before, after = out:match("threads\t(%d+)\t(%d+)")
    assert.equal(before, after, out)
  end)
end)

describe("eddy.init", function()
  it("runs once before any thread goes on, in whichever thread gets there first", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local runs = eddy.shared.atomic("runs")
      local ran = eddy.init(function()
        runs:add(1)
        eddy.sleep(0.1) -- the others wait meanwhile
        eddy.shared.dict("cfg", { size = "64k" }):set("motd", "hi")
      end)
      eddy.init(function() runs:add(10) end) -- a second init, told apart by its order
      print(("thread %d ran %s motd %s runs %d"):format(eddy.worker.thread(), tostring(ran),
        eddy.shared.dict("cfg"):get("motd"), runs:get()))
    ]], "", "--threads 4")
    assert.equal(0, rc, out)
    local _, ran = out:gsub("ran true", "")
    assert.equal(1, ran)
    local _, seen = out:gsub("motd hi runs 11", "")
    assert.equal(4, seen)
  end)

  it("a failed init raises there, and the next thread runs it again", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local tries = eddy.shared.atomic("tries")
      local ok, err = pcall(eddy.init, function()
        if tries:add(1) == 1 then error("first try fails") end
      end)
      print(("thread %d: %s %s"):format(eddy.worker.thread(), tostring(ok), tostring(err)))
    ]], "", "--threads 2")
    assert.equal(0, rc, out)
    assert.matches("first try fails", out)
    assert.matches(": true true", out)
    assert.has_error(function() h.eddy.init(42) end)
  end)
end)

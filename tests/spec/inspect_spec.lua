-- The loop-stall watchdog (eddy.watchdog, --watchdog) and the live task
-- list (eddy.tasks, task:name). The watchdog's warnings go to the log, so
-- its tests run scripts with the eddy command and read what it printed.

local h = require "helper"
local eddy = h.eddy

local function count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

-- A loop that holds the thread for ms milliseconds; eddy.now() keeps it
-- honest about time whether or not the JIT compiles it.
local BUSY = [[
local eddy = require "eddy"
local function busy_loop(ms)
  local t0 = eddy.now()
  while eddy.now() - t0 < ms / 1000 do end
end
]]

describe("the loop-stall watchdog", function()
  it("warns once, with a traceback naming the function, for a 300 ms busy loop", function()
    local rc, out = h.eddy_run(BUSY .. [[
eddy.sleep(0.01)
busy_loop(300)
eddy.sleep(0.01)
print("stalls " .. eddy.watchdog().stalls)
]])
    assert.equal(0, rc, out)
    assert.equal(1, count(out, "loop stalled"), out)
    assert.matches("loop stalled: task 1 has run for %d+ ms without giving the loop back %(resumed from: sleep%)", out)
    assert.matches("in function 'busy_loop'", out)
    assert.matches("gave the loop back after about %d+ ms", out)
    assert.matches("stalls 1", out)
  end)

  it("stays quiet for tasks that give the loop back in time", function()
    local rc, out = h.eddy_run(BUSY .. [[
for i = 1, 20 do busy_loop(5) eddy.sleep(0.001) end
print("stalls " .. eddy.watchdog().stalls)
]])
    assert.equal(0, rc, out)
    assert.equal(0, count(out, "loop stalled"), out)
    assert.matches("stalls 0", out)
  end)

  it("names the task and its last wait, and counts each stall", function()
    local rc, out = h.eddy_run(BUSY .. [[
local t = eddy.spawn(function()
  eddy.sleep(0.01)
  busy_loop(150)
  eddy.sleep(0.01)
  busy_loop(150)
end)
t:name("report builder")
t:join()
print("stalls " .. eddy.watchdog().stalls, "longest " .. eddy.watchdog().longest)
]])
    assert.equal(0, rc, out)
    assert.equal(2, count(out, "loop stalled: task 2 'report builder'"), out)
    assert.matches("stalls 2", out)
    local longest = tonumber(out:match("longest ([%d.]+)"))
    assert.is_true(longest >= 0.1, out)
  end)

  it("is turned off by --watchdog off and by eddy.watchdog(false)", function()
    local rc, out = h.eddy_run(BUSY .. "busy_loop(200)", nil, "--watchdog off")
    assert.equal(0, rc, out)
    assert.equal(0, count(out, "loop stalled"), out)
    rc, out = h.eddy_run(BUSY .. [[
eddy.watchdog(false)
busy_loop(200)
local w = eddy.watchdog()
print(w.threshold, w.abort)
]])
    assert.equal(0, rc, out)
    assert.equal(0, count(out, "loop stalled"), out)
    assert.matches("0%s+0", out)
  end)

  it("takes its threshold from --watchdog and from eddy.watchdog{threshold}", function()
    local rc, out = h.eddy_run(BUSY .. "busy_loop(80)", nil, "--watchdog 30")
    assert.equal(0, rc, out)
    assert.equal(1, count(out, "loop stalled"), out)
    rc, out = h.eddy_run(BUSY .. [[
print(eddy.watchdog{ threshold = 0.5 }.threshold)
busy_loop(200)
]])
    assert.equal(0, rc, out)
    assert.matches("^0.5", out)
    assert.equal(0, count(out, "loop stalled"), out)
  end)

  it("raises an error in a task past the abort limit, and the server keeps serving", function()
    local rc, out = h.eddy_run([[
local eddy = require "eddy"
eddy.watchdog{ abort = 0.15 }
local function spin() local n = 0 while true do n = n + 1 end end
jit.off(spin) -- interpreted: the hook reaches it mid-loop
local srv = eddy.tcp.serve("127.0.0.1", 0, function(conn)
  local line = conn:read_line()
  if line == "spin" then spin() end
  conn:write("echo " .. line .. "\n")
end)
local function ask(line)
  local c = assert(eddy.tcp.connect("127.0.0.1", srv:port()))
  c:write(line .. "\n")
  local r, err = c:read_line({ timeout = 2 })
  c:close()
  return r, err
end
print("spin:", ask("spin"))
print("after:", ask("hello"))
print("aborts " .. eddy.watchdog().aborts)
srv:close()
]])
    assert.equal(0, rc, out)
    assert.matches("held the loop past the watchdog's limit %(150 ms%)", out)
    assert.matches("task held the loop for more than 150 ms %(watchdog%)", out)
    assert.matches("in function 'spin'", out)
    assert.matches("spin:%s+nil%s+closed", out)
    assert.matches("after:%s+echo hello", out)
    assert.matches("aborts 1", out)
  end)

  it("rejects bad settings", function()
    local rc, out = h.sh(h.eddy_bin .. " --watchdog soon -e 1")
    assert.equal(1, rc)
    assert.matches("bad watchdog time: soon", out)
    assert.has_error(function() eddy.watchdog({ threshold = -1 }) end)
  end)
end)

describe("eddy.tasks", function()
  it("lists each live task with its state and what it waits on", function()
    local list = h.run(function()
      local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
        eddy.current():name("conn reader")
        conn:read_line()
        conn:close()
      end))
      local conn = assert(eddy.tcp.connect("127.0.0.1", srv:port()))
      local sleeper = eddy.spawn(function() eddy.sleep(5) end)
      sleeper:name("sleeper")
      local ch = eddy.channel()
      local receiver = eddy.spawn(function() return ch:recv() end)
      eddy.sleep(0.05)
      local queued = eddy.spawn(function() end) -- not run yet
      local list = eddy.tasks({ traceback = true })
      queued:join()
      sleeper:cancel()
      ch:send("done")
      receiver:join()
      conn:close()
      srv:close()
      return list
    end)
    local by_name, states = {}, {}
    for _, t in ipairs(list) do
      if t.name then by_name[t.name] = t end
      states[t.state] = (states[t.state] or 0) + 1
      assert.is_number(t.id)
      assert.is_true(t.age >= 0)
    end
    assert.equal(1, states.running) -- the main task, which asked
    assert.equal(1, states.ready)   -- the queued one
    assert.equal(3, states.blocked)
    assert.equal("blocked", by_name["conn reader"].state)
    assert.equal("tcp read", by_name["conn reader"].waits_on)
    assert.matches("read_line", by_name["conn reader"].traceback)
    assert.equal("sleep", by_name.sleeper.waits_on)
    assert.is_true(by_name.sleeper.age >= 0.04)
    assert.equal("running", list[1].state) -- oldest first: the main task
    assert.is_nil(list[1].waits_on)
    local found_recv = false
    for _, t in ipairs(list) do
      if t.waits_on == "channel recv" then found_recv = true end
    end
    assert.is_true(found_recv)
  end)

  it("leaves tracebacks out unless asked", function()
    local list = h.run(function() return eddy.tasks() end)
    assert.equal(1, #list)
    assert.is_nil(list[1].traceback)
  end)

  it("task:name() sets and reads a name, cut to 23 bytes", function()
    local a, b, c = h.run(function()
      local t = eddy.spawn(function() end)
      local before = t:name()
      t:name(("x"):rep(40))
      local after = t:name()
      t:join()
      return before, after, eddy.current():name("main")
    end)
    assert.is_nil(a)
    assert.equal(("x"):rep(23), b)
    assert.equal("main", c)
  end)
end)

describe("examples/ops/server.lua", function()
  it("shows the watchdog's warning for /slow, its tasks, metrics and access log", function()
    local pid, out = h.start_eddy("examples/ops/server.lua 0")
    local port = h.wait_for(out, "listening port=(%d+)")
    local function get(path)
      local rc, body = h.sh(("curl -sf -m 5 http://127.0.0.1:%s%s"):format(port, path))
      assert.equal(0, rc, body)
      return body
    end
    assert.equal("hello\n", get("/hello"))
    assert.matches("^report: %d+ rounds", get("/slow"))
    assert.matches("task %d+ running", get("/tasks"))
    local text = get("/metrics")
    assert.matches('demo_requests_total{thread="1",route="/slow"} 1', text, 1, true)
    assert.matches('eddy_loop_stalls_total{thread="1"} 1', text, 1, true)
    h.wait_for(out, "path=/metrics")
    h.sh("kill " .. pid)
    h.wait_exit(pid)
    local log = h.read_file(out)
    assert.equal(1, count(log, "loop stalled: task %d+ has run for %d+ ms"), log)
    assert.matches("in function 'build_report'", log)
    assert.matches("access bytes=%d+ method=GET ms=[%d.]+ path=/slow remote=127.0.0.1 service=ops%-demo status=200", log)
  end)
end)

describe("eddy --inspect", function()
  local SERVER = [[
local eddy = require "eddy"
local srv = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
  eddy.current():name("reader")
  conn:read_line()
end))
local c = assert(eddy.tcp.connect("127.0.0.1", srv:port()))
for _ = 1, tonumber(os.getenv("SLEEPERS") or 0) do
  eddy.spawn(function() eddy.sleep(60) end)
end
print("ready " .. eddy.worker.thread())
io.stdout:flush()
eddy.sleep(tonumber(os.getenv("HOLD") or 10))
c:close()
srv:close()
]]

  local function start(options, env)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(SERVER)
    f:close()
    local pid, out = h.start_eddy(options .. " " .. path, env)
    return pid, out, path
  end

  it("lists the tasks of every thread of a program started with --allow-inspect", function()
    local pid, out, path = start("--allow-inspect --threads 2")
    h.wait_for(out, "ready 1")
    h.wait_for(out, "ready 2")
    local rc, text = h.sh(h.eddy_bin .. " --inspect " .. pid)
    local rc2, with_tb = h.sh(h.eddy_bin .. " --inspect-traceback " .. pid)
    h.sh("kill " .. pid)
    h.wait_exit(pid)
    os.remove(path)
    assert.equal(0, rc, text)
    assert.matches("thread 1: %d+ tasks?", text)
    assert.matches("thread 2: %d+ tasks?", text)
    assert.equal(2, count(text, "blocked%s+tcp read%s+age%s+[%d.]+ s%s+'reader'"), text)
    assert.equal(2, count(text, "blocked%s+sleep"), text)
    assert.equal(0, rc2, with_tb)
    assert.matches("in function 'read_line'", with_tb)
  end)

  it("puts together a listing too long for one datagram", function()
    local pid, out, path = start("--allow-inspect --threads 2", "SLEEPERS=20000")
    h.wait_for(out, "ready 1")
    h.wait_for(out, "ready 2")
    local rc, text = h.sh(h.eddy_bin .. " --inspect " .. pid)
    h.sh("kill " .. pid)
    h.wait_exit(pid)
    os.remove(path)
    assert.equal(0, rc, text)
    assert.is_true(#text > 20 * 64 * 1024, #text)
    -- the 20,000 sleepers and the main task's sleep, in each thread: more
    -- parts at once than the inspector's socket holds
    assert.equal(2 * 20001, count(text, "blocked%s+sleep"))
  end)

  it("answers in every run of a Lua state, not only the first", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      local inspect = require "eddy.inspect"
      for run = 1, 3 do
        eddy.run(function()
          inspect.enable()
          local text, err = inspect.query(eddy.shared.pid(), { timeout = 2 })
          print("run " .. run .. ": " .. tostring(text and text:match("thread 1: %d+ tasks?") or err))
        end)
      end
    ]])
    assert.equal(0, rc, out)
    for run = 1, 3 do assert.matches("run " .. run .. ": thread 1: %d+ task", out) end
  end)

  it("is refused by a program that did not allow it", function()
    local pid, out, path = start("")
    h.wait_for(out, "ready 1")
    local rc, text = h.sh(h.eddy_bin .. " --inspect " .. pid)
    h.sh("kill " .. pid)
    h.wait_exit(pid)
    os.remove(path)
    assert.equal(1, rc)
    assert.matches("cannot inspect %d+: not found %(was it started with %-%-allow%-inspect%?%)", text)
  end)
end)

-- eddy.signal and the graceful stop on SIGINT/SIGTERM, with the eddy
-- command run as a process of its own in the background.
local h = require "helper"
local eddy = h.eddy

-- Each script gets arg[1]: a file to create once it is ready (it may hold
-- a port). The shell waits for that file, then runs `steps`.
local PRELUDE = [[
local eddy = require "eddy"
local function ready(text)
  local f = assert(io.open(arg[1] .. ".tmp", "w"))
  f:write(text or "ready")
  f:close()
  os.rename(arg[1] .. ".tmp", arg[1])
end
]]

-- Runs code with `eddy [opts]` in the background, waits until it is ready,
-- runs the shell `steps` ($pid: the eddy process; $port: what ready()
-- wrote; $dir: a scratch folder), waits for the process and returns
-- { rc = its exit status, out = its output, log = what steps printed,
-- elapsed = seconds from just before steps to its exit }.
local function run_script(code, opts, steps)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local script = dir .. "/script.lua"
  local f = assert(io.open(script, "w"))
  f:write(PRELUDE, code)
  f:close()
  local cmd = table.concat({
    "dir=" .. dir,
    string.format("%s %s $dir/script.lua $dir/ready > $dir/out 2>&1 &", h.eddy_bin, opts or ""),
    "pid=$!",
    -- A watchdog, so that a hung eddy fails the test instead of hanging it.
    "sh -c \"for i in \\$(seq 200); do sleep 0.1; kill -0 $pid 2>/dev/null || exit 0; done; " ..
      "kill -KILL $pid\" >/dev/null 2>&1 & wd=$!",
    "i=0; while [ ! -e $dir/ready ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done",
    "port=$(cat $dir/ready 2>/dev/null)",
    "t0=$(date +%s.%N)",
    steps,
    "wait $pid; echo \"rc=$?\"",
    "t1=$(date +%s.%N)",
    "echo \"t0=$t0 t1=$t1\"",
    "kill $wd 2>/dev/null",
  }, "\n")
  local _, log = h.sh(cmd)
  local out = ""
  local of = io.open(dir .. "/out", "rb")
  if of then out = of:read("*a"); of:close() end
  local extra = {}
  for _, name in ipairs({ "nc.out" }) do
    local ef = io.open(dir .. "/" .. name, "rb")
    if ef then extra[name] = ef:read("*a"); ef:close() end
  end
  os.execute("rm -rf " .. dir)
  return {
    rc = tonumber(log:match("rc=(%d+)")),
    out = out,
    log = log,
    elapsed = (tonumber(log:match("t1=([%d%.]+)")) or 0) - (tonumber(log:match("t0=([%d%.]+)")) or 0),
    nc = extra["nc.out"],
  }
end

-- Shell: wait until the file $dir/NAME exists (at most 10 s).
local function wait_file(name)
  return "i=0; while [ ! -e $dir/" .. name .. " ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done"
end

describe("eddy.signal", function()
  it("runs a handler for SIGUSR1 as a task, with the signal's name", function()
    local r = run_script([[
local got = eddy.channel(4)
local handler = eddy.signal.on("usr1", function(name)
  eddy.sleep(0.01) -- a task: it may wait
  got:send(name)
end)
ready()
local name, err = got:recv(10)
print("handled " .. tostring(name or err))
print("cancel " .. tostring(handler:cancel()) .. " " .. tostring(handler:cancel()))
]], nil, "kill -USR1 $pid")
    assert.equal(0, r.rc, r.out .. r.log)
    assert.matches("handled usr1", r.out)
    assert.matches("cancel true false", r.out)
  end)

  it("runs the handler once per delivery and accepts names like 'SIGUSR2'", function()
    local r = run_script([[
local got = eddy.channel(8)
local handler = eddy.signal.on("SIGUSR2", function(name) got:send(name) end)
ready()
local names = {}
for i = 1, 2 do names[i] = tostring((got:recv(10))) end
handler:cancel()
print("names " .. table.concat(names, ","))
]], nil, "kill -USR2 $pid; sleep 0.2; kill -USR2 $pid")
    assert.equal(0, r.rc, r.out .. r.log)
    assert.matches("names usr2,usr2", r.out)
  end)

  it("a handler that raises does not end the program", function()
    local r = run_script([[
local got = eddy.channel(4)
local n = 0
local handler = eddy.signal.on("usr1", function(name)
  n = n + 1
  if n == 1 then error("handler failed on purpose") end
  got:send(n)
end)
ready()
print("second delivery " .. tostring((got:recv(10))))
handler:cancel()
]], nil, "kill -USR1 $pid; sleep 0.2; kill -USR1 $pid")
    assert.equal(0, r.rc, r.out .. r.log)
    assert.matches("handler failed on purpose", r.out)
    assert.matches("second delivery 2", r.out)
  end)

  it("raises on an unknown signal or a missing function", function()
    h.run(function()
      assert.has_error(function() eddy.signal.on("nosuchsignal", function() end) end)
      assert.has_error(function() eddy.signal.on("usr1") end)
    end)
  end)

  it("a handler for 'term' replaces the graceful stop", function()
    local r = run_script([[
local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
srv:serve(function(conn) conn:write("hi\n") end)
local got = eddy.channel(1)
local handler = eddy.signal.on("term", function(name) got:send(name) end)
ready(tostring(srv:port()))
print("handled " .. tostring((got:recv(10))))
io.stdout:flush()
eddy.sleep(0.3) -- still running: the shell checks the server answers
handler:cancel()
srv:close()
print("still running")
eddy.exit(3)
]], nil, table.concat({
      "kill -TERM $pid",
      "sleep 0.1",
      "nc -z -w 2 127.0.0.1 $port; echo \"probe=$?\"",
    }, "\n"))
    assert.equal(3, r.rc, r.out .. r.log)
    assert.matches("handled term", r.out)
    assert.matches("still running", r.out)
    assert.matches("probe=0", r.log)
  end)
end)

describe("graceful stop", function()
  it("SIGTERM stops accepting, lets an in-flight handler finish, then exits 0", function()
    local r = run_script([[
local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
srv:serve(function(conn)
  local line = conn:read_line({ timeout = 10 })
  local f = io.open(arg[1]:gsub("ready$", "accepted"), "w"); f:close()
  eddy.sleep(1)
  conn:write("reply to " .. tostring(line) .. "\n")
  print("handler finished")
  io.stdout:flush()
end)
ready(tostring(srv:port()))
]], nil, table.concat({
      "(printf 'x\\n' | timeout 10 nc -N 127.0.0.1 $port > $dir/nc.out 2>&1) & ncpid=$!",
      wait_file("accepted"),
      "kill -TERM $pid",
      "sleep 0.2",
      -- The listener is closed now, while the handler still runs.
      "nc -z -w 2 127.0.0.1 $port; echo \"probe=$?\"",
      "kill -0 $pid && echo 'alive during grace'",
      "wait $ncpid",
    }, "\n"))
    assert.equal(0, r.rc, r.out .. r.log)
    assert.matches("handler finished", r.out)
    assert.equal("reply to x\n", r.nc)
    assert.matches("probe=1", r.log)
    assert.matches("alive during grace", r.log)
    assert.is_true(r.elapsed < 4.5, "took " .. tostring(r.elapsed)) -- well before the 5 s grace
  end)

  it("SIGINT with nothing running exits 0 at once", function()
    local r = run_script([[
local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
srv:serve(function(conn) conn:write("hi\n") end)
ready(tostring(srv:port()))
]], nil, "kill -INT $pid")
    assert.equal(0, r.rc, r.out .. r.log)
    assert.is_true(r.elapsed < 3, "took " .. tostring(r.elapsed))
  end)

  it("cancels a task that ignores the stop once the grace period is over", function()
    local r = run_script([[
eddy.spawn(function()
  local ok, err = eddy.sleep(60)
  print("sleep ended: " .. tostring(ok) .. " " .. tostring(err))
  -- Cancellation is sticky: cleanup runs but cannot block.
  local ok2, err2 = eddy.sleep(60)
  print("cleanup sleep: " .. tostring(ok2) .. " " .. tostring(err2))
  io.stdout:flush()
end)
ready()
]], "--grace 0.3", "kill -TERM $pid")
    assert.equal(0, r.rc, r.out .. r.log)
    assert.matches("sleep ended: nil cancelled", r.out)
    assert.matches("cleanup sleep: nil cancelled", r.out)
    assert.matches("cancelling", r.out)
    assert.is_true(r.elapsed >= 0.25, "took " .. tostring(r.elapsed))
    assert.is_true(r.elapsed < 5, "took " .. tostring(r.elapsed))
  end)

  it("the main chunk gets the grace period too: finishes in it or is cancelled after it", function()
    local code = [[
ready()
local ok, err = eddy.sleep(tonumber(arg[2]))
print("main sleep " .. tostring(ok) .. " " .. tostring(err))
]]
    -- run_script passes only the ready file: append the duration to it.
    local finishes = run_script(code:gsub("arg%[2%]", "'0.3'"), "--grace 2", "kill -TERM $pid")
    local cancelled = run_script(code:gsub("arg%[2%]", "'60'"), "--grace 0.3", "kill -TERM $pid")
    assert.equal(0, finishes.rc, finishes.out .. finishes.log)
    assert.matches("main sleep true nil", finishes.out)
    assert.equal(0, cancelled.rc, cancelled.out .. cancelled.log)
    assert.matches("main sleep nil cancelled", cancelled.out)
    assert.is_true(cancelled.elapsed < 5, "took " .. tostring(cancelled.elapsed))
  end)

  it("a second SIGINT exits at once with status 130", function()
    local r = run_script([[
eddy.spawn(function() eddy.sleep(60) end)
ready()
]], "--grace 30", "kill -INT $pid; sleep 0.3; kill -INT $pid")
    assert.equal(130, r.rc, r.out .. r.log)
    assert.is_true(r.elapsed < 5, "took " .. tostring(r.elapsed))
  end)

  it("after handler:cancel() SIGINT is eddy's graceful stop again", function()
    local r = run_script([[
local handler = eddy.signal.on("int", function() print("should not run") end)
handler:cancel()
eddy.spawn(function() eddy.sleep(0.3); print("finished in grace"); io.stdout:flush() end)
ready()
]], nil, "kill -INT $pid")
    assert.equal(0, r.rc, r.out .. r.log)
    assert.matches("finished in grace", r.out)
    assert.not_matches("should not run", r.out)
  end)
end)

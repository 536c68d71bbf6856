-- Runs every example in examples/ the way its header says to, and checks
-- what it prints and how it ends.
local h = require "helper"

local eddy_bin = h.eddy_bin

-- Starts eddy with args in the background, its output in a file; returns
-- eddy's own pid, the output file and a file where its exit status lands
-- ("rc=N"). The pid is eddy's, not a wrapper's, so that a signal reaches
-- it without pkill (which, run under the sanitizer preload, can hang).
local function start_eddy(args)
  local out, status = os.tmpname(), os.tmpname()
  local f = assert(io.popen(("sh -c '%s %s > %s 2>&1 & echo $!; wait $!; echo rc=$? > %s' &")
    :format(eddy_bin, args, out, status)))
  local pid = tonumber(f:read("*l"))
  f:close()
  return pid, out, status
end

local function read_file(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Waits (up to 5 s) until the file contains pattern; returns its capture.
local function wait_for(path, pattern)
  for _ = 1, 100 do
    local cap = read_file(path):match(pattern)
    if cap then return cap end
    os.execute("sleep 0.05")
  end
  error("never saw " .. pattern .. " in:\n" .. read_file(path))
end

-- Waits (up to 10 s) for a background pid to end. Its exit status comes
-- back through the file its wrapping shell writes.
local function wait_exit(pid)
  for _ = 1, 200 do
    if h.sh("kill -0 " .. pid) ~= 0 then return end
    os.execute("sleep 0.05")
  end
  error("process " .. pid .. " did not end")
end

describe("examples", function()
  it("hello.lua serves lines until SIGINT, then exits 0", function()
    local pid, out, status = start_eddy("examples/hello.lua 0")
    local port = wait_for(out, "listening on 127%.0%.0%.1:(%d+)")
    local rc, reply = h.sh("printf 'hello there\\nquit\\n' | nc -q1 127.0.0.1 " .. port)
    assert.equal(0, rc)
    assert.matches("hello from eddy", reply)
    assert.matches("HELLO THERE\nbye", reply)
    h.sh("kill -INT " .. pid)
    wait_exit(pid)
    wait_for(status, "rc=%d+")
    assert.equal("rc=0", read_file(status):match("rc=%d+"))
    assert.matches("left", read_file(out))
    os.remove(out) os.remove(status)
  end)

  it("echo.lua echoes every line of 50 clients", function()
    local rc, out = h.sh(eddy_bin .. " examples/echo.lua")
    assert.equal(0, rc)
    assert.matches("50 clients, 1000 lines echoed", out)
  end)

  it("pipeline.lua sums squares through channels", function()
    local rc, out = h.sh(eddy_bin .. " examples/pipeline.lua")
    assert.equal(0, rc)
    assert.matches("100 results, sum of squares 338350", out)
  end)

  it("udp.lua echoes datagrams and times out on the dropped one", function()
    local rc, out = h.sh(eddy_bin .. " examples/udp.lua")
    assert.equal(0, rc)
    assert.matches("stressed\t%->\tdesserts", out)
    assert.matches("drawer\t%->\treward", out)
    assert.matches("drop me\t%->\t%(timeout%)", out)
  end)

  it("resolve.lua resolves names and reports the missing one", function()
    local rc, out = h.sh(eddy_bin .. " examples/resolve.lua localhost ::1 no-such-host.invalid")
    assert.equal(0, rc)
    assert.matches("localhost%s+127%.0%.0%.1", out)
    assert.matches("::1%s+::1", out)
    assert.matches("no%-such%-host%.invalid%s+not found", out)
  end)

  it("signals.lua answers USR1 and stops on TERM", function()
    local pid, out, status = start_eddy("examples/signals.lua")
    local epid = wait_for(out, "pid (%d+):")
    os.execute("sleep 0.25")
    h.sh("kill -USR1 " .. epid)
    wait_for(out, "up [%d.]+ s, %d+ heartbeats")
    h.sh("kill -TERM " .. epid)
    wait_for(status, "rc=%d+")
    assert.equal("rc=0", read_file(status):match("rc=%d+"))
    assert.matches("got SIGTERM, goodbye", read_file(out))
    wait_exit(pid)
    os.remove(out) os.remove(status)
  end)

  it("chat/server.lua: a message typed in one browser appears in another", function()
    local pid, out, status = start_eddy("examples/chat/server.lua 0")
    local port = wait_for(out, "chat on http://127%.0%.0%.1:(%d+)/")
    local rc, got = h.sh("node tests/node/chat_browser.js http://127.0.0.1:" .. port .. "/")
    h.sh("kill -INT " .. pid)
    wait_exit(pid)
    assert.equal(0, rc, got)
    assert.matches("^ok", got)
    wait_for(status, "rc=%d+")
    assert.equal("rc=0", read_file(status):match("rc=%d+"))
    os.remove(out) os.remove(status)
  end)

  it("embed/host.c runs a script with a host function and stops it", function()
    local rc, out = h.sh("./" .. h.build .. "/examples/host examples/embed/app.lua 0.3")
    assert.equal(0, rc)
    assert.matches("hello, eddy %(from the host%)", out)
    assert.matches("tick 2", out)
    assert.matches("host: the runtime stopped cleanly", out)
  end)
end)

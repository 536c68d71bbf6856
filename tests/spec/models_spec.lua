-- The three server models of examples/models/ (pre-forked workers, a thread
-- per connection, eddy's reactor): each is started on a free port, must
-- answer plain, split, concurrent and garbage requests the same way, and
-- must end with status 0 on SIGTERM, leaving no worker process behind.
local h = require "helper"

local read_file, wait_for, wait_exit = h.read_file, h.wait_for, h.wait_exit

local DIR = h.build .. "/models"
local REPLY = "hello\n 200" -- the body, then curl's -w ' %{http_code}'

-- Starts cmd in the background, like h.start_eddy: returns the program's
-- own pid, the file its output goes to and a file its exit status lands in.
local function start(cmd)
  local out, status = os.tmpname(), os.tmpname()
  local f = assert(io.popen(
    ("sh -c '%s > %s 2>&1 & echo $!; wait $!; echo rc=$? > %s' &")
    :format(cmd, out, status)))
  local pid = tonumber(f:read("*l"))
  f:close()
  return pid, out, status
end

local function get(port)
  local _, out = h.sh(("curl -s -m 5 -w ' %%{http_code}' http://127.0.0.1:%d/")
    :format(port))
  return out
end

local function count(s, plain)
  local n, at = 0, 1
  while true do
    local i = s:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + #plain
  end
end

local models = {
  { name = "prefork.c", cmd = "./" .. DIR .. "/prefork", workers = 5 },
  { name = "thread.c", cmd = "./" .. DIR .. "/thread" },
  { name = "reactor.lua", cmd = h.eddy_bin .. " examples/models/reactor.lua" },
}

describe("examples/models", function()
  setup(function()
    local cc = "cc -std=c11 -O2 -Wall -Wextra -Werror -pthread -o " .. DIR
    local rc, out = h.sh("mkdir -p " .. DIR ..
      " && " .. cc .. "/prefork examples/models/prefork.c" ..
      " && " .. cc .. "/thread examples/models/thread.c")
    assert(rc == 0, out)
  end)

  for _, m in ipairs(models) do
    it(m.name .. " answers, survives garbage, stops on SIGTERM", function()
      local pid, out, status = start(m.cmd .. " 0")
      local workers
      finally(function() -- a no-op once the server has stopped as it should
        h.sh("kill -KILL " .. pid .. " " .. table.concat(workers or {}, " "))
        os.remove(out) os.remove(status)
      end)
      local port = tonumber(wait_for(out, "listening on 127%.0%.0%.1:(%d+)"))

      if m.workers then
        local _, list = h.sh("pgrep -P " .. pid)
        workers = {}
        for w in list:gmatch("%d+") do workers[#workers + 1] = w end
        assert.equal(m.workers, #workers)
      end

      for _ = 1, 5 do assert.equal(REPLY, get(port)) end

      -- The blank line split across two writes, inside "\r\n\r\n".
      local _, split = h.sh(("(printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n';" ..
        " sleep 0.2; printf '\\r\\n') | timeout 5 nc -N 127.0.0.1 %d")
        :format(port))
      assert.matches("^HTTP/1%.1 200 OK\r\n.*\r\n\r\nhello\n$", split)

      -- 20 at once; each reply is printed in one write, so none interleave.
      local _, many = h.sh(("seq 20 | xargs -P 20 -I{} sh -c" ..
        " 'printf \"%%s|\\n\" \"$(curl -s -m 5 -w \" %%{http_code}\"" ..
        " http://127.0.0.1:%d/)\"'"):format(port))
      assert.equal(20, count(many, REPLY .. "|"), many)

      -- 100 KB without a blank line: refused and closed, the server lives.
      local rc = h.sh(("{ yes garbage | head -c 100000; } 2>/dev/null |" ..
        " timeout 5 nc -N 127.0.0.1 %d"):format(port))
      assert.are_not.equal(124, rc, "the garbage connection stayed open")
      -- A client that leaves before its request is complete.
      h.sh(("printf 'GET / HTTP/1.1\\r\\n' | nc -q0 127.0.0.1 %d"):format(port))
      for _ = 1, 3 do assert.equal(REPLY, get(port)) end

      h.sh("kill -TERM " .. pid)
      wait_exit(pid)
      wait_for(status, "rc=%d+")
      assert.equal("rc=0", read_file(status):match("rc=%d+"))
      if workers then
        for _, w in ipairs(workers) do
          local alive = h.sh("kill -0 " .. w) == 0
          assert.is_false(alive, "worker " .. w .. " left behind")
        end
        assert.are_not.equal(0, (h.sh("pgrep -P " .. pid)))
      end
    end)
  end
end)

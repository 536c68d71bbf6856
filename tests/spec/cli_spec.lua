-- The `eddy` command: options, scripts and their arguments, exit statuses
-- and what it prints when things go wrong.
local h = require "helper"
local eddy = h.eddy

local EDDY = h.eddy_bin

-- Writes code to a temporary file; returns its path.
local function script(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  return path
end

-- Runs a shell command; returns its status and its standard error only.
local function stderr_of(cmd)
  return h.sh("(" .. cmd .. " 2>&1 >/dev/null)")
end

-- Runs a shell command; returns its status and its standard output only.
local function stdout_of(cmd)
  return h.sh("(" .. cmd .. " 2>/dev/null)")
end

describe("the eddy command", function()
  local made = {}
  local function tmp(code)
    local path = script(code)
    made[#made + 1] = path
    return path
  end
  after_each(function()
    for _, p in ipairs(made) do os.remove(p) end
    made = {}
  end)

  describe("options", function()
    it("--version and -v print the version and exit 0", function()
      for _, opt in ipairs({ "--version", "-v" }) do
        local rc, out = stdout_of(EDDY .. " " .. opt)
        assert.equal(0, rc)
        assert.equal("eddy " .. eddy._VERSION .. "\n", out)
      end
    end)

    it("--help and -h print the usage on standard output and exit 0", function()
      for _, opt in ipairs({ "--help", "-h" }) do
        local rc, out = stdout_of(EDDY .. " " .. opt)
        assert.equal(0, rc)
        assert.matches("^usage: eddy", out)
        assert.matches("%-e code", out)
      end
    end)

    it("an unknown option fails with status 1 and names it on standard error", function()
      local rc, err = stderr_of(EDDY .. " --no-such-option")
      assert.equal(1, rc)
      assert.matches("unknown option: %-%-no%-such%-option", err)
      local out
      rc, out = stdout_of(EDDY .. " --no-such-option")
      assert.equal(1, rc)
      assert.equal("", out)
    end)

    it("with nothing to run it prints the usage on standard error and fails", function()
      local rc, err = stderr_of(EDDY)
      assert.equal(1, rc)
      assert.matches("usage: eddy", err)
    end)

    it("an option that needs a value fails without one", function()
      local rc, err = stderr_of(EDDY .. " -e")
      assert.equal(1, rc)
      assert.matches("%-e needs an argument", err)
      rc = h.sh(EDDY .. " --grace nope -e 'print(1)'")
      assert.equal(1, rc)
    end)
  end)

  describe("running code", function()
    it("runs a script with the arg table and ... set from its arguments", function()
      local path = tmp([[
        print(arg[0], arg[1], arg[2], #arg)
        print(select("#", ...), ...)
      ]])
      local rc, out = stdout_of(EDDY .. " " .. path .. " one 'two words'")
      assert.equal(0, rc)
      assert.equal(path .. "\tone\ttwo words\t2\n2\tone\ttwo words\n", out)
    end)

    it("a script's arguments may look like options", function()
      local path = tmp("print(...)")
      local rc, out = stdout_of(EDDY .. " " .. path .. " -x --version")
      assert.equal(0, rc)
      assert.equal("-x\t--version\n", out)
      rc, out = stdout_of(EDDY .. " -- " .. path .. " -e")
      assert.equal(0, rc)
      assert.equal("-e\n", out)
    end)

    it("-e runs code as a main chunk; several run in order", function()
      local rc, out = stdout_of(EDDY .. " -e 'print(1 + 1)'")
      assert.equal(0, rc)
      assert.equal("2\n", out)
      rc, out = stdout_of(EDDY .. " -e 'x = 20' -e 'print(x + 1)'")
      assert.equal(0, rc)
      assert.equal("21\n", out)
    end)

    it("- reads the script from standard input", function()
      local rc, out = stdout_of("echo 'print(\"from stdin\")' | " .. EDDY .. " -")
      assert.equal(0, rc)
      assert.equal("from stdin\n", out)
    end)

    it("the script is a task: it can sleep, spawn and join", function()
      local rc, out = h.eddy_run([[
        local eddy = require "eddy"
        local t = eddy.spawn(function(a) eddy.sleep(0.01); return a * 2 end, 21)
        print(t:join())
      ]])
      assert.equal(0, rc)
      assert.equal("true\t42\n", out)
    end)

    it("the program ends once the main chunk and every task are done", function()
      local rc, out = h.eddy_run([[
        local eddy = require "eddy"
        eddy.spawn(function() eddy.sleep(0.02); print("task") end)
        eddy.timer.after(0.04, function() print("timer") end)
        print("main")
      ]])
      assert.equal(0, rc)
      assert.equal("main\ntask\ntimer\n", out)
    end)

    it("eddy.run in a script simply runs fn", function()
      local rc, out = h.eddy_run([[
        local eddy = require "eddy"
        print(eddy.run(function(a) eddy.sleep(0.001); return a + 1 end, 41))
      ]])
      assert.equal(0, rc)
      assert.equal("42\n", out)
    end)

    it("user coroutines and require work from the first line", function()
      local rc, out = h.eddy_run([[
        local eddy = require "eddy"
        local gen = coroutine.wrap(function()
          for i = 1, 3 do eddy.sleep(0.001); coroutine.yield(i) end
        end)
        local s = 0
        for v in gen do s = s + v end
        print(s, require("string") == string)
      ]])
      assert.equal(0, rc)
      assert.equal("6\ttrue\n", out)
    end)
  end)

  describe("exit status and errors", function()
    it("an error in the main chunk: status 1, the error and its traceback on standard error", function()
      local path = tmp([[
        local eddy = require "eddy"
        eddy.sleep(0.001)
        error("main chunk failed")
        print("not reached")
      ]])
      local rc, err = stderr_of(EDDY .. " " .. path)
      assert.equal(1, rc)
      assert.matches(":3: main chunk failed", err)
      assert.matches("stack traceback:", err)
      local out
      rc, out = stdout_of(EDDY .. " " .. path)
      assert.equal(1, rc)
      assert.equal("", out)
    end)

    it("an error in -e code fails with status 1 as well", function()
      local rc, err = stderr_of(EDDY .. " -e 'error(\"boom\")'")
      assert.equal(1, rc)
      assert.matches("boom", err)
    end)

    it("a main chunk error ends the program even while tasks wait", function()
      local t0 = os.time()
      local rc, out = h.eddy_run([[
        local eddy = require "eddy"
        eddy.spawn(function() eddy.sleep(5); print("task not reached") end)
        eddy.sleep(0.01)
        error("bail out")
      ]])
      assert.equal(1, rc)
      assert.matches("bail out", out)
      assert.not_matches("not reached", out)
      assert.is_true(os.time() - t0 < 4)
    end)

    it("a syntax error or a missing script fails with status 1", function()
      local path = tmp("x = = 1")
      local rc, err = stderr_of(EDDY .. " " .. path)
      assert.equal(1, rc)
      assert.matches("unexpected symbol", err)
      rc, err = stderr_of(EDDY .. " /nonexistent/eddy_spec_missing.lua")
      assert.equal(1, rc)
      assert.matches("cannot open /nonexistent/eddy_spec_missing%.lua", err)
    end)

    it("a deadlock: status 1 and 'deadlock:' naming the wait on standard error", function()
      local path = tmp([[
        local eddy = require "eddy"
        local ch = eddy.channel()
        ch:recv()
      ]])
      local rc, err = stderr_of(EDDY .. " " .. path)
      assert.equal(1, rc)
      assert.matches("deadlock: 1 task waiting", err)
      assert.matches("task %d+ waits on channel recv at [^\n]*:3", err)
    end)

    it("eddy.exit(n) ends at once with status n, even while tasks wait", function()
      local t0 = os.time()
      local rc, out = h.eddy_run([[
        local eddy = require "eddy"
        eddy.spawn(function() eddy.sleep(5); print("task not reached") end)
        eddy.sleep(0.01)
        eddy.exit(7)
        print("main not reached")
      ]])
      assert.equal(7, rc)
      assert.equal("", out)
      assert.is_true(os.time() - t0 < 4)
    end)

    it("eddy.exit from a spawned task; eddy.exit() is status 0", function()
      local rc, out = h.eddy_run([[
        local eddy = require "eddy"
        eddy.spawn(function() eddy.sleep(0.01); eddy.exit(3) end)
        eddy.sleep(5)
        print("not reached")
      ]])
      assert.equal(3, rc)
      assert.equal("", out)
      rc, out = h.eddy_run([[
        local eddy = require "eddy"
        local ch = eddy.channel()
        eddy.spawn(function() ch:recv() end)
        eddy.exit()
      ]])
      assert.equal(0, rc)
      assert.equal("", out)
    end)

    it("a failing task is logged as 'eddy: error: task N failed' and the program goes on", function()
      local path = tmp([[
        local eddy = require "eddy"
        local t = eddy.spawn(function() error("task went wrong") end)
        eddy.sleep(0.01)
        print("after", (t:join()))
      ]])
      local rc, err = stderr_of(EDDY .. " " .. path)
      assert.equal(0, rc)
      assert.matches("^eddy: error: task %d+ failed: [^\n]*:2: task went wrong", err)
      assert.matches("stack traceback:", err)
      local out
      rc, out = stdout_of(EDDY .. " " .. path)
      assert.equal(0, rc)
      assert.equal("after\tfalse\n", out)
    end)
  end)
end)

-- eddy.reactor: watching raw file descriptors (socket pairs made and read
-- through the FFI, as a C library would) with callbacks run as tasks.
local h = require "helper"
local eddy = h.eddy
local ffi = require "ffi"

pcall(ffi.cdef, [[
  int socketpair(int domain, int type, int protocol, int sv[2]);
  long read(int fd, void *buf, unsigned long n);
  long write(int fd, const void *buf, unsigned long n);
  int close(int fd);
  int open(const char *path, int flags);
]])

local AF_UNIX, SOCK_STREAM = 1, 1

local function socketpair()
  local sv = ffi.new("int[2]")
  assert(ffi.C.socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0)
  return sv[0], sv[1]
end

local buf = ffi.new("char[65536]")
local function read_fd(fd)
  local n = tonumber(ffi.C.read(fd, buf, 65536))
  return n > 0 and ffi.string(buf, n) or nil
end
local function write_fd(fd, s)
  return tonumber(ffi.C.write(fd, s, #s))
end

describe("eddy.reactor", function()
  it("runs the callback as a task when the descriptor is readable", function()
    local a, b = socketpair()
    local got = {}
    h.run(function()
      local w
      w = assert(eddy.reactor.add(a, "r", function(watcher, events)
        assert.equal(w, watcher)
        assert.equal("r", events)
        assert.is_not_nil(eddy.current()) -- a task: it may wait
        eddy.sleep(0)
        got[#got + 1] = read_fd(watcher:fd())
        if #got == 2 then watcher:del() end
      end))
      assert.equal(a, w:fd())
      assert.equal("r", w:events())
      write_fd(b, "first")
      eddy.sleep(0.02)
      write_fd(b, "second")
    end)
    assert.same({ "first", "second" }, got)
    ffi.C.close(a)
    ffi.C.close(b)
  end)

  it("runs one callback at a time, and again while data stays unread", function()
    local a, b = socketpair()
    local running, most, calls = 0, 0, 0
    h.run(function()
      eddy.reactor.add(a, "r", function(w)
        calls = calls + 1
        running = running + 1
        most = math.max(most, running)
        eddy.sleep(0.02) -- the data is still unread meanwhile
        running = running - 1
        if calls == 3 then
          read_fd(a)
          w:del()
        end
      end)
      write_fd(b, "x")
    end)
    assert.equal(3, calls)
    assert.equal(1, most)
    ffi.C.close(a)
    ffi.C.close(b)
  end)

  it("reports writability, and set changes what it watches for", function()
    local a, b = socketpair()
    local seen = {}
    h.run(function()
      local w = assert(eddy.reactor.add(a, "w", function(w, events)
        seen[#seen + 1] = events
        if #seen == 1 then
          assert.is_true(w:set("r")) -- nothing to read yet: quiet
          eddy.spawn(function()
            eddy.sleep(0.02)
            write_fd(b, "now")
          end)
        else
          assert.equal("now", read_fd(a))
          w:del()
        end
      end))
      assert.equal("w", w:events())
    end)
    assert.same({ "w", "r" }, seen)
    ffi.C.close(a)
    ffi.C.close(b)
  end)

  it("watches for nothing after set(\"\") until set again", function()
    local a, b = socketpair()
    local calls = 0
    h.run(function()
      local w = eddy.reactor.add(a, "r", function(w)
        calls = calls + 1
        read_fd(a)
      end)
      assert.is_true(w:set(""))
      assert.equal("", w:events())
      write_fd(b, "ignored for now")
      eddy.sleep(0.03)
      assert.equal(0, calls)
      w:set("rw")
      assert.equal("rw", w:events())
      eddy.sleep(0.03)
      assert.is_true(calls >= 1)
      assert.is_true(w:del())
    end)
    ffi.C.close(a)
    ffi.C.close(b)
  end)

  it("keeps the run going until deleted, and del leaves the descriptor open", function()
    local a, b = socketpair()
    local t0 = eddy.now()
    h.run(function()
      local w = eddy.reactor.add(a, "r", function() end)
      eddy.timer.after(0.05, function()
        assert.is_true(w:del())
        assert.is_false(w:del())
        assert.equal("", w:events())
        assert.matches("deleted", tostring(w))
      end)
    end)
    assert.is_true(eddy.now() - t0 >= 0.04)
    assert.equal(2, write_fd(b, "ok")) -- both ends still open
    assert.equal("ok", read_fd(a))
    ffi.C.close(a)
    ffi.C.close(b)
  end)

  it("survives a callback that raises, and calls again", function()
    local a, b = socketpair()
    local calls = 0
    h.run(function()
      eddy.reactor.add(a, "r", function(w)
        calls = calls + 1
        read_fd(a)
        if calls == 1 then error("callback fails") end
        w:del()
      end)
      write_fd(b, "1")
      eddy.sleep(0.02)
      write_fd(b, "2")
    end)
    assert.equal(2, calls)
    ffi.C.close(a)
    ffi.C.close(b)
  end)

  it("answers nil, err for a descriptor it cannot watch, and raises on bad arguments", function()
    local fd = ffi.C.open("/etc/hostname", 0)
    assert.is_true(fd >= 0)
    h.run(function()
      local w, err = eddy.reactor.add(fd, "r", function() end)
      assert.is_nil(w)
      assert.equal("invalid argument", err)
    end)
    ffi.C.close(fd)
    assert.has_error(function() eddy.reactor.add(0, "x", function() end) end)
    assert.has_error(function() eddy.reactor.add(0, "", function() end) end)
    assert.has_error(function() eddy.reactor.add(-1, "r", function() end) end)
    assert.has_error(function() eddy.reactor.add(0, "r") end)
  end)

  it("answers nil, \"busy\" for a descriptor another watcher has, even while its callback runs", function()
    local a, b = socketpair()
    local calls, during = 0, nil
    h.run(function()
      local w1
      w1 = assert(eddy.reactor.add(a, "r", function()
        calls = calls + 1
        -- paused while this runs: a second watcher would take its events
        during = { eddy.reactor.add(a, "r", function() end) }
        read_fd(a)
        w1:del()
      end))
      assert.same({ nil, "busy" }, { eddy.reactor.add(a, "w", function() end) })
      write_fd(b, "x")
      eddy.sleep(0.03)
      -- once deleted, the descriptor may be watched again
      local w2 = assert(eddy.reactor.add(a, "r", function(w)
        calls = calls + 1
        read_fd(a)
        w:del()
      end))
      write_fd(b, "y")
      eddy.sleep(0.03)
      assert.equal("", w2:events())
    end)
    assert.same({ nil, "busy" }, during)
    assert.equal(2, calls)
    ffi.C.close(a)
    ffi.C.close(b)
  end)

  it("runs the example over a pipe", function()
    local rc, out = h.sh("(echo one; sleep 0.1; echo two) | " .. h.eddy_bin .. " examples/reactor.lua")
    assert.equal(0, rc, out)
    assert.matches("ONE\nTWO\n2 lines; the timer ticked %d+ times meanwhile", out)
    rc, out = h.sh(h.eddy_bin .. " examples/reactor.lua < /etc/hostname")
    assert.equal(0, rc, out)
    assert.matches("cannot watch standard input: invalid argument", out)
  end)
end)

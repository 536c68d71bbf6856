-- eddy.fs: files and directories on libuv's threadpool: whole-file and
-- streamed reads and writes, the system's reasons for failures, closed
-- files, cancellation, large files, watching, and the example.
local h = require "helper"
local eddy = h.eddy

-- Runs fn(dir) in a fresh loop with a temporary directory, removed after.
local function with_dir(fn)
  return h.run(function()
    local fs = eddy.fs
    local dir = assert(fs.tmpdir({ prefix = "eddy-fs-spec-" }))
    local ok, a, b, c = pcall(fn, dir, fs)
    assert(fs.remove(dir, { recursive = true }))
    if not ok then error(a, 0) end
    return a, b, c
  end)
end

-- The descriptors this process has open.
local function open_fds()
  local n = 0
  for _ in io.popen("ls /proc/" .. h.eddy.shared.pid() .. "/fd"):lines() do n = n + 1 end
  return n
end

describe("eddy.fs", function()
  it("answers nil, 'not found' for a missing file", function()
    local r = with_dir(function(dir, fs)
      return { { fs.read_file(dir .. "/missing") }, { fs.open(dir .. "/missing") },
               { fs.stat(dir .. "/missing") }, { fs.list(dir .. "/missing") },
               { fs.remove(dir .. "/missing") }, { fs.rename(dir .. "/missing", dir .. "/x") } }
    end)
    for i = 1, #r do
      assert.same({ nil, "not found" }, r[i])
    end
  end)

  it("answers the system's reason for other failures", function()
    local r = with_dir(function(dir, fs)
      assert(fs.write_file(dir .. "/file", "x"))
      assert(fs.mkdir(dir .. "/sub"))
      assert(fs.write_file(dir .. "/sub/inside", "y"))
      return {
        -- Root may write anywhere the modes say no, but not into a sysctl
        -- that is read-only for everyone.
        denied = { fs.write_file("/proc/sys/kernel/ostype", "x") },
        isdir = { fs.open(dir .. "/sub", "w") },
        notdir = { fs.read_file(dir .. "/file/below") },
        exists = { fs.mkdir(dir .. "/sub") },
        excl = { fs.open(dir .. "/file", "wx") },
        notempty = { fs.remove(dir .. "/sub") },
      }
    end)
    assert.same({ nil, "permission denied" }, r.denied)
    assert.same({ nil, "is a directory" }, r.isdir)
    assert.same({ nil, "not a directory" }, r.notdir)
    assert.same({ nil, "already exists" }, r.exists)
    assert.same({ nil, "already exists" }, r.excl)
    assert.same({ nil, "not empty" }, r.notempty)
  end)

  it("writes, appends and reads whole files, bytes as they are", function()
    local r = with_dir(function(dir, fs)
      local bin = "a\0b\r\n\255" .. string.rep("z", 100000)
      assert(fs.write_file(dir .. "/bin", bin))
      local back = fs.read_file(dir .. "/bin")
      assert(fs.write_file(dir .. "/bin", "short"))
      local short = fs.read_file(dir .. "/bin")
      assert(fs.append(dir .. "/log", "one\n"))
      assert(fs.append(dir .. "/log", "two\n"))
      return { same = back == bin, short = short, log = fs.read_file(dir .. "/log"),
               empty = fs.read_file("/dev/null") }
    end)
    assert.is_true(r.same)
    assert.equal("short", r.short)
    assert.equal("one\ntwo\n", r.log)
    assert.equal("", r.empty)
  end)

  it("replaces a file atomically, keeping its permissions, leaving no temporary file", function()
    local r = with_dir(function(dir, fs)
      local path = dir .. "/conf"
      assert(fs.write_file(path, "old", { perm = tonumber("600", 8) }))
      assert(fs.write_file(path, "new", { atomic = true }))
      local fresh = dir .. "/fresh"
      assert(fs.write_file(fresh, "x", { atomic = true, perm = tonumber("640", 8) }))
      local names = {}
      for _, e in ipairs(fs.list(dir)) do names[#names + 1] = e.name end
      return { data = fs.read_file(path), perm = fs.stat(path).perm,
               fresh_perm = fs.stat(fresh).perm, names = names,
               missing_dir = { fs.write_file(dir .. "/no/such", "x", { atomic = true }) } }
    end)
    assert.equal("new", r.data)
    assert.equal(tonumber("600", 8), r.perm)
    assert.equal(tonumber("640", 8), r.fresh_perm)
    assert.same({ "conf", "fresh" }, r.names)
    assert.same({ nil, "not found" }, r.missing_dir)
  end)

  it("opens files to read, write, seek, sync, truncate and stat", function()
    local r = with_dir(function(dir, fs)
      local path = dir .. "/f"
      local f = assert(fs.open(path, "w+"))
      assert(f:write("hello world"))
      local pos = f:position()
      assert.equal(0, f:seek("set"))
      local five = f:read(5)
      local rest = f:read()
      local at_end = f:read(10)
      assert.equal(6, f:seek("set", 6))
      assert(f:write("WORLD"))
      assert.equal(3, f:seek("end", -8))
      local mid = f:read(2)
      assert.equal(7, f:seek("cur", 2))
      assert(f:sync())
      local st = f:stat()
      assert(f:truncate(5))
      assert(f:close())
      local a = assert(fs.open(path, "a+"))
      a:seek("set", 0)
      assert(a:write("!")) -- append mode: at the end, wherever the position
      local head = a:read(3)
      a:close()
      return { pos = pos, five = five, rest = rest, at_end = at_end, mid = mid,
               size = st.size, type = st.type, data = fs.read_file(path), head = head }
    end)
    assert.equal(11, r.pos)
    assert.equal("hello", r.five)
    assert.equal(" world", r.rest)
    assert.equal("", r.at_end)
    assert.equal("lo", r.mid)
    assert.equal(11, r.size)
    assert.equal("file", r.type)
    assert.equal("hello!", r.data)
    assert.equal("hel", r.head)
  end)

  it("answers nil, 'closed' on a closed file and raises on misuse", function()
    local r = with_dir(function(dir, fs)
      local f = assert(fs.open(dir .. "/f", "w"))
      local ro = assert(fs.open(dir .. "/f", "r"))
      local misuse = {
        write_ro = pcall(ro.write, ro, "x"),
        read_wo = pcall(f.read, f, 1),
        mode = pcall(fs.open, dir .. "/f", "q"),
        zero = pcall(fs.stat, "a\0b"),
      }
      ro:close()
      assert(f:close())
      return { misuse = misuse, tostring = tostring(f),
               results = { { f:close() }, { f:read(1) }, { f:write("x") }, { f:seek("set") },
                           { f:sync() }, { f:stat() } } }
    end)
    for k, v in pairs(r.misuse) do assert.is_false(v, k) end
    assert.equal("eddy.fs.file (closed)", r.tostring)
    for i = 1, #r.results do assert.same({ nil, "closed" }, r.results[i]) end
    assert.has_error(function() eddy.fs.open("/dev/null") end) -- outside a task
  end)

  it("closes a forgotten file when it is collected, and any open at the loop's end", function()
    local before = open_fds()
    local during = with_dir(function(dir, fs)
      for i = 1, 20 do assert(fs.open(dir .. "/f" .. i, "w")) end
      local n = open_fds()
      collectgarbage()
      collectgarbage()
      eddy.sleep(0.05) -- the closes run on the threadpool
      return { n = n, after_gc = open_fds() }
    end)
    assert.is_true(during.n >= before + 20)
    assert.is_true(during.after_gc < during.n - 15)
    -- A file still referenced when the loop ends is closed by it.
    local kept
    with_dir(function(dir, fs) kept = assert(fs.open(dir .. "/kept", "w")) end)
    assert.is_true(kept:closed())
  end)

  it("stats, lists, renames and removes; makes directories with parents", function()
    local r = with_dir(function(dir, fs)
      assert(fs.mkdir(dir .. "/a/b/c", { parents = true }))
      assert(fs.mkdir(dir .. "/a/b/c/", { parents = true })) -- exists: fine
      assert(fs.write_file(dir .. "/a/file", "12345"))
      assert(fs.write_file(dir .. "/a/b/c/deep", "x"))
      h.sh("ln -s file " .. dir .. "/a/link")
      local list = fs.list(dir .. "/a")
      local st, lst = fs.stat(dir .. "/a/link"), fs.lstat(dir .. "/a/link")
      assert(fs.rename(dir .. "/a/file", dir .. "/a/renamed"))
      local exists = { fs.exists(dir .. "/a/renamed"), fs.exists(dir .. "/a/file"),
                       fs.exists(dir .. "/a/renamed/x") }
      local dir_st = fs.stat(dir .. "/a/b")
      local rm = { fs.remove(dir .. "/a/b") }
      assert(fs.remove(dir .. "/a/b", { recursive = true }))
      assert(fs.remove(dir .. "/a/link"))
      local after = fs.list(dir .. "/a")
      return { list = list, st = st, lst = lst, exists = exists, dir_type = dir_st.type,
               rm = rm, after = after }
    end)
    assert.same({ { name = "b", type = "directory" }, { name = "file", type = "file" },
                  { name = "link", type = "link" } }, r.list)
    assert.equal("file", r.st.type)
    assert.equal(5, r.st.size)
    assert.equal("link", r.lst.type)
    assert.is_true(r.st.mtime > 1e9)
    assert.same({ true, false, false }, r.exists)
    assert.equal("directory", r.dir_type)
    assert.same({ nil, "not empty" }, r.rm)
    assert.same({ { name = "renamed", type = "file" } }, r.after)
  end)

  it("makes temporary files and directories", function()
    local r = with_dir(function(dir, fs)
      local f, path = assert(fs.tmpfile({ dir = dir, prefix = "t-" }))
      assert(f:write("temp"))
      f:seek("set", 0)
      local back = f:read()
      f:close()
      local sub = assert(fs.tmpdir({ dir = dir }))
      return { path = path, back = back, perm = fs.stat(path).perm, sub = fs.stat(sub).type }
    end)
    assert.matches("/t%-[%w]+$", r.path)
    assert.equal("temp", r.back)
    assert.equal(tonumber("600", 8), r.perm)
    assert.equal("directory", r.sub)
  end)

  it("iterates over the lines of a large file without loading it", function()
    local r = with_dir(function(dir, fs)
      local path = dir .. "/big"
      local f = assert(fs.open(path, "w"))
      local lines = 750000
      local chunk = {}
      for i = 1, lines do
        chunk[#chunk + 1] = ("line %07d of the big file\n"):format(i)
        if #chunk == 10000 then assert(f:write(table.concat(chunk))) chunk = {} end
      end
      assert(f:write("no newline at the end"))
      f:close()
      local size = fs.stat(path).size
      collectgarbage()
      local base, peak = collectgarbage("count"), 0
      local n, last, ok = 0, nil, true
      f = assert(fs.open(path))
      for line in f:lines() do
        n = n + 1
        if n <= lines and line ~= ("line %07d of the big file"):format(n) then ok = false end
        last = line
        if n % 1000 == 0 then peak = math.max(peak, collectgarbage("count") - base) end
      end
      f:close()
      return { n = n, last = last, ok = ok, size = size, peak_kb = peak }
    end)
    assert.equal(750001, r.n)
    assert.is_true(r.ok)
    assert.equal("no newline at the end", r.last)
    assert.is_true(r.size > 2e7)
    assert.is_true(r.peak_kb * 1024 < r.size / 2, "peak " .. r.peak_kb .. " KiB")
  end)

  it("keeps serving while a big file is read", function()
    local r = with_dir(function(dir, fs)
      local path = dir .. "/big"
      local f = assert(fs.open(path, "w"))
      local mb = string.rep("x", 1048576)
      for _ = 1, 24 do assert(f:write(mb)) end
      f:close()
      -- An echo server and a client that keeps asking, in other tasks.
      local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
      srv:serve(function(conn)
        while true do
          local line = conn:read_line()
          if not line then return end
          conn:write(line .. "\n")
        end
      end)
      local reading, answers = true, 0
      local client = eddy.spawn(function()
        local conn = assert(eddy.tcp.connect("127.0.0.1", srv:port()))
        while reading do
          conn:write("ping\n")
          if conn:read_line() == "ping" then answers = answers + 1 end
        end
        conn:close()
      end)
      local data = assert(fs.read_file(path))
      reading = false
      client:join()
      srv:close()
      return { size = #data, answers = answers }
    end)
    assert.equal(24 * 1048576, r.size)
    assert.is_true(r.answers > 0)
  end)

  it("leaves a cancelled read to finish into nothing, and closes after it", function()
    local r = with_dir(function(dir, fs)
      local path = dir .. "/big"
      assert(fs.write_file(path, string.rep("y", 8 * 1048576)))
      local f = assert(fs.open(path))
      local t = eddy.spawn(function() return { f:read(8 * 1048576) } end)
      eddy.yield() -- t is now waiting for its read
      t:cancel()
      local ok, res = t:join()
      -- The file is still usable; its position did not move.
      local again = f:read(4)
      local closed = f:close()
      -- A task cancelled before it waits answers "cancelled" at once.
      local t2 = eddy.spawn(function()
        eddy.current():cancel()
        return fs.read_file(path)
      end)
      local ok2, a2, b2 = t2:join()
      -- What a cancelled request made is undone: no temporary file stays.
      local sub = assert(fs.tmpdir({ dir = dir }))
      local t3 = eddy.spawn(function() return { fs.tmpfile({ dir = sub }) } end)
      eddy.yield()
      t3:cancel()
      local _, res3 = t3:join()
      eddy.sleep(0.05)
      return { ok = ok, res = res, again = again, closed = closed, t2 = { ok2, a2, b2 },
               res3 = res3, left = fs.list(sub) }
    end)
    assert.same({ nil, "cancelled" }, r.res3)
    assert.same({}, r.left)
    assert.is_true(r.ok)
    assert.same({ nil, "cancelled" }, r.res)
    assert.equal("yyyy", r.again)
    assert.is_true(r.closed)
    assert.same({ true, nil, "cancelled" }, r.t2)
  end)

  it("refuses a second task in an operation on the same file", function()
    local r = with_dir(function(dir, fs)
      assert(fs.write_file(dir .. "/f", string.rep("z", 4 * 1048576)))
      local f = assert(fs.open(dir .. "/f"))
      local t = eddy.spawn(function() return #f:read(4 * 1048576) end)
      eddy.yield()
      local busy = { pcall(f.read, f, 1) }
      local _, n = t:join()
      f:close()
      return { busy = busy[1], msg = busy[2], n = n }
    end)
    assert.is_false(r.busy)
    assert.matches("another task is using this file", r.msg)
    assert.equal(4 * 1048576, r.n)
  end)

  it("watches a directory and sees a write", function()
    local r = with_dir(function(dir, fs)
      local events = eddy.channel(16)
      local w = assert(fs.watch(dir, function(name, event)
        events:send({ name = name, event = event })
      end))
      assert(fs.write_file(dir .. "/watched", "data"))
      local seen = {}
      while true do
        local e = events:recv(5)
        if not e then break end
        seen[#seen + 1] = e
        if e.name == "watched" and e.event == "change" then break end
      end
      local closed = w:close()
      return { seen = seen, closed = closed, again = w:close(),
               missing = { fs.watch(dir .. "/missing", function() end) } }
    end)
    local last = r.seen[#r.seen]
    assert.equal("watched", last.name)
    assert.equal("change", last.event)
    assert.is_true(r.closed)
    assert.is_false(r.again)
    assert.same({ nil, "not found" }, r.missing)
  end)

  it("runs examples/files.lua", function()
    local rc, out = h.sh(h.eddy_bin .. " examples/files.lua")
    assert.equal(0, rc, out)
    assert.matches("read: line 1\nread: line 2\nread: line 3\n", out, 1, true)
    assert.matches("watch: settings.json rename", out, 1, true)
    assert.matches('settings: {"debug": false}', out, 1, true)
    assert.matches("entry: app.log (file, 21 bytes)", out, 1, true)
    assert.matches("missing: not found", out, 1, true)
    assert.matches("cleaned up: true", out, 1, true)
  end)
end)

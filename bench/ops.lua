-- ops.lua: eddy.fs and eddy.process against stock LuaJIT's blocking io
-- on the same machine, as ratios (eddy's time / the reference's; below 1
-- is faster). What eddy adds is that the loop keeps running meanwhile: a
-- file read is a threadpool request per MiB, a line iterator reads 256 KiB
-- at a time, and a child is reaped through SIGCHLD with its output read
-- on the loop.
-- Usage: eddy --watchdog off bench/ops.lua [file MiB] [children]
local eddy = require "eddy"
local fs, process = eddy.fs, eddy.process
local mib = tonumber(arg[1]) or 64
local children = tonumber(arg[2]) or 200
local now = eddy.now

-- Best wall time of 5 rounds of fn.
local function best(fn)
  local t = math.huge
  for _ = 1, 5 do
    collectgarbage()
    local t0 = now()
    fn()
    eddy.sleep(0) -- a fresh loop time
    t = math.min(t, now() - t0)
  end
  return t
end

local dir = assert(fs.tmpdir({ prefix = "eddy-bench-ops-" }))
local path = dir .. "/data"
local line = string.rep("x", 63) .. "\n"
local f = assert(fs.open(path, "w"))
local mb = string.rep(line, 16384)
for _ = 1, mib do assert(f:write(mb)) end
f:close()

local rows = {}
local function row(name, eddy_s, ref_s, unit)
  rows[#rows + 1] = ("%-30s eddy %8.1f %s   reference %8.1f %s   ratio %.2f")
    :format(name, eddy_s, unit, ref_s, unit, eddy_s / ref_s)
end

row(("read_file %d MiB"):format(mib),
  best(function() assert(#fs.read_file(path) == mib * 1048576) end) * 1e3,
  best(function() local h = io.open(path) assert(#h:read("*a") == mib * 1048576) h:close() end) * 1e3,
  "ms")

row(("lines() %d MiB"):format(mib),
  best(function()
    local n, h = 0, assert(fs.open(path))
    for _ in h:lines() do n = n + 1 end
    h:close()
    assert(n == mib * 16384)
  end) * 1e3,
  best(function()
    local n = 0
    for _ in io.lines(path) do n = n + 1 end
    assert(n == mib * 16384)
  end) * 1e3,
  "ms")

row(("run('/bin/true') x%d"):format(children),
  best(function()
    for _ = 1, children do assert(process.run("/bin/true").code == 0) end
  end) / children * 1e6,
  best(function()
    for _ = 1, children do local h = io.popen("/bin/true") h:read("*a") h:close() end
  end) / children * 1e6,
  "us")

-- Eight at a time: the reference has no way to wait for several.
row(("run('/bin/true') x%d, 8 tasks"):format(children),
  best(function()
    local tasks = {}
    for i = 1, 8 do
      tasks[i] = eddy.spawn(function()
        for _ = 1, children / 8 do assert(process.run("/bin/true").code == 0) end
      end)
    end
    for i = 1, 8 do assert(tasks[i]:join()) end
  end) / children * 1e6,
  best(function()
    for _ = 1, children do local h = io.popen("/bin/true") h:read("*a") h:close() end
  end) / children * 1e6,
  "us")

assert(fs.remove(dir, { recursive = true }))
for _, r in ipairs(rows) do print(r) end

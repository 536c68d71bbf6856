-- files.lua: eddy.fs, files without blocking the loop. Writes a log with
-- append, reads it back line by line, replaces a settings file atomically
-- (a reader never sees half of it), watches a directory for a change,
-- lists it, and cleans up. Every call waits in its task while libuv's
-- threadpool does the disk work.
--
--   build/eddy examples/files.lua

local eddy = require "eddy"
local fs = eddy.fs

local dir = assert(fs.tmpdir({ prefix = "eddy-files-" }))
local log = dir .. "/app.log"

for i = 1, 3 do
  assert(fs.append(log, ("line %d\n"):format(i)))
end
local f = assert(fs.open(log))
for line in f:lines() do print("read: " .. line) end
f:close()

-- A watcher runs its function in a task per change.
local changed = eddy.channel(8)
local watcher = assert(fs.watch(dir, function(name, event)
  if name == "settings.json" then changed:send(event) end
end))
assert(fs.write_file(dir .. "/settings.json", '{"debug": false}', { atomic = true }))
-- The atomic write renames its temporary file over settings.json.
print("watch: settings.json " .. assert(changed:recv(5)))
watcher:close()

print("settings: " .. assert(fs.read_file(dir .. "/settings.json")))
for _, e in ipairs(assert(fs.list(dir))) do
  print(("entry: %s (%s, %d bytes)"):format(e.name, e.type, fs.stat(dir .. "/" .. e.name).size))
end
print("missing: " .. select(2, fs.read_file(dir .. "/nope")))
assert(fs.remove(dir, { recursive = true }))
print("cleaned up: " .. tostring(not fs.exists(dir)))

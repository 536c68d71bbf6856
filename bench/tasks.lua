-- tasks.lua: tasks spawned and finished per second. The main task spawns
-- empty tasks in batches and yields after each batch so that they run:
-- the steady state of a server that spawns a task per event.
-- Usage: eddy bench/tasks.lua [total] [batch]
local eddy = require "eddy"
local total = tonumber(arg[1]) or 2000000
local batch = tonumber(arg[2]) or 100
local noop = function() end

local best = 0
for round = 1, 5 do
  collectgarbage("collect")
  local t0 = os.clock()
  for i = 1, total do
    eddy.spawn(noop)
    if i % batch == 0 then eddy.yield() end
  end
  eddy.yield()
  local rate = total / (os.clock() - t0)
  if rate > best then best = rate end
  assert(eddy.stats().tasks == 1, "tasks left behind")
end
print(("tasks=%d batch=%d best_rate=%.0f"):format(total, batch, best))

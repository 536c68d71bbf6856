-- pipeline.lua: tasks talking through channels. A producer sends numbers,
-- three workers square them (taking turns on one channel), and a collector
-- sums what comes back, with eddy.select watching both the results and a
-- ticker. Shows spawn, join, channels with capacity and close, waitgroups,
-- select with a timeout, and a repeating timer.
local eddy = require "eddy"

eddy.run(function()
  local jobs, results = eddy.channel(10), eddy.channel(10)
  local ticks = eddy.channel(1)

  local producer = eddy.spawn(function()
    for i = 1, 100 do jobs:send(i) end
    jobs:close() -- the workers drain what is queued, then see "closed"
  end)

  local workers = eddy.waitgroup()
  for w = 1, 3 do
    workers:spawn(function()
      local done = 0
      while true do
        local n, err = jobs:recv()
        if err then break end
        eddy.sleep(0.005) -- pretend to work
        results:send(n * n)
        done = done + 1
      end
      return done
    end)
  end
  eddy.spawn(function() workers:wait(); results:close() end)

  local ticker = eddy.timer.every(0.05, function() ticks:send(true, 0) end)
  local sum, count, nticks = 0, 0, 0
  while true do
    local ch, v, err = eddy.select({ results, ticks }, 5)
    if ch == nil then error("stalled: " .. tostring(v)) end
    if err == "closed" then break end
    if ch == results then
      sum, count = sum + v, count + 1
    else
      nticks = nticks + 1
    end
  end
  ticker:cancel()
  assert(producer:join())
  print(("%d results, sum of squares %d, %d ticks while working"):format(count, sum, nticks))
  assert(sum == 338350, "wrong sum")
end)

-- app.lua: the script that examples/embed/host.c runs. It calls a function
-- the host gave it and ticks until the host stops the runtime.
local eddy = require "eddy"

print(host_greet("eddy"))
local ticks = 0
eddy.timer.every(0.05, function()
  ticks = ticks + 1
  print("tick " .. ticks)
  io.stdout:flush()
end)

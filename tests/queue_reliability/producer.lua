-- The producer of the reliability test (tests/spec/queue_reliability_spec.lua):
--   eddy producer.lua KIND TARGET QUEUE N ACKLOG [PACE]
-- pushes the numbers 1..N that ACKLOG does not hold yet, from 8 tasks at
-- once, and appends each number to ACKLOG once its push has returned (is
-- acknowledged), through eddy.queue. KIND is sqlite (TARGET a file) or
-- redis (TARGET a url).
local eddy = require "eddy"
local kind, target, queue, n, acklog, pace = ...
n = tonumber(n)
pace = tonumber(pace) or 0 -- seconds each task sleeps after a push: a
                           -- kill then lands mid-stream on any machine

local done = {}
local f = io.open(acklog)
if f then
  for line in f:lines() do done[tonumber(line)] = true end
  f:close()
end
local log = assert(io.open(acklog, "a"))
log:setvbuf("no") -- each line reaches the kernel at once: a SIGKILL keeps it

local opts = kind == "sqlite" and { backend = "sqlite", path = target } or { backend = target }
local q = assert(eddy.queue.open(queue, opts))
local todo = {}
for i = 1, n do if not done[i] then todo[#todo + 1] = i end end
local next_i = 1
local tasks = {}
for t = 1, 8 do
  tasks[t] = eddy.spawn(function()
    while next_i <= #todo do
      local i = todo[next_i]
      next_i = next_i + 1
      assert(q:push(i))
      log:write(i, "\n")
      if pace > 0 then eddy.sleep(pace) end
    end
  end)
end
for _, t in ipairs(tasks) do assert(t:join()) end
q:close()
print("producer done")

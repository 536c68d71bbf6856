-- The consumer of the reliability test (tests/spec/queue_reliability_spec.lua):
--   eddy consumer.lua KIND TARGET QUEUE GOTLOG IDLE
-- pops from 4 tasks, appends each payload to GOTLOG, then acks it; ends
-- once no message has come for IDLE seconds. Messages are visible again
-- 1 s after a delivery that was never acked.
local eddy = require "eddy"
local kind, target, queue, gotlog, idle = ...
idle = tonumber(idle)

local log = assert(io.open(gotlog, "a"))
log:setvbuf("no")

local opts = kind == "sqlite" and { path = target } or { url = target }
opts.visibility = 1
opts.poll = 0.05
local b = assert(require("eddy.queue." .. kind).open(queue, opts))
local tasks = {}
for t = 1, 4 do
  tasks[t] = eddy.spawn(function()
    while true do
      local m, err = b:pop(idle)
      if not m then
        assert(err == "timeout", err)
        return
      end
      log:write(m.payload, "\n")
      b:ack(m.id) -- "not found" when it expired and went to another: at-least-once
    end
  end)
end
for _, t in ipairs(tasks) do assert(t:join()) end
b:close()
print("consumer done")

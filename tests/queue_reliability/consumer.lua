-- The consumer of the reliability test (tests/spec/queue_reliability_spec.lua):
--   eddy consumer.lua KIND TARGET QUEUE GOTLOG IDLE [PACE]
-- consumes with eddy.queue.consume (4 tasks), appending each message to
-- GOTLOG before its handler returns (and the front acks it); stops once no
-- message has come for IDLE seconds. A delivery never acked is visible
-- again after 1 s.
local eddy = require "eddy"
local kind, target, queue, gotlog, idle, pace = ...
idle = tonumber(idle)
pace = tonumber(pace) or 0 -- seconds each handler takes

local log = assert(io.open(gotlog, "a"))
log:setvbuf("no") -- each line reaches the kernel at once: a SIGKILL keeps it

local opts = kind == "sqlite" and { backend = "sqlite", path = target } or { backend = target }
opts.visibility = 1
opts.poll = 0.05
opts.concurrency = 4
local last = eddy.now()
local c = assert(eddy.queue.consume(queue, opts, function(msg)
  log:write(msg.body, "\n")
  last = eddy.now()
  if pace > 0 then eddy.sleep(pace) end
end))
while eddy.now() - last < idle do eddy.sleep(0.1) end
assert(c:stop(5))
c.queue:close()
print("consumer done")

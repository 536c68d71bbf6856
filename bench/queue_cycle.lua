-- queue_cycle.lua: the memory queue in one task of one thread, without
-- waits: N pushes, then N pops with their acks, then N whole cycles
-- (push, pop, ack), for a string message and for a 3-field table (which
-- the codec encodes and decodes; a string goes almost as it is).
--   build/eddy --watchdog off bench/queue_cycle.lua [N]
local eddy = require "eddy"
local clock = require("eddy.c.task").clock -- monotonic seconds

local N = tonumber(arg and arg[1]) or 500000
local MESSAGES = {
  { "string", ("x"):rep(40) },
  { "table", { user = 42, email = "someone@example.com", pad = ("x"):rep(16) } },
}

print(("N=%d; messages/s"):format(N))
print("message      push   pop+ack   push+pop+ack")
for _, m in ipairs(MESSAGES) do
  local name, msg = m[1], m[2]
  local q = assert(eddy.queue.open("cycle-" .. name))
  local t0 = clock()
  for _ = 1, N do q:push(msg) end
  local t1 = clock()
  for _ = 1, N do assert(q:ack(q:pop(0))) end
  local t2 = clock()
  for _ = 1, N do
    q:push(msg)
    assert(q:ack(q:pop(0)))
  end
  local t3 = clock()
  print(("%-7s %9.0f %9.0f %14.0f"):format(name, N / (t1 - t0), N / (t2 - t1), N / (t3 - t2)))
end

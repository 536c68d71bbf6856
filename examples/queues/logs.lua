-- queues/logs.lua: log processing. Ten producers write 1,000 log lines
-- each into one queue; four consumers take them in batches of 50 and
-- count them by level. Every line is counted once.
--   build/eddy examples/queues/logs.lua
--   QUEUE_BACKEND=redis://127.0.0.1:6379 build/eddy examples/queues/logs.lua
local eddy = require "eddy"

local BACKEND = os.getenv("QUEUE_BACKEND") or "memory"
local RUN = ("%d-%d"):format(os.time(), math.random(1, 1e9))
local PRODUCERS, LINES = 10, 1000
local LEVELS = { "info", "info", "info", "warn", "error" }

eddy.run(function()
  local q = assert(eddy.queue.open("logs-" .. RUN, { backend = BACKEND }))
  local counts, total = {}, 0
  local consumers = eddy.queue.consume(q, { concurrency = 4, batch = 50 }, function(lines)
    for _, msg in ipairs(lines) do
      local level = msg.body.line:match("^%[(%a+)%]")
      counts[level] = (counts[level] or 0) + 1
      total = total + 1
    end
  end)

  local t0 = eddy.now()
  local wg = eddy.waitgroup()
  for p = 1, PRODUCERS do
    wg:spawn(function()
      for i = 1, LINES do
        local level = LEVELS[(p + i) % #LEVELS + 1]
        assert(q:push({ host = "web" .. p, line = ("[%s] request %d done"):format(level, i) }))
        if i % 100 == 0 then eddy.yield() end
      end
    end)
  end
  wg:wait()
  local deadline = eddy.now() + 30
  while total < PRODUCERS * LINES and eddy.now() < deadline do eddy.sleep(0.01) end
  consumers:stop(5)
  print(("%d producers, %d lines, %d processed in %.3f s: info %d, warn %d, error %d")
    :format(PRODUCERS, PRODUCERS * LINES, total, eddy.now() - t0,
      counts.info or 0, counts.warn or 0, counts.error or 0))
  if total ~= PRODUCERS * LINES then os.exit(1) end
end)

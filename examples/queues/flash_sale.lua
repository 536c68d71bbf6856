-- queues/flash_sale.lua: peak shaving. A sale opens and 1,000 buyers ask
-- at once; the order queue holds at most 100, so the first 100 are
-- accepted and the rest are told "busy" (HTTP 503) at once, without
-- waiting and without memory growing. The warehouse consumers then work
-- through what was accepted at their own pace.
--   build/eddy examples/queues/flash_sale.lua
--   QUEUE_BACKEND=sqlite:///tmp/sale.db build/eddy examples/queues/flash_sale.lua
local eddy = require "eddy"

local BACKEND = os.getenv("QUEUE_BACKEND") or "memory"
local RUN = ("%d-%d"):format(os.time(), math.random(1, 1e9))
local BUYERS, MAX = 1000, 100

eddy.run(function()
  local q = assert(eddy.queue.open("sale-" .. RUN, { backend = BACKEND, max = MAX }))

  local slowest = 0
  local app = eddy.http.server()
  app:post("/buy", function(req, res)
    local t0 = eddy.now()
    local ok, err = q:push({ buyer = req.query.buyer })
    slowest = math.max(slowest, eddy.now() - t0)
    if ok then
      res:status(202)
      res:send("accepted\n")
    elseif err == "full" then
      res:status(503)
      res:send("busy, try again later\n")
    else
      error(err)
    end
  end)
  local server = assert(app:listen("127.0.0.1", 0))

  local list = {}
  for i = 1, BUYERS do
    list[i] = { url = ("http://127.0.0.1:%d/buy?buyer=%d"):format(server:port(), i), method = "POST", body = "" }
  end
  local results = eddy.http.fetch_all(list, { concurrency = 50, timeout = 10 })
  local accepted, busy = 0, 0
  for i = 1, BUYERS do
    local res = results[i][1]
    if res and res.status == 202 then accepted = accepted + 1
    elseif res and res.status == 503 then busy = busy + 1 end
  end
  local held = q:length()

  -- The warehouse opens after the rush.
  local shipped = 0
  local warehouse = eddy.queue.consume(q, { concurrency = 4 }, function()
    eddy.sleep(0.002)
    shipped = shipped + 1
  end)
  local deadline = eddy.now() + 20
  while shipped < accepted and eddy.now() < deadline do eddy.sleep(0.01) end
  warehouse:stop(5)
  server:close()
  print(("%d buyers: %d accepted, %d busy (a push took at most %.1f ms); queue held %d; %d shipped")
    :format(BUYERS, accepted, busy, slowest * 1000, held, shipped))
  if accepted ~= MAX or busy ~= BUYERS - MAX or shipped ~= MAX then os.exit(1) end
end)

-- queues/orders.lua: orders decoupled from inventory. Taking an order only
-- queues it, so orders succeed while the inventory service is down; when
-- it comes back it works through what was queued, and no order is lost.
-- The inventory consumer also fails on its first try at every tenth
-- order (a database hiccup): those come back after a backoff. The run:
-- the consumer starts, is stopped mid-stream, orders keep coming, it is
-- started again; at the end the stock must match the orders taken.
--   build/eddy examples/queues/orders.lua
--   QUEUE_BACKEND=redis://127.0.0.1:6379 build/eddy examples/queues/orders.lua
local eddy = require "eddy"

local BACKEND = os.getenv("QUEUE_BACKEND") or "memory"
local RUN = ("%d-%d"):format(os.time(), math.random(1, 1e9))
local ORDERS = 200

eddy.run(function()
  -- A pop cut short when the service stops may leave an order delivered
  -- to nobody (Redis streams): it comes back when its visibility ends,
  -- kept short here so that the run need not wait long for it.
  local q = assert(eddy.queue.open("orders-" .. RUN, { backend = BACKEND, backoff = 0.02, visibility = 1 }))
  local stock = { widget = 10000, gadget = 10000 }
  local applied, retried = {}, 0
  local expected = { widget = 10000, gadget = 10000 }

  local function place(i)
    local item = i % 3 == 0 and "gadget" or "widget"
    local qty = i % 5 + 1
    assert(q:push({ order = i, item = item, qty = qty }))
    expected[item] = expected[item] - qty
  end

  -- The inventory service: applies each order once (a redelivered one
  -- that was applied already is acked without applying it again).
  local function inventory()
    return eddy.queue.consume(q, { concurrency = 4, on_error = function() retried = retried + 1 end },
      function(msg)
        local o = msg.body
        eddy.sleep(0.001) -- the database
        if o.order % 10 == 0 and msg.attempts == 1 then error("database hiccup") end
        if not applied[o.order] then
          applied[o.order] = true
          stock[o.item] = stock[o.item] - o.qty
        end
      end)
  end

  local function settle()
    local deadline = eddy.now() + 20
    repeat
      eddy.sleep(0.01)
      local ready, in_flight = q:length()
    until (ready == 0 and in_flight == 0) or eddy.now() > deadline
  end

  local consumer = inventory()
  for i = 1, ORDERS / 2 do place(i) end
  eddy.sleep(0.02)
  consumer:stop(5) -- the inventory service goes down mid-stream
  local during = 0
  for i = ORDERS / 2 + 1, ORDERS do place(i); during = during + 1 end
  local waiting = q:length()
  consumer = inventory() -- and comes back
  settle()
  consumer:stop(5)

  local n = 0
  for _ in pairs(applied) do n = n + 1 end
  local right = stock.widget == expected.widget and stock.gadget == expected.gadget
  print(("%d orders taken (%d while inventory was down, %d waiting when it came back); %d applied, %d retried; stock %s")
    :format(ORDERS, during, waiting, n, retried, right and "right" or "WRONG"))
  if not right or n ~= ORDERS then os.exit(1) end
end)

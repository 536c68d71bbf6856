-- eddy.queue (the front) on its durable backends, SQLite and Redis Streams:
-- opened by option and by URL, values through the codec, consumers with
-- handlers that fail, a graceful stop, the dead letters, and the examples
-- of examples/queues/ switched to each backend by QUEUE_BACKEND.
local h = require "helper"
local eddy = h.eddy
local queue = require "eddy.queue"

local host, port = h.server("redis")
local REDIS = ("redis://%s:%d/6"):format(host, port)
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local n = 0
local function name(what)
  n = n + 1
  return ("durable_%s_%d_%d"):format(what, n, os.time())
end

local BACKENDS = {
  sqlite = function(extra)
    local o = { backend = "sqlite", path = dir .. "/front.db", poll = 0.02 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end,
  redis = function(extra)
    local o = { backend = REDIS, poll = 0.05 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end,
}

describe("eddy.queue on durable backends", function()
  setup(function()
    h.run(function()
      local c = assert(require("eddy.redis").connect(REDIS))
      c:call("FLUSHDB")
      c:close()
    end)
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  for _, kind in ipairs({ "sqlite", "redis" }) do
    local opts = BACKENDS[kind]

    describe(kind, function()
      it("opens by URL too, and carries Lua values through the codec", function()
        h.run(function()
          local url = kind == "sqlite" and "sqlite://" .. dir .. "/url.db" or REDIS
          local q = assert(queue.open(name("url"), { backend = url }))
          assert.equal(kind, q.backend)
          assert(q:push({ user = 42, tags = { "a", "b" } }))
          local m = assert(q:pop(2))
          assert.same({ user = 42, tags = { "a", "b" } }, m.body)
          assert.equal(1, m.attempts)
          assert.is_true(q:ack(m))
          q:close()
        end)
      end)

      it("answers full at the maximum and keeps what it took", function()
        h.run(function()
          local q = assert(queue.open(name("full"), opts({ max = 3 })))
          for i = 1, 3 do assert(q:push(i)) end
          assert.same({ nil, "full" }, { q:push(4) })
          assert.same({ 3, 0 }, { q:length() })
          q:close()
        end)
      end)

      it("consumers handle every message; a handler that raises loses nothing", function()
        h.run(function()
          local qname = name("consume")
          local q = assert(queue.open(qname, opts({ backoff = 0.01 })))
          local N = 100
          for i = 1, N do assert(q:push(i)) end
          local seen, failures, count = {}, 0, 0
          local c = queue.consume(q, { concurrency = 4, on_error = function() failures = failures + 1 end },
            function(msg)
              -- Every third message fails on its first attempt.
              if msg.body % 3 == 0 and msg.attempts == 1 then error("flaky") end
              seen[msg.body] = (seen[msg.body] or 0) + 1
              count = count + 1
            end)
          local deadline = eddy.now() + 20
          while count < N and eddy.now() < deadline do eddy.sleep(0.02) end
          assert.is_true(c:stop(5))
          assert.equal(N, count)
          for i = 1, N do assert.equal(1, seen[i]) end
          assert.equal(33, failures)
          assert.equal(N, c.handled)
          assert.same({ 0, 0 }, { q:length() })
          q:close()
        end)
      end)

      it("a handler that always raises sends its message to the dead letters", function()
        h.run(function()
          local q = assert(queue.open(name("poison"), opts({ max_attempts = 2, backoff = 0.01 })))
          assert(q:push({ bad = true }))
          local c = queue.consume(q, { on_error = function() end }, function() error("never") end)
          local d = assert(q:dead())
          local m = assert(d:pop(10))
          assert.same({ bad = true }, m.body)
          d:ack(m)
          assert.is_true(c:stop(5))
          d:close()
          q:close()
        end)
      end)

      it("a stopped consumer leaves the rest in the queue for the next", function()
        h.run(function()
          local qname = name("stop")
          -- A pop cut short by the stop may have taken a message: it comes
          -- back after the visibility timeout.
          local q = assert(queue.open(qname, opts({ visibility = 0.3 })))
          for i = 1, 20 do assert(q:push(i)) end
          local seen = {}
          local c = queue.consume(q, { concurrency = 2 }, function(msg)
            seen[msg.body] = true
            eddy.sleep(0.01)
          end)
          while c.handled < 5 do eddy.sleep(0.01) end
          assert.is_true(c:stop(5))
          local ready, flying = q:length()
          assert.equal(20 - c.handled, ready + flying)
          while true do
            local m = q:pop(1)
            if not m then break end
            seen[m.body] = true
            q:ack(m)
          end
          for i = 1, 20 do assert.is_true(seen[i]) end
          q:close()
        end)
      end)

      describe("examples/queues with QUEUE_BACKEND=" .. kind, function()
        local function run(ex)
          local target = kind == "sqlite" and "sqlite://" .. dir .. "/examples.db" or REDIS
          return h.sh("QUEUE_BACKEND=" .. target .. " " .. h.eddy_bin .. " examples/queues/" .. ex .. ".lua")
        end

        it("signup.lua", function()
          local rc, out = run("signup")
          assert.equal(0, rc, out)
          assert.matches("50 users got exactly one of each", out)
        end)

        it("orders.lua", function()
          local rc, out = run("orders")
          assert.equal(0, rc, out)
          assert.matches("200 orders taken %(100 while inventory was down, %d+ waiting when it came back%); 200 applied, 20 retried; stock right", out)
        end)

        it("flash_sale.lua", function()
          local rc, out = run("flash_sale")
          assert.equal(0, rc, out)
          assert.matches("1000 buyers: 100 accepted, 900 busy %(a push took at most [%d.]+ ms%); queue held 100; 100 shipped", out)
        end)

        it("logs.lua", function()
          local rc, out = run("logs")
          assert.equal(0, rc, out)
          assert.matches("10 producers, 10000 lines, 10000 processed in [%d.]+ s: info 6000, warn 2000, error 2000", out)
        end)
      end)
    end)
  end
end)

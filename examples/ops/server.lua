-- ops/server.lua: the operability eddy ships in the box, on one small
-- HTTP service (see README.md next to this file):
--
--   GET /hello    a quick answer
--   GET /slow     a handler that holds the loop for 250 ms (a CPU-bound
--                 report): the watchdog logs it, with its traceback
--   GET /tasks    what every task of this thread is doing now
--   GET /metrics  Prometheus text: the runtime's figures and the app's own
--
--   build/eddy examples/ops/server.lua [port]   (8080 by default)
--   curl localhost:8080/slow; curl localhost:8080/metrics

local eddy = require "eddy"
local log = eddy.log
local metrics = eddy.metrics

local port = tonumber(arg and arg[1]) or tonumber(os.getenv("PORT")) or 8080
log.configure{ format = os.getenv("LOG_FORMAT") or "plain", fields = { service = "ops-demo" } }

local handled = metrics.counter("demo_requests_total", "Requests handled, by route.", { "route" })
local took = metrics.histogram("demo_request_seconds", "Time spent in handlers.", { "route" })

-- Counts and times a handler.
local function measured(route, handler)
  return function(req, res)
    local t0 = eddy.now()
    handler(req, res)
    handled:inc({ route = route })
    took:observe(eddy.now() - t0, { route = route })
  end
end

-- The deliberately slow part: a busy loop standing for a big computation
-- that should have gone to eddy.task.run.
local function build_report(ms)
  local t0, n = eddy.now(), 0
  while eddy.now() - t0 < ms / 1000 do n = n + 1 end
  return n
end

local app = eddy.http.server()
app:route("GET", "/hello", measured("/hello", function(_, res) res:send("hello\n") end))
app:route("GET", "/slow", measured("/slow", function(_, res)
  res:send(("report: %d rounds\n"):format(build_report(250)))
end))
app:route("GET", "/tasks", function(_, res)
  local out = {}
  for _, t in ipairs(eddy.tasks()) do
    out[#out + 1] = ("task %d %-8s %-12s %s age %.3f s"):format(t.id, t.state, t.waits_on or "",
      t.name or "", t.age)
  end
  res:send(table.concat(out, "\n") .. "\n")
end)
metrics.route(app, "/metrics")

local srv = assert(app:listen("0.0.0.0", port, { access_log = true }))
log.info("listening", { port = srv:port() })

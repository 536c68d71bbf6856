-- shared.lua: a dictionary in shared memory, seen by every reactor thread
-- and worker process: a hit counter, the last visitor, and a log of the
-- last ten paths, whoever serves the request.
--
--   build/eddy --workers 2 --threads 2 examples/shared.lua [port]
--   curl http://127.0.0.1:8080/anything   -> hit 3 (served by worker 2, thread 1)
--
-- Every thread and worker runs the declaration; the first makes the
-- dictionary, the others find it (in worker processes the master holds
-- it, so it outlives reloads).

local eddy = require "eddy"
local stats = eddy.shared.dict("stats", { size = "1m" })

-- The init phase: once for the whole program (not again on a reload),
-- before any thread goes on.
eddy.init(function()
  stats:set("started", os.time())
end)

local app = eddy.http.server()
app:get("/stats", function(req, res)
  res:json({ hits = stats:get("hits") or 0, recent = stats:get("recent"),
             started = stats:get("started") })
end)
app:fallback(function(req, res)
  local n = stats:incr("hits", 1, 0)
  stats:rpush("paths", req.path)
  if stats:llen("paths") > 10 then stats:lpop("paths") end
  stats:set("recent", { path = req.path, at = os.time() })
  res:send(("hit %d (served by worker %d, thread %d)\n")
    :format(n, eddy.worker.id(), eddy.worker.thread()))
end)

local port = tonumber(arg and arg[1]) or tonumber(os.getenv("PORT")) or 8080
local server = assert(app:listen("127.0.0.1", port))
if eddy.worker.id() == 1 and eddy.worker.thread() == 1 then
  print(("listening on 127.0.0.1:%d (Ctrl-C to stop)"):format(server:port()))
  io.stdout:flush()
end

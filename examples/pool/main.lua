-- pool/main.lua: the task pool. An HTTP server answers /ping at once while
-- /prime/:n computes in the pool and /block sleeps there, in blocking Lua
-- (work.lua) that would stall a reactor thread.
--
--   build/eddy examples/pool/main.lua [port]
--   curl http://127.0.0.1:8080/prime/20000 & curl http://127.0.0.1:8080/ping

local eddy = require "eddy"

-- The pool's Lua states find modules where this one does.
local here = (arg and arg[0] or "examples/pool/main.lua"):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local app = eddy.http.server()

app:get("/ping", function(req, res)
  res:send("pong\n")
end)

app:get("/prime/:n", function(req, res)
  local n = tonumber(req.params.n)
  if not n or n < 1 or n > 1e6 then return res:status(400):send("bad n\n") end
  local p, err = eddy.task.run({ "work", "nth_prime", timeout = 10 }, n)
  if not p then return res:status(503):send(err .. "\n") end
  res:send(("prime #%d is %d\n"):format(n, p))
end)

app:get("/block", function(req, res)
  local r = assert(eddy.task.run("work", "blocking", 1))
  res:send(("slept %g s in the pool\n"):format(r.slept))
end)

local port = tonumber(arg and arg[1]) or 8080
local server = assert(app:listen("127.0.0.1", port))
print(("listening on 127.0.0.1:%d, %d pool threads (Ctrl-C to stop)")
  :format(server:port(), eddy.task.threads()))
io.stdout:flush()

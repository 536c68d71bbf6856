-- eddy_hello.lua: eddy's side of bench/http.sh: the hello route of an
-- ordinary app, through the public API (router, req/res, a task per
-- connection). Usage: eddy bench/http/eddy_hello.lua PORT
local eddy = require "eddy"
local port = tonumber(arg[1]) or 8080

local app = eddy.http.server()
app:get("/", function(req, res)
  res:send("hello\n")
end)
assert(app:listen("127.0.0.1", port, { backlog = 4096 }))
print("listening")
io.stdout:flush()

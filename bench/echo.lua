-- echo.lua: eddy's side of bench/echo: the echo server a user would write,
-- a task per connection on the public API.
-- Usage: eddy bench/echo.lua PORT
local eddy = require "eddy"
local port = tonumber(arg[1]) or 7002

eddy.tcp.serve("127.0.0.1", port, function(conn)
  while true do
    local data = conn:read_some()
    if not data then break end
    if not conn:write(data) then break end
  end
end, { backlog = 4096 })
print("listening")
io.stdout:flush()

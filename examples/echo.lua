-- echo.lua: an echo server and 50 clients in one program. Each client is a
-- task that connects, sends a few lines and checks the echoes; the program
-- prints a summary and ends when they are done. Runs under the `eddy`
-- command and under stock LuaJIT with eddy installed.
local eddy = require "eddy"

local CLIENTS, LINES = 50, 20

eddy.run(function()
  local server = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
    while true do
      local line = conn:read_line()
      if not line then return end
      conn:write(line .. "\n")
    end
  end))
  local port = server:port()

  local wg = eddy.waitgroup()
  local echoed = 0
  local t0 = eddy.now()
  for c = 1, CLIENTS do
    wg:spawn(function()
      local conn = assert(eddy.tcp.connect("127.0.0.1", port))
      for i = 1, LINES do
        local msg = ("client %d line %d"):format(c, i)
        assert(conn:write(msg .. "\n"))
        assert(conn:read_line({ timeout = 5 }) == msg, "wrong echo")
        echoed = echoed + 1
      end
      conn:close()
    end)
  end
  wg:wait()
  server:close()
  print(("%d clients, %d lines echoed in %.3f s"):format(CLIENTS, echoed, eddy.now() - t0))
end)

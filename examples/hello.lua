-- hello.lua: a small TCP line server. Each connection gets a greeting, then
-- every line it sends comes back upper-cased; "quit" ends the connection.
-- Run it with `make run` or `build/eddy examples/hello.lua [port]`, then
-- talk to it with `nc 127.0.0.1 7000`. Ctrl-C stops it gracefully.
--
-- It also runs under stock LuaJIT once eddy is installed:
--   luajit examples/hello.lua

local eddy = require "eddy"

local port = tonumber(arg and arg[1]) or tonumber(os.getenv("PORT")) or 7000

eddy.run(function()
  local server = assert(eddy.tcp.serve("127.0.0.1", port, function(conn)
    local ip, peer_port = conn:peer_addr()
    conn:write("hello from eddy; send lines, or quit\n")
    while true do
      local line, err = conn:read_line({ timeout = 300 })
      if not line then
        if err ~= "closed" then conn:write("bye (" .. err .. ")\n") end
        break
      end
      if line == "quit" then
        conn:write("bye\n")
        break
      end
      conn:write(line:upper() .. "\n")
    end
    print(("%s:%d left"):format(ip, peer_port))
  end))
  print(("listening on 127.0.0.1:%d (Ctrl-C to stop)"):format(server:port()))
  io.stdout:flush()
end)

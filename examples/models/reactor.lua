-- reactor.lua: the reactor model, the responder of prefork.c and thread.c
-- on eddy. One thread, one event loop; each connection runs as a task that
-- reads as if it blocked, but a task waiting for bytes costs a parked
-- coroutine, not a process or a thread.
--
--   build/eddy examples/models/reactor.lua 8080   (0: any free port)
--   curl http://127.0.0.1:8080/
--
-- SIGTERM or SIGINT closes the listener and ends it with status 0.

local eddy = require "eddy"

local port = tonumber(arg and arg[1]) or 8080
local REPLY = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n" ..
  "Connection: close\r\n\r\nhello\n"

eddy.run(function()
  -- backlog as in the C servers; timeout (s) for every read of a connection.
  local server = assert(eddy.tcp.serve("127.0.0.1", port, function(conn)
    -- The request head: nil, err on "closed", "timeout", or a head over 8 KiB.
    if conn:read_until("\r\n\r\n", { max = 8192 }) then conn:write(REPLY) end
    conn:close()
  end, { backlog = 4096, timeout = 10 }))
  print(("listening on 127.0.0.1:%d"):format(server:port()))
  io.stdout:flush()
end)

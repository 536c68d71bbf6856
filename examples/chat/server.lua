-- chat/server.lua: a chat room in the browser. eddy serves the page (public/)
-- and a WebSocket at /ws; every message a member sends reaches every
-- member, through a room. Run it and open http://127.0.0.1:8080/ in two
-- windows:
--   build/eddy examples/chat/server.lua [port]
-- It runs on several threads and processes as it is (the room relays each
-- message to the members the other threads hold):
--   build/eddy --workers 2 --threads 2 examples/chat/server.lua
local eddy = require "eddy"
local json = require "cjson"

local port = tonumber(arg and arg[1]) or 8080
local here = (arg and arg[0] or "examples/chat/server.lua"):match("^(.*)/[^/]*$") or "."

eddy.run(function()
  local app = eddy.http.server()
  local room = eddy.ws.room("lobby")

  app:websocket("/ws", function(ws, req)
    local name = (req.query.name or ""):sub(1, 32)
    if name == "" then name = "guest" end
    room:join(ws)
    room:broadcast(json.encode({ system = true, text = name .. " joined" }))
    while true do
      local text, kind = ws:recv()
      if not text then break end -- closed
      if kind == "text" and #text > 0 then
        room:broadcast(json.encode({ name = name, text = text:sub(1, 1000) }))
      end
    end
    room:leave(ws)
    room:broadcast(json.encode({ system = true, text = name .. " left" }))
  end, { max_message = 4096 })

  app:static("/", here .. "/public")

  local server = assert(app:listen("127.0.0.1", port))
  print(("chat on http://127.0.0.1:%d/ (Ctrl-C to stop)"):format(server:port()))
  io.stdout:flush()
end)

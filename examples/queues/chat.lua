-- queues/chat.lua: a chat room over TCP on a pub/sub topic. Each
-- connection subscribes to the room's topic and writes out what it
-- hears; each line a member sends is published to the topic. Fifty
-- clients join, each says one line, and each must hear all fifty.
--   build/eddy examples/queues/chat.lua
-- Topics are in-process (every reactor thread of the process hears them),
-- so QUEUE_BACKEND does not apply here; across processes or machines use
-- Redis pub/sub through eddy.redis.
local eddy = require "eddy"

local CLIENTS = 50
local ROOM = "chat-" .. (os.getenv("CHAT_ROOM") or tostring(os.time()))

eddy.run(function()
  local server = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
    local sub = eddy.pubsub.subscribe(ROOM, { buffer = 256 })
    conn:write("welcome\n")
    local writer = eddy.spawn(function()
      while true do
        local line = sub:recv()
        if not line or not conn:write(line .. "\n") then return end
      end
    end)
    while true do
      local line = conn:read_line({ timeout = 30 })
      if not line then break end
      eddy.pubsub.publish(ROOM, line)
    end
    sub:close() -- ends the writer's recv with "closed"
    writer:join()
  end))
  local port = server:port()

  local joined, go = eddy.waitgroup(), eddy.channel()
  joined:add(CLIENTS)
  local heard_all = 0
  local wg = eddy.waitgroup()
  for c = 1, CLIENTS do
    wg:spawn(function()
      local conn = assert(eddy.tcp.connect("127.0.0.1", port))
      assert(conn:read_line({ timeout = 5 }) == "welcome")
      joined:done()
      go:recv() -- everyone has joined: speak
      assert(conn:write(("member %d says hello\n"):format(c)))
      local heard = {}
      for _ = 1, CLIENTS do
        local line = assert(conn:read_line({ timeout = 10 }))
        heard[line] = true
      end
      local n = 0
      for _ in pairs(heard) do n = n + 1 end
      if n == CLIENTS then heard_all = heard_all + 1 end
      conn:close()
    end)
  end
  joined:wait()
  go:close()
  wg:wait()
  server:close()
  print(("%d members, %d messages; %d members heard all %d")
    :format(CLIENTS, CLIENTS, heard_all, CLIENTS))
  if heard_all ~= CLIENTS then os.exit(1) end
end)

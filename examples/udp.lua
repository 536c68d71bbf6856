-- udp.lua: a UDP echo service and a client in one program, with a receive
-- timeout for the datagram that never comes back.
local eddy = require "eddy"

eddy.run(function()
  local server = assert(eddy.udp.bind("127.0.0.1", 0))
  local _, port = server:local_addr()
  eddy.spawn(function()
    while true do
      local data, ip, from_port = server:recv_from()
      if not data then return end -- closed
      if data ~= "drop me" then server:send_to(data:reverse(), ip, from_port) end
    end
  end)

  local client = assert(eddy.udp.bind())
  for _, word in ipairs({ "stressed", "drawer", "drop me" }) do
    client:send_to(word, "127.0.0.1", port)
    local reply, err = client:recv_from(0.2)
    print(word, "->", reply or ("(" .. err .. ")"))
  end
  client:close()
  server:close()
end)

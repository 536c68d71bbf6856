-- echo.lua: a TLS echo server and its clients in one program: the same
-- connection API as plain TCP once the handshake is through, with the
-- certificate checked against a throw-away CA. Prints what each side saw
-- and a failure a wrong name gives; ends when done.
--
--   eddy examples/https/echo.lua [CERTDIR]
local eddy = require "eddy"

local here = arg[0]:match("^(.*)/") or "."
local dir = arg[1]
if not dir then
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute(("sh %s/make-certs.sh %s"):format(here, dir)) == 0, "make-certs.sh failed")
end

eddy.run(function()
  local server = assert(eddy.tcp.serve("127.0.0.1", 0, function(conn)
    while true do
      local line = conn:read_line()
      if not line then return end
      conn:write(line .. "\n")
    end
  end, { tls = { cert = dir .. "/localhost.pem", key = dir .. "/localhost.key" } }))
  local port = server:port()
  local tls = { ca = dir .. "/ca.pem" }

  for i = 1, 3 do
    local conn = assert(eddy.tcp.connect("localhost", port, { tls = tls }))
    assert(conn:write("line " .. i .. "\n"))
    local info = conn:tls()
    print(("echo: %s (%s, resumed: %s)"):format(conn:read_line({ timeout = 5 }),
      info.version, tostring(info.resumed)))
    conn:close()
  end
  -- The certificate is for localhost: asked for another name, it fails.
  print("wrong name:", eddy.tcp.connect("127.0.0.1", port,
    { tls = { ca = tls.ca, server_name = "example.com" } }))
  server:close()
end)

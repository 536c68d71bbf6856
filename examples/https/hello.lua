-- hello.lua: HTTPS and wss:// from an ordinary eddy app: the same routes,
-- listen{tls = ...}. SIGHUP reloads the certificate and key (a renewal
-- never drops a connection: open ones keep theirs).
--
--   eddy examples/https/hello.lua [CERTDIR [PORT]]
--
-- CERTDIR holds localhost.pem, localhost.key and ca.pem (made by
-- make-certs.sh beside this file; made in a temporary directory when
-- absent). Then: curl --cacert CERTDIR/ca.pem https://localhost:PORT/
-- With PORT "test" it serves on a free port, calls itself once over HTTPS
-- (eddy's HTTP client) and once over wss://, prints what came back, and
-- ends.
local eddy = require "eddy"

local here = arg[0]:match("^(.*)/") or "."
local dir, port = arg[1], arg[2]
if not dir then
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute(("sh %s/make-certs.sh %s"):format(here, dir)) == 0, "make-certs.sh failed")
end
local self_test = port == "test"

local tls = { cert = dir .. "/localhost.pem", key = dir .. "/localhost.key", alpn = { "http/1.1" } }

local app = eddy.http.server()
app:get("/", function(req, res)
  local t = req:tls()
  res:send(("hello over %s (%s)\n"):format(t.version, t.alpn or "no alpn"))
end)
app:websocket("/echo", function(ws)
  while true do
    local msg, kind = ws:recv()
    if not msg then return end
    ws:send(msg, kind)
  end
end)

local server = assert(app:listen("127.0.0.1", self_test and 0 or tonumber(port) or 8443, { tls = tls }))
local url = ("https://localhost:%d/"):format(server:port())
print("serving " .. url)
local hup = eddy.signal.on("hup", function()
  print("reload", server:reload_tls(tls))
end)

if self_test then
  local ca = { ca = dir .. "/ca.pem" }
  local res = assert(eddy.http.get(url, { tls = ca }))
  io.write("https: ", res.body)
  local ws = assert(eddy.ws.connect(("wss://localhost:%d/echo"):format(server:port()), { tls = ca }))
  assert(ws:send("ping over wss"))
  print("wss: " .. assert(ws:recv()))
  ws:close()
  hup:cancel()
  server:close()
end

-- eddy_https.lua: eddy's side of bench/tls.sh: the hello route of an
-- ordinary app over HTTPS, through the public API, with the certificate,
-- TLS version and cipher suite nginx's side uses.
-- Usage: eddy bench/tls/eddy_https.lua PORT CERTDIR
local eddy = require "eddy"
local port, certs = tonumber(arg[1]), arg[2]

local app = eddy.http.server()
app:get("/", function(req, res)
  res:send("hello\n")
end)
assert(app:listen("127.0.0.1", port, { backlog = 4096, tls = {
  cert = certs .. "/localhost.pem", key = certs .. "/localhost.key",
  min_version = "1.3", ciphersuites = "TLS_AES_128_GCM_SHA256",
} }))
print("listening")
io.stdout:flush()

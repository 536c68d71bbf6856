-- eddy.tcp: TCP servers and clients. The connection methods are in C
-- (bindings/tcp.c); this file adds name resolution and the trying of a
-- name's addresses one after another within the connect timeout.

require "eddy" -- sets up the runtime when this module is loaded first
local c = require "eddy.c.tcp"
local dns = require "eddy.dns"
local task = require "eddy.c.task"

local type, error, tostring = type, error, tostring
local now = task.now

local M = { is_ip = c.is_ip }

local DEFAULT_CONNECT_TIMEOUT = 10

local function check_endpoint(host, port, fn)
  if type(host) ~= "string" then
    error("bad argument #1 to '" .. fn .. "' (host string expected, got " .. type(host) .. ")", 3)
  end
  if type(port) ~= "number" or port < 0 or port > 65535 or port % 1 ~= 0 then
    error("bad argument #2 to '" .. fn .. "' (port 0-65535 expected, got " .. tostring(port) .. ")", 3)
  end
end

-- eddy.tcp.connect(host, port[, opts]) → conn, or nil, err.
-- opts: connect_timeout (seconds, default 10, for resolving and connecting
-- together), timeout (default of every read and write), nodelay (default
-- true), keepalive (seconds or true), max_line, write_buffer, family, and
-- tls: true or a table (see conn:starttls in bindings/tcp.c: verify, ca,
-- server_name (default: host), alpn, cert, key, min_version, ...) to speak
-- TLS once connected; the handshake counts in the connect timeout, and a
-- failure is nil, "tls failure", OpenSSL's reason.
function M.connect(host, port, opts)
  check_endpoint(host, port, "connect")
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'connect' (options table expected)", 2)
  end
  local limit = opts and opts.connect_timeout or DEFAULT_CONNECT_TIMEOUT
  local deadline = now() + limit
  local addrs, err = dns.addresses(host, { timeout = limit, family = opts and opts.family })
  if not addrs then return nil, err end
  local o = { connect_timeout = 0 }
  if opts then for k, v in pairs(opts) do o[k] = v end end
  for i = 1, #addrs do
    local left = deadline - now()
    if left <= 0 then return nil, "timeout" end
    o.connect_timeout = left
    local conn
    conn, err = c.connect(addrs[i], port, o)
    if conn then
      if not o.tls then return conn end
      return M._starttls(conn, host, o.tls, deadline - now())
    end
    if err == "cancelled" then break end
  end
  return nil, err
end

-- The TLS handshake of a client's connection, within what is left of the
-- connect timeout.
function M._starttls(conn, host, tls, left)
  local t = { timeout = left > 0 and left or 0.001, server_name = host }
  if type(tls) == "table" then
    for k, v in pairs(tls) do t[k] = v end
    t.timeout = left > 0 and left or 0.001
  end
  local ok, err, reason = conn:starttls(t)
  if not ok then return nil, err, reason end
  return conn
end

-- eddy.tcp.listen(host, port[, opts]) → server, or nil, err.
-- opts: backlog, reuseport (default true), ipv6only, max_connections, and
-- the connection options of connect (timeout, nodelay, keepalive, ...),
-- which every accepted connection starts with; tls = { cert, key, alpn,
-- names = { [name] = { cert, key } } (SNI), handshake_timeout, min_version,
-- ciphers, ciphersuites, verify and ca (to ask clients for certificates) }
-- makes every connection TLS (server:reload_tls(tls) swaps the
-- certificate for new connections).
function M.listen(host, port, opts)
  check_endpoint(host, port, "listen")
  local ip, err = dns.address(host)
  if not ip then return nil, err end
  return c.listen(ip, port, opts)
end

-- eddy.tcp.serve(host, port, handler[, opts]) → server, or nil, err: listen,
-- then run handler(conn) in a task per connection.
function M.serve(host, port, handler, opts)
  if type(handler) ~= "function" then
    error("bad argument #3 to 'serve' (function expected, got " .. type(handler) .. ")", 2)
  end
  local server, err = M.listen(host, port, opts)
  if not server then return nil, err end
  return server:serve(handler)
end

return M

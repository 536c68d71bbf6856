-- eddy.udp: UDP sockets. bind([host[, port[, opts]]]) → socket, or nil, err;
-- socket:send_to(data, host, port[, opts]) → true, or nil, err;
-- socket:recv_from([opts]) → data, ip, port, or nil, err; socket:close().
-- Host names are resolved (and cached) by eddy.dns.

require "eddy" -- sets up the runtime when this module is loaded first
local c = require "eddy.c.udp"
local dns = require "eddy.dns"

local address = dns.address
local M = {}

local raw_send_to = c.Socket.send_to

function c.Socket.send_to(sock, data, host, port, opts)
  local ip, err = address(host)
  if not ip then return nil, err end
  return raw_send_to(sock, data, ip, port, opts)
end

-- eddy.udp.bind([host[, port[, opts]]]): host defaults to "0.0.0.0" and
-- port to 0 (any free port). opts: reuseaddr.
function M.bind(host, port, opts)
  local ip, err = address(host or "0.0.0.0")
  if not ip then return nil, err end
  return c.bind(ip, port or 0, opts)
end

return M

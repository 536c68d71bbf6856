-- eddy.dns: resolve(name[, opts]) → an array of address strings, or nil and
-- "not found", "timeout" or "dns failure". Lookups run on the loop through
-- c-ares with a cache (see core/dns.c); opts: timeout (seconds, default 10),
-- family ("inet", "inet6" or "any"). Also the helpers that eddy.tcp and
-- eddy.udp use to turn a host into addresses.
require "eddy" -- sets up the runtime when this module is loaded first
local c = require "eddy.c.dns"
local tcp = require "eddy.c.tcp"

local M = { resolve = c.resolve }

-- Names that stand for an address without a lookup.
local ALIASES = { localhost = "127.0.0.1", ["*"] = "0.0.0.0" }

-- dns.address(host[, opts]): one address to use for host (an alias, a
-- literal, or the first answer of a lookup), or nil, err.
function M.address(host, opts)
  local ip = ALIASES[host] or host
  if tcp.is_ip(ip) then return ip end
  local addrs, err = c.resolve(host, opts)
  if not addrs then return nil, err end
  return addrs[1]
end

-- dns.addresses(host[, opts]): every address to try for host, in order.
function M.addresses(host, opts)
  local ip = ALIASES[host] or host
  if tcp.is_ip(ip) then return { ip } end
  return c.resolve(host, opts)
end

return M

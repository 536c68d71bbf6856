-- eddy.dns: resolve(name[, opts]) → an array of address strings, or nil and
-- "not found", "timeout" or "dns failure". Lookups run on the loop through
-- c-ares with a cache (see core/dns.c); opts: timeout (seconds, default 10),
-- family ("inet", "inet6" or "any").
require "eddy" -- sets up the runtime when this module is loaded first
return require "eddy.c.dns"

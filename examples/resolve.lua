-- resolve.lua: looks names up concurrently on the loop (c-ares, cached).
-- Usage: eddy examples/resolve.lua [name ...]
local eddy = require "eddy"

local names = {}
for i = 1, #arg do names[i] = arg[i] end
if #names == 0 then names = { "localhost", "127.0.0.1", "::1", "no-such-host.invalid" } end

eddy.run(function()
  local lookups = {}
  for i, name in ipairs(names) do
    lookups[i] = eddy.spawn(eddy.dns.resolve, name, { timeout = 5 })
  end
  for i, name in ipairs(names) do
    local _, addrs, err = lookups[i]:join()
    print(("%-24s %s"):format(name, addrs and table.concat(addrs, ", ") or err))
  end
end)

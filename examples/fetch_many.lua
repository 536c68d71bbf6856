-- fetch_many.lua: fetches URLs concurrently, each a task waiting on its
-- request as plain sequential code, and prints the status, size and time
-- of each, then the total time against the sum of the single times.
--
--   build/eddy examples/fetch_many.lua https://example.com/ http://127.0.0.1:8080/ ...

local eddy = require "eddy"

local urls = { ... }
if #urls == 0 then
  urls = { "http://127.0.0.1:8080/", "http://localhost:8080/missing" }
end

local t0 = eddy.now()
local sum = 0
local wg = eddy.waitgroup()
local lines = {}
for i, url in ipairs(urls) do
  wg:spawn(function()
    local start = eddy.now()
    local res, err, detail = eddy.http.get(url, { timeout = 30 })
    local took = eddy.now() - start
    sum = sum + took
    lines[i] = res and ("%-40s %3d %8d B %6.3f s"):format(url, res.status, #res.body, took)
      or ("%-40s %s (%s) %6.3f s"):format(url, err, detail, took)
  end)
end
wg:wait()
for _, line in ipairs(lines) do print(line) end
print(("all in %.3f s, against %.3f s one after another"):format(eddy.now() - t0, sum))

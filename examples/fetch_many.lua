-- fetch_many.lua: fetches URLs concurrently, each a task waiting on its
-- request as plain sequential code, and prints the status, size and time
-- of each, then the total time against the sum of the single times.
--
--   build/eddy examples/fetch_many.lua https://example.com/ http://127.0.0.1:8080/ ...
--   build/eddy examples/fetch_many.lua --http2 https://example.com/a https://example.com/b
--
-- With --http2 the requests speak HTTP/2 (over TLS as the server agrees;
-- in the clear with prior knowledge), those to one host sharing one
-- connection.

local eddy = require "eddy"

local urls = { ... }
local version
if urls[1] == "--http2" then
  version = "2"
  table.remove(urls, 1)
end
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
    local res, err, detail = eddy.http.get(url, { timeout = 30, http_version = version })
    local took = eddy.now() - start
    sum = sum + took
    lines[i] = res and ("%-40s %3d %8d B %6.3f s HTTP/%s"):format(url, res.status, #res.body, took,
      res.http_version)
      or ("%-40s %s (%s) %6.3f s"):format(url, err, detail, took)
  end)
end
wg:wait()
for _, line in ipairs(lines) do print(line) end
print(("all in %.3f s, against %.3f s one after another"):format(eddy.now() - t0, sum))

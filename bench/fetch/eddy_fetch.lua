-- eddy_fetch.lua: eddy's side of bench/fetch.sh: N GETs of URL, C at a
-- time, through eddy.http.fetch_all; prints the seconds taken.
local eddy = require "eddy"
local url, n, c = arg[1], tonumber(arg[2]) or 10000, tonumber(arg[3]) or 100
local list = {}
for i = 1, n do list[i] = url end
local t0 = eddy.now()
local results = eddy.http.fetch_all(list, { concurrency = c })
local took = eddy.now() - t0
for i = 1, n do assert(results[i][1] and results[i][1].status == 200, results[i][2]) end
print(("%.3f"):format(took))

-- mysql_bench.lua: eddy's side of bench/db/mysql.sh. N point queries (the
-- lines of QUERIES, in turn) run by C tasks that each take a connection
-- from a pool of POOL for every query; "plain" sends the text, "prepared"
-- the same query with the id bound as a parameter. Prints the seconds.
--   eddy mysql_bench.lua HOST:PORT plain|prepared QUERIES N C POOL
local eddy = require "eddy"
local mysql = eddy.mysql

local addr, mode, file = arg[1], arg[2], arg[3]
local n, c, size = tonumber(arg[4]) or 10000, tonumber(arg[5]) or 100, tonumber(arg[6]) or 20
local host, port = addr:match("^(.*):(%d+)$")
local queries, ids = {}, {}
for line in io.lines(file) do
  local q = line:gsub(";%s*$", "")
  if q ~= "" then
    queries[#queries + 1] = q
    ids[#ids + 1] = tonumber(q:match("(%d+)%s*$"))
  end
end
local opts = {
  host = host, port = tonumber(port), user = "eddy", password = "eddy-pass",
  database = "eddy_test", pool = { max_open = size, wait_timeout = 60 },
}
local prepared = "SELECT id, v FROM bench_points WHERE id = ?"

local t0 = eddy.now()
local next_i, rows = 0, 0
local wg = eddy.waitgroup()
for _ = 1, c do
  wg:spawn(function()
    while next_i < n do
      next_i = next_i + 1
      local k = (next_i - 1) % #queries + 1
      local conn = assert(mysql.connect(opts))
      local res, err, msg
      if mode == "prepared" then
        res, err, msg = conn:query(prepared, ids[k])
      else
        res, err, msg = conn:query(queries[k])
      end
      assert(res, msg or err)
      rows = rows + #res
      conn:release()
    end
  end)
end
wg:wait()
local took = eddy.now() - t0
assert(rows == n, "expected one row per query")
mysql.pool(opts):close()
print(("%.3f"):format(took))

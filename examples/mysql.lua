-- mysql.lua: a MySQL/MariaDB table filled and read by tasks that share a
-- pool of connections, with parameters bound (never pasted into the SQL)
-- and a transaction that rolls back when its function fails.
--
--   build/eddy examples/mysql.lua [host:port]
-- (user, password and database from MYSQL_USER, MYSQL_PASSWORD and
-- MYSQL_DATABASE; by default those of the tests: eddy, eddy-pass, eddy_test)

local eddy = require "eddy"
local mysql = eddy.mysql

local host, port = (... or "127.0.0.1:3306"):match("^(.*):(%d+)$")
local opts = {
  host = host, port = tonumber(port),
  user = os.getenv("MYSQL_USER") or "eddy",
  password = os.getenv("MYSQL_PASSWORD") or "eddy-pass",
  database = os.getenv("MYSQL_DATABASE") or "eddy_test",
  pool = { max_open = 4 },
}

local db = assert(mysql.connect(opts))
assert(db:query("DROP TABLE IF EXISTS example_people"))
assert(db:query("CREATE TABLE example_people (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), age INT NULL)"))
db:release()

-- Ten tasks insert at once, over at most four connections.
local wg = eddy.waitgroup()
for i = 1, 10 do
  wg:spawn(function()
    local conn = assert(mysql.connect(opts))
    local age = i % 3 == 0 and mysql.null or 20 + i
    assert(conn:query("INSERT INTO example_people (name, age) VALUES (?, ?)", "person " .. i, age))
    conn:release()
  end)
end
wg:wait()

db = assert(mysql.connect(opts))
-- A failing transaction leaves nothing behind.
local ok = pcall(db.transaction, db, function(conn)
  assert(conn:query("DELETE FROM example_people"))
  error("changed my mind")
end)
print("transaction failed:", not ok)

local rows = assert(db:query("SELECT name, age FROM example_people WHERE age IS NULL OR age > ? ORDER BY id", 25))
for _, row in ipairs(rows) do
  print(row.name, row.age == mysql.null and "(no age)" or row.age)
end
local count = assert(db:query("SELECT COUNT(*) AS n FROM example_people"))[1].n
print("people:", count)
assert(db:query("DROP TABLE example_people"))
db:release()
mysql.pool(opts):close()

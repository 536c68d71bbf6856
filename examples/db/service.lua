-- db/service.lua: a small HTTP service over MariaDB, with Redis as a
-- read-through cache in front. Both clients share bounded pools; a Redis
-- that is down only costs the cache (the answer comes from MariaDB, with
-- X-Cache: off), a MariaDB that is down answers 503, and the server keeps
-- serving either way.
--
--   POST /users            {"name": ..., "email": ...}  → 201 {"id": n}
--   GET  /users/:id        → 200 the user (X-Cache: hit | miss | off), 404
--   PUT  /users/:id        {"name": ..., "email": ...}  → 200, cache dropped
--
--   build/eddy examples/db/service.lua [http_port] [mysql host:port] [redis url]
-- (MySQL user, password and database from MYSQL_USER, MYSQL_PASSWORD and
-- MYSQL_DATABASE; by default those of the tests: eddy, eddy-pass, eddy_test)

local eddy = require "eddy"
local cjson = require "cjson"
local mysql, redis = eddy.mysql, eddy.redis

local http_port = tonumber(arg and arg[1]) or 8080
local db_host, db_port = ((arg and arg[2]) or "127.0.0.1:3306"):match("^(.*):(%d+)$")
local cache_url = (arg and arg[3]) or "redis://127.0.0.1:6379/0"
local CACHE_TTL = 60 -- seconds

local db_opts = {
  host = db_host, port = tonumber(db_port),
  user = os.getenv("MYSQL_USER") or "eddy",
  password = os.getenv("MYSQL_PASSWORD") or "eddy-pass",
  database = os.getenv("MYSQL_DATABASE") or "eddy_test",
  connect_timeout = 2, timeout = 5,
  pool = { max_open = 10, wait_timeout = 2 },
}
local cache_opts = { url = cache_url, connect_timeout = 0.5, timeout = 0.5,
  pool = { max_open = 10, wait_timeout = 1 } }

-- Runs fn(conn, ...) on a pooled connection; gives it back, or drops it if
-- fn raised. nil, err when no connection could be had.
local function with(client, opts, fn, ...)
  local conn, err = client.connect(opts)
  if not conn then return nil, err end
  local function done(ok, ...)
    if ok then conn:release() else conn:close() error((...), 0) end
    return ...
  end
  return done(pcall(fn, conn, ...))
end

local function cache_get(key)
  return with(redis, cache_opts, function(c) return c:get(key) end)
end

local function cache_put(key, value)
  return with(redis, cache_opts, function(c) return c:set(key, value, "EX", CACHE_TTL) end)
end

local function cache_drop(key)
  return with(redis, cache_opts, function(c) return c:del(key) end)
end

local function read_user(req, res)
  local ok, user = pcall(cjson.decode, req:body() or "")
  if not ok or type(user) ~= "table" or type(user.name) ~= "string" or type(user.email) ~= "string" then
    res:status(400)
    res:json({ error = "expected {\"name\": string, \"email\": string}" })
    return nil
  end
  return user
end

local function db_failed(res, err)
  eddy.log.warn("database unavailable", { err = err })
  res:status(503)
  res:json({ error = "database unavailable: " .. tostring(err) })
end

local app = eddy.http.server()

app:route("POST", "/users", function(req, res)
  local user = read_user(req, res)
  if not user then return end
  local r, err = with(mysql, db_opts, function(conn)
    return conn:query("INSERT INTO db_example_users (name, email) VALUES (?, ?)", user.name, user.email)
  end)
  if not r then return db_failed(res, err) end
  res:status(201)
  res:json({ id = r.insert_id })
end)

app:route("GET", "/users/:id", function(req, res)
  local id = tonumber(req.params.id)
  if not id then res:status(404) return res:json({ error = "no such user" }) end
  local key = "db_example:user:" .. id
  local cached, cache_err = cache_get(key)
  if cached then
    res:header("X-Cache", "hit")
    res:header("Content-Type", "application/json")
    return res:send(cached)
  end
  local rows, err = with(mysql, db_opts, function(conn)
    return conn:query("SELECT id, name, email FROM db_example_users WHERE id = ?", id)
  end)
  if not rows then return db_failed(res, err) end
  if not rows[1] then res:status(404) return res:json({ error = "no such user" }) end
  local body = cjson.encode(rows[1])
  -- A nil without error is a miss; an error means the cache is down.
  local state = cache_err and "off" or "miss"
  if state == "miss" then cache_put(key, body) end
  res:header("X-Cache", state)
  res:header("Content-Type", "application/json")
  res:send(body)
end)

app:route("PUT", "/users/:id", function(req, res)
  local id = tonumber(req.params.id)
  local user = read_user(req, res)
  if not user then return end
  local r, err = with(mysql, db_opts, function(conn)
    return conn:query("UPDATE db_example_users SET name = ?, email = ? WHERE id = ?", user.name, user.email, id)
  end)
  if not r then return db_failed(res, err) end
  if r.affected_rows == 0 then res:status(404) return res:json({ error = "no such user" }) end
  cache_drop("db_example:user:" .. id)
  res:json({ id = id })
end)

local ok, err = with(mysql, db_opts, function(conn)
  return conn:query([[CREATE TABLE IF NOT EXISTS db_example_users (
    id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL)]])
end)
if not ok then eddy.log.warn("could not create the table yet", { err = err }) end

local srv = assert(app:listen("127.0.0.1", http_port))
eddy.log.info("listening", { port = srv:port() })

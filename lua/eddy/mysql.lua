-- eddy.mysql: a MySQL / MariaDB client on MariaDB Connector/C's
-- non-blocking API, driven by the thread's loop (core/mysql.c,
-- bindings/mysql.c). Any number of tasks may wait on queries at once, each
-- on its own connection; a connection runs one operation at a time.
--
-- connect{host, port, user, password, database, charset = "utf8mb4",
--         connect_timeout = 10, timeout = 30, statement_cache = 64,
--         multi_statements = true, max_result, pool = {max_open,
--         max_idle, idle_timeout, wait_timeout}}
--   -> conn | nil, err, message, errno, sqlstate
-- Host names are resolved by eddy first (the connector's lookup blocks).
-- With `pool`, the connection comes from the thread's shared pool for that
-- server, database and user (eddy.pool); conn:release() gives it back.
--
-- conn:query(sql, ...) -> result | nil, err, message, errno, sqlstate
--   Without arguments after sql, a plain text query; with them, a prepared
--   statement (cached per connection, least recently used out first) with
--   the arguments bound as its parameters: never pasted into the text.
--   A result set is an array of rows, each a table keyed by column name;
--   rows.columns lists the names in order, rows.types their types. A
--   statement without rows answers {affected_rows, insert_id, warnings}.
--   Values: integers as numbers (past 2^53 as decimal strings), floats as
--   numbers, DECIMAL as strings, dates and times as strings, text and
--   bytes as strings, NULL as eddy.mysql.null (a light userdata: the same
--   value as cjson.null). A parameter nil or null binds NULL.
--   When the server sends several results (a CALL, several statements in
--   one text), query answers the first; query_all answers all of them.
-- err is short and stable: "query error" (the server refused the query;
-- message and errno say why), "auth failure", "refused", "dns failure",
-- "closed" (the connection was lost or killed), "timeout", "cancelled",
-- "io error", "too large" (a result had more rows than max_result: it was
-- dropped before any Lua table was built; the connection stays usable). An operation that times out or is cancelled closes its
-- connection: the connector cannot stop one midway.
local c = require "eddy.c.mysql"
local dns = require "eddy.dns"
local pool = require "eddy.pool"

local setmetatable, select, type, error, pcall, tostring, pairs, ipairs, format =
  setmetatable, select, type, error, pcall, tostring, pairs, ipairs, string.format
local unpack = unpack or table.unpack

local c_query, c_execute, c_next, c_prepare = c.query, c.execute, c.next_result, c.prepare

local M = { null = c.null }

local Conn = {}
Conn.__index = Conn

local DEFAULTS = { port = 3306, connect_timeout = 10, timeout = 30, statement_cache = 64 }

-- Reads the results after the first one, keeping them in list if given.
-- Returns true, or nil and the failure of a later statement.
local function drain(h, id, timeout, list)
  while true do
    local res, more, msg, errno, state = c_next(h, id, timeout)
    if res == nil then
      if more == nil then return true end -- no more after all
      return nil, more, msg, errno, state
    end
    if list then list[#list + 1] = res end
    if not more then return true end
  end
end

-- What a query or execution answers: its first result (res, more, or
-- nil, err, ...), then the others, read because the connection must be
-- clear for the next query: kept in list if given (query_all), else
-- dropped (query).
-- A result past max_result comes as false (dropped before any table was
-- built): the answer is then nil, "too large", once the rest are read.
local function results(self, id, list, res, more, ...)
  if res == nil then return nil, more, ... end
  if list then list[1] = res end
  if more then
    local ok, err, msg, errno, state = drain(self._h, id, self._timeout, list)
    if not ok then return nil, err, msg, errno, state end
  end
  if res == false then return nil, "too large" end
  if list then
    for i = 2, #list do
      if list[i] == false then return nil, "too large" end
    end
  end
  return list or res
end

-- The prepared statement for sql: from the cache, or prepared now (the
-- least recently used one goes when the cache is full).
local function statement(self, sql)
  local tick = self._tick + 1
  self._tick = tick
  local cached = self._stmts[sql]
  if cached then
    cached.tick = tick
    return cached.id
  end
  local id, err, msg, errno, state = c_prepare(self._h, sql, self._timeout)
  if not id then return nil, err, msg, errno, state end
  if self._nstmts >= self._max_stmts then
    local old_sql, old
    for s, e in pairs(self._stmts) do
      if not old or e.tick < old.tick then old_sql, old = s, e end
    end
    self._stmts[old_sql] = nil
    self._nstmts = self._nstmts - 1
    c.stmt_close(self._h, old.id)
  end
  self._stmts[sql] = { id = id, tick = tick }
  self._nstmts = self._nstmts + 1
  return id
end

local function run(self, list, sql, ...)
  if type(sql) ~= "string" then
    error("bad argument #1 to 'query' (string expected, got " .. type(sql) .. ")", 3)
  end
  if select("#", ...) == 0 then
    return results(self, nil, list, c_query(self._h, sql, self._timeout))
  end
  local id, err, msg, errno, state = statement(self, sql)
  if not id then return nil, err, msg, errno, state end
  return results(self, id, list, c_execute(self._h, id, self._timeout, ...))
end

-- conn:query(sql, ...) -> the first result | nil, err, message, errno, sqlstate
function Conn:query(sql, ...)
  return run(self, nil, sql, ...)
end

-- conn:query_all(sql, ...) -> a list of every result the server sent
function Conn:query_all(sql, ...)
  return run(self, {}, sql, ...)
end

local function ok_or_fail(res, ...)
  if res == nil then return nil, ... end
  return true
end

function Conn:begin() return ok_or_fail(c_query(self._h, "START TRANSACTION", self._timeout)) end
function Conn:commit() return ok_or_fail(c_query(self._h, "COMMIT", self._timeout)) end
function Conn:rollback() return ok_or_fail(c_query(self._h, "ROLLBACK", self._timeout)) end

-- conn:transaction(fn, ...): runs fn(conn, ...) inside a transaction. It
-- commits when fn returns a true first value and answers fn's results (or
-- nil, err when the commit fails); it rolls back when fn returns nil or
-- false (and answers what fn returned) or raises (and raises it again).
-- Inside an open transaction it raises: MySQL does not nest them, and a
-- START TRANSACTION would commit the open one.
-- (holder: what fn gets, the pooled checkout's handle or the connection)
local function transaction(self, holder, fn, ...)
  if c.in_transaction(self._h) then
    error("transaction inside an open transaction (MySQL does not nest them)", 2)
  end
  local ok, err, msg, errno, state = self:begin()
  if not ok then return nil, err, msg, errno, state end
  local res = { pcall(fn, holder, ...) }
  if not res[1] then
    self:rollback()
    error(res[2], 0)
  end
  if not res[2] then
    self:rollback()
    return unpack(res, 2, table.maxn(res))
  end
  ok, err, msg, errno, state = self:commit()
  if not ok then return nil, err, msg, errno, state end
  return unpack(res, 2, table.maxn(res))
end

function Conn:transaction(fn, ...) return transaction(self, self, fn, ...) end

function Conn:ping() return c.ping(self._h, self._timeout) end

-- conn:quote(s) -> s as an SQL string literal, escaped for the connection
-- (parameters are the better way; this is for text that must be built).
function Conn:quote(s) return c.quote(self._h, s) end

-- conn:set_timeout(seconds): the time limit of each later operation.
function Conn:set_timeout(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error("bad argument #1 to 'set_timeout' (seconds >= 0 expected)", 2)
  end
  self._timeout = seconds
end

-- conn:closed() -> whether it can no longer be used (closed, lost, killed,
-- or given up after a timeout).
function Conn:closed() return c.closed(self._h) end

-- conn:in_transaction(): the server says a transaction is open.
function Conn:in_transaction() return c.in_transaction(self._h) end

-- conn:id() -> the server's id of this connection (for KILL).
function Conn:id()
  return (c.state(self._h))
end

-- conn:server_version() -> the server's version string.
function Conn:server_version()
  local _, v = c.state(self._h)
  return v
end

-- Whether a connection may serve another task: open, and no transaction
-- left open (a pool closes it instead).
local function reusable(self)
  return c.reusable(self._h)
end

-- conn:close(): closes it for good (a pooled one leaves its pool).
function Conn:close() return c.close(self._h) end

-- conn:release(): a pooled connection goes back to its pool (closed
-- instead when it is broken or inside a transaction); another is closed.
function Conn:release() return c.close(self._h) end

-- A pooled connection's holder gets a handle for that checkout, not the
-- connection itself: the pool hands the same connection to the next task,
-- so a stale holder's late release, close or query must not reach it.
-- Once released or closed, a handle is dead: its methods answer nil,
-- "closed" (closed() answers true) and release and close do nothing.
local Handle = {}
Handle.__index = Handle

for name, m in pairs(Conn) do
  if name ~= "__index" then
    Handle[name] = function(self, ...)
      local conn = self._conn
      if not conn then return nil, "closed" end
      return m(conn, ...)
    end
  end
end

function Handle:transaction(fn, ...)
  local conn = self._conn
  if not conn then return nil, "closed" end
  return transaction(conn, self, fn, ...)
end

function Handle:closed()
  local conn = self._conn
  return not conn or c.closed(conn._h)
end

-- Ends the checkout: the connection goes back to its pool by the pool's
-- method `how` ("put" or "discard"), its timeout as the options set it
-- (a holder's set_timeout is not the next holder's).
local function let_go(self, how)
  local conn = self._conn
  if not conn then return end
  self._conn = false
  conn._timeout = conn._default_timeout
  local p = conn._pool
  p[how](p, conn)
end

function Handle:close() return let_go(self, "discard") end
function Handle:release() return let_go(self, "put") end

local NUMBER_OPTS = { "connect_timeout", "timeout", "statement_cache", "port", "max_result" }

local function check_opts(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'connect' (options table expected)", 3)
  end
  if type(opts.user) ~= "string" then
    error("bad option 'user' to 'connect' (string expected)", 3)
  end
  for _, k in ipairs(NUMBER_OPTS) do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0) then
      error(format("bad option '%s' to 'connect' (number >= 0 expected)", k), 3)
    end
  end
end

-- A new connection, not pooled.
local function open(opts)
  local host = opts.host or "127.0.0.1"
  local connect_timeout = opts.connect_timeout or DEFAULTS.connect_timeout
  local ip, err = dns.address(host, { timeout = connect_timeout })
  if not ip then return nil, "dns failure", host .. ": " .. tostring(err) end
  local h, nerr = c.new()
  if not h then return nil, nerr end
  local ok, cerr, msg, errno, state = c.connect(h, {
    ip = ip, port = opts.port or DEFAULTS.port, user = opts.user,
    password = opts.password, database = opts.database, charset = opts.charset,
    multi_statements = opts.multi_statements, max_result = opts.max_result,
  }, connect_timeout)
  if not ok then
    c.close(h)
    return nil, cerr, msg, errno, state
  end
  return setmetatable({
    _h = h,
    _timeout = opts.timeout or DEFAULTS.timeout,
    _default_timeout = opts.timeout or DEFAULTS.timeout,
    _stmts = {}, _nstmts = 0, _tick = 0,
    _max_stmts = math.max(1, opts.statement_cache or DEFAULTS.statement_cache),
  }, Conn)
end

-- Everything that shapes a connection is in its pool's key (the password
-- too: a wrong one must not be handed a connection opened with the right
-- one).
local function pool_key(opts)
  return format("mysql:%s:%s@%s:%d/%s charset=%s multi=%s stmts=%s timeouts=%s,%s max=%s",
    opts.user, opts.password or "", opts.host or "127.0.0.1",
    opts.port or DEFAULTS.port, opts.database or "", tostring(opts.charset),
    tostring(opts.multi_statements), tostring(opts.statement_cache),
    tostring(opts.connect_timeout), tostring(opts.timeout), tostring(opts.max_result))
end

-- The pool of each options table used so far, so that a connect with the
-- same table finds its pool without building its key again.
local pools = setmetatable({}, { __mode = "k" })

-- mysql.pool(opts) -> the thread's shared pool that connect(opts) with
-- opts.pool draws from (for its stats, or to close it).
function M.pool(opts)
  local p = pools[opts]
  if p and not p:closed() then return p end
  check_opts(opts)
  local po = opts.pool or {}
  local key = pool_key(opts)
  p = pool.shared(key, {
    name = key,
    open = function() return open(opts) end,
    close = function(conn) c.close(conn._h) end,
    reusable = reusable,
    max_open = po.max_open, max_idle = po.max_idle,
    idle_timeout = po.idle_timeout, wait_timeout = po.wait_timeout,
  })
  pools[opts] = p
  return p
end

function M.connect(opts)
  if type(opts) == "table" and opts.pool ~= nil then
    local p = pools[opts]
    if not p or p:closed() then p = M.pool(opts) end
    local conn, err, msg, errno, state = p:get()
    if not conn then return nil, err, msg, errno, state end
    conn._pool = p
    return setmetatable({ _conn = conn }, Handle)
  end
  check_opts(opts)
  return open(opts)
end

return M

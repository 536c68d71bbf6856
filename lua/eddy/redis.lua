-- eddy.redis: an async Redis client. A connection is an eddy.tcp
-- connection driven from here; eddy.c.resp (bindings/resp.c, over hiredis's
-- reader) frames commands and turns replies into Lua values.
--
--   conn, err = redis.connect("redis://[[user]:password@]host[:port][/db]"
--                             | "rediss://..." (TLS)
--                             | {host, port, password, username, db, tls,
--                                connect_timeout, timeout, max_reply, pool})
--   v, err = conn:call("SET", "k", "v")   conn:get("k")   conn:hgetall("h")
--
-- Replies: a string, a number (an integer past +-2^53 as its decimal
-- string: a double would lose digits), a table for an array (its nils are
-- redis.null, its error replies error objects: redis.is_error(x), x.err);
-- a nil reply is nil. An error reply is nil, Redis's message ("ERR ...",
-- "WRONGTYPE ..."); a failure of the connection is nil and one of
-- "timeout", "closed", "refused", "cancelled", "protocol error",
-- "too large". After such a failure (a timeout included: the replies
-- would be out of step) the connection is closed.
--
-- timeout (default 10 s) bounds each command from send to reply, and
-- connect_timeout (10 s) the connect with its AUTH and SELECT; a blocking
-- command (BLPOP k 0) needs conn:set_timeout(math.huge) or a longer one.
--
-- A connection serves one task at a time (a second one raises); a pool
-- (opts.pool, see eddy.pool and connect below) shares connections among
-- tasks. conn:pipeline(fn) sends many commands in one write;
-- conn:subscribe / psubscribe make the connection a subscriber.

require "eddy"
local tcp = require "eddy.tcp"
local pool = require "eddy.pool"
local resp = require "eddy.c.resp"
local task = require "eddy.c.task"

local type, error, tonumber, select, pairs = type, error, tonumber, select, pairs
local setmetatable, getmetatable, unpack = setmetatable, getmetatable, unpack
local upper, lower, concat = string.upper, string.lower, table.concat
local encode, new_reader, now, check_wait = resp.encode, resp.reader, task.now, task.check_wait

local M = { _VERSION = "0.1.0", null = resp.null }

local DEFAULT_PORT = 6379
local DEFAULT_TIMEOUT = 10         -- seconds: a command, from send to reply
local DEFAULT_CONNECT_TIMEOUT = 10 -- seconds: connect, AUTH and SELECT
local HUGE = math.huge
-- Seconds: a pooled connection idle longer than this is pinged before it
-- is handed out, so that one the server dropped meanwhile (a restart, its
-- timeout setting) is replaced rather than failing its next command.
local IDLE_PING = 1

-- Error replies inside arrays (EXEC's, a pipeline's).
local error_mt = resp.error_mt
error_mt.__tostring = function(e) return e.err end
error_mt.__index = { is_error = true }

function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == error_mt
end

-- ======================================================================
-- Options

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- redis[s]://[[username]:password@]host[:port][/db][?timeout=s&connect_timeout=s]
-- (rediss: over TLS, verified as eddy.tcp verifies)
local function parse_url(url)
  local scheme, rest = url:match("^([Rr][Ee][Dd][Ii][Ss][Ss]?)://(.*)$")
  if not rest then return nil, "bad url" end
  local authority, path = rest:match("^([^/?]*)(.*)$")
  local o = { tls = #scheme == 6 or nil }
  local userinfo, hostport = authority:match("^(.*)@(.*)$")
  if userinfo then
    local user, pass = userinfo:match("^(.-):(.*)$")
    if user then
      o.username = user ~= "" and unescape(user) or nil
      o.password = unescape(pass)
    else
      o.password = unescape(userinfo) -- redis://secret@host: the password
    end
  else
    hostport = authority
  end
  local host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host then return nil, "bad url" end
  o.host = host ~= "" and host or "127.0.0.1"
  o.port = tonumber(port) or DEFAULT_PORT
  local db, query = path:match("^/?(%d*)%??(.*)$")
  if not db then return nil, "bad url" end
  o.db = tonumber(db)
  for k, v in query:gmatch("([^&=]+)=([^&]*)") do
    if k == "timeout" or k == "connect_timeout" then o[k] = tonumber(v) end
  end
  return o
end

local function check_opts(o)
  if type(o.host) ~= "string" then error("bad option 'host' (string expected)", 4) end
  if o.port ~= nil and type(o.port) ~= "number" then error("bad option 'port' (number expected)", 4) end
  if o.db ~= nil and (type(o.db) ~= "number" or o.db < 0 or o.db % 1 ~= 0) then
    error("bad option 'db' (integer >= 0 expected)", 4)
  end
  for _, k in pairs({ "timeout", "connect_timeout", "max_reply" }) do
    if o[k] ~= nil and (type(o[k]) ~= "number" or o[k] < 0) then
      error("bad option '" .. k .. "' (number >= 0 expected)", 4)
    end
  end
  -- The reader's own floor, checked here: before anything connects.
  if o.max_reply ~= nil and o.max_reply < 64 then
    error("bad option 'max_reply' (number >= 64 expected)", 4)
  end
end

-- ======================================================================
-- Connections

local Conn = {}

-- Commands that change the connection's state: a connection in one of
-- these states is not given to the next user of a pool.
local STATEFUL = { MULTI = "multi", EXEC = "end", DISCARD = "end", WATCH = "watch",
  UNWATCH = "unwatch", SELECT = "select", AUTH = "auth", HELLO = "auth", RESET = "auth",
  SUBSCRIBE = "sub", PSUBSCRIBE = "sub", SSUBSCRIBE = "sub", MONITOR = "sub",
  CLIENT = "client" }
-- CLIENT subcommands that change the connection (CLIENT ID, LIST, KILL
-- do not).
local CLIENT_STATEFUL = { REPLY = true, TRACKING = true, SETNAME = true, CACHING = true,
  ["NO-EVICT"] = true, ["NO-TOUCH"] = true, SETINFO = true }
local kinds = {} -- command name as given → its STATEFUL kind or false

local function kind_of(cmd)
  local k = kinds[cmd]
  if k == nil then
    k = type(cmd) == "string" and STATEFUL[upper(cmd)] or false
    kinds[cmd] = k
  end
  return k
end

-- Ends the connection for good after a failure that leaves its state
-- unknown; returns nil, err for the caller to pass on.
local function fail(self, err, detail)
  local sock = self._sock
  if sock then
    self._sock = nil
    self._err = err
    sock:close()
  end
  return nil, err, detail
end

-- Reads the next reply within `timeout` seconds: true, value; false,
-- message (an error reply); or nil, err. A timeout or cancellation in a
-- subscription (benign) leaves the connection as it is; anywhere else
-- it closes the connection.
local function read_reply(self, timeout, benign)
  local r, sock = self._reader, self._sock
  local ok, v, detail = r:get()
  if ok ~= nil then return ok, v end
  if v then return fail(self, v, detail) end
  local start
  while true do
    local left = timeout
    if start then
      left = timeout - (now() - start)
      if left < 0 then left = 0 end
    else
      start = now()
    end
    local data, err = sock:read_some(65536, left)
    if not data then
      if benign and (err == "timeout" or err == "cancelled") then return nil, err end
      return fail(self, err)
    end
    ok, v, detail = r:get(data)
    if ok ~= nil then return ok, v end
    if v then return fail(self, v, detail) end
  end
end

local function check_idle(self, level)
  if self._busy then error("redis connection is in use by another task", level + 1) end
end

-- Takes the connection for an exchange (self._busy) and sends req (the
-- bytes of one or more commands): true, or nil, err with the connection
-- given back (and closed if the write failed). Raises at `level` when
-- the connection is in another task's hands, or subscribed and sub is
-- not set.
local function send(self, req, level, sub)
  check_idle(self, level + 1)
  -- Raising once the exchange began would leave the connection busy for
  -- good (a call inside string.gsub's callback, say): know first.
  check_wait()
  if self._sub and not sub then
    error("redis connection is subscribed: use its subscription", level + 1)
  end
  local sock = self._sock
  if not sock then return nil, "closed" end
  self._busy = true
  local ok, err = sock:write(req, self._timeout)
  if not ok then
    self._busy = false
    return fail(self, err)
  end
  return true
end

-- Sends one command's bytes and reads its reply: the value, or nil, err.
local function request(self, req)
  local ok, err = send(self, req, 3)
  if not ok then return nil, err end
  local v, detail
  ok, v, detail = read_reply(self, self._timeout)
  self._busy = false
  if ok then return v end
  return nil, v, detail
end

-- Notes what a stateful command did to the connection. Inside MULTI a
-- command is only queued ("QUEUED"): its effect comes with EXEC, if at
-- all, so the connection is marked as not reusable instead.
local function track(self, kind, _, ...)
  if self._multi and kind ~= "end" and kind ~= "multi" then
    self._dirty = true
  elseif kind == "multi" then
    self._multi = true
  elseif kind == "end" then
    self._multi, self._watch = false, false
  elseif kind == "watch" then
    self._watch = true
  elseif kind == "unwatch" then
    self._watch = false
  elseif kind == "select" then
    self._db = tonumber((...))
  elseif kind == "auth" then
    self._dirty = true
  elseif kind == "client" then
    local sub = ...
    if type(sub) ~= "string" or CLIENT_STATEFUL[upper(sub)] then self._dirty = true end
  end
end

-- conn:call(name, args...): any command; its reply, or nil, err.
function Conn:call(cmd, ...)
  local kind = kind_of(cmd)
  if kind then
    if kind == "sub" then
      error("bad argument #1 to 'call' (use conn:subscribe or conn:psubscribe)", 2)
    end
    local v, err, detail = request(self, encode(cmd, ...))
    -- MULTI only counts once accepted; EXEC/DISCARD end it however they
    -- end. A failed SELECT leaves the database as it was.
    if v ~= nil or kind == "end" then track(self, kind, cmd, ...) end
    return v, err, detail
  end
  return request(self, encode(cmd, ...))
end

-- The convenience methods: conn:get(k) is conn:call("GET", k), and so on
-- for any name, made on first use. hgetall and the like answer Redis's
-- flat array (field, value, field, value, ...).
local methods = {}
local function command_method(name)
  local m = methods[name]
  if m == nil then
    local cmd = upper(name)
    if kind_of(cmd) then
      m = function(self, ...) return self:call(cmd, ...) end
    else
      m = function(self, ...) return request(self, encode(cmd, ...)) end
    end
    methods[name] = m
  end
  return m
end

-- conn:pipeline(fn): fn(p) queues commands (p:call(...), p:set(...),
-- p:get(...)); they go out together and the result is the array of their
-- replies, in order, and its length. A nil reply is redis.null there and
-- an error reply an error object; a failure of the connection is nil, err.
local Pipeline = {}

function Pipeline:call(...)
  local n = self.n + 1
  self._reqs[n] = encode(...)
  self.n = n
  local k = kind_of((...))
  if k then
    if k == "sub" then error("bad argument #1 to 'call' (no subscriptions in a pipeline)", 2) end
    self._kinds[n] = { k, ... }
  end
  return self
end

local pipeline_methods = {}
local pipeline_mt = {
  __index = function(_, name)
    local m = Pipeline[name] or pipeline_methods[name]
    if m == nil then
      local cmd = upper(name)
      m = function(self, ...) return self:call(cmd, ...) end
      pipeline_methods[name] = m
    end
    return m
  end,
}

function Conn:pipeline(fn)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'pipeline' (function expected, got " .. type(fn) .. ")", 2)
  end
  local p = setmetatable({ _reqs = {}, _kinds = {}, n = 0 }, pipeline_mt)
  fn(p)
  local n = p.n
  if n == 0 then return {}, 0 end
  local ok, err = send(self, concat(p._reqs), 2)
  if not ok then return nil, err end
  local results, null = {}, M.null
  -- One deadline for the whole pipeline.
  local deadline = now() + self._timeout
  for i = 1, n do
    local left = deadline - now()
    local v, detail
    ok, v, detail = read_reply(self, left > 0 and left or 0)
    if ok == nil then
      self._busy = false
      return nil, v, detail
    end
    if ok == false then
      v = setmetatable({ err = v }, error_mt)
    else
      local kd = p._kinds[i]
      if kd then track(self, kd[1], unpack(kd, 2)) end
      if v == nil then v = null end
    end
    results[i] = v
  end
  self._busy = false
  return results, n
end

-- conn:set_timeout(seconds): the time each later command may take
-- (math.huge: none, for a blocking command without its own limit).
function Conn:set_timeout(seconds)
  if type(seconds) ~= "number" or seconds < 0 then
    error("bad argument #1 to 'set_timeout' (seconds >= 0 expected)", 2)
  end
  self._timeout = seconds
end

-- The state a pool looks at.
function Conn:closed()
  return self._sock == nil or self._sock:closed()
end

-- Whether the connection is as a new one would be: open, idle, out of any
-- transaction or WATCH, on its own database, not subscribed.
function Conn:reusable()
  return not self:closed() and not self._busy and not self._multi and not self._watch
    and not self._sub and not self._dirty and self._db == self._home_db
end

function Conn:ping()
  return self:call("PING")
end

-- Closes the socket; nothing else.
local function shut(self)
  local sock = self._sock
  if sock then
    self._sock = nil
    self._err = "closed"
    sock:close()
  end
end

-- conn:close(): closes the connection for good (a pooled one leaves its
-- pool). conn:release(): a pooled connection goes back to its pool (closed
-- instead when not reusable); any other one closes.
function Conn:close()
  local p = self._pool
  if p then
    self._pool = false
    p:discard(self)
  else
    shut(self)
  end
  return true
end

function Conn:release()
  local p = self._pool
  if p then
    check_idle(self, 2)
    self._pool = false
    self._timeout = self._default_timeout -- undo a set_timeout
    self._released = now()
    local sock = self._sock
    if sock then sock:read_stop() end -- idle in the pool: no reason to keep the loop running
    p:put(self)
  else
    shut(self)
  end
  return true
end

local conn_mt = {
  __index = function(_, name)
    local m = Conn[name]
    if m ~= nil then return m end
    if type(name) ~= "string" or name:sub(1, 1) == "_" then return nil end
    return command_method(name)
  end,
  __tostring = function(self)
    return "eddy.redis.conn (" .. (self:closed() and "closed" or "open") .. ")"
  end,
}

-- ======================================================================
-- Checkouts

-- A pooled connection's holder gets a handle for that checkout, not the
-- connection itself: the pool hands the same connection to the next task,
-- so a stale holder's late release, close or command must not reach it.
-- Once released or closed, a handle is dead: its commands answer nil,
-- "closed" and its release and close do nothing.
local handle_methods = {}

local function dead_handle() return nil, "closed" end

local function handle_method(name)
  local w = handle_methods[name]
  if w == nil then
    local m = conn_mt.__index(nil, name)
    if type(m) ~= "function" then return m end
    w = function(self, ...)
      local conn = self._conn
      if not conn then return dead_handle() end
      return m(conn, ...)
    end
    handle_methods[name] = w
  end
  return w
end

-- release and close end the checkout (once the connection took them: a
-- release while busy raises and leaves the handle alive).
local function handle_ender(method)
  return function(self)
    local conn = self._conn
    if not conn then return true end
    method(conn)
    self._conn = false
    return true
  end
end
handle_methods.release = handle_ender(Conn.release)
handle_methods.close = handle_ender(Conn.close)
handle_methods.closed = function(self)
  local conn = self._conn
  return not conn or conn:closed()
end

local handle_mt = {
  __index = function(_, name) return handle_method(name) end,
  __tostring = function(self)
    return "eddy.redis.conn (" .. (self:closed() and "closed" or "open") .. ")"
  end,
}

-- ======================================================================
-- Subscriptions

local Sub = {}
local sub_mt = { __index = Sub }

-- Reads until `want` confirmations of kind `confirm` have come, keeping
-- the messages that come meanwhile for recv.
local function await_confirmations(sub, confirm, want)
  local conn = sub._conn
  while want > 0 do
    local ok, v, detail = read_reply(conn, conn._timeout)
    if ok == nil then return nil, v, detail end
    if ok == false then return nil, v end -- refused (a NOPERM, say)
    local kind = v[1]
    if kind == confirm then
      want = want - 1
    elseif kind == "message" or kind == "pmessage" then
      local tail = sub._tail + 1
      sub._queue[tail] = v
      sub._tail = tail
    end
  end
  return true
end

local function sub_request(sub, cmd, ...)
  local conn = sub._conn
  local n = select("#", ...)
  local subscribing = cmd == "SUBSCRIBE" or cmd == "PSUBSCRIBE"
  -- Named channels are confirmed one by one: wait for them, so that what
  -- is published after the call returns sees the new state. (Without
  -- names, how many confirmations come is Redis's to say.)
  local confirm = (subscribing or n > 0) and lower(cmd)
  if n == 0 and subscribing then
    error("bad argument #1 to '" .. confirm .. "' (channel expected)", 3)
  end
  local ok, err = send(conn, encode(cmd, ...), 3, true)
  if ok and confirm then ok, err = await_confirmations(sub, confirm, n) end
  conn._busy = false
  if not ok then return nil, err end
  return sub
end

-- conn:subscribe(channel, ...) / conn:psubscribe(pattern, ...): the
-- connection becomes a subscriber (for good: it is closed, not pooled,
-- when done) and the subscription is returned once Redis has confirmed
-- every channel, or nil, err.
local function subscribe(self, cmd, ...)
  local sub = self._sub
  if not sub then
    check_idle(self, 3)
    if self._multi then error("redis connection is in a transaction", 3) end
    sub = setmetatable({ _conn = self, _queue = {}, _head = 1, _tail = 0 }, sub_mt)
    self._sub = sub
  end
  return sub_request(sub, cmd, ...)
end

function Conn:subscribe(...) return subscribe(self, "SUBSCRIBE", ...) end
function Conn:psubscribe(...) return subscribe(self, "PSUBSCRIBE", ...) end
function Sub:subscribe(...) return sub_request(self, "SUBSCRIBE", ...) end
function Sub:psubscribe(...) return sub_request(self, "PSUBSCRIBE", ...) end
-- No channel: all of them, and the confirmations are not waited for;
-- named ones are waited for, as subscribe's are.
function Sub:unsubscribe(...) return sub_request(self, "UNSUBSCRIBE", ...) end
function Sub:punsubscribe(...) return sub_request(self, "PUNSUBSCRIBE", ...) end

local function message(v)
  if v[1] == "pmessage" then return "pmessage", v[3], v[4], v[2] end
  return "message", v[2], v[3]
end

-- sub:recv([timeout]): the next message as kind, channel, payload[,
-- pattern]: "message", channel, payload or "pmessage", channel, payload,
-- pattern. Waits without limit when no timeout is given; nil, "timeout"
-- leaves the subscription as it was; nil, "closed" when the connection is
-- gone.
function Sub:recv(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #1 to 'recv' (seconds >= 0 expected)", 2)
  end
  local head = self._head
  if head <= self._tail then -- kept while subscribe waited
    local q = self._queue
    local v = q[head]
    q[head] = nil
    if head == self._tail then
      self._head, self._tail = 1, 0
    else
      self._head = head + 1
    end
    return message(v)
  end
  local conn = self._conn
  check_idle(conn, 2)
  if not conn._sock then return nil, "closed" end
  check_wait()
  conn._busy = true
  local deadline = now() + (timeout or HUGE)
  while true do
    local left = deadline - now()
    local ok, v, detail = read_reply(conn, left > 0 and left or 0, true)
    if ok == nil then
      conn._busy = false
      return nil, v, detail
    end
    if ok == false then
      conn._busy = false
      return nil, v
    end
    local kind = v[1]
    if kind == "message" or kind == "pmessage" then
      conn._busy = false
      return message(v)
    end
    -- Confirmations of unsubscribe and the like: nothing to hand over.
  end
end

-- sub:close(): ends the subscription and its connection.
function Sub:close()
  return self._conn:close()
end

function Sub:closed()
  return self._conn:closed()
end

-- ======================================================================
-- Connecting

-- A new connection (no pool): TCP, then AUTH and SELECT as asked.
local function open(o)
  local ctimeout = o.connect_timeout or DEFAULT_CONNECT_TIMEOUT
  local sock, err, reason = tcp.connect(o.host, o.port or DEFAULT_PORT,
    { connect_timeout = ctimeout, tls = o.tls })
  if not sock then return nil, err, reason end
  local self = setmetatable({
    _sock = sock,
    _reader = new_reader(o.max_reply),
    _timeout = ctimeout,
    _db = o.db or 0,
    _home_db = o.db or 0,
    _busy = false,
    _multi = false,
    _watch = false,
    _dirty = false,
    _sub = false,
    _pool = false,
    _err = false,
    _released = 0,
  }, conn_mt)
  if o.password then
    local ok, aerr
    if o.username then
      ok, aerr = request(self, encode("AUTH", o.username, o.password))
    else
      ok, aerr = request(self, encode("AUTH", o.password))
    end
    if not ok then
      shut(self)
      return nil, aerr
    end
  end
  if o.db and o.db ~= 0 then
    local ok, serr = request(self, encode("SELECT", o.db))
    if not ok then
      shut(self)
      return nil, serr
    end
  end
  self._timeout = o.timeout or DEFAULT_TIMEOUT
  self._default_timeout = self._timeout
  self._connect_timeout = ctimeout
  return self
end

local function options(target)
  local o
  if type(target) == "string" then
    local err
    o, err = parse_url(target)
    if not o then return nil, err end
  elseif type(target) == "table" then
    o = {}
    for k, v in pairs(target) do o[k] = v end
    if type(o.url) == "string" then
      local u, err = parse_url(o.url)
      if not u then return nil, err end
      for k, v in pairs(u) do if o[k] == nil then o[k] = v end end
    end
    o.host = o.host or "127.0.0.1"
    check_opts(o)
  else
    error("bad argument #1 to 'connect' (url or options table expected, got " .. type(target) .. ")", 3)
  end
  return o
end

-- What a pool of Redis connections needs of them.
local function pool_check(conn)
  if conn:closed() then return false end
  if now() - conn._released < IDLE_PING then return true end
  -- Within connect_timeout: a dead peer must not hold up the caller long.
  conn._timeout = conn._connect_timeout
  local pong = conn:ping()
  conn._timeout = conn._default_timeout
  return pong == "PONG"
end

local function pool_reusable(conn)
  return conn:reusable()
end

local POOL_OPTS = { max_open = true, max_idle = true, idle_timeout = true, wait_timeout = true }

-- The shared pool of connections to o's server, database and user, made
-- from the first caller's options.
local function pool_of(o)
  local popts = o.pool
  if type(popts) ~= "table" then
    error("bad option 'pool' (table expected, got " .. type(popts) .. ")", 4)
  end
  local where = o.host .. ":" .. (o.port or DEFAULT_PORT) .. "/" .. (o.db or 0)
  local key = "eddy.redis " .. where .. " " .. (o.username or "") .. ":" .. (o.password or "")
    .. (o.tls and " tls" or "")
  local po = {
    name = "redis " .. where,
    open = function() return open(o) end,
    close = shut,
    check = pool_check,
    reusable = pool_reusable,
  }
  for k, v in pairs(popts) do
    if POOL_OPTS[k] then po[k] = v end
  end
  return pool.shared(key, po)
end

-- redis.connect(url or opts): a connection, or nil, err (Redis's message
-- for a refused AUTH or SELECT). With opts.pool = {max_open, max_idle,
-- idle_timeout, wait_timeout} the connection comes from the thread's pool
-- for that server, database and user (made by the first such connect),
-- waiting up to wait_timeout for one to come free (nil, "timeout");
-- conn:release() gives it back, conn:close() ends it.
local function checkout(p)
  local conn, err, detail = p:get()
  if not conn then return nil, err, detail end
  conn._pool = p
  return setmetatable({ _conn = conn }, handle_mt)
end

function M.connect(target)
  local o, err = options(target)
  if not o then return nil, err end
  if o.pool == nil then return open(o) end
  return checkout(pool_of(o))
end

-- redis.pool(url or opts): the pool that connect would take from (opts.pool
-- or {} for its settings), found once: pool:connect() is connect(target)
-- without reading the target again, for callers that check out often (a
-- queue, per message). pool:stats() are eddy.pool's; pool:close() closes
-- the shared pool, which the next connect makes again.
local Pool = {}
Pool.__index = Pool

function M.pool(target)
  local o, err = options(target)
  if not o then return nil, err end
  o.pool = o.pool or {}
  return setmetatable({ _o = o, _p = pool_of(o) }, Pool)
end

-- The shared pool, made again (as connect would) if it was closed.
local function live(self)
  if self._p:closed() then self._p = pool_of(self._o) end
  return self._p
end

function Pool:connect() return checkout(live(self)) end
function Pool:stats() return live(self):stats() end
-- Closes the shared pool (for connect(target) as well).
function Pool:close() return self._p:close() end

M.parse_url = parse_url

return M

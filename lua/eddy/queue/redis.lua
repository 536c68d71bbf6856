-- eddy.queue.redis: the distributed backend of eddy.queue, on Redis Streams
-- (eddy.redis), for producers and consumers spread over several machines.
--
--   local b = require("eddy.queue.redis").open("jobs", {
--     url = "redis://127.0.0.1:6379/0",   -- or redis = {host, port, ...}
--     max = 1000, max_attempts = 5, backoff = 1, backoff_max = 60,
--     visibility = 30, poll = 0.25, consumer = "host-1" })
--
-- Keys: the stream eddy:q:<name> with the consumer group "eddy"; delayed
-- messages (a push with delay, a nack with backoff) wait in the sorted set
-- eddy:qd:<name> until due, then go back to the stream; dead letters go to
-- the stream eddy:q:<name>.dead, itself the queue <name>.dead.
--
-- Each entry carries its payload (p) and the attempts made before it was
-- added (a); a delivery's attempt is a plus the entry's delivery count. An
-- ack is XACK then XDEL, and a nack takes the entry out the same way before
-- adding it anew, so the stream holds exactly the messages not yet acked:
-- "full" is XLEN plus the delayed ones reaching max, checked and added in
-- one script. Nothing not yet consumed is ever trimmed.
--
-- A pop first moves due delayed messages back and claims (XAUTOCLAIM)
-- deliveries idle past the visibility timeout, the work of consumers that
-- vanished (at most once a `poll` while messages flow); then it waits in
-- XREADGROUP ... BLOCK, at most `poll` seconds at a time so that delayed
-- and expired messages are seen while it waits.
-- Commands go through the thread's pool of connections to the server; a
-- waiting pop holds one. A late ack from a consumer whose delivery was
-- claimed by another answers "not found" (the delivery's owner is checked
-- for messages popped through the same object). Through the front:
-- eddy.queue.open(name, {backend = "redis://host:port/db"}).

local redis = require "eddy.redis"
local durable = require "eddy.queue.durable"
local task = require "eddy.c.task"
local pid = require("eddy.c.shared").pid

local type, error, tostring, tonumber, setmetatable, pairs, pcall =
  type, error, tostring, tonumber, setmetatable, pairs, pcall
local math_min, math_floor, fmt = math.min, math.floor, string.format
local now = task.now

local M = { _VERSION = "0.1.0" }

local GROUP = "eddy"
local DEFAULT_POLL = 0.25
local POOL = { max_open = 512, max_idle = 64 }

-- ======================================================================
-- Server-side scripts: each a check and its change in one step.

-- Server time in ms, and parsing of the entry fields and delayed members.
local PRELUDE = [[
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fields(f)
  local p, a = '', 0
  for i = 1, #f, 2 do
    if f[i] == 'p' then p = f[i + 1] elseif f[i] == 'a' then a = tonumber(f[i + 1]) end
  end
  return p, a
end
local function delay(zset, seqkey, ms, attempts, p)
  local seq = redis.call('INCR', seqkey)
  redis.call('ZADD', zset, now_ms() + ms, seq .. ':' .. attempts .. ':' .. p)
  return seq
end
local function to_dead(stream, group, dead, id, p)
  redis.call('XADD', dead, '*', 'p', p, 'a', 0)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
]]

local SCRIPTS = {
  -- KEYS stream, delayed, seq; ARGV payload, max, delay_ms
  push = PRELUDE .. [[
local max = tonumber(ARGV[2])
if max > 0 and redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= max then
  return false
end
local ms = tonumber(ARGV[3])
if ms > 0 then return 'd' .. delay(KEYS[2], KEYS[3], ms, 0, ARGV[1]) end
return redis.call('XADD', KEYS[1], '*', 'p', ARGV[1], 'a', 0)
]],
  -- KEYS stream, delayed, dead; ARGV group, consumer, visibility_ms, n,
  -- max_attempts. Moves due delayed messages back to the stream, claims
  -- expired deliveries: { {id, payload, attempt}... }, ms to the next
  -- delayed one (-1: none).
  claim = PRELUDE .. [[
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, m in ipairs(due) do
  local _, b = string.find(m, ':', 1, true)
  local c = string.find(m, ':', b + 1, true)
  redis.call('XADD', KEYS[1], '*', 'p', string.sub(m, c + 1), 'a', string.sub(m, b + 1, c - 1))
  redis.call('ZREM', KEYS[2], m)
end
local out = {}
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
for _, e in ipairs(r[2]) do
  if e[2] then
    local id = e[1]
    local p, a = fields(e[2])
    local pe = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local attempt = a + (pe[1] and pe[1][4] or 1)
    if attempt > tonumber(ARGV[5]) then
      to_dead(KEYS[1], ARGV[1], KEYS[3], id, p)
    else
      out[#out + 1] = { id, p, attempt }
    end
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { out, nxt[2] and (tonumber(nxt[2]) - now) or -1 }
]],
  -- KEYS stream; ARGV group, id, consumer ('' : any). 1, or 0: not in
  -- flight (or claimed by another consumer since).
  ack = [[
if ARGV[3] ~= '' then
  local pe = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
  if not pe[1] or pe[1][2] ~= ARGV[3] then return 0 end
end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
]],
  -- KEYS stream, delayed, dead, seq; ARGV group, id, consumer ('': any),
  -- delay_ms (-1: backoff), max_attempts, backoff_ms, backoff_max_ms.
  -- 0 not found, 1 back in the queue, 2 dead-lettered.
  nack = PRELUDE .. [[
local pe = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if not pe[1] or (ARGV[3] ~= '' and pe[1][2] ~= ARGV[3]) then return 0 end
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if not e[1] then return 0 end
local p, a = fields(e[1][2])
local attempts = a + pe[1][4]
if attempts >= tonumber(ARGV[5]) then
  to_dead(KEYS[1], ARGV[1], KEYS[3], ARGV[2], p)
  return 2
end
redis.call('XDEL', KEYS[1], ARGV[2])
local ms = tonumber(ARGV[4])
if ms < 0 then
  ms = tonumber(ARGV[6])
  for _ = 2, attempts do ms = ms * 2 end
  ms = math.min(ms, tonumber(ARGV[7]))
end
if ms > 0 then delay(KEYS[2], KEYS[4], ms, attempts, p)
else redis.call('XADD', KEYS[1], '*', 'p', p, 'a', attempts) end
return 1
]],
  -- KEYS stream; ARGV group, consumer: removes the consumer unless it
  -- holds deliveries.
  leave = [[
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return 1
]],
  -- KEYS stream, delayed; ARGV group. { ready, in flight }
  length = [[
local total = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])[1]
return { total - pending, pending }
]],
}

local shas = {} -- script name -> SHA1, once loaded (per thread)

local function eval(conn, name, nkeys, ...)
  local sha = shas[name]
  if sha then
    local v, err = conn:call("EVALSHA", sha, nkeys, ...)
    if v ~= nil or not (err and err:match("^NOSCRIPT")) then return v, err end
  end
  local err
  sha, err = conn:call("SCRIPT", "LOAD", SCRIPTS[name])
  if not sha then return nil, err end
  shas[name] = sha
  return conn:call("EVALSHA", sha, nkeys, ...)
end

-- ======================================================================
-- The backend

local Backend = {}
Backend.__index = Backend

-- What redis.connect gets: the url or the options, with the pool.
local function target_of(opts)
  local t = opts.redis or opts.url or "redis://127.0.0.1:6379"
  local o = {}
  if type(t) == "string" then
    o.url = t
  elseif type(t) == "table" then
    for k, v in pairs(t) do o[k] = v end
  else
    error("bad option 'url' (redis:// url expected)", 3)
  end
  o.pool = o.pool or POOL
  return o
end

local function ms(s) return math_floor(s * 1000 + 0.5) end

-- Runs fn(conn, ...) on a pooled connection.
local function with_conn(self, fn, ...)
  if self._closed then return nil, "closed" end
  local conn, err = self._pool:connect()
  if not conn then return nil, err end
  local a, b, c = fn(conn, ...)
  conn:release()
  return a, b, c
end

local function open_group(conn, stream)
  local ok, err = conn:call("XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
  if ok or (err and err:match("^BUSYGROUP")) then return true end
  return nil, err
end

-- A consumer name of this object's own: the process, an address unique
-- among the live objects of the process's threads, and a serial.
local serial = 0
local function consumer_name()
  serial = serial + 1
  return fmt("eddy-%d-%s-%d", pid(), tostring({}):match("0x(%x+)") or "0", serial)
end

function M.open(name, opts)
  opts = opts or {}
  local consumer = opts.consumer or consumer_name()
  local self = durable.init(setmetatable({}, Backend), name, opts, DEFAULT_POLL)
  self._stream = "eddy:q:" .. name
  self._delayed = "eddy:qd:" .. name
  self._seq = "eddy:qs:" .. name
  self._dead = "eddy:q:" .. name .. ".dead"
  self._consumer = consumer
  local pool, perr = redis.pool(target_of(opts))
  if not pool then return nil, perr end
  self._pool = pool
  self._popped = {} -- ids delivered through this object, for ack and nack
  self._next_claim = 0 -- when pop next runs the claim script
  local ok, err = with_conn(self, open_group, self._stream)
  if not ok then return nil, err end
  return self
end

local function do_push(conn, self, payload, delay)
  if self._max == 0 and delay == 0 then
    return conn:call("XADD", self._stream, "*", "p", payload, "a", 0)
  end
  local id, err = eval(conn, "push", 3, self._stream, self._delayed, self._seq,
    payload, self._max, delay)
  if id == nil and err == nil then return nil, "full" end
  return id, err
end

-- push(payload[, {delay, timeout}]) -> id | nil, "full" | nil, err
function Backend:push(payload, opts)
  local delay, timeout = durable.check_push(payload, opts)
  delay = delay and ms(delay) or 0
  local deadline = timeout and timeout > 0 and now() + timeout or nil
  while true do
    local id, err = with_conn(self, do_push, self, payload, delay)
    if id or err ~= "full" or deadline == nil then return id, err end
    -- Room comes from acks anywhere: look again now and then.
    local left = deadline - now()
    if left <= 0 then return nil, "full" end
    task.sleep(math_min(self._poll, left))
  end
end

local function parse_read(v, out)
  -- { {stream, { {id, {f, v, ...}}, ... }} }
  local entries = v[1] and v[1][2] or {}
  for i = 1, #entries do
    local e = entries[i]
    local f = e[2]
    local p, a = "", 0
    for j = 1, #f, 2 do
      if f[j] == "p" then p = f[j + 1] elseif f[j] == "a" then a = tonumber(f[j + 1]) end
    end
    out[#out + 1] = { id = e[1], payload = p, attempts = a + 1 }
  end
  return out
end

-- One look: claimed messages first, then new ones, waiting up to block_ms
-- (nil: not at all). msgs (maybe empty), or nil, err. Notes when the next
-- delayed message falls due.
local function look(conn, self, n, block_ms)
  local out, err = {}, nil
  -- The claim script runs at most once a poll (and whenever the stream
  -- has nothing new): a busy consumer pays two round trips a message.
  if now() >= self._next_claim then
    local r
    r, err = eval(conn, "claim", 3, self._stream, self._delayed, self._dead,
      GROUP, self._consumer, ms(self._visibility), n, self._max_attempts)
    if not r then return nil, err end
    for i = 1, #r[1] do
      local c = r[1][i]
      out[i] = { id = c[1], payload = c[2], attempts = c[3] }
    end
    self._due_at = r[2] >= 0 and now() + r[2] / 1000 or nil
    -- A full batch of claims may leave more behind: look again next time.
    if #r[1] < n then self._next_claim = now() + self._poll end
    if #out > 0 then return out end
  end
  local v
  if block_ms then
    conn:set_timeout(block_ms / 1000 + 10)
    v, err = conn:call("XREADGROUP", "GROUP", GROUP, self._consumer, "COUNT", n,
      "BLOCK", block_ms, "STREAMS", self._stream, ">")
  else
    v, err = conn:call("XREADGROUP", "GROUP", GROUP, self._consumer, "COUNT", n,
      "STREAMS", self._stream, ">")
  end
  if v == nil and err ~= nil then return nil, err end
  if v ~= nil then parse_read(v, out) end
  if #out == 0 then self._next_claim = 0 end
  return out
end

-- pop_batch(n[, timeout]) -> { msg, ... } | nil, "timeout" | "closed" | err
-- timeout nil waits for good, 0 looks once.
function Backend:pop_batch(n, timeout)
  durable.check_pop(n, timeout)
  local deadline = timeout and now() + timeout or nil
  while true do
    local block = self._poll
    -- A delayed message falling due sooner: look again then.
    if self._due_at then block = math_min(block, math.max(self._due_at - now(), 0.001)) end
    if deadline then block = math_min(block, deadline - now()) end
    local block_ms = block > 0 and math.max(1, ms(block)) or nil
    local msgs, err = with_conn(self, look, self, n, block_ms)
    if not msgs then return nil, err end
    if #msgs > 0 then
      for i = 1, #msgs do self._popped[msgs[i].id] = true end
      return msgs
    end
    if deadline and now() >= deadline then return nil, "timeout" end
  end
end

Backend.pop = durable.pop

-- The consumer that must hold the delivery: this one for a message popped
-- here (so that one claimed by another consumer since answers "not
-- found"), '' (any) for one popped elsewhere.
local function holder(self, id)
  local mine = self._popped[id]
  self._popped[id] = nil
  return mine and self._consumer or ""
end

-- ack(id) -> true | nil, "not found"
function Backend:ack(id)
  durable.check_id(id, "string")
  local r, err = with_conn(self, eval, "ack", 1, self._stream, GROUP, id, holder(self, id))
  if r == nil then return nil, err end
  if r == 0 then return nil, "not found" end
  return true
end

-- nack(id[, delay]) -> true | nil, "not found". Past max_attempts the
-- message goes to the dead-letter queue <name>.dead.
function Backend:nack(id, delay)
  durable.check_id(id, "string", delay)
  local r, err = with_conn(self, eval, "nack", 4, self._stream, self._delayed, self._dead,
    self._seq, GROUP, id, holder(self, id), delay and ms(delay) or -1, self._max_attempts,
    ms(self._backoff), ms(self._backoff_max))
  if r == nil then return nil, err end
  if r == 0 then return nil, "not found" end
  return true
end

-- length() -> ready (delayed included), in_flight
function Backend:length()
  local r, err = with_conn(self, eval, "length", 2, self._stream, self._delayed, GROUP)
  if not r then return nil, err end
  return r[1], r[2]
end

-- close(): later calls answer "closed"; a pop waiting in XREADGROUP ends
-- with its current BLOCK (at most poll seconds). The consumer leaves the
-- group when it holds no delivery (else XAUTOCLAIM hands those to others
-- later); outside a task, or with the server gone, it stays.
function Backend:close()
  if self._closed then return end
  pcall(with_conn, self, eval, "leave", 1, self._stream, GROUP, self._consumer)
  self._closed = true
end

Backend.__tostring = function(self)
  return "eddy.queue.redis " .. self._name .. " (" .. tostring(self._consumer) .. ")"
end

return M

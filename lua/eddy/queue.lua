-- eddy.queue: bounded work queues with at-least-once delivery, behind one
-- API whatever the backend.
--
--   open(name, {max, backend, max_attempts, backoff, backoff_max,
--               visibility, ...}) -> queue | nil, err
--     backend: "memory" (the default: this process only, every thread of
--     it), "sqlite" (with path), "redis" (with url), or a URL:
--     "sqlite:///var/lib/app/q.db", "redis://host:port/...".
--   queue:push(value[, {delay, timeout}]) -> true or the message's id
--     (as the backend has it) | nil, "full"
--   queue:pop([timeout]) -> msg {id, body, attempts} | nil, err
--   queue:pop_batch(n[, timeout]) -> {msg, ...} | nil, err
--   queue:ack(msg), queue:nack(msg[, delay]) -> true | nil, err
--   queue:length() -> ready, in_flight
--   queue:stats() -> the backend's figures (memory: ready, in_flight,
--     delayed, bytes)
--   queue:dead() -> the dead-letter queue `<name>.dead`
--   consume(name or queue, {concurrency, batch, on_error, ...open options},
--           handler) -> consumer with stop([timeout]), wait([timeout]) and
--     counters handled, failed, last_error. handler(msg, queue), or
--     handler({msg, ...}, queue) with batch > 1. on_error(err, msgs) is
--     told of a handler's error instead of the log.
--
-- Options: max (messages held: ready, delayed and in flight; 0 or nil: no
-- bound), max_attempts (5), backoff (1 s, doubling per attempt up to
-- backoff_max, 60 s), visibility (30 s).
--
-- A consumer waiting on an empty queue keeps the program running (any
-- thread of the program may push): stop it when done. A task-pool job
-- reaches the program's memory queues and topics with require "eddy"
-- (push, and pop without waiting: a pool thread has no loop).
--
-- Values cross as bytes through eddy.codec. A handler that returns acks
-- its messages; one that raises nacks them (redelivered after the
-- backoff; past max_attempts they go to `<name>.dead`). A message whose
-- consumer vanishes comes back when its visibility timeout passes.
local eddy = require "eddy"
local codec = require "eddy.c.codec"
local task = require "eddy.c.task"

local type, pcall, error, require, setmetatable, tostring, select =
  type, pcall, error, require, setmetatable, tostring, select
local encode, decode = codec.encode, codec.decode

local M = { _VERSION = "0.1.0" }

local Q = {}
local qmt = { __index = Q }

-- The backend module and the options it is opened with: a URL names the
-- kind and carries the place (path for sqlite, url for redis).
local function backend_of(opts)
  local b = opts.backend or "memory"
  if type(b) ~= "string" then error("eddy.queue: backend must be a string", 3) end
  local kind, rest = b:match("^(%a+)://(.*)$")
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if kind then
    if kind == "sqlite" then o.path = o.path or rest
    else o.url = o.url or b end
  else
    kind = b
  end
  o.backend = kind
  local ok, mod = pcall(require, "eddy.queue." .. kind)
  if not ok then
    error("eddy.queue: no backend '" .. kind .. "': " .. tostring(mod), 3)
  end
  return mod, o
end

-- The memory queues this thread has opened, for eddy.metrics: their
-- depths are the process's, so the series carry no thread label.
local memory_queues

local function depth_families()
  local ready, in_flight = { }, { }
  for name, q in pairs(memory_queues) do
    local r, f = q:length()
    if r then -- (nil, "closed": reopened since under another object)
      ready[#ready + 1] = { labels = { queue = name }, value = r }
      in_flight[#in_flight + 1] = { labels = { queue = name }, value = f }
    end
  end
  return {
    { name = "eddy_queue_ready", kind = "gauge", help = "Messages ready in a memory queue.",
      samples = ready, per_process = true },
    { name = "eddy_queue_in_flight", kind = "gauge", help = "Messages of a memory queue popped and not acked yet.",
      samples = in_flight, per_process = true },
  }
end

function M.open(name, opts)
  if type(name) ~= "string" or name == "" then
    error("eddy.queue.open: name must be a non-empty string", 2)
  end
  opts = opts or {}
  local mod, o = backend_of(opts)
  local b, err = mod.open(name, o)
  if not b then return nil, err end
  local q = setmetatable({ name = name, backend = o.backend, _b = b, _opts = opts }, qmt)
  if o.backend == "memory" then
    if not memory_queues then
      memory_queues = {}
      require("eddy.metrics")._add_builtin_collector(depth_families)
    end
    memory_queues[name] = q -- the latest: an earlier one may be closed
  end
  return q
end

-- The backend's message becomes the user's: payload gives way to body.
-- (A table of its own, made whole at once: adding fields to the
-- backend's would grow it twice, which a hot consumer feels.)
local function wrap(m)
  local ok, body = pcall(decode, m.payload)
  if not ok then body = m.payload end -- not ours (another language's)
  return { id = m.id, body = body, attempts = m.attempts, _settled = false }
end

function Q:push(value, opts)
  local bytes, err = encode(value)
  if not bytes then error("eddy.queue.push: " .. tostring(err), 2) end
  return self._b:push(bytes, opts)
end

function Q:pop(timeout)
  local m, err = self._b:pop(timeout)
  if not m then return nil, err end
  return wrap(m)
end

function Q:pop_batch(n, timeout)
  local ms, err = self._b:pop_batch(n or 1, timeout)
  if not ms then return nil, err end
  for i = 1, #ms do ms[i] = wrap(ms[i]) end
  return ms
end

local function id_of(msg)
  if type(msg) ~= "table" or msg.id == nil then
    error("eddy.queue: expected a message popped from the queue", 3)
  end
  return msg.id
end

function Q:ack(msg)
  local ok, err = self._b:ack(id_of(msg))
  msg._settled = true
  return ok, err
end

function Q:nack(msg, delay)
  local ok, err = self._b:nack(id_of(msg), delay)
  msg._settled = true
  return ok, err
end

function Q:length() return self._b:length() end

-- The backend's own figures (memory: ready, in_flight, delayed, bytes), or
-- nil when it keeps none.
function Q:stats()
  local b = self._b
  if not b.stats then return nil end
  return b:stats()
end

function Q:dead()
  local o = {}
  for k, v in pairs(self._opts) do o[k] = v end
  o.max = nil
  return M.open(self.name .. ".dead", o)
end

function Q:close() return self._b:close() end

-- Consumers ---------------------------------------------------------------

local C = {}
local cmt = { __index = C }

local function settle(q, msgs, ok, err, c)
  for i = 1, #msgs do
    local msg = msgs[i]
    if not msg._settled then
      local done, why
      if ok then done, why = q:ack(msg) else done, why = q:nack(msg) end
      if not done and why ~= "closed" then
        -- Most often "not found": the handler outlived the visibility
        -- timeout and the message went to another consumer too.
        task.log("warn", ("eddy.queue: %s of a message of '%s' failed: %s (attempt %s)")
          :format(ok and "ack" or "nack", q.name, tostring(why), tostring(msg.attempts)))
      end
    end
  end
  if ok then
    c.handled = c.handled + #msgs
  else
    c.failed = c.failed + 1
    c.last_error = err
    if c.on_error then
      pcall(c.on_error, err, msgs)
    else
      task.log("warn", "eddy.queue: handler of '" .. q.name .. "' failed: " .. tostring(err))
    end
  end
end

-- One consumer task: pops, runs the handler, acks or nacks; between
-- messages it is idle, and a stop cancels an idle one.
local function worker(c, slot, handler)
  local q, batch = c.queue, c.batch
  while not c.stopping do
    c.idle[slot] = true
    local msgs, err
    if batch > 1 then
      msgs, err = q:pop_batch(batch)
    else
      local m
      m, err = q:pop()
      msgs = m and { m }
    end
    c.idle[slot] = false
    if not msgs then
      if err == "cancelled" or err == "closed" or c.stopping then break end
      eddy.sleep(0.1) -- a backend failure: do not spin
    elseif c.stopping then
      for i = 1, #msgs do q:nack(msgs[i], 0) end
    else
      local ok, herr
      if batch > 1 then
        ok, herr = xpcall(handler, debug.traceback, msgs, q)
      else
        ok, herr = xpcall(handler, debug.traceback, msgs[1], q)
      end
      if c.cancelled then
        -- Stopped past its timeout: the handler's waits answered
        -- "cancelled", so its work is unfinished.
        for i = 1, #msgs do if not msgs[i]._settled then q:nack(msgs[i], 0) end end
      else
        settle(q, msgs, ok, herr, c)
      end
    end
  end
end

function M.consume(name, opts, handler)
  if type(opts) == "function" then handler, opts = opts, nil end
  opts = opts or {}
  if type(handler) ~= "function" then
    error("eddy.queue.consume: handler must be a function", 2)
  end
  local q = name
  if type(name) == "string" then
    local err
    q, err = M.open(name, opts)
    if not q then return nil, err end
  elseif getmetatable(name) ~= qmt then
    error("eddy.queue.consume: expected a queue name or a queue", 2)
  end
  local n = opts.concurrency or 1
  local c = setmetatable({ queue = q, batch = opts.batch or 1, tasks = {}, idle = {},
    handled = 0, failed = 0, stopping = false, on_error = opts.on_error }, cmt)
  for i = 1, n do
    c.tasks[i] = eddy.spawn(worker, c, i, handler)
  end
  return c
end

-- Stops taking messages: idle consumers end now, busy ones once their
-- handler returns; after timeout seconds (nil: none) those still busy are
-- cancelled, and their messages come back by nack or visibility. Returns
-- true once every consumer task has ended.
function C:stop(timeout)
  self.stopping = true
  for i, t in ipairs(self.tasks) do
    if self.idle[i] then t:cancel() end
  end
  return self:wait(timeout)
end

function C:wait(timeout)
  local deadline = timeout and eddy.now() + timeout
  for _, t in ipairs(self.tasks) do
    local left = deadline and deadline - eddy.now()
    local ok, err = t:join(left and (left > 0 and left or 0.001))
    if not ok and err == "timeout" then
      self.cancelled = true
      for _, u in ipairs(self.tasks) do u:cancel() end
      for _, u in ipairs(self.tasks) do u:join() end
      return nil, "timeout"
    end
  end
  return true
end

return M

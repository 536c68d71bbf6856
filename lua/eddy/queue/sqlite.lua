-- eddy.queue.sqlite: the durable backend of eddy.queue, on a SQLite file in
-- WAL mode (eddy.c.sqlite_queue, core/sqlite_queue.c). Every operation runs
-- on the file's writer thread, in a transaction shared with the operations
-- queued beside it (group commit), and answers once that has committed: a
-- push that returned survives a SIGKILL of the process (and, with
-- synchronous = "full", the default, a power loss).
--
--   local b = require("eddy.queue.sqlite").open("jobs", {
--     path = "queues.db",      -- or url = "sqlite:///var/lib/app/queues.db"
--     max = 1000, max_attempts = 5, backoff = 1, backoff_max = 60,
--     visibility = 30, synchronous = "full" | "normal", poll = 0.05 })
--
-- synchronous = "full" (the default) fsyncs the WAL at each commit: a push
-- that answered survives a power loss. "normal" syncs at checkpoints only:
-- it survives a killed process, not a crash of the machine. With group
-- commit, FULL costs little under concurrency (BENCHMARKS.md: 64 pushers
-- share an fsync per ~32 messages); alone, a push waits for its fsync.
--
-- Several processes may share a file (SQLite serializes their writers'
-- transactions); within a process, every reactor thread that opens it
-- goes through the one writer of that path. A pop
-- waiting on an empty queue is woken at once by a push from its own
-- thread, and otherwise looks again every `poll` seconds (or when a delayed
-- message falls due). The backend interface (push, pop, pop_batch, ack,
-- nack, length, close) is eddy.queue's: eddy.queue.open(name,
-- {backend = "sqlite", path = ...}) or {backend = "sqlite:///path"}.

local c = require "eddy.c.sqlite_queue"
local durable = require "eddy.queue.durable"
local task = require "eddy.c.task"

local type, error, pairs, setmetatable, tostring = type, error, pairs, setmetatable, tostring
local math_min = math.min
local now, suspend, wake = task.now, task.suspend, task.wake
local waitq = require("eddy.sync")._waiters

local M = { _VERSION = "0.1.0" }

local DEFAULT_PATH = "eddy_queues.db"
local DEFAULT_POLL = 0.05

-- This thread's handles on the process's stores (one per path, in C), by
-- path: { store, refs }.
local stores = {}
-- The open backends of this thread, by path and queue name, so that a
-- push wakes the pops of every backend of that queue.
local peers = {}

local Backend = {}
Backend.__index = Backend

local function path_of(opts)
  local url = opts.url
  if url ~= nil then
    if type(url) ~= "string" or not url:match("^sqlite:") then
      error("bad option 'url' (sqlite:///path or sqlite:path expected)", 3)
    end
    return (url:gsub("^sqlite://", ""):gsub("^sqlite:", ""))
  end
  local path = opts.path or DEFAULT_PATH
  if type(path) ~= "string" or path == "" then
    error("bad option 'path' (file name expected)", 3)
  end
  return path
end

-- This thread's handle on the store for path; the first open of the path
-- in the process sets its `synchronous`.
local function acquire(path, full)
  local s = stores[path]
  if s == nil then
    s = { store = c.open(path, full), refs = 0 }
    stores[path] = s
  end
  s.refs = s.refs + 1
  return s.store
end

local function release(path)
  local s = stores[path]
  s.refs = s.refs - 1
  if s.refs == 0 then
    stores[path] = nil
    s.store:close()
  end
end

-- ======================================================================
-- Waiting: pops for a push, pushes for room

-- Wakes the first live waiter of kind ("_pops" or "_pushes") among the
-- backends of key.
local function wake_one(key, kind)
  local set = peers[key]
  if set == nil then return end
  for b in pairs(set) do
    local list = b[kind]
    while #list > 0 do
      local w = waitq.shift(list)
      if wake(w.slot, w.gen, true) then return end
    end
  end
end

-- Waits up to `wait` seconds on the list: true when woken or when the
-- time is up; nil, err when cancelled or closed.
local function wait_on(self, list, wait, what)
  local w = waitq.new()
  waitq.push(list, w)
  local ok, err = suspend(wait, what)
  if not ok then waitq.remove(list, w) end
  if self._closed then return nil, "closed" end
  if not ok and err ~= "timeout" then return nil, err end
  return true
end

-- How long to sleep before looking again: the poll, or less when a
-- message falls due or the caller's deadline comes first. nil: time up.
-- How long a store operation may take for a caller with this deadline.
local STORE_MIN_WAIT = 1
local function store_wait(deadline)
  return deadline and math.max(STORE_MIN_WAIT, deadline - now()) or nil
end

local function next_wait(self, deadline, due)
  local wait = self._poll
  if due ~= nil and due < wait then wait = due end
  if deadline ~= nil then
    local left = deadline - now()
    if left <= 0 then return nil end
    wait = math_min(wait, left)
  end
  return wait
end

-- ======================================================================
-- The backend

function M.open(name, opts)
  opts = opts or {}
  local self = durable.init(setmetatable({}, Backend), name, opts, DEFAULT_POLL)
  local path = path_of(opts)
  local sync = opts.synchronous or "full"
  if sync ~= "full" and sync ~= "normal" then
    error("bad option 'synchronous' (\"full\" or \"normal\" expected)", 2)
  end
  self._dead = name .. ".dead"
  self._path = path
  self._key = path .. "\0" .. name
  self._pops = {}
  self._pushes = {}
  self._tokens = {} -- id -> the delivery popped here, for ack and nack
  self._store = acquire(path, sync == "full")
  local ok, err = self._store:ensure(name, self._dead)
  if not ok then
    release(path)
    return nil, err
  end
  local set = peers[self._key]
  if set == nil then
    set = setmetatable({}, { __mode = "k" })
    peers[self._key] = set
  end
  set[self] = true
  return self
end

-- push(payload[, {delay, timeout}]) -> id | nil, "full" | nil, err
function Backend:push(payload, opts)
  local delay, timeout = durable.check_push(payload, opts)
  local deadline = timeout and timeout > 0 and now() + timeout or nil
  while true do
    if self._closed then return nil, "closed" end
    -- The store's own wait is bounded too: a writer held up by another
    -- process's lock must not hold this push long past its deadline (the
    -- store gets a second at least to answer, as a look takes one trip).
    local id, err = self._store:push(self._name, payload, delay, self._max, store_wait(deadline))
    if id then
      wake_one(self._key, "_pops")
      return id
    end
    if err ~= "full" or deadline == nil then return nil, err end
    local wait = next_wait(self, deadline)
    if wait == nil then return nil, "full" end
    local ok, werr = wait_on(self, self._pushes, wait, "queue push")
    if not ok then return nil, werr end
  end
end

-- pop_batch(n[, timeout]) -> { msg, ... } | nil, "timeout" | "closed" | err
-- timeout nil waits for good, 0 looks once.
function Backend:pop_batch(n, timeout)
  durable.check_pop(n, timeout)
  local deadline = timeout and now() + timeout or nil
  while true do
    if self._closed then return nil, "closed" end
    local msgs, err, due = self._store:pop(self._name, self._dead, n,
      self._visibility, self._max_attempts, store_wait(deadline))
    if msgs then
      local tokens = self._tokens
      for i = 1, #msgs do tokens[msgs[i].id] = msgs[i].attempts end
      return msgs
    end
    if err ~= "empty" then return nil, err end
    local wait = next_wait(self, deadline, due)
    if wait == nil then return nil, "timeout" end
    local ok, werr = wait_on(self, self._pops, wait, "queue pop")
    if not ok then return nil, werr end
  end
end

Backend.pop = durable.pop

-- The delivery to ack or nack: the one popped here, so that a message
-- redelivered elsewhere meanwhile answers "not found"; 0 (any) for one
-- popped by another backend object.
local function token(self, id)
  local attempts = self._tokens[id]
  self._tokens[id] = nil
  return attempts or 0
end

-- ack(id) -> true | nil, "not found"
function Backend:ack(id)
  durable.check_id(id, "number")
  if self._closed then return nil, "closed" end
  local ok, err = self._store:ack(self._name, id, token(self, id))
  if ok then wake_one(self._key, "_pushes") end
  return ok, err
end

-- nack(id[, delay]) -> true | nil, "not found". Past max_attempts the
-- message goes to the dead-letter queue <name>.dead.
function Backend:nack(id, delay)
  durable.check_id(id, "number", delay)
  if self._closed then return nil, "closed" end
  local ok, err = self._store:nack(self._name, self._dead, id, token(self, id),
    delay, self._max_attempts, self._backoff, self._backoff_max)
  if not ok then return nil, err end
  if err then wake_one(self._key, "_pushes") end -- dead-lettered: room
  return true
end

-- length() -> ready (delayed included), in_flight
function Backend:length()
  if self._closed then return nil, "closed" end
  return self._store:length(self._name)
end

-- stats() -> { commits, ops }: the file's transactions in this process and
-- the operations they held (ops / commits is the group commit's batch).
function Backend:stats()
  return self._store:stats()
end

-- close(): waiting pops and pushes of this object answer "closed".
function Backend:close()
  if self._closed then return end
  self._closed = true
  local set = peers[self._key]
  if set then set[self] = nil end
  for _, list in pairs({ self._pops, self._pushes }) do
    for i = 1, #list do wake(list[i].slot, list[i].gen, true) end
  end
  self._pops, self._pushes = {}, {}
  release(self._path)
end

Backend.__tostring = function(self)
  return "eddy.queue.sqlite " .. self._name .. " (" .. tostring(self._path) .. ")"
end

return M

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
-- transactions); within a program, every reactor thread that opens it
-- goes through the one writer of that path. A pop waiting on an empty
-- queue is woken at once by a push committed in any thread of the program
-- (a push waiting for room, by an ack), in another worker process of it
-- too (told through eddy.mailbox's relays), and looks again every `poll`
-- seconds for what other processes commit (or when a delayed message
-- falls due). The backend interface (push, pop, pop_batch, ack,
-- nack, length, close) is eddy.queue's: eddy.queue.open(name,
-- {backend = "sqlite", path = ...}) or {backend = "sqlite:///path"}.

local eddy = require "eddy"
local c = require "eddy.c.sqlite_queue"
local durable = require "eddy.queue.durable"
local task = require "eddy.c.task"

local type, error, setmetatable, tostring = type, error, setmetatable, tostring
local math_min = math.min
local now = task.now

local M = { _VERSION = "0.1.0" }

local DEFAULT_PATH = "eddy_queues.db"
local DEFAULT_POLL = 0.05

-- This thread's handles on the program's stores (one per path, in C), by
-- path: { store, refs }.
local stores = {}

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
-- in the program sets its `synchronous`.
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
-- Other worker processes of this program: a change committed here is
-- told to their threads that have the file open, so that their waits end
-- at once rather than at their next poll. At most once per queue every
-- TELL_GAP seconds: a burst of pushes sends two messages, not one each.

local TELL, TELL_GAP = "sqlite-queue", 0.005
local told = {} -- path \0 queue -> { last = time, pending = a send is due }

local function send_tell(path, name)
  require("eddy.mailbox")._relay_all(TELL, { path, name }, true)
end

local function tell(self)
  if not self._tell then return end
  local t = told[self._key]
  if t == nil then
    t = { last = -math.huge }
    told[self._key] = t
  end
  local gap = now() - t.last
  if gap >= TELL_GAP then
    t.last = now()
    send_tell(self._path, self._name)
  elseif not t.pending then
    t.pending = true
    local path, name = self._path, self._name
    eddy.timer.after(TELL_GAP - gap, function()
      t.pending, t.last = false, now()
      send_tell(path, name)
    end)
  end
end

local function on_told(msg)
  if type(msg) ~= "table" or type(msg[2]) ~= "string" then return end
  local s = stores[msg[1]]
  if s then s.store:wake_all(msg[2]) end
end

-- ======================================================================
-- Waiting: pops for a push, pushes for room

-- Waits up to `wait` seconds for the queue to change past version seen
-- (room: for room in it): true when it did or the time is up (look
-- again); nil, err when cancelled or closed.
local function wait_change(self, room, seen, wait)
  local ok, err = self._store:wait(self._name, room, seen, wait)
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
  self._tokens = {} -- id -> the delivery popped here, for ack and nack
  self._key = path .. "\0" .. name
  self._store = acquire(path, sync == "full")
  local ok, err = self._store:ensure(name, self._dead)
  if not ok then
    release(path)
    return nil, err
  end
  if eddy.worker.count() > 1 then
    self._tell = true
    require("eddy.mailbox")._relay(TELL, on_told)
  end
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
    local seen = self._store:version(self._name)
    local id, err = self._store:push(self._name, payload, delay, self._max, store_wait(deadline))
    if id then
      tell(self)
      return id
    end
    if err ~= "full" or deadline == nil then return nil, err end
    local wait = next_wait(self, deadline)
    if wait == nil then return nil, "full" end
    local ok, werr = wait_change(self, true, seen, wait)
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
    local seen = self._store:version(self._name)
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
    local ok, werr = wait_change(self, false, seen, wait)
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
  if ok then tell(self) end -- room
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
  tell(self)
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
  -- This object's waiting pops and pushes look again, and see it closed
  -- (others of the queue's look again too, and wait on).
  self._store:wake_all(self._name)
  release(self._path)
end

Backend.__tostring = function(self)
  return "eddy.queue.sqlite " .. self._name .. " (" .. tostring(self._path) .. ")"
end

return M

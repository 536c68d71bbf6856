-- eddy.mailbox: messages to a reactor thread of any worker process.
--
--   eddy.mailbox.send(worker, thread, msg)  -> true | nil, err
--   eddy.mailbox.broadcast(msg)             -> how many mailboxes took it
--   eddy.mailbox.recv([timeout])            -> msg, from_worker, from_thread
--                                              | nil, "timeout" | nil, "cancelled"
--
-- A message is any value the codec takes (64 KiB encoded at most). Sends
-- never wait: a full mailbox answers nil, "full", one that is not open
-- (its thread has not called recv yet, or has gone) nil, "not found". A
-- thread's mailbox opens with its first recv and holds up to `capacity`
-- messages (eddy.mailbox.configure{capacity = n} before it opens; 1024 by
-- default) plus the few the kernel queues. Where each mailbox is (its
-- process) is kept in shared memory, so a worker that replaces another is
-- reachable at the same worker and thread numbers. See bindings/mailbox.c.
local eddy = require "eddy"
local c = require "eddy.c.mailbox"
local codec = require "eddy.c.codec"
local shared = require "eddy.shared"
local reactor = require "eddy.c.reactor"

local M = {}

local capacity = 1024
local box -- this thread's open mailbox: socket, watcher, channel

-- The shared cell that tells which process holds a thread's mailbox (0:
-- none), looked up once per thread and purpose.
local places = {}
local function where(worker, thread, purpose)
  local key = ("mailbox:%d:%d:%s"):format(worker, thread, purpose or "")
  local cell = places[key]
  if not cell then
    cell = shared.atomic(key)
    places[key] = cell
  end
  return cell
end

local function open()
  if box then return box end
  local thread = eddy.worker.thread()
  local sock, fd = c.open(thread)
  if not sock then error("eddy.mailbox: cannot open a mailbox: " .. fd, 3) end
  local ch = eddy.channel(capacity)
  -- Reads what arrived into the channel; while the channel is full this
  -- callback waits, the socket is not read, and the kernel's queue fills
  -- until senders hear "full".
  local watcher = reactor.add(fd, "r", function()
    while true do
      local data, from_worker, from_thread = c.recv(sock)
      if not data then break end
      local ok, msg = pcall(codec.decode, data)
      if ok and not ch:send({ msg, from_worker, from_thread }) then break end
    end
  end)
  where(eddy.worker.id(), thread):set(shared.pid())
  box = { sock = sock, watcher = watcher, ch = ch }
  return box
end

function M.configure(opts)
  if box then error("eddy.mailbox.configure: the mailbox is open already", 2) end
  capacity = opts.capacity or capacity
end

function M.recv(timeout)
  local item, err = open().ch:recv(timeout)
  if not item then return nil, err end
  return item[1], item[2], item[3]
end

local function send_bytes(worker, thread, data)
  local pid = where(worker, thread):get()
  if pid == 0 then return nil, "not found" end
  return c.send(pid, thread, eddy.worker.id(), eddy.worker.thread(), data)
end

function M.send(worker, thread, msg)
  if type(worker) ~= "number" or type(thread) ~= "number" then
    error("bad arguments to 'send' (worker and thread numbers expected)", 2)
  end
  local data, err = codec.encode(msg)
  if not data then error("eddy.mailbox.send: " .. err, 2) end
  return send_bytes(worker, thread, data)
end

-- To every thread of every worker (this one's included).
function M.broadcast(msg)
  local data, err = codec.encode(msg)
  if not data then error("eddy.mailbox.broadcast: " .. err, 2) end
  local n = 0
  for w = 1, eddy.worker.count() do
    for t = 1, eddy.worker.threads() do
      if send_bytes(w, t, data) then n = n + 1 end
    end
  end
  return n
end

-- For eddy's own relays (a room's messages to the other threads): a
-- mailbox for a purpose, whose messages go to handler(msg, from_worker,
-- from_thread) as they arrive, in the reader's callback (handler must not
-- wait), and which does not keep the program running. Once per thread and
-- purpose.
local relays = {}

function M._relay(purpose, handler)
  if relays[purpose] then return end
  local thread = eddy.worker.thread()
  local sock, fd = c.open(thread, purpose)
  if not sock then error("eddy.mailbox: cannot open a relay: " .. fd, 2) end
  local watcher = reactor.add(fd, "r", function()
    while true do
      local data, from_worker, from_thread = c.recv(sock)
      if not data then break end
      local ok, msg = pcall(codec.decode, data)
      if ok then handler(msg, from_worker, from_thread) end
    end
  end, { weak = true })
  relays[purpose] = { sock = sock, watcher = watcher }
  where(eddy.worker.id(), thread, purpose):set(shared.pid())
end

-- Sends msg to the `purpose` relay of every other thread of every worker
-- (other_workers: of the other workers only); returns how many took it,
-- and how many were full.
function M._relay_all(purpose, msg, other_workers)
  local data, err = codec.encode(msg)
  if not data then error(err, 3) end
  local me_w, me_t = eddy.worker.id(), eddy.worker.thread()
  local n, full = 0, 0
  for w = 1, eddy.worker.count() do
    for t = 1, eddy.worker.threads() do
      if w ~= me_w or (t ~= me_t and not other_workers) then
        local pid = where(w, t, purpose):get()
        if pid ~= 0 then
          local ok, why = c.send(pid, t, me_w, me_t, data, purpose)
          if ok then n = n + 1 elseif why == "full" then full = full + 1 end
        end
      end
    end
  end
  return n, full
end

-- For eddy's own questions to every thread (metrics to gather, tasks to
-- list): a thread that calls _answer(purpose, fn) answers each request
-- of that purpose with fn(arg), any value the codec takes, sent back in
-- parts that each fit a datagram; _ask sends the request and puts the
-- answers together. Requests and answers go through relays, so neither
-- side is kept running by them.
local PART = 48 * 1024 -- bytes of an encoded answer per datagram
local asking = {}      -- token → channel of the _ask waiting for it
local next_token = 0

function M._answer(purpose, fn)
  M._relay(purpose, function(req)
    if type(req) ~= "table" or type(req.pid) ~= "number" or type(req.thread) ~= "number" then
      return
    end
    local data = codec.encode(fn(req.arg))
    if not data then return end -- the asker's deadline covers it
    local parts = math.max(1, math.ceil(#data / PART))
    local me_w, me_t = eddy.worker.id(), eddy.worker.thread()
    for i = 1, parts do
      local part = codec.encode({ token = req.token, part = i, parts = parts,
        data = data:sub((i - 1) * PART + 1, i * PART) })
      c.send(req.pid, req.thread, me_w, me_t, part, purpose .. "-reply")
    end
  end)
end

local function on_answer(msg, from_worker, from_thread)
  local ch = type(msg) == "table" and asking[msg.token]
  if ch then ch:send({ msg, from_worker, from_thread }, 0) end
end

-- The request to the threads that answer `purpose`: those of process pid
-- (another program: threads 1, 2, ... up to the first that is not
-- there), or else every other thread of every worker of this one. Returns
-- a list of { value, worker, thread } for those that answered within
-- timeout seconds, and how many were asked.
function M._ask(purpose, arg, pid, timeout)
  M._relay(purpose .. "-reply", on_answer)
  next_token = next_token + 1
  local token = next_token
  local me_w, me_t = eddy.worker.id(), eddy.worker.thread()
  local request = { pid = shared.pid(), thread = me_t, token = token, arg = arg }
  local ch = eddy.channel(1024)
  asking[token] = ch
  local asked = 0
  if pid then
    local data = assert(codec.encode(request))
    while asked < 1024 and c.send(pid, asked + 1, me_w, me_t, data, purpose) do
      asked = asked + 1
    end
  else
    asked = M._relay_all(purpose, request)
  end
  local answers, parts, deadline = {}, {}, eddy.now() + timeout
  while #answers < asked do
    local item = ch:recv(math.max(0, deadline - eddy.now()))
    if not item then break end
    local msg, from = item[1], item[2] .. ":" .. item[3]
    local got = parts[from] or { n = 0 }
    parts[from] = got
    got[msg.part], got.n = msg.data, got.n + 1
    if got.n == msg.parts then
      local ok, value = pcall(codec.decode, table.concat(got))
      if ok then answers[#answers + 1] = { value, item[2], item[3] } end
    end
  end
  asking[token] = nil
  return answers, asked
end

-- Closes this thread's mailbox (it no longer keeps the program running).
function M.close()
  if not box then return end
  box.watcher:del()
  c.close(box.sock)
  box.ch:close()
  where(eddy.worker.id(), eddy.worker.thread()):cas(shared.pid(), 0)
  box = nil
end

return M

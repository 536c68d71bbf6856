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

-- Watches sock (fd) for datagrams, each decoded and handed to
-- take(msg, from_worker, from_thread), which answers false to stop
-- reading for now.
local function watch(sock, fd, take, weak)
  return reactor.add(fd, "r", function()
    while true do
      local data, from_worker, from_thread = c.recv(sock)
      if not data then break end
      local ok, msg = pcall(codec.decode, data)
      if ok and take(msg, from_worker, from_thread) == false then break end
    end
  end, { weak = weak })
end

-- A watcher that a run's end closed (the module face runs again later).
local function closed(watcher)
  return watcher:events() == ""
end

local function open()
  if box and not closed(box.watcher) then return box end
  if not box then
    local thread = eddy.worker.thread()
    local sock, fd = c.open(thread)
    if not sock then error("eddy.mailbox: cannot open a mailbox: " .. fd, 3) end
    box = { sock = sock, fd = fd, ch = eddy.channel(capacity) }
    where(eddy.worker.id(), thread):set(shared.pid())
  end
  -- Reads what arrived into the channel; while the channel is full this
  -- callback waits, the socket is not read, and the kernel's queue fills
  -- until senders hear "full".
  local ch = box.ch
  box.watcher = watch(box.sock, box.fd, function(msg, from_worker, from_thread)
    return ch:send({ msg, from_worker, from_thread }) and true or false
  end)
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
-- purpose (and run: a run's end stops the watching).
local relays = {}

function M._relay(purpose, handler)
  local r = relays[purpose]
  if r and not closed(r.watcher) then return end
  if not r then
    local thread = eddy.worker.thread()
    local sock, fd = c.open(thread, purpose)
    if not sock then error("eddy.mailbox: cannot open a relay: " .. fd, 2) end
    r = { sock = sock, fd = fd }
    relays[purpose] = r
    where(eddy.worker.id(), thread, purpose):set(shared.pid())
  end
  r.watcher = watch(r.sock, r.fd, handler, true)
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
-- answers together. The asker reads on a socket of its own for the ask.
local PART = 48 * 1024 -- bytes of an encoded answer per datagram
local next_ask = 0

-- Sends the parts of one answer, waiting for room while the asker's
-- socket is full (it takes ten datagrams at a time), until its deadline.
local function send_answer(req, data)
  local parts = math.max(1, math.ceil(#data / PART))
  local me_w, me_t = eddy.worker.id(), eddy.worker.thread()
  local deadline = eddy.now() + req.timeout
  for i = 1, parts do
    local part = codec.encode({ part = i, parts = parts,
      data = data:sub((i - 1) * PART + 1, i * PART) })
    while true do
      local ok, err = c.send(req.pid, req.thread, me_w, me_t, part, req.reply)
      if ok then break end
      if err ~= "full" or eddy.now() >= deadline then return end
      eddy.sleep(0.001)
    end
  end
end

function M._answer(purpose, fn)
  M._relay(purpose, function(req)
    if type(req) ~= "table" or type(req.pid) ~= "number" or type(req.thread) ~= "number"
        or type(req.reply) ~= "string" or type(req.timeout) ~= "number" then
      return
    end
    -- A failing fn answers its error: the asker need not wait it out.
    local ok, value = pcall(fn, req.arg)
    local data, err = codec.encode(ok and { value = value } or { error = tostring(value) })
    if not data then data = codec.encode({ error = err }) end
    eddy.spawn(send_answer, req, data)
  end)
end

-- Puts the parts of each thread's answer together; complete answers go
-- to done(answer, worker, thread). Parts are checked: any local process
-- may write to the socket.
local function assembler(done)
  local parts = {}
  return function(msg, from_worker, from_thread)
    if type(msg) ~= "table" or type(msg.data) ~= "string" then return end
    local i, n = msg.part, msg.parts
    if type(i) ~= "number" or type(n) ~= "number" or i ~= math.floor(i)
        or n ~= math.floor(n) or i < 1 or i > n or n > 4096 then
      return
    end
    local from = from_worker .. ":" .. from_thread
    local got = parts[from] or { n = 0, parts = n }
    parts[from] = got
    if got.parts ~= n or got[i] then return end
    got[i], got.n = msg.data, got.n + 1
    if got.n < n then return end
    parts[from] = nil
    local ok, answer = pcall(function() return codec.decode(table.concat(got)) end)
    if ok and type(answer) == "table" then done(answer, from_worker, from_thread) end
  end
end

-- The request to the threads that answer `purpose`: those of process pid
-- (another program: threads 1, 2, ... up to the first that is not
-- there), or else every other thread of every worker of this one. Returns
-- a list of { value, worker, thread, error } for those that answered
-- within timeout seconds, and how many were asked; or nil, err.
function M._ask(purpose, arg, pid, timeout)
  next_ask = next_ask + 1
  local me_w, me_t = eddy.worker.id(), eddy.worker.thread()
  local reply = purpose .. "-reply-" .. next_ask
  local sock, fd = c.open(me_t, reply)
  if not sock then return nil, fd end
  local answers = {}
  local ch = eddy.channel(1)
  local watcher = watch(sock, fd, assembler(function(answer, w, t)
    answers[#answers + 1] = { answer.value, w, t, answer.error }
    ch:send(true, 0)
  end), true)
  local request = { pid = shared.pid(), thread = me_t, reply = reply, timeout = timeout, arg = arg }
  local asked = 0
  if pid then
    local data = assert(codec.encode(request))
    while asked < 1024 and c.send(pid, asked + 1, me_w, me_t, data, purpose) do
      asked = asked + 1
    end
  else
    asked = M._relay_all(purpose, request)
  end
  local deadline = eddy.now() + timeout
  while #answers < asked and ch:recv(math.max(0, deadline - eddy.now())) do end
  watcher:del()
  c.close(sock)
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

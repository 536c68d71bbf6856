-- eddy.inspect: lets `eddy --inspect PID` list the tasks of every reactor
-- thread of a running program, from outside.
--
-- A program allows it (`eddy --allow-inspect`, or inspect.enable() in
-- each thread): each thread then answers requests on a mailbox of its
-- own (a datagram socket in the abstract namespace, named by its pid and
-- thread; see bindings/mailbox.c), which does not keep it running. The
-- inspector sends each thread a request naming where to answer, and
-- prints what comes back. Off by default: a task listing shows where the
-- code is, which not every program wants to tell every local user.

local eddy = require "eddy"
local c = require "eddy.c.mailbox"
local codec = require "eddy.codec"
local mailbox = require "eddy.mailbox"

local format, concat = string.format, table.concat

local M = {}

local REQUEST, REPLY = "inspect", "inspect-reply"
local PART = 48 * 1024 -- bytes of listing per datagram (64 KiB at most)

local function listing(with_traceback)
  local lines = {}
  -- Every task but the one answering.
  local tasks, me = {}, require("eddy.c.task").current_id()
  for _, t in ipairs(eddy.tasks({ traceback = with_traceback })) do
    if t.id ~= me then tasks[#tasks + 1] = t end
  end
  lines[1] = format("thread %d: %d task%s", eddy.worker.thread(), #tasks, #tasks == 1 and "" or "s")
  for _, t in ipairs(tasks) do
    lines[#lines + 1] = format("  task %-6d %-8s %-14s age %8.3f s%s", t.id, t.state,
      t.waits_on or "", t.age, t.name and ("  '" .. t.name .. "'") or "")
    if t.traceback then
      lines[#lines + 1] = "    " .. t.traceback:gsub("\n", "\n    ")
    end
  end
  return concat(lines, "\n")
end

-- Answers one request: the listing, in parts small enough for a datagram.
local function answer(req)
  if type(req) ~= "table" or type(req.pid) ~= "number" or type(req.thread) ~= "number" then return end
  local text = listing(req.traceback)
  local me = eddy.worker.thread()
  local n = math.max(1, math.ceil(#text / PART))
  for i = 1, n do
    local data = codec.encode({ thread = me, part = i, parts = n, text = text:sub((i - 1) * PART + 1, i * PART) })
    c.send(req.pid, req.thread, eddy.worker.id(), me, data, REPLY)
  end
end

-- eddy.inspect.enable(): this thread answers inspectors from now on.
function M.enable()
  mailbox._relay(REQUEST, answer)
end

-- eddy.inspect.query(pid[, {traceback, timeout}]) → the listing of each
-- reactor thread of process pid, as one text, or nil, err ("not found"
-- when it does not allow inspection).
function M.query(pid, opts)
  opts = opts or {}
  local timeout = opts.timeout or 2
  local me = eddy.worker.thread()
  local sock, fd = c.open(me, REPLY)
  if not sock then return nil, fd end
  local req = codec.encode({ pid = eddy.shared.pid(), thread = me, traceback = opts.traceback })
  local asked = 0
  for thread = 1, 1024 do
    if not c.send(pid, thread, 0, 0, req, REQUEST) then break end
    asked = asked + 1
  end
  if asked == 0 then
    c.close(sock)
    return nil, "not found"
  end
  local ch = eddy.channel(1024)
  local watcher = require("eddy.c.reactor").add(fd, "r", function()
    while true do
      local data = c.recv(sock)
      if not data then break end
      local ok, part = pcall(codec.decode, data)
      if ok then ch:send(part, 0) end
    end
  end)
  local texts, done, deadline = {}, 0, eddy.now() + timeout
  while done < asked do
    local part = ch:recv(math.max(0, deadline - eddy.now()))
    if not part then break end
    local t = texts[part.thread] or { parts = part.parts, got = 0 }
    texts[part.thread] = t
    t[part.part] = part.text
    t.got = t.got + 1
    if t.got == t.parts then done = done + 1 end
  end
  watcher:del()
  c.close(sock)
  local out = {}
  for thread = 1, asked do
    local t = texts[thread]
    out[#out + 1] = t and concat(t) or format("thread %d: no answer", thread)
  end
  return concat(out, "\n") .. "\n"
end

return M

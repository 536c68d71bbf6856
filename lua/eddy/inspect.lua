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
local mailbox = require "eddy.mailbox"

local format, concat = string.format, table.concat

local M = {}

-- Named for the version of the request and the answer, so that an
-- inspector and a program of other versions find no one to talk to
-- rather than misread each other.
local REQUEST = "inspect.2"

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

-- eddy.inspect.enable(): this thread answers inspectors from now on.
function M.enable()
  mailbox._answer(REQUEST, listing)
end

-- eddy.inspect.query(pid[, {traceback, timeout}]) → the listing of each
-- reactor thread of process pid, as one text, or nil, err ("not found"
-- when it does not allow inspection).
function M.query(pid, opts)
  opts = opts or {}
  local answers, asked = mailbox._ask(REQUEST, opts.traceback, pid, opts.timeout or 2)
  if not answers then return nil, asked end
  if asked == 0 then return nil, "not found" end
  local texts = {}
  for _, a in ipairs(answers) do
    texts[a[3]] = a[4] and format("thread %d: failed: %s", a[3], a[4]) or tostring(a[1])
  end
  local out = {}
  for thread = 1, asked do
    out[thread] = texts[thread] or format("thread %d: no answer", thread)
  end
  return concat(out, "\n") .. "\n"
end

return M

-- mailbox.lua: messages between worker processes and reactor threads.
-- Worker 1, thread 1 collects: every other thread of every worker says
-- hello to it and waits for its answer; then they all end.
--
--   build/eddy --workers 2 --threads 2 examples/mailbox.lua

local eddy = require "eddy"
local mailbox = eddy.mailbox
local worker, thread = eddy.worker.id(), eddy.worker.thread()
local others = eddy.worker.count() * eddy.worker.threads() - 1

if others == 0 then
  print("run it with --workers or --threads: one thread has no one to talk to")
  return
end

-- A send to a mailbox that is not open yet answers "not found": the
-- collector may still be starting.
local function send_soon(to_worker, to_thread, msg)
  for _ = 1, 500 do
    local ok, err = mailbox.send(to_worker, to_thread, msg)
    if ok or (err ~= "not found" and err ~= "full") then return ok, err end
    eddy.sleep(0.01)
  end
  return nil, "gave up"
end

if worker == 1 and thread == 1 then
  for _ = 1, others do
    local msg, from_worker, from_thread = assert(mailbox.recv(10))
    print(("collector heard %q from worker %d thread %d"):format(msg.text, from_worker, from_thread))
    assert(send_soon(from_worker, from_thread, { text = "welcome " .. from_worker .. "." .. from_thread }))
  end
  mailbox.close()
else
  local answer = eddy.spawn(function() return mailbox.recv(10) end) -- opens the mailbox
  eddy.yield()
  assert(send_soon(1, 1, { text = ("hello from %d.%d"):format(worker, thread) }))
  local _, msg = answer:join()
  print(("worker %d thread %d was told %q"):format(worker, thread, msg and msg.text))
  mailbox.close()
end
io.stdout:flush()

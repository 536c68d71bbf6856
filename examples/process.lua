-- process.lua: a process of the program's own under the master, next to
-- the workers (Swoole's Process): here a ticker that every second tells
-- the first thread of each worker the time, through their mailboxes. The
-- master restarts it if it dies and reloads it with the workers.
--
--   build/eddy --workers 2 --process examples/process.lua examples/chat/server.lua
--
-- Its eddy.worker.id() follows the workers': the first --process is
-- count() + 1, and it is reachable at (that id, thread 1).

local eddy = require "eddy"
local ticks = tonumber(os.getenv("TICKS")) -- a bounded run, for tests
print(("process %d (pid %d) started (workers 1 to %d)")
  :format(eddy.worker.id(), eddy.shared.pid(), eddy.worker.count()))
io.stdout:flush()

local n = 0
while not ticks or n < ticks do
  eddy.sleep(ticks and 0.1 or 1)
  n = n + 1
  for w = 1, eddy.worker.count() do
    eddy.mailbox.send(w, 1, { tick = n, at = os.time() })
  end
end

-- threads.lua: an HTTP hello server on every core. Each reactor thread runs
-- main in a Lua state of its own; their listeners share one port
-- (SO_REUSEPORT), and the kernel spreads the connections over them.
--
--   build/eddy --threads auto examples/threads.lua [port]
--   luajit examples/threads.lua [port]      (THREADS=n, default: one per core)
--   curl http://127.0.0.1:8080/             -> hello from thread 2 of 4
--
-- Under the eddy command, eddy.run only calls main: --threads chose the
-- threads, and each runs this file. Under stock LuaJIT, eddy.run starts
-- them; main must then have no upvalues, as each thread loads it afresh.

local eddy = require "eddy"

local function main(port)
  local eddy = require "eddy"
  local thread, threads = eddy.worker.thread(), eddy.worker.threads()
  local app = eddy.http.server()
  app:get("/", function(req, res)
    res:send(("hello from thread %d of %d\n"):format(thread, threads))
  end)
  local server = assert(app:listen("127.0.0.1", port))
  -- Port 0 gives every thread the same port: thread 1 can tell it.
  if thread == 1 then
    print(("listening on 127.0.0.1:%d with %d threads (Ctrl-C to stop)")
      :format(server:port(), threads))
    io.stdout:flush()
  end
end

local port = tonumber(arg and arg[1]) or tonumber(os.getenv("PORT")) or 8080
eddy.run({ threads = tonumber(os.getenv("THREADS")) or "auto" }, main, port)

-- signals.lua: handling signals in a script. SIGUSR1 prints a status line;
-- SIGTERM (or Ctrl-C) stops it after a goodbye: a script that handles a
-- signal replaces eddy's own graceful stop for it.
-- Try: build/eddy examples/signals.lua & kill -USR1 $!; kill -TERM $!
local eddy = require "eddy"

eddy.run(function()
  local started = eddy.now()
  local beats = 0
  local heartbeat = eddy.timer.every(0.1, function() beats = beats + 1 end)
  local stop = eddy.channel(1)

  eddy.signal.on("usr1", function()
    print(("up %.1f s, %d heartbeats"):format(eddy.now() - started, beats))
    io.stdout:flush()
  end)
  for _, name in ipairs({ "term", "int" }) do
    eddy.signal.on(name, function(sig) stop:send(sig, 0) end)
  end
  print("pid " .. io.open("/proc/self/stat"):read("*n") .. ": send USR1 for status, TERM to stop")
  io.stdout:flush()

  local sig = stop:recv()
  heartbeat:cancel()
  print("got SIG" .. sig:upper() .. ", goodbye")
  eddy.exit(0)
end)

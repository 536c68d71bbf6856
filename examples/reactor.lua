-- reactor.lua: the raw reactor. eddy.reactor.add watches any file
-- descriptor (here standard input, read with plain read(2) through the
-- FFI, as a C library would with its own socket) and runs a callback task
-- whenever it is ready; the rest of the program keeps running meanwhile.
--
--   printf 'one\ntwo\n' | build/eddy examples/reactor.lua
--
-- Standard input must be a pipe, a socket or a terminal: epoll cannot
-- watch a regular file, and add answers nil, "invalid argument" for one.

local eddy = require "eddy"
local ffi = require "ffi"
ffi.cdef [[ long read(int fd, void *buf, unsigned long n); ]]

local buf = ffi.new("char[4096]")
local lines, ticks = 0, 0

local ticker = eddy.timer.every(0.01, function() ticks = ticks + 1 end)

local watcher, err = eddy.reactor.add(0, "r", function(w, events, werr)
  if not events then
    print("error on stdin: " .. werr)
    return
  end
  local n = tonumber(ffi.C.read(w:fd(), buf, 4096))
  if n <= 0 then -- end of input (or an error): stop watching
    w:del()
    ticker:cancel()
    print(("%d lines; the timer ticked %d times meanwhile"):format(lines, ticks))
    return
  end
  for line in ffi.string(buf, n):gmatch("[^\n]+") do
    lines = lines + 1
    print(line:upper())
  end
end)
if not watcher then
  ticker:cancel()
  print("cannot watch standard input: " .. err)
end

-- eddy.reactor: the raw reactor. add(fd, "r" | "w" | "rw", callback) ->
-- watcher (set(events), del(), fd(), events()); callback(watcher, events)
-- runs as a task each time the descriptor is ready, one at a time. See
-- bindings/reactor.c.
require "eddy" -- sets up the runtime when this module is loaded first
return require "eddy.c.reactor"

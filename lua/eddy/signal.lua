-- eddy.signal: on(name, fn) → handler; each delivery of the signal runs
-- fn(name) as a task; handler:cancel() stops it. Handling "int" or "term"
-- replaces eddy's own graceful stop for that signal. See bindings/signal.c.
require "eddy" -- sets up the runtime when this module is loaded first
return require "eddy.c.signal"

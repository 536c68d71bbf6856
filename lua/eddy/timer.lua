-- eddy.timer: after(seconds, fn) and every(seconds, fn). Each firing runs
-- fn(timer) as a task; timer:cancel() stops it. See bindings/timer.c.
require "eddy" -- sets up the runtime when this module is loaded first
return require "eddy.c.timer"

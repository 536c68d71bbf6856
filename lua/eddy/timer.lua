-- eddy.timer: after(seconds, fn) and every(seconds, fn). Each firing runs
-- fn(timer) as a task; timer:cancel() stops it. See bindings/timer.c.
return require "eddy.c.timer"

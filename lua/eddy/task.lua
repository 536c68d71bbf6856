-- eddy.task: the task pool, threads with Lua states of their own for
-- blocking or CPU-heavy work. run(module, fn, ...) calls
-- require(module)[fn](...) there and returns its results, or nil, err
-- (its error with a traceback, "timeout", "cancelled"); run({module, fn,
-- timeout = seconds}, ...) sets a timeout. Arguments and results cross
-- through eddy.codec. threads() is the pool's size; configure{threads = n}
-- sets it before the first job. See bindings/taskpool.c.
require "eddy" -- sets up the runtime when this module is loaded first
return require "eddy.c.taskpool"

-- eddy.shared: dictionaries in shared memory, seen by every reactor thread
-- and worker process. dict(name, {size = "10m", evict = true}) makes one
-- (or finds it: every thread and worker may run the same declaration);
-- dict(name) finds one made before. Methods: get, set(k, v, ttl), add,
-- replace, incr(k, n, init), delete, ttl, expire, keys, flush_all, lpush,
-- rpush, lpop, rpop, llen, stats. See bindings/shared.c.
require "eddy" -- sets up the runtime when this module is loaded first
return require "eddy.c.shared"

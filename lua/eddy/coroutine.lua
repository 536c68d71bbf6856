-- Replaces coroutine.resume, coroutine.wrap and coroutine.yield so that an
-- eddy wait inside a user's coroutine (an iterator from coroutine.wrap, a
-- generator) suspends the whole task, and the completion comes back to the
-- coroutine that waited (DESIGN.md, bridge rule 7).
--
-- An eddy wait yields a token. A resume that sees the token yields the
-- token on to its own resumer, up to the task, which the scheduler then
-- holds; when the wait ends, the results travel back down the same chain.

local c = require "eddy.c.task"

local TOKEN = c.wait_token()
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local error = error

-- Coroutines suspended in an eddy wait, and the tasks' own coroutines that
-- coroutine.running handed out: no one may resume them.
local waiting = setmetatable({}, { __mode = "k" })
local roots = setmetatable({}, { __mode = "k" })

local pass_up

local function resume_after_wait(co, ...)
  waiting[co] = nil
  return pass_up(co, co_resume(co, ...))
end

pass_up = function(co, ok, first, ...)
  if ok and first == TOKEN then
    waiting[co] = true
    return resume_after_wait(co, co_yield(TOKEN))
  end
  return ok, first, ...
end

local function resume(co, ...)
  if waiting[co] then
    return false, "cannot resume a coroutine that is waiting in eddy"
  end
  if roots[co] then
    return false, "cannot resume a task's own coroutine"
  end
  return pass_up(co, co_resume(co, ...))
end

local function wrap_result(ok, ...)
  if not ok then error((...), 0) end
  return ...
end

local function wrap(fn)
  local co = co_create(fn)
  return function(...)
    return wrap_result(resume(co, ...))
  end
end

coroutine.resume = resume
coroutine.wrap = wrap
local c_running = c.coroutine_running

local function running()
  local co, root = c_running()
  if root then roots[co] = true end
  return co
end

coroutine.yield = c.coroutine_yield
coroutine.running = running
coroutine.isyieldable = c.coroutine_isyieldable

return { resume = resume, wrap = wrap, token = TOKEN }

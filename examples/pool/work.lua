-- work.lua: the functions examples/pool/main.lua runs in the task pool.
-- Plain blocking Lua: each call runs in a pool thread with a Lua state of
-- its own, so it may take the CPU or block without stalling the server.
local M = {}

-- The nth prime, the slow way: CPU-heavy work.
function M.nth_prime(n)
  local count, candidate = 0, 1
  while count < n do
    candidate = candidate + 1
    local prime = true
    for d = 2, math.floor(math.sqrt(candidate)) do
      if candidate % d == 0 then prime = false break end
    end
    if prime then count = count + 1 end
  end
  return candidate
end

-- A blocking call, as a C library without an async API would make.
function M.blocking(seconds)
  os.execute("sleep " .. seconds)
  return { slept = seconds }
end

return M

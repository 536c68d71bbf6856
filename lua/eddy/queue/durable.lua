-- eddy.queue.durable: what the durable backends (eddy.queue.sqlite,
-- eddy.queue.redis) share: the backend interface's options with their
-- defaults, the checks of the methods' arguments, and pop as a batch of
-- one. Argument errors blame the caller of the backend's method.

local type, error = type, error

local M = {}

local function number_opt(opts, key, def, min)
  local v = opts[key]
  if v == nil then return def end
  if type(v) ~= "number" or v < min then
    error("bad option '" .. key .. "' (number >= " .. min .. " expected)", 4)
  end
  return v
end

-- Sets self's name and the common options (seconds), checked; poll is
-- the backend's default look-again interval. Returns self.
function M.init(self, name, opts, poll)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'open' (queue name expected)", 3)
  end
  self._name = name
  self._max = number_opt(opts, "max", 0, 0)
  self._max_attempts = number_opt(opts, "max_attempts", 5, 1)
  self._backoff = number_opt(opts, "backoff", 1, 0)
  self._backoff_max = number_opt(opts, "backoff_max", 60, 0)
  self._visibility = number_opt(opts, "visibility", 30, 0.001)
  self._poll = number_opt(opts, "poll", poll, 0.001)
  self._closed = false
  return self
end

local function check_timeout(timeout, n)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #" .. n .. " (timeout: seconds >= 0 expected)", 4)
  end
end

-- push(payload, opts): returns opts.delay, opts.timeout.
function M.check_push(payload, opts)
  if type(payload) ~= "string" then
    error("bad argument #1 to 'push' (string expected, got " .. type(payload) .. ")", 3)
  end
  if opts == nil then return nil, nil end
  local delay = opts.delay
  if delay ~= nil and (type(delay) ~= "number" or delay < 0) then
    error("bad option 'delay' (seconds >= 0 expected)", 3)
  end
  check_timeout(opts.timeout, 2)
  return delay, opts.timeout
end

function M.check_pop(n, timeout)
  if type(n) ~= "number" or n < 1 then
    error("bad argument #1 to 'pop_batch' (count >= 1 expected)", 3)
  end
  check_timeout(timeout, 2)
end

-- ack(id) and nack(id, delay): ids are kind ("number" or "string").
function M.check_id(id, kind, delay)
  if type(id) ~= kind then
    error("bad argument #1 (message id expected, got " .. type(id) .. ")", 3)
  end
  if delay ~= nil and (type(delay) ~= "number" or delay < 0) then
    error("bad argument #2 to 'nack' (seconds >= 0 expected)", 3)
  end
end

-- pop([timeout]) -> { id, payload, attempts } | nil, err: the method.
function M.pop(self, timeout)
  check_timeout(timeout, 1)
  local msgs, err = self:pop_batch(1, timeout)
  if msgs then return msgs[1] end
  return nil, err
end

return M

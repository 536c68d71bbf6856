-- eddy.http.router: routes by method and path. Static paths are one table
-- lookup; patterns with parameters ("/users/:id", "/files/*rest") are
-- tried in the order they were added. Knows nothing of connections.

local M = {}
M.__index = M

local type, error, sub, find, concat = type, error, string.sub, string.find, table.concat

function M.new()
  return setmetatable({ _static = {}, _patterns = {}, _methods = {} }, M)
end

-- Splits "/a/:b/*c" into its segments.
local function segments(path)
  local out = {}
  for seg in path:gmatch("[^/]+") do out[#out + 1] = seg end
  return out
end

local function compile(pattern)
  local segs = segments(pattern)
  local route = { n = #segs }
  for i, seg in ipairs(segs) do
    local kind = sub(seg, 1, 1)
    if kind == ":" then
      route[i] = { param = sub(seg, 2) }
    elseif kind == "*" then
      if i ~= #segs then error("a * parameter must come last: " .. pattern, 3) end
      route[i] = { rest = sub(seg, 2) }
      route.rest = true
    else
      route[i] = { literal = seg }
    end
  end
  return route
end

-- router:add(method, pattern, handler)
function M:add(method, pattern, handler)
  if type(pattern) ~= "string" or sub(pattern, 1, 1) ~= "/" then
    error("bad route pattern (a path starting with '/' expected): " .. tostring(pattern), 3)
  end
  if type(handler) ~= "function" then
    error("bad route handler (function expected, got " .. type(handler) .. ")", 3)
  end
  self._methods[method] = true
  if not find(pattern, "[:*]") then
    local by = self._static[method] or {}
    self._static[method] = by
    by[pattern] = handler
    return
  end
  local list = self._patterns[method] or {}
  self._patterns[method] = list
  local route = compile(pattern)
  route.handler = handler
  list[#list + 1] = route
end

local function match_pattern(route, segs)
  local n = #segs
  if n < route.n - (route.rest and 1 or 0) or (n > route.n and not route.rest) then
    return nil
  end
  local params = {}
  for i = 1, route.n do
    local r = route[i]
    if r.rest then
      params[r.rest] = concat(segs, "/", i, n)
      return params
    end
    local seg = segs[i]
    if r.literal then
      if seg ~= r.literal then return nil end
    else
      params[r.param] = seg
    end
  end
  return params
end

local function find_route(self, method, path, segs)
  local by = self._static[method]
  local h = by and by[path]
  if h then return h, nil, segs end
  local list = self._patterns[method]
  if not list then return nil, nil, segs end
  segs = segs or segments(path)
  for i = 1, #list do
    local params = match_pattern(list[i], segs)
    if params then return list[i].handler, params, segs end
  end
  return nil, nil, segs
end

-- router:match(method, path) -> handler, params; or nil, "not found" or
-- nil, "method not allowed", allowed-methods (a comma-separated string).
-- HEAD falls back to the GET routes (eddy sends no body for HEAD).
function M:match(method, path)
  local h, params, segs = find_route(self, method, path)
  if h then return h, params end
  if method == "HEAD" then
    h, params, segs = find_route(self, "GET", path, segs)
    if h then return h, params end
  end
  local allowed = {}
  for m in pairs(self._methods) do
    if m ~= method and find_route(self, m, path, segs) then allowed[#allowed + 1] = m end
  end
  if #allowed > 0 then
    for _, m in ipairs(allowed) do
      if m == "GET" then allowed[#allowed + 1] = "HEAD" break end
    end
    table.sort(allowed)
    return nil, "method not allowed", concat(allowed, ", ")
  end
  return nil, "not found"
end

return M

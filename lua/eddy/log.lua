-- eddy.log: leveled log lines with key-value fields, plain or JSON, to
-- stderr or a file, each carrying the task (and, with several reactor
-- threads, the thread) that wrote it.
--
--   log.info("signed up", { user = 42, plan = "pro" })
--   2026-11-27T10:59:01.123Z INFO [task 3] signed up plan=pro user=42
--   {"time":"2026-11-27T10:59:01.123Z","level":"info","task":3,"msg":"signed up","plan":"pro","user":42}
--
-- A line is written whole with one write, synchronously, as nginx writes
-- its logs: cheap on a local disk, but a stalled disk stalls the loop.
-- Each reactor thread has its own settings (configure it in each, or in
-- the script every thread runs).

local c = require "eddy.c.task"
local threads_c = require "eddy.c.threads"

local type, error, tostring, tonumber, pairs, ipairs, setmetatable, pcall, next =
  type, error, tostring, tonumber, pairs, ipairs, setmetatable, pcall, next
local format, concat, sort, byte = string.format, table.concat, table.sort, string.byte
local floor = math.floor
local wall, current_id = c.wall, c.current_id

local M = {}

local LEVELS = { debug = 10, info = 20, warn = 30, error = 40 }
local NAMES = { [10] = "DEBUG", [20] = "INFO", [30] = "WARN", [40] = "ERROR" }

local settings = {
  level = LEVELS.info,
  json = false,
  out = io.stderr,
  path = nil,
  fields = {}, -- added to every line
}

-- =======================================================================
-- Formatting

local function timestamp()
  local t = wall()
  local s = floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. format(".%03dZ", floor((t - s) * 1000))
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(ch)
    return ESCAPES[ch] or format("\\u%04x", byte(ch))
  end) .. '"'
end

local json_value

local function json_table(t, depth)
  if depth > 8 then return '"(too deep)"' end
  if #t > 0 or next(t) == nil then
    local parts = {}
    for i = 1, #t do parts[i] = json_value(t[i], depth + 1) end
    return "[" .. concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    parts[i] = json_string(k) .. ":" .. json_value(v, depth + 1)
  end
  return "{" .. concat(parts, ",") .. "}"
end

function json_value(v, depth)
  local ty = type(v)
  if ty == "string" then return json_string(v) end
  if ty == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return json_string(tostring(v)) end
    if v == floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
    local short = format("%.15g", v) -- the shortest that reads back the same
    return tonumber(short) == v and short or format("%.17g", v)
  end
  if ty == "boolean" then return tostring(v) end
  if ty == "nil" then return "null" end
  if ty == "table" then return json_table(v, depth) end
  return json_string(tostring(v))
end

-- A value as plain text: bare when it has no space, quote or '=', else
-- quoted like a Lua string.
local function plain_value(v)
  if type(v) == "table" then v = json_table(v, 1) end
  local s = tostring(v)
  if s == "" or s:find('[%s"=]') then return format("%q", s):gsub("\\\n", "\\n") end
  return s
end

-- The fields of a line: the configured ones, then the logger's bound
-- ones, then the call's, later ones winning; keys in order.
local function merge(bound, fields)
  local all = {}
  for k, v in pairs(settings.fields) do all[k] = v end
  if bound then for k, v in pairs(bound) do all[k] = v end end
  if fields then for k, v in pairs(fields) do all[k] = v end end
  local keys = {}
  for k in pairs(all) do keys[#keys + 1] = tostring(k) end
  sort(keys)
  return all, keys
end

local RESERVED = { time = true, level = true, msg = true, task = true, thread = true }

local function line(level, msg, bound, fields)
  local all, keys = merge(bound, fields)
  local task = current_id()
  local thread, nthreads = threads_c.info()
  if settings.json then
    local parts = { '{"time":"' .. timestamp() .. '","level":"' .. NAMES[level]:lower() .. '"' }
    if nthreads and nthreads > 1 then parts[#parts + 1] = ',"thread":' .. thread end
    if task then parts[#parts + 1] = ',"task":' .. format("%d", task) end
    parts[#parts + 1] = ',"msg":' .. json_string(tostring(msg))
    for _, k in ipairs(keys) do
      local key = RESERVED[k] and "field." .. k or k
      parts[#parts + 1] = "," .. json_string(key) .. ":" .. json_value(all[k], 1)
    end
    parts[#parts + 1] = "}\n"
    return concat(parts)
  end
  local where = ""
  if nthreads and nthreads > 1 then
    where = task and format(" [thread %d task %d]", thread, task) or format(" [thread %d]", thread)
  elseif task then
    where = format(" [task %d]", task)
  end
  local parts = { timestamp(), " ", NAMES[level], where, " ", tostring(msg) }
  for _, k in ipairs(keys) do
    parts[#parts + 1] = " " .. k .. "=" .. plain_value(all[k])
  end
  parts[#parts + 1] = "\n"
  return concat(parts)
end

-- =======================================================================
-- Loggers

local Logger = {}
Logger.__index = Logger

local function emit(level, bound, msg, fields)
  if level < settings.level then return end
  if fields ~= nil and type(fields) ~= "table" then
    error("bad fields: a table expected, got " .. type(fields), 3)
  end
  local text = line(level, msg, bound, fields)
  local ok = pcall(settings.out.write, settings.out, text)
  if not ok and settings.out ~= io.stderr then io.stderr:write(text) end
end

for name, level in pairs(LEVELS) do
  M[name] = function(msg, fields) emit(level, nil, msg, fields) end
  Logger[name] = function(self, msg, fields) emit(level, self.fields, msg, fields) end
end

-- eddy.log.with(fields) → a logger whose lines all carry fields, with the
-- same methods (debug, info, warn, error, with).
function M.with(fields)
  if type(fields) ~= "table" then error("bad fields: a table expected", 2) end
  return setmetatable({ fields = fields }, Logger)
end

function Logger:with(fields)
  if type(fields) ~= "table" then error("bad fields: a table expected", 2) end
  local all = {}
  for k, v in pairs(self.fields) do all[k] = v end
  for k, v in pairs(fields) do all[k] = v end
  return setmetatable({ fields = all }, Logger)
end

-- =======================================================================
-- Settings

local function check_level(name)
  local level = LEVELS[name]
  if not level then
    error("bad log level: " .. tostring(name) .. " (debug, info, warn or error)", 3)
  end
  return level
end

-- eddy.log.set_level(name): "debug", "info", "warn" or "error"; lines
-- below it are dropped (before they are formatted).
function M.set_level(name)
  settings.level = check_level(name)
end

-- eddy.log.level() → the level's name.
function M.level()
  return NAMES[settings.level]:lower()
end

-- eddy.log.enabled(name) → whether lines of that level are written.
function M.enabled(name)
  return check_level(name) >= settings.level
end

-- eddy.log.configure{level, format = "plain" | "json", file = path (or
-- nil for stderr), fields = {...}} → true, or nil, err when the file
-- cannot be opened (the settings are then left as they were).
function M.configure(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'configure' (table expected)", 2) end
  local level = opts.level and check_level(opts.level) or settings.level
  local fmt = opts.format or (settings.json and "json" or "plain")
  if fmt ~= "plain" and fmt ~= "json" then
    error("bad log format: " .. tostring(fmt) .. " (plain or json)", 2)
  end
  if opts.fields ~= nil and type(opts.fields) ~= "table" then
    error("bad fields: a table expected", 2)
  end
  local out, path = settings.out, settings.path
  if opts.file ~= nil and opts.file ~= path then
    local f, err = io.open(opts.file, "a")
    if not f then return nil, err end
    f:setvbuf("line")
    if settings.path then settings.out:close() end
    out, path = f, opts.file
  end
  settings.level, settings.json = level, fmt == "json"
  settings.out, settings.path = out, path
  if opts.fields then settings.fields = opts.fields end
  return true
end

-- eddy.log.reopen() → true, or nil, err: opens the log file afresh (after
-- a rotation moved it away), as a SIGHUP or SIGUSR1 handler would.
function M.reopen()
  if not settings.path then return true end
  local f, err = io.open(settings.path, "a")
  if not f then return nil, err end
  f:setvbuf("line")
  settings.out:close()
  settings.out = f
  return true
end

-- eddy.log.access(method, path, status, bytes, seconds, fields): the
-- line the HTTP server writes per request when its access_log option is
-- on (level info, message "access").
function M.access(method, path, status, bytes, seconds, fields)
  if LEVELS.info < settings.level then return end
  local f = { method = method, path = path, status = status, bytes = bytes,
    ms = floor(seconds * 1000 * 10 + 0.5) / 10 }
  if fields then for k, v in pairs(fields) do f[k] = v end end
  emit(LEVELS.info, nil, "access", f)
end

return M

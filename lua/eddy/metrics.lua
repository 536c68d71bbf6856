-- eddy.metrics: the runtime's own figures and the program's counters,
-- gauges and histograms, as a Lua table or as Prometheus text.
--
-- Every reactor thread has its own registry and figures (a metric made in
-- one thread is not seen by another), and its series carry its thread
-- label (and worker label, under a master). A scrape of the metrics route
-- gathers the series of every thread and worker that serves them.

local inspect = require "eddy.c.inspect"
local threads_c = require "eddy.c.threads"
local eddy = require "eddy"
local mailbox = require "eddy.mailbox"

local eddy_worker = eddy.worker
local type, error, tostring, tonumber, pairs, ipairs, setmetatable =
  type, error, tostring, tonumber, pairs, ipairs, setmetatable
local format, concat, sort = string.format, table.concat, table.sort
local math_huge, math_floor = math.huge, math.floor

local M = {}

-- The runtime's figures: name, type, help, and the field of
-- inspect.figures() it comes from.
local RUNTIME = {
  { "eddy_tasks", "gauge", "Tasks alive.", "tasks" },
  { "eddy_tasks_ready", "gauge", "Tasks ready to run.", "tasks_ready" },
  { "eddy_tasks_spawned_total", "counter", "Tasks spawned.", "tasks_spawned" },
  { "eddy_tasks_failed_total", "counter", "Tasks that ended with an error.", "tasks_failed" },
  { "eddy_timers", "gauge", "Timers pending.", "timers" },
  { "eddy_connections", "gauge", "TCP connections open.", "connections" },
  { "eddy_connections_accepted_total", "counter", "TCP connections accepted.", "accepted" },
  { "eddy_connections_made_total", "counter", "TCP connections made by connect.", "connected" },
  { "eddy_received_bytes_total", "counter", "Bytes read from TCP connections.", "bytes_in" },
  { "eddy_sent_bytes_total", "counter", "Bytes written to TCP connections.", "bytes_out" },
  { "eddy_loop_lag_seconds", "gauge", "How late the last timers fired.", "loop_lag" },
  { "eddy_loop_lag_max_seconds", "gauge", "The latest any timer fired.", "loop_lag_max" },
  { "eddy_loop_stalls_total", "counter", "Tasks that held the loop past the watchdog's threshold.", "stalls" },
  { "eddy_loop_stall_aborts_total", "counter", "Tasks the watchdog raised an error in.", "stall_aborts" },
  { "eddy_lua_memory_bytes", "gauge", "Memory of this thread's Lua state.", "lua_memory" },
}

local HTTP_CLASSES = { "1xx", "2xx", "3xx", "4xx", "5xx" }

-- =======================================================================
-- Checking names and labels

local function check_name(name)
  if type(name) ~= "string" or not name:match("^[%a_:][%w_:]*$") then
    error("bad metric name: " .. tostring(name), 3)
  end
end

local function check_labels(labels)
  if labels == nil then return {} end
  if type(labels) ~= "table" then error("bad labels: a list of names expected", 3) end
  for _, l in ipairs(labels) do
    if type(l) ~= "string" or not l:match("^[%a_][%w_]*$") or l:sub(1, 2) == "__" then
      error("bad label name: " .. tostring(l), 3)
    end
  end
  return labels
end

-- =======================================================================
-- The registry of this thread

local registry = {} -- name → metric
local order = {}    -- names, in the order they were made

-- Text of a label value, escaped as the exposition format wants.
local function escape(v)
  return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

-- The series key of a set of label values: also its label text.
local function series_key(m, values)
  local names = m.label_names
  if #names == 0 then return "" end
  if type(values) ~= "table" then
    error("metric '" .. m.name .. "' has labels (" .. concat(names, ", ") .. "): pass their values in a table", 3)
  end
  local parts = {}
  for i, n in ipairs(names) do
    local v = values[n]
    if v == nil then error("metric '" .. m.name .. "': no value for label '" .. n .. "'", 3) end
    parts[i] = n .. '="' .. escape(v) .. '"'
  end
  return concat(parts, ",")
end

local Metric = {}
Metric.__index = Metric

local function new_metric(kind, name, help, labels, extra)
  check_name(name)
  if help ~= nil and type(help) ~= "string" then error("bad help: a string expected", 3) end
  labels = check_labels(labels)
  local old = registry[name]
  if old then
    if old.kind ~= kind or concat(old.label_names, ",") ~= concat(labels, ",") then
      error("metric '" .. name .. "' exists already as a " .. old.kind .. " with other labels", 3)
    end
    return old
  end
  local m = setmetatable({ kind = kind, name = name, help = help or name,
    label_names = labels, series = {}, keys = {} }, Metric)
  for k, v in pairs(extra or {}) do m[k] = v end
  registry[name] = m
  order[#order + 1] = name
  return m
end

local function series(m, labels)
  local key = series_key(m, labels)
  local s = m.series[key]
  if s == nil then
    if m.kind == "histogram" then
      local counts = {}
      for i = 1, #m.buckets do counts[i] = 0 end
      s = { counts = counts, sum = 0, count = 0 }
    else
      s = { value = 0 }
    end
    m.series[key] = s
    m.keys[#m.keys + 1] = key
  end
  return s
end

-- eddy.metrics.counter(name, help[, label_names]) → counter with
-- inc([n][, labels]): a count that only goes up.
function M.counter(name, help, labels)
  return new_metric("counter", name, help, labels)
end

-- eddy.metrics.gauge(name, help[, label_names]) → gauge with set(v[,
-- labels]), inc([n][, labels]), dec([n][, labels]).
function M.gauge(name, help, labels)
  return new_metric("gauge", name, help, labels)
end

local DEFAULT_BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }

-- eddy.metrics.histogram(name, help[, label_names][, buckets]) →
-- histogram with observe(v[, labels]). buckets: upper bounds, ascending
-- (default: 5 ms to 10 s, for durations in seconds).
function M.histogram(name, help, labels, buckets)
  buckets = buckets or DEFAULT_BUCKETS
  if type(buckets) ~= "table" or #buckets == 0 then error("bad buckets: a list of bounds expected", 2) end
  for i, b in ipairs(buckets) do
    if type(b) ~= "number" or (i > 1 and b <= buckets[i - 1]) then
      error("bad buckets: numbers in ascending order expected", 2)
    end
  end
  for _, l in ipairs(labels or {}) do
    if l == "le" then error("bad label name: le (a histogram's own)", 2) end
  end
  return new_metric("histogram", name, help, labels, { buckets = buckets })
end

local function check_amount(n, what)
  if type(n) ~= "number" or n ~= n then error("bad " .. what .. ": a number expected", 3) end
end

function Metric:inc(n, labels)
  if type(n) == "table" then n, labels = 1, n end
  n = n or 1
  check_amount(n, "increment")
  if self.kind == "counter" and n < 0 then error("a counter only goes up", 2) end
  if self.kind == "histogram" then error("a histogram is observed, not incremented", 2) end
  local s = series(self, labels)
  s.value = s.value + n
end

function Metric:dec(n, labels)
  if self.kind ~= "gauge" then error("only a gauge goes down", 2) end
  if type(n) == "table" then n, labels = 1, n end
  n = n or 1
  check_amount(n, "decrement")
  local s = series(self, labels)
  s.value = s.value - n
end

function Metric:set(v, labels)
  if self.kind ~= "gauge" then error("only a gauge is set", 2) end
  check_amount(v, "value")
  series(self, labels).value = v
end

function Metric:observe(v, labels)
  if self.kind ~= "histogram" then error("only a histogram observes", 2) end
  check_amount(v, "observation")
  local s = series(self, labels)
  local b, counts = self.buckets, s.counts
  for i = 1, #b do
    if v <= b[i] then counts[i] = counts[i] + 1 end
  end
  s.sum = s.sum + v
  s.count = s.count + 1
end

-- The value of one series (a table with counts, sum and count for a
-- histogram), or nil if it has none yet.
function Metric:value(labels)
  local s = self.series[series_key(self, labels)]
  if s == nil then return nil end
  if self.kind == "histogram" then return { counts = s.counts, sum = s.sum, count = s.count } end
  return s.value
end

-- =======================================================================
-- Reading

-- eddy.metrics.runtime() → the runtime's figures for this thread: tasks,
-- timers, connections, accepted, connected, bytes_in, bytes_out,
-- http_1xx..http_5xx, loop_lag, loop_lag_max, stalls, stall_aborts,
-- lua_memory, rss (bytes of the process), thread.
function M.runtime()
  local f = inspect.figures()
  local statm = io.open("/proc/self/statm")
  if statm then
    local pages = statm:read("*n")
    pages = statm:read("*n")
    statm:close()
    if pages then f.rss = pages * 4096 end
  end
  return f
end

local function number_text(v)
  if v == math_huge then return "+Inf" end
  if v == -math_huge then return "-Inf" end
  if v ~= v then return "NaN" end
  if v == math_floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
  local short = format("%.15g", v) -- the shortest that reads back the same
  return tonumber(short) == v and short or format("%.17g", v)
end

local function labels_text(base, key)
  if base == "" then return key == "" and "" or "{" .. key .. "}" end
  if key == "" then return "{" .. base .. "}" end
  return "{" .. base .. "," .. key .. "}"
end

-- A family of samples: its HELP and TYPE once, then every series of every
-- thread that has it.
local function family(name, kind, help)
  return { name = name, kind = kind, help = help, lines = {} }
end

local function add_metric(fams, m, base)
  local fam = family(m.name, m.kind, m.help)
  local lines = fam.lines
  local keys = {}
  for i, k in ipairs(m.keys) do keys[i] = k end
  sort(keys)
  for _, key in ipairs(keys) do
    local s = m.series[key]
    if m.kind == "histogram" then
      for i, bound in ipairs(m.buckets) do
        local le = 'le="' .. number_text(bound) .. '"'
        lines[#lines + 1] = m.name .. "_bucket" .. labels_text(base, key == "" and le or key .. "," .. le)
          .. " " .. number_text(s.counts[i])
      end
      lines[#lines + 1] = m.name .. "_bucket" .. labels_text(base, key == "" and 'le="+Inf"' or key .. ',le="+Inf"')
        .. " " .. number_text(s.count)
      lines[#lines + 1] = m.name .. "_sum" .. labels_text(base, key) .. " " .. number_text(s.sum)
      lines[#lines + 1] = m.name .. "_count" .. labels_text(base, key) .. " " .. number_text(s.count)
    else
      lines[#lines + 1] = m.name .. labels_text(base, key) .. " " .. number_text(s.value)
    end
  end
  fams[#fams + 1] = fam
end

-- Families that modules (and programs) compute at each scrape.
local collectors = {}

-- eddy.metrics.add_collector(fn): fn() is called at each scrape, in the thread
-- that serves it, and returns families: { {name, kind, help, samples =
-- { {labels = {k = v}, value = n}, ... }, per_process = true|nil}, ... }.
-- A family with per_process carries the worker's label rather than the
-- thread's (a figure every thread of the process would repeat).
function M.add_collector(fn)
  if type(fn) ~= "function" then error("bad argument #1 to 'add_collector' (function expected)", 2) end
  collectors[#collectors + 1] = fn
end

-- eddy's own modules' collectors, which reset() keeps.
local builtin = {}
function M._add_builtin_collector(fn)
  builtin[#builtin + 1] = fn
  collectors[#collectors + 1] = fn
end

local function add_collected(fams, base, worker_label)
  for _, fn in ipairs(collectors) do
    local ok, got = pcall(fn)
    if ok and type(got) == "table" then
      for _, f in ipairs(got) do
        check_name(f.name)
        local fam = family(f.name, f.kind or "gauge", f.help or f.name)
        local own = f.per_process and worker_label or base
        for _, smp in ipairs(f.samples or {}) do
          local keys = {}
          for k in pairs(smp.labels or {}) do keys[#keys + 1] = k end
          sort(keys)
          local parts = {}
          for i, k in ipairs(keys) do parts[i] = k .. '="' .. escape(smp.labels[k]) .. '"' end
          fam.lines[#fam.lines + 1] = f.name .. labels_text(own, concat(parts, ",")) .. " " .. number_text(smp.value)
        end
        fams[#fams + 1] = fam
      end
    end
  end
end

-- This thread's families: the runtime's, then the program's. Series carry
-- the thread's labels (and the worker's, under a master); the process's
-- memory carries only the worker's, so that threads repeat the same line.
local function collect()
  local f = M.runtime()
  local worker_label = ""
  local _, _, worker, workers = threads_c.info()
  if workers and workers > 1 then worker_label = 'worker="' .. worker .. '"' end
  local base = (worker_label ~= "" and worker_label .. "," or "") .. 'thread="' .. number_text(f.thread) .. '"'
  local fams = {}
  for _, r in ipairs(RUNTIME) do
    local fam = family(r[1], r[2], r[3])
    fam.lines[1] = r[1] .. "{" .. base .. "} " .. number_text(f[r[4]])
    fams[#fams + 1] = fam
  end
  local http = family("eddy_http_responses_total", "counter", "HTTP responses begun, by status class.")
  for _, class in ipairs(HTTP_CLASSES) do
    http.lines[#http.lines + 1] = 'eddy_http_responses_total{' .. base .. ',class="' .. class .. '"} '
      .. number_text(f["http_" .. class])
  end
  fams[#fams + 1] = http
  if f.rss then
    local rss = family("process_resident_memory_bytes", "gauge", "Resident memory of the process.")
    rss.lines[1] = "process_resident_memory_bytes" .. labels_text(worker_label, "") .. " " .. number_text(f.rss)
    fams[#fams + 1] = rss
  end
  add_collected(fams, base, worker_label)
  for _, name in ipairs(order) do
    add_metric(fams, registry[name], base)
  end
  return fams
end

-- Adds the families of another thread to fams (by name, in order of first
-- appearance), leaving out series already there.
local function merge(fams, more)
  local by_name, seen = {}, {}
  for _, fam in ipairs(fams) do
    by_name[fam.name] = fam
    for _, l in ipairs(fam.lines) do seen[l:match("^%S+")] = true end
  end
  for _, fam in ipairs(more) do
    local into = by_name[fam.name]
    if not into then
      into = family(fam.name, fam.kind, fam.help)
      fams[#fams + 1] = into
      by_name[fam.name] = into
    end
    for _, l in ipairs(fam.lines) do
      local key = l:match("^%S+")
      if not seen[key] then
        seen[key] = true
        into.lines[#into.lines + 1] = l
      end
    end
  end
  return fams
end

local function render(fams)
  local out = {}
  for _, fam in ipairs(fams) do
    out[#out + 1] = "# HELP " .. fam.name .. " " .. fam.help:gsub("\\", "\\\\"):gsub("\n", "\\n")
    out[#out + 1] = "# TYPE " .. fam.name .. " " .. fam.kind
    for _, l in ipairs(fam.lines) do out[#out + 1] = l end
  end
  out[#out + 1] = ""
  return concat(out, "\n")
end

-- =======================================================================
-- Every thread and worker process
--
-- A thread that serves metrics (route) also answers the other threads'
-- requests for its families (eddy.mailbox's _answer and _ask); a scrape
-- that reaches any thread then gathers them all, so that a scraper sees
-- the whole program whichever thread its connection lands on.

local function serve_others()
  mailbox._answer("metrics", collect) -- once per thread and run
end

-- The families of every thread of every worker that serves metrics, this
-- one's first; threads that do not answer within timeout are left out.
local function gather(timeout)
  local fams = collect()
  for _, answer in ipairs(mailbox._ask("metrics", nil, nil, timeout) or {}) do
    if type(answer[1]) == "table" then merge(fams, answer[1]) end
  end
  return fams
end

-- eddy.metrics.text([{all = true, timeout = s}]) → the metrics in
-- Prometheus's text exposition format (version 0.0.4): this thread's, or
-- with all, every thread's and worker's that serves metrics (see route).
function M.text(opts)
  if opts and opts.all then return render(gather(opts.timeout or 1)) end
  return render(collect())
end

M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

-- eddy.metrics.route(app[, path[, {all, timeout}]]): serves text() at
-- path (default "/metrics") of an eddy.http app: the whole program's
-- (all, the default), or this thread's only (all = false).
function M.route(app, path, opts)
  local all = not (opts and opts.all == false)
  local timeout = opts and opts.timeout or 1
  if all then serve_others() end
  app:route("GET", path or "/metrics", function(_, res)
    res:header("Content-Type", M.CONTENT_TYPE)
    res:send(M.text({ all = all, timeout = timeout }))
  end)
  return app
end

-- eddy.metrics.listen(host, port[, path[, opts]]) → server: an HTTP server
-- of its own that serves only the metrics.
function M.listen(host, port, path, opts)
  local app = require("eddy.http").server()
  M.route(app, path, opts)
  return app:listen(host, port)
end

-- Forgets the program's metrics (for tests and reloads).
function M.reset()
  registry, order, collectors = {}, {}, {}
  for i, fn in ipairs(builtin) do collectors[i] = fn end
end

return M

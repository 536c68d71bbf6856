-- eddy.metrics: the runtime's figures and the program's metrics, read as
-- a table and as Prometheus text (checked line by line against the
-- exposition format), served over HTTP and fetched with curl.

local h = require "helper"
local eddy = h.eddy
local metrics = require "eddy.metrics"

local NAME = "[%a_:][%w_:]*"

-- Parses Prometheus text exposition (0.0.4) strictly; returns the families
-- { name = { type, help, samples = { {name, labels, value} } } } or raises
-- with the line that breaks the format.
local function parse_exposition(text)
  assert(text:sub(-1) == "\n", "the text must end with a newline")
  local families, current, seen = {}, nil, {}
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local function bad(why) error(("line %d: %s: %q"):format(n, why, line), 0) end
    if line:match("^# HELP ") then
      local name, help = line:match("^# HELP (" .. NAME .. ") (.*)$")
      if not name then bad("bad HELP") end
      -- Only \\ and \n may follow a backslash in HELP text.
      if help:gsub("\\[\\n]", ""):find("\\", 1, true) then bad("bad escape in HELP") end
      families[name] = families[name] or { samples = {} }
      families[name].help = help
    elseif line:match("^# TYPE ") then
      local name, ty = line:match("^# TYPE (" .. NAME .. ") (%a+)$")
      if not name then bad("bad TYPE") end
      if not ({ counter = 1, gauge = 1, histogram = 1, summary = 1, untyped = 1 })[ty] then bad("unknown type") end
      families[name] = families[name] or { samples = {} }
      if families[name].type then bad("second TYPE for " .. name) end
      if #families[name].samples > 0 then bad("TYPE after samples") end
      families[name].type = ty
      current = name
    elseif line:match("^#") or line == "" then
      bad("stray line")
    else
      local name, rest = line:match("^(" .. NAME .. ")(.*)$")
      if not name then bad("bad metric name") end
      local labels, value = {}, nil
      if rest:sub(1, 1) == "{" then
        local body, after = rest:match("^{(.-[^\\]?)}(.*)$")
        if body == nil then body, after = rest:match("^{()}(.*)$") end
        if body == nil then bad("unclosed labels") end
        local pos = 1
        while pos <= #body do
          -- A value may hold escaped quotes: read it a character at a time.
          local lname, lval, stop
          local s, e = body:find('^[%a_][%w_]*="', pos)
          if not s then bad("bad label") end
          lname = body:sub(s, e - 2)
          local i = e + 1
          local buf = {}
          while true do
            local ch = body:sub(i, i)
            if ch == "" then bad("unterminated label value") end
            if ch == "\\" then
              local nx = body:sub(i + 1, i + 1)
              if nx == "\\" then buf[#buf + 1] = "\\"
              elseif nx == '"' then buf[#buf + 1] = '"'
              elseif nx == "n" then buf[#buf + 1] = "\n"
              else bad("bad escape in label value") end
              i = i + 2
            elseif ch == '"' then
              break
            else
              buf[#buf + 1] = ch
              i = i + 1
            end
          end
          lval, stop = table.concat(buf), i + 1
          if labels[lname] then bad("label twice") end
          labels[lname] = lval
          pos = stop
          if body:sub(pos, pos) == "," then pos = pos + 1 elseif pos <= #body then bad("junk after label") end
        end
        rest = after
      end
      value = rest:match("^ (%S+)$")
      if not value then bad("bad value") end
      local v = tonumber(value)
      if value == "+Inf" then v = math.huge elseif value == "-Inf" then v = -math.huge elseif value == "NaN" then v = 0 / 0 end
      if v == nil then bad("value is not a number") end
      local family = name
      if current and (name == current .. "_bucket" or name == current .. "_sum" or name == current .. "_count") then
        family = current
      end
      if family ~= current then bad("sample outside its family's TYPE") end
      local key = name
      local keys = {}
      for k, lv in pairs(labels) do keys[#keys + 1] = k .. "=" .. lv end
      table.sort(keys)
      key = key .. "{" .. table.concat(keys, ",") .. "}"
      if seen[key] then bad("series twice") end
      seen[key] = true
      local f = families[family]
      f.samples[#f.samples + 1] = { name = name, labels = labels, value = v }
    end
  end
  return families
end

local function sample(families, family, name, want)
  for _, s in ipairs(families[family].samples) do
    local match = s.name == name
    for k, v in pairs(want or {}) do
      if s.labels[k] ~= v then match = false end
    end
    if match then return s.value end
  end
end

describe("eddy.metrics", function()
  before_each(function() metrics.reset() end)

  it("counts connections, bytes and HTTP responses by status class", function()
    local before, after = h.run(function()
      local before = metrics.runtime()
      local app = eddy.http.server()
      app:route("GET", "/ok", function(_, res) res:send("fine") end)
      app:route("GET", "/missing", function(_, res) res:status(404) res:send("no") end)
      app:route("GET", "/boom", function() error("handler failed") end)
      local srv = assert(app:listen("127.0.0.1", 0))
      local port = srv:port()
      for _, path in ipairs({ "/ok", "/ok", "/missing", "/boom" }) do
        local conn = assert(eddy.tcp.connect("127.0.0.1", port))
        conn:write("GET " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while conn:read_some() do end
        conn:close()
      end
      local after = metrics.runtime()
      srv:close()
      return before, after
    end)
    assert.equal(2, after.http_2xx - before.http_2xx)
    assert.equal(1, after.http_4xx - before.http_4xx)
    assert.equal(1, after.http_5xx - before.http_5xx)
    assert.equal(4, after.accepted - before.accepted)
    assert.equal(4, after.connected - before.connected)
    assert.is_true(after.bytes_in - before.bytes_in > 4 * 40)
    assert.is_true(after.bytes_out - before.bytes_out > 4 * 40)
    assert.is_true(after.lua_memory > 0)
    assert.is_true(after.rss > 0)
  end)

  it("counts TCP connections only: a child's pipes closing leave the gauge alone", function()
    local before, after = h.run(function()
      local before = metrics.runtime()
      local res = assert(eddy.process.run("sh", { "-c", "echo out; echo err >&2" }))
      assert(res.stdout == "out\n")
      return before, metrics.runtime()
    end)
    assert.equal(before.connections, after.connections)
  end)

  it("keeps the program's counters, gauges and histograms with labels", function()
    local orders = metrics.counter("orders_total", "Orders taken.", { "status" })
    orders:inc({ status = "ok" })
    orders:inc(2, { status = "ok" })
    orders:inc({ status = "failed" })
    assert.equal(3, orders:value({ status = "ok" }))
    local depth = metrics.gauge("queue_depth", "Messages waiting.")
    depth:set(10)
    depth:dec(3)
    depth:inc()
    assert.equal(8, depth:value())
    local took = metrics.histogram("took_seconds", "Time taken.", nil, { 0.1, 1 })
    took:observe(0.05)
    took:observe(0.5)
    took:observe(7)
    local v = took:value()
    assert.same({ 1, 2 }, v.counts)
    assert.equal(3, v.count)
    assert.equal(7.55, v.sum)
    assert.equal(orders, metrics.counter("orders_total", "Orders taken.", { "status" }))
  end)

  it("refuses bad names, labels and uses", function()
    assert.has_error(function() metrics.counter("bad-name", "x") end)
    assert.has_error(function() metrics.counter("c1", "x", { "__reserved" }) end)
    assert.has_error(function() metrics.histogram("h1", "x", { "le" }) end)
    assert.has_error(function() metrics.histogram("h2", "x", nil, { 1, 0.5 }) end)
    local c = metrics.counter("c2", "x", { "kind" })
    assert.has_error(function() c:inc(-1, { kind = "a" }) end)
    assert.has_error(function() c:inc() end) -- its label has no value
    assert.has_error(function() c:set(1, { kind = "a" }) end)
    assert.has_error(function() metrics.gauge("c2", "x") end) -- a counter already
  end)

  it("writes text that parses as Prometheus exposition, line by line", function()
    local text = h.run(function()
      local c = metrics.counter("jobs_total", "Jobs, with \\ and\nnewline in help.", { "queue", "result" })
      c:inc({ queue = 'we"ird\\name\n', result = "ok" })
      c:inc(5, { queue = "mail", result = "ok" })
      metrics.gauge("temperature", "Degrees."):set(-3.25)
      local hist = metrics.histogram("latency_seconds", "Latency.", { "route" })
      for _, x in ipairs({ 0.001, 0.02, 0.3, 4, 20 }) do hist:observe(x, { route = "/a" }) end
      return metrics.text()
    end)
    local families = parse_exposition(text)
    assert.equal("counter", families.jobs_total.type)
    assert.equal(1, sample(families, "jobs_total", "jobs_total", { queue = 'we"ird\\name\n' }))
    assert.equal(5, sample(families, "jobs_total", "jobs_total", { queue = "mail" }))
    assert.equal(-3.25, sample(families, "temperature", "temperature"))
    assert.equal("histogram", families.latency_seconds.type)
    -- Buckets are cumulative and end with +Inf equal to the count.
    local last = -1
    local inf
    for _, s in ipairs(families.latency_seconds.samples) do
      if s.name == "latency_seconds_bucket" then
        assert.is_true(s.value >= last)
        last = s.value
        if s.labels.le == "+Inf" then inf = s.value end
      end
    end
    assert.equal(5, inf)
    assert.equal(5, sample(families, "latency_seconds", "latency_seconds_count"))
    -- The runtime's own families, each with its thread label.
    for _, name in ipairs({ "eddy_tasks", "eddy_connections", "eddy_loop_lag_seconds",
                            "eddy_loop_stalls_total", "eddy_lua_memory_bytes", "eddy_http_responses_total" }) do
      assert.is_truthy(families[name], name)
      assert.equal("1", families[name].samples[1].labels.thread)
    end
  end)

  it("adds the families of collectors, and memory queues' depths", function()
    local text = h.run(function()
      metrics.add_collector(function()
        return { { name = "pool_connections", kind = "gauge", help = "Open.",
          samples = { { labels = { pool = "db", state = "idle" }, value = 3 } } } }
      end)
      local q = eddy.queue.open("metrics_spec_jobs")
      q:push("a")
      q:push("b")
      local m = q:pop()
      local text = metrics.text()
      q:ack(m)
      q:ack(q:pop())
      return text
    end)
    local families = parse_exposition(text)
    assert.equal(3, sample(families, "pool_connections", "pool_connections", { pool = "db", state = "idle", thread = "1" }))
    assert.equal(1, sample(families, "eddy_queue_ready", "eddy_queue_ready", { queue = "metrics_spec_jobs" }))
    assert.equal(1, sample(families, "eddy_queue_in_flight", "eddy_queue_in_flight", { queue = "metrics_spec_jobs" }))
    assert.is_nil(families.eddy_queue_ready.samples[1].labels.thread) -- the process's figure
  end)

  it("keeps scraping after a memory queue object is closed and its queue reopened", function()
    local text = h.run(function()
      local q = eddy.queue.open("metrics_spec_reopened")
      q:push(1)
      q:close()
      local q2 = eddy.queue.open("metrics_spec_reopened")
      local text = metrics.text()
      q2:ack(q2:pop())
      return text
    end)
    local families = parse_exposition(text)
    assert.equal(1, sample(families, "eddy_queue_ready", "eddy_queue_ready", { queue = "metrics_spec_reopened" }))
  end)

  it("is served on a route, and curl reads it", function()
    local rc, out = h.eddy_run([[
local eddy = require "eddy"
local app = eddy.http.server()
eddy.metrics.route(app, "/metrics")
local srv = assert(app:listen("127.0.0.1", 0))
local rc = os.execute(("curl -sf -o /tmp/eddy-metrics-%d.txt -w '%%{content_type}' http://127.0.0.1:%d/metrics > /tmp/eddy-metrics-%d.type &")
  :format(srv:port(), srv:port(), srv:port()))
for _ = 1, 100 do
  eddy.sleep(0.02)
  local f = io.open(("/tmp/eddy-metrics-%d.type"):format(srv:port()))
  local t = f and f:read("*a")
  if f then f:close() end
  if t and #t > 0 then print("type: " .. t) break end
end
print("port " .. srv:port())
srv:close()
]])
    assert.equal(0, rc, out)
    assert.matches("type: text/plain; version=0.0.4", out)
    local port = out:match("port (%d+)")
    local body = h.read_file("/tmp/eddy-metrics-" .. port .. ".txt")
    os.remove("/tmp/eddy-metrics-" .. port .. ".txt")
    os.remove("/tmp/eddy-metrics-" .. port .. ".type")
    local families = parse_exposition(body)
    assert.equal(1, sample(families, "eddy_connections", "eddy_connections"))
  end)

  for _, mode in ipairs({ "--threads 2", "--workers 2" }) do
    it("a scrape of any thread gathers every thread and worker (" .. mode .. ")", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write([[
local eddy = require "eddy"
eddy.metrics.counter("hits_total", "Hits."):inc(eddy.worker.thread() * 10 + eddy.worker.id())
local app = eddy.http.server()
eddy.metrics.route(app)
local srv = assert(app:listen("127.0.0.1", 0)) -- one port for all
print("up " .. eddy.worker.id() .. " " .. eddy.worker.thread() .. " port " .. srv:port())
io.stdout:flush()
]])
      f:close()
      local pid, out = h.start_eddy(("%s %s"):format(mode, path))
      local expect = mode == "--threads 2" and { "up 1 1", "up 1 2" } or { "up 1 1", "up 2 1" }
      for _, line in ipairs(expect) do h.wait_for(out, line) end
      local port = tonumber(h.wait_for(out, "port (%d+)"))
      assert.equal(2, select(2, h.read_file(out):gsub("port " .. port, "")))
      os.execute("sleep 0.2") -- every thread's relay is open
      local scrapes = {}
      for i = 1, 6 do
        local rc, body = h.sh(("curl -s -m 5 http://127.0.0.1:%d/metrics"):format(port))
        assert.equal(0, rc, body)
        scrapes[i] = body
      end
      h.sh("kill " .. pid)
      h.wait_exit(pid)
      os.remove(path)
      for _, body in ipairs(scrapes) do
        local families = parse_exposition(body)
        local hits = families.hits_total.samples
        assert.equal(2, #hits, body)
        local sum = 0
        for _, smp in ipairs(hits) do sum = sum + smp.value end
        -- thread 1 + thread 2 of worker 1 (11 + 21), or thread 1 of workers 1 and 2 (11 + 12)
        assert.equal(mode == "--threads 2" and 32 or 23, sum, body)
        assert.equal(2, #families.eddy_tasks.samples)
      end
    end)
  end

  it("gathers all 16 threads, though their answers come at once to a socket that holds ten", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local app = eddy.http.server()
      eddy.metrics.route(app) -- this thread answers scrapes from the others
      assert(app:listen("127.0.0.1", 0)) -- and keeps running
      for i = 1, 300 do eddy.metrics.counter("c" .. i .. "_total", "A counter."):inc() end
      if eddy.worker.thread() == 1 then
        eddy.sleep(0.5) -- every thread's relay is open
        local text = eddy.metrics.text({ all = true, timeout = 5 })
        local threads = {}
        for t in text:gmatch('eddy_tasks{thread="(%d+)"}') do threads[t] = true end
        local n = 0
        for _ in pairs(threads) do n = n + 1 end
        print("threads seen " .. n)
        eddy.exit(0)
      end
    ]], "", "--threads 16")
    assert.equal(0, rc, out)
    assert.matches("threads seen 16", out)
  end)

  it("memory grows less than 10 % over 10,000 requests", function()
    local first, last = h.run(function()
      local app = eddy.http.server()
      app:route("GET", "/", function(_, res) res:send("hello") end)
      local srv = assert(app:listen("127.0.0.1", 0))
      local port = srv:port()
      local function batch(n)
        local wg = eddy.waitgroup()
        for _ = 1, 10 do
          wg:spawn(function()
            local conn = assert(eddy.tcp.connect("127.0.0.1", port))
            for _ = 1, n / 10 do
              conn:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
              assert(conn:read_until("hello"))
            end
            conn:close()
          end)
        end
        wg:wait()
        collectgarbage()
        collectgarbage()
        local f = metrics.runtime()
        -- Under AddressSanitizer freed memory waits in its quarantine, so
        -- the process's RSS grows by design: only Lua's own is measured.
        if os.getenv("EDDY_ASAN_PRELOAD") then return f.lua_memory end
        return f.rss + f.lua_memory
      end
      batch(2000) -- warm up: buffers, JIT traces, pools
      local first = batch(2000)
      batch(10000)
      local last = batch(2000)
      srv:close()
      return first, last
    end)
    assert.is_true(last < first * 1.10, ("memory went from %d to %d bytes"):format(first, last))
  end)
end)

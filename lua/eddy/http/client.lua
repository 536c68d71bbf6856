-- eddy.http's client: request, get, post and fetch_all, on libcurl's multi
-- interface driven by the thread's loop (core/curl.c, bindings/fetch.c).
-- Any number of tasks may have requests in flight; each waits as plain
-- sequential code. Host names are resolved by eddy (c-ares, on the loop)
-- before curl sees them, so that an abandoned transfer never waits for
-- curl's resolver thread.
--
-- request{url, method, headers, body, body_length, timeout,
--         connect_timeout, follow_redirects, max_redirects, verify_tls,
--         proxy, tls = {verify, ca, cert, key} (eddy.tcp's names;
--         verify_tls is the older name of tls.verify),
--         http_version = "1.1" | "2", max_body, stream, body_file}
--   -> res {status, headers, body, url, http_version} | nil, err, detail
-- body: a string; a function called for each next chunk (a string, nil at
--   the end), in the requesting task whenever curl wants more (it may
--   wait on eddy I/O; one chunk is held at a time, curl pausing between);
--   or an open file, read in chunks. The body goes chunked unless
--   body_length (or a file's size) gives its length; then at most that
--   many bytes go, and a body that ends short fails ("upload failed").
-- body_file: a path whose contents are the body, sent as curl reads it.
-- http_version: "1.1", or "2": HTTP/2 offered in TLS's ALPN for https (1.1
--   if the server declines), spoken with prior knowledge for http (h2c:
--   the server must speak it). Concurrent HTTP/2 requests to one host, from
--   any tasks, share one connection as streams (in the clear only with
--   libcurl 8 or later: libcurl 7 breaks a reused prior-knowledge
--   connection, curl issue 10634, so each h2c request has its own). Unset:
--   curl's default (HTTP/2 when a TLS server offers it, 1.1 in the clear).
-- proxy: "[scheme://]host[:port]"; the proxy resolves the URL's host.
-- err is short and stable ("bad url", "unsupported scheme", "dns failure",
-- "refused", "timeout", "tls failure", "too large", "too many redirects",
-- "closed", "io error", "upload failed" (the body function raised, or
-- returned a non-string), "cancelled"); detail is curl's message, or the
-- body function's error.
-- res.headers maps lower-case names to values; a repeated name maps to an
-- array of its values.
local c = require "eddy.c.fetch"
local dns = require "eddy.dns"
local tcp = require "eddy.c.tcp"
local eddy = require "eddy"

local type, error, pairs, ipairs, tostring, floor = type, error, pairs, ipairs, tostring, math.floor
local setmetatable, rawget, rawset, pcall = setmetatable, rawget, rawset, pcall
local io_type, now = io.type, eddy.now
local lower, format, concat = string.lower, string.format, table.concat

local M = {}

local DEFAULT_PORTS = { http = 80, https = 443 }

-- host, port (nil if none) of a URL's authority (its
-- "scheme://[user@]host[:port]" start), or nil.
local function parse_authority(start)
  local hostport = start:match("^[^:]*://(.*)$")
  hostport = hostport:match("@(.*)$") or hostport
  local host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then return nil end
  return host, tonumber(port)
end

-- URL starts seen, parsed: { scheme, host, port, is_ip }. URLs to one
-- host share one; dropped when they grow past 256.
local starts, nstarts = {}, 0

-- scheme, host, port of a URL and whether host is an address, or nil, err.
local function split_url(url)
  local start = url:match("^%a[%w+.-]*://[^/?#]*")
  if not start then return nil, "bad url" end
  local known = starts[start]
  if known then return known[1], known[2], known[3], known[4] end
  local scheme = lower(start:match("^[^:]*"))
  if not DEFAULT_PORTS[scheme] then return nil, "unsupported scheme" end
  local host, port = parse_authority(start)
  if not host then return nil, "bad url" end
  port = port or DEFAULT_PORTS[scheme]
  if nstarts >= 256 then starts, nstarts = {}, 0 end
  nstarts = nstarts + 1
  known = { scheme, host, port, tcp.is_ip(host) }
  starts[start] = known
  return known[1], known[2], known[3], known[4]
end

-- host, port of a proxy ("[scheme://][user@]host[:port]"; curl's default
-- port is 1080, 443 for an https one).
local function proxy_address(proxy)
  local scheme = lower(proxy:match("^(%a[%w+.-]*)://") or "http")
  local start = scheme .. "://" .. proxy:gsub("^%a[%w+.-]*://", ""):match("^[^/?#]*")
  local host, port = parse_authority(start)
  return host or "", port or (scheme == "https" and 443 or 1080)
end

-- The "host:port:address" curl is to use for a host name, resolved by
-- eddy (on the loop, unlike curl's resolver thread), or nil, detail.
local function resolve_entry(host, port, timeout)
  local addr, err = dns.address(host, { timeout = timeout or 10 })
  if not addr then return nil, format("%s: %s", host, err) end
  return format("%s:%d:%s", host, port, addr:find(":", 1, true) and "[" .. addr .. "]" or addr)
end

-- The request's header lines. A body goes without a Content-Type unless
-- one is given (curl would say it is a form).
local NO_LINES = {}
local function header_lines(headers, has_body)
  if not headers and not has_body then return NO_LINES end
  local lines, typed = {}, false
  if headers then
    for name, value in pairs(headers) do
      local line = type(name) == "number" and value or name .. ": " .. tostring(value)
      lines[#lines + 1] = line
      typed = typed or lower(line):find("^content%-type:") ~= nil
    end
  end
  if has_body and not typed then lines[#lines + 1] = "Content-Type:" end
  return lines
end

local function parse_head(head)
  local headers = {}
  for line in head:gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if name then
      name = lower(name)
      local had = headers[name]
      if had == nil then
        headers[name] = value
      elseif type(had) == "table" then
        had[#had + 1] = value
      else
        headers[name] = { had, value }
      end
    end
  end
  return headers
end

-- A response parses its headers when they are first looked at. A
-- streamed one (request{..., stream = true}) has no body but
-- res:read([timeout]) -> the next bytes, nil at the end, or nil, err,
-- detail; and res:close() to stop early (a streamed response that is
-- read slowly pauses the transfer: at most 256 KiB wait unread).
local methods = {}

-- Runs a transfer's wait (wait: its method), calling the body function
-- whenever the wait answers false (curl wants more of the body): here, in
-- the requesting task, never inside curl. A failing body function ends
-- the transfer.
local function pump(st, wait, source, timeout)
  local deadline = timeout and now() + timeout
  while true do
    local a, b, c3, d = wait(st, deadline and math.max(0, deadline - now()))
    if a ~= false then return a, b, c3, d end
    local ok, chunk = pcall(source)
    if not ok or (chunk ~= nil and type(chunk) ~= "string") then
      st:close()
      return nil, "upload failed",
        ok and "the body function returned a " .. type(chunk) or tostring(chunk)
    end
    st:feed(chunk)
  end
end

function methods.read(res, timeout)
  local st = res._stream
  if res._source then return pump(st, st.read, res._source, timeout) end
  return st:read(timeout)
end
function methods.close(res) return res._stream:close() end

local Response = {
  __index = function(res, key)
    if key == "headers" then
      local headers = parse_head(rawget(res, "_head"))
      rawset(res, "headers", headers)
      return headers
    elseif key == "http_version" then -- "1.1", "2", ... of the status line
      return rawget(res, "_head"):match("^HTTP/(%S+)")
    end
    return methods[key]
  end,
}

local function ms(seconds)
  return seconds and floor(seconds * 1000 + 0.5) or nil
end

-- The chunks of an open file, and its size from where it stands.
local function file_source(f)
  local at = f:seek()
  local size = at and f:seek("end")
  if size then f:seek("set", at) end
  return function() return f:read(65536) end, size and size - at
end

local NO_TLS = {}
local args = {} -- c.request's, filled for each call

function M.request(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'request' (table expected, got " .. type(opts) .. ")", 2)
  end
  local url = opts.url or opts[1]
  if type(url) ~= "string" then error("bad argument #1 to 'request' (url expected)", 2) end
  local body, source, body_length = opts.body, nil, opts.body_length
  if body ~= nil and type(body) ~= "string" then
    if type(body) == "function" then
      source, body = body, nil
    elseif io_type(body) == "file" then
      local size
      source, size = file_source(body)
      body, body_length = nil, body_length or size
    else
      error("bad option 'body' to 'request' (string, function or file expected)", 2)
    end
  end
  if body_length ~= nil and (not source or type(body_length) ~= "number" or body_length < 0) then
    error("bad option 'body_length' to 'request' (a size, with a body function or file)", 2)
  end
  local version = opts.http_version
  if version ~= nil and version ~= "1.1" and version ~= "2" then
    error("bad option 'http_version' to 'request' (\"1.1\" or \"2\" expected)", 2)
  end
  if opts.body_file ~= nil and (type(opts.body_file) ~= "string" or opts.body ~= nil) then
    error("bad option 'body_file' to 'request' (a path, and no body)", 2)
  end
  local proxy = opts.proxy
  if proxy ~= nil and type(proxy) ~= "string" then
    error("bad option 'proxy' to 'request' (a URL expected)", 2)
  end
  local scheme, host, port, is_ip = split_url(url)
  if not scheme then return nil, host, url end
  -- Through a proxy, the proxy resolves the URL's host; eddy the proxy's.
  if proxy then
    host, port = proxy_address(proxy)
    is_ip = tcp.is_ip(host)
  end
  local resolve, err
  if not is_ip then
    resolve, err = resolve_entry(host, port, opts.connect_timeout)
    if not resolve then return nil, "dns failure", err end
  end
  local stream = opts.stream and true or nil
  local has_body = opts.body ~= nil or opts.body_file ~= nil
  -- One table of arguments serves every call: c.request reads it before
  -- it waits, and a table less per request is garbage less.
  local a = args
  a.url = url
  a.method = opts.method and opts.method:upper() or (has_body and "POST" or "GET")
  a.header_lines = header_lines(opts.headers, has_body)
  a.body = body
  a.body_fn = source and true or nil
  a.body_length = body_length
  a.body_file = opts.body_file
  a.timeout_ms = ms(opts.timeout)
  a.connect_timeout_ms = ms(opts.connect_timeout)
  a.follow_redirects = opts.follow_redirects
  a.max_redirects = opts.max_redirects
  local tls = opts.tls or NO_TLS
  local verify = opts.verify_tls
  if tls.verify ~= nil then verify = tls.verify end
  a.verify_tls = verify
  a.tls_ca = tls.ca
  a.tls_cert = tls.cert
  a.tls_key = tls.key
  a.proxy = proxy
  a.http_version = version
  a.max_body = opts.max_body
  a.resolve = resolve
  a.stream = stream
  local r1, r2, r3, r4 = c.request(a)
  a.body = nil -- (nor keeps a body alive)
  if not (stream or source) then
    if not r1 then return nil, r2, r3 end
    return setmetatable({ status = r1, body = r3, url = r4, _head = r2 }, Response)
  end
  local st = r1 -- a transfer object
  if not st then return nil, r2, r3 end
  if stream then
    local code, head, url2 = pump(st, st.head, source)
    if not code then
      st:close()
      return nil, head, url2
    end
    return setmetatable({ status = code, url = url2, _head = head, _stream = st, _source = source }, Response)
  end
  local code, head, res_body, url2 = pump(st, st.result, source)
  st:close()
  if not code then return nil, head, res_body end
  return setmetatable({ status = code, body = res_body, url = url2, _head = head }, Response)
end

-- configure{max_host_connections = n, max_connections = n}: this thread's
-- connection limits (0, the default: none); requests past them wait for a
-- connection. Connections are kept alive and reused across requests and
-- tasks, and HTTP/2 requests to one host share one.
function M.configure(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'configure' (table expected)", 2) end
  return c.limits(opts.max_host_connections or 0, opts.max_connections or 0)
end

function M.get(url, opts)
  local o = {}
  if opts then for k, v in pairs(opts) do o[k] = v end end
  o.url, o.method = url, "GET"
  return M.request(o)
end

function M.post(url, body, opts)
  local o = {}
  if opts then for k, v in pairs(opts) do o[k] = v end end
  o.url, o.method, o.body = url, "POST", body
  return M.request(o)
end

-- fetch_all(list, {concurrency = 10, timeout}) -> results in the input
-- order, each { res } or { nil, err, detail }; a list item is a URL or a
-- request table. One failure never cancels the rest.
function M.fetch_all(list, opts)
  opts = opts or {}
  local n = #list
  local results, next_i = {}, 0
  -- concurrency tasks take the requests in turn: no task waits idle for
  -- its turn.
  local function worker()
    local by_url = {} -- this worker's request table for a URL item
    while next_i < n do
      next_i = next_i + 1
      local i = next_i
      local req = list[i]
      if type(req) == "string" then
        by_url.url = req
        req = by_url
      end
      if opts.timeout and req.timeout == nil then
        local o = {}
        for k, v in pairs(req) do o[k] = v end
        o.timeout = opts.timeout
        req = o
      end
      local ok, res, err, detail = pcall(M.request, req)
      results[i] = ok and { res, err, detail } or { nil, "io error", res }
    end
  end
  local wg = eddy.waitgroup()
  for _ = 1, math.min(opts.concurrency or 10, n) do wg:spawn(worker) end
  wg:wait()
  return results
end

return M

-- eddy.http's client: request, get, post and fetch_all, on libcurl's multi
-- interface driven by the thread's loop (core/curl.c, bindings/fetch.c).
-- Any number of tasks may have requests in flight; each waits as plain
-- sequential code. Host names are resolved by eddy (c-ares, on the loop)
-- before curl sees them, so that an abandoned transfer never waits for
-- curl's resolver thread.
--
-- request{url, method, headers, body, timeout, connect_timeout,
--         follow_redirects, max_redirects, verify_tls, proxy,
--         tls = {verify, ca, cert, key} (eddy.tcp's names; verify_tls is
--         the older name of tls.verify),
--         http_version = "1.1" | "2", max_body, stream, body_file}
-- body_file: a path whose contents are the body, sent as curl reads it.
--   -> res {status, headers, body, url} | nil, err, detail
-- err is short and stable ("bad url", "unsupported scheme", "dns failure",
-- "refused", "timeout", "tls failure", "too large", "too many redirects",
-- "closed", "io error", "cancelled"); detail is curl's message.
-- res.headers maps lower-case names to values; a repeated name maps to an
-- array of its values.
local c = require "eddy.c.fetch"
local dns = require "eddy.dns"
local tcp = require "eddy.c.tcp"
local eddy = require "eddy"

local type, error, pairs, ipairs, tostring, floor = type, error, pairs, ipairs, tostring, math.floor
local setmetatable, rawget, rawset = setmetatable, rawget, rawset
local lower, format, concat = string.lower, string.format, table.concat

local M = {}

local DEFAULT_PORTS = { http = 80, https = 443 }

-- scheme, host, port of a URL, or nil, err.
local function split_url(url)
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil, "bad url" end
  scheme = lower(scheme)
  if not DEFAULT_PORTS[scheme] then return nil, "unsupported scheme" end
  local hostport = authority:match("@(.*)$") or authority
  local host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then return nil, "bad url" end
  return scheme, host, tonumber(port) or DEFAULT_PORTS[scheme]
end

-- The request's header lines. A body goes without a Content-Type unless
-- one is given (curl would say it is a form).
local function header_lines(headers, has_body)
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
function methods.read(res, timeout) return res._stream:read(timeout) end
function methods.close(res) return res._stream:close() end

local Response = {
  __index = function(res, key)
    if key ~= "headers" then return methods[key] end
    local headers = parse_head(rawget(res, "_head"))
    rawset(res, "headers", headers)
    return headers
  end,
}

local function ms(seconds)
  return seconds and floor(seconds * 1000 + 0.5) or nil
end

function M.request(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'request' (table expected, got " .. type(opts) .. ")", 2)
  end
  local url = opts.url or opts[1]
  if type(url) ~= "string" then error("bad argument #1 to 'request' (url expected)", 2) end
  if opts.body ~= nil and type(opts.body) ~= "string" then
    error("bad option 'body' to 'request' (string expected)", 2)
  end
  if opts.body_file ~= nil and (type(opts.body_file) ~= "string" or opts.body ~= nil) then
    error("bad option 'body_file' to 'request' (a path, and no body)", 2)
  end
  local scheme, host, port = split_url(url)
  if not scheme then return nil, host, url end
  local resolve
  if not tcp.is_ip(host) then
    local addr, err = dns.address(host, { timeout = opts.connect_timeout or 10 })
    if not addr then return nil, "dns failure", format("%s: %s", host, err) end
    resolve = format("%s:%d:%s", host, port, addr:find(":", 1, true) and "[" .. addr .. "]" or addr)
  end
  local stream = opts.stream and true or nil
  local tls = opts.tls or {}
  local verify = opts.verify_tls
  if tls.verify ~= nil then verify = tls.verify end
  local status, head, body, final_url = c.request({
    url = url,
    method = opts.method and opts.method:upper() or ((opts.body or opts.body_file) and "POST" or "GET"),
    header_lines = header_lines(opts.headers, opts.body ~= nil or opts.body_file ~= nil),
    body = opts.body,
    body_file = opts.body_file,
    timeout_ms = ms(opts.timeout),
    connect_timeout_ms = ms(opts.connect_timeout),
    follow_redirects = opts.follow_redirects,
    max_redirects = opts.max_redirects,
    verify_tls = verify,
    tls_ca = tls.ca,
    tls_cert = tls.cert,
    tls_key = tls.key,
    proxy = opts.proxy,
    http_version = opts.http_version,
    max_body = opts.max_body,
    resolve = resolve,
    stream = stream,
  })
  if stream then
    local st = status
    if not st then return nil, head, body end
    local code, head_lines, url2 = st:head()
    if not code then
      st:close()
      return nil, head_lines, url2
    end
    return setmetatable({ status = code, url = url2, _head = head_lines, _stream = st }, Response)
  end
  if not status then return nil, head, body end
  return setmetatable({ status = status, body = body, url = final_url, _head = head }, Response)
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
    while next_i < n do
      next_i = next_i + 1
      local i = next_i
      local req = list[i]
      req = type(req) == "string" and { url = req } or req
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

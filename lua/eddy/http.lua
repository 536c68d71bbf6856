-- eddy.http: the HTTP/1.1 server. An app holds routes; app:listen starts a
-- listener whose every connection runs in a task of its own: it asks C
-- (bindings/http.c) for the next request, calls the route's handler with
-- req and res, and finishes the response.
--
--   local app = eddy.http.server()
--   app:get("/", function(req, res) res:send("hello\n") end)
--   app:get("/users/:id", function(req, res) res:json({ id = req.params.id }) end)
--   assert(app:listen("127.0.0.1", 8080))

require "eddy" -- sets up the runtime when this module is loaded first
local c = require "eddy.c.http"
local task = require "eddy.c.task"
local dns = require "eddy.dns"
local Router = require "eddy.http.router"

local type, error, setmetatable, rawget, rawset, pairs, tostring, tonumber =
  type, error, setmetatable, rawget, rawset, pairs, tostring, tonumber
local xpcall, traceback = xpcall, debug.traceback
local concat, gmatch, format, lower = table.concat, string.gmatch, string.format, string.lower
local unescape, log = c.unescape, task.log

local M = {}

local Response = c.Response
local next_request, fail_response = Response._next, Response._fail
local read_body = Response._read

-- A sentinel error: the request was malformed in a way only noticed late
-- (a bad escape in the query): the answer is 400, and nothing is logged.
local BAD_REQUEST = setmetatable({}, { __tostring = function() return "bad request" end })

-- =========================================================================
-- Requests

local Request = {}

-- Parses "a=1&b=x+y&c" into { a = "1", b = "x y", c = "" }; a repeated key
-- gives an array of its values.
local function parse_query(s)
  local q = {}
  for pair in gmatch(s, "[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unescape(k, true), unescape(v, true)
    if not k or not v then error(BAD_REQUEST, 0) end
    local old = q[k]
    if old == nil then
      q[k] = v
    elseif type(old) == "table" then
      old[#old + 1] = v
    else
      q[k] = { old, v }
    end
  end
  return q
end

-- Fields made on first use.
local lazy = {
  query = function(req)
    local raw = req._res:_query()
    return raw and parse_query(raw) or {}
  end,
  headers = function(req) return req._res:_headers() end,
  target = function(req) return req._res:_target() end,
  version = function(req) return req._res:_version() end,
}

local request_methods = {}

-- req:header(name) -> the value of a request header (any case), or nil.
function request_methods.header(req, name)
  return req._res:_header(name)
end

-- req:read([max]) -> the next piece of the body, nil at its end, or nil,
-- err ("timeout", "closed", "too large").
function request_methods.read(req, max)
  return read_body(req._res, max)
end

-- req:body() -> the whole body as a string (up to the server's max_body),
-- or nil, err. Read once; later calls give "".
function request_methods.body(req)
  local parts, n = {}, 0
  while true do
    local piece, err = read_body(req._res)
    if piece == nil then
      if err then return nil, err end
      break
    end
    n = n + 1
    parts[n] = piece
  end
  return concat(parts)
end

-- req:tls() -> what TLS agreed on (version, cipher, alpn, server_name,
-- resumed, peer: a client certificate's subject) for an HTTPS request, or
-- nil.
function request_methods.tls(req)
  return req._res:_tls()
end

-- req:remote_addr() -> ip, port of the client.
function request_methods.remote_addr(req)
  return req._res:_peer_addr()
end

Request.__index = function(req, k)
  local make = lazy[k]
  if make then
    local v = make(req)
    rawset(req, k, v)
    return v
  end
  return request_methods[k]
end

-- =========================================================================
-- Responses: what C does not (bindings/http.c has status, header, send,
-- write, finish, started)

local json -- lua-cjson, loaded on first use

-- res:json(value[, status]): value as JSON.
function Response.json(res, value, status)
  json = json or require "cjson"
  if status then res:status(status) end
  res:header("Content-Type", "application/json")
  return res:send(json.encode(value))
end

-- res:redirect(url[, status]): 302 (or status) to url.
function Response.redirect(res, url, status)
  res:status(status or 302)
  res:header("Location", url)
  return res:send("")
end

-- res:cookie(name, value[, opts]): a Set-Cookie header. opts: path, domain,
-- max_age (seconds), expires (a date string), secure, http_only, same_site.
function Response.cookie(res, name, value, opts)
  if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    error("bad cookie name: " .. tostring(name), 2)
  end
  value = tostring(value)
  if value:find("[%c%s\",;\\]") then
    error("bad cookie value (no spaces, controls, quotes, commas, semicolons or backslashes)", 2)
  end
  local parts = { name .. "=" .. value }
  opts = opts or {}
  if opts.path then parts[#parts + 1] = "Path=" .. opts.path end
  if opts.domain then parts[#parts + 1] = "Domain=" .. opts.domain end
  if opts.max_age then parts[#parts + 1] = format("Max-Age=%d", opts.max_age) end
  if opts.expires then parts[#parts + 1] = "Expires=" .. opts.expires end
  if opts.secure then parts[#parts + 1] = "Secure" end
  if opts.http_only then parts[#parts + 1] = "HttpOnly" end
  if opts.same_site then parts[#parts + 1] = "SameSite=" .. opts.same_site end
  return res:header("Set-Cookie", concat(parts, "; "))
end

-- =========================================================================
-- Files

local fs -- eddy.c.fs, loaded on first use

local MIME = {
  html = "text/html; charset=utf-8", htm = "text/html; charset=utf-8",
  css = "text/css; charset=utf-8", js = "text/javascript; charset=utf-8",
  mjs = "text/javascript; charset=utf-8", json = "application/json",
  txt = "text/plain; charset=utf-8", md = "text/markdown; charset=utf-8",
  xml = "application/xml", svg = "image/svg+xml", png = "image/png",
  jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif",
  webp = "image/webp", ico = "image/x-icon", wasm = "application/wasm",
  pdf = "application/pdf", woff = "font/woff", woff2 = "font/woff2",
  mp4 = "video/mp4", webm = "video/webm", mp3 = "audio/mpeg",
}

local function http_date(t)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", t)
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
  Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- "Sun, 06 Nov 1994 08:49:37 GMT" -> seconds since the epoch, or nil.
local function parse_http_date(s)
  local d, mon, y, h, mi, sec = s:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local m = MONTHS[mon or ""]
  if not m then return nil end
  -- Days from the civil date (the epoch is 1970-01-01), without os.time's
  -- local time zone.
  y, m, d = tonumber(y), m, tonumber(d)
  if m <= 2 then y, m = y - 1, m + 12 end
  local days = 365 * y + math.floor(y / 4) - math.floor(y / 100) + math.floor(y / 400)
    + math.floor((153 * (m - 3) + 2) / 5) + d - 719469
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

local function etag_matches(list, etag)
  if list == "*" then return true end
  local bare = etag:gsub("^W/", "")
  for tag in list:gmatch("[^,%s]+") do
    if tag:gsub("^W/", "") == bare then return true end
  end
  return false
end

-- The one byte range of a Range header: offset, length; or false when it
-- cannot be met (416); or nil to send the whole file (no range, or several,
-- which eddy does not split into a multipart answer).
local function byte_range(spec, size)
  local first, last = spec:match("^bytes=(%d*)%-(%d*)$")
  if not first or (first == "" and last == "") then return nil end
  if first == "" then -- the last N bytes
    local n = math.min(tonumber(last), size)
    if n == 0 then return false end
    return size - n, n
  end
  first = tonumber(first)
  last = last == "" and size - 1 or math.min(tonumber(last), size - 1)
  if first >= size or last < first then return false end
  return first, last - first + 1
end

-- res:sendfile(path[, opts]) -> true, or nil, err ("not found", "is a
-- directory", "permission denied", ...; nothing is sent then). The body
-- goes with sendfile(2), no copy. Answers conditional requests (ETag,
-- If-None-Match, If-Modified-Since: 304) and one byte range (206, 416).
-- opts: type (Content-Type; by default from the extension).
function Response.sendfile(res, path, opts)
  fs = fs or require "eddy.c.fs"
  local fd, size, mtime = fs.open_read(path)
  if not fd then return nil, size end
  local etag = format('W/"%x-%x"', size, mtime)
  local modified = http_date(mtime)
  local ok, err = pcall(function()
    res:header("ETag", etag)
    res:header("Last-Modified", modified)
    res:header("Accept-Ranges", "bytes")
    if not res:_has_type() then
      local ext = path:match("%.([%w]+)$")
      res:header("Content-Type", (opts and opts.type) or MIME[ext and lower(ext) or ""] or "application/octet-stream")
    end
  end)
  if not ok then fs.close(fd) error(err, 2) end
  local inm, ims = res:_header("if-none-match"), res:_header("if-modified-since")
  local not_modified
  if inm then
    not_modified = etag_matches(inm, etag)
  elseif ims then
    local t = parse_http_date(ims)
    not_modified = t ~= nil and mtime <= t
  end
  local offset, length = 0, size
  if not_modified then
    res:status(304)
    length = 0
  else
    local range = res:_header("range")
    local if_range = res:_header("if-range")
    if range and (not if_range or if_range == etag or if_range == modified) then
      local first, n = byte_range(range, size)
      if first == false then
        fs.close(fd)
        res:status(416)
        res:header("Content-Range", "bytes */" .. size)
        return res:send("")
      elseif first then
        offset, length = first, n
        res:status(206)
        res:header("Content-Range", format("bytes %d-%d/%d", first, first + n - 1, size))
      end
    end
  end
  ok, err = res:_send_head(length)
  if ok and length > 0 then ok, err = res:_drain() end
  if ok and length > 0 then ok, err = res:_sendfile(fd, offset, length) end
  fs.close(fd)
  if not ok then return nil, err end
  return true
end

-- =========================================================================
-- Apps

local App = {}
App.__index = App

local function not_found(req, res)
  res:status(404)
  res:send("not found\n")
end

-- eddy.http.server([opts]) -> app. opts are the listen options (below),
-- kept for app:listen.
function M.server(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #1 to 'server' (options table expected)", 2)
  end
  return setmetatable({ _router = Router.new(), _opts = opts or {}, _fallback = not_found }, App)
end

-- app:route(method or {methods}, pattern, handler) -> app
function App:route(method, pattern, handler)
  if type(method) == "table" then
    for _, m in ipairs(method) do self._router:add(m, pattern, handler) end
  else
    self._router:add(method, pattern, handler)
  end
  return self
end

for _, m in ipairs({ "get", "post", "put", "delete", "patch", "head", "options" }) do
  local method = m:upper()
  App[m] = function(self, pattern, handler) return self:route(method, pattern, handler) end
end

-- app:websocket(pattern, handler[, opts]) -> app: GET requests to pattern
-- upgrade to a WebSocket session, and handler(ws, req) runs with it; when
-- the handler returns, the session closes (1000; 1011 if it raised). opts:
-- max_message (1 MiB: 1009 past it), write_buffer (64 KiB).
function App:websocket(pattern, handler, opts)
  if type(handler) ~= "function" then
    error("bad argument #2 to 'websocket' (function expected, got " .. type(handler) .. ")", 2)
  end
  require "eddy.c.ws"
  return self:get(pattern, function(req, res)
    local ws = res:_websocket(opts)
    if not ws then return end -- refused with 400 or 426
    local ok, err = xpcall(handler, traceback, ws, req)
    if not ws:closed() then ws:close(ok and 1000 or 1011) end
    if not ok then error(err, 0) end
  end)
end

-- app:static(prefix, dir[, opts]) -> app: files under dir, at prefix
-- ("/assets" serves dir/app.js at /assets/app.js); a directory gives its
-- index.html. Paths with ".." or a NUL, and dot-files (unless
-- opts.dotfiles), are 404s.
function App:static(prefix, dir, opts)
  if type(prefix) ~= "string" or type(dir) ~= "string" then
    error("bad arguments to 'static' (prefix and directory expected)", 2)
  end
  prefix = prefix:gsub("/+$", "")
  dir = dir:gsub("/+$", "")
  local dotfiles = opts and opts.dotfiles
  local function serve(req, res)
    local rel = req.params.path or ""
    for seg in rel:gmatch("[^/]+") do
      if seg == ".." or seg:find("%z") or (not dotfiles and seg:sub(1, 1) == ".") then
        res:status(404)
        return res:send("not found\n")
      end
    end
    local path = dir .. "/" .. rel
    local ok, err = res:sendfile(path)
    if not ok and err == "is a directory" then
      ok, err = res:sendfile((path:gsub("/*$", "/index.html", 1)))
    end
    if not ok then
      res:status(err == "permission denied" and 403 or 404)
      res:send(err == "permission denied" and "forbidden\n" or "not found\n")
    end
  end
  self:route({ "GET", "HEAD" }, prefix .. "/*path", serve)
  self:route({ "GET", "HEAD" }, prefix == "" and "/" or prefix, serve)
  return self
end

-- app:fallback(handler): what runs when no route matches (default: 404).
function App:fallback(handler)
  if type(handler) ~= "function" then error("bad argument #1 to 'fallback' (function expected)", 2) end
  self._fallback = handler
  return self
end

local NO_PARAMS = setmetatable({}, { __newindex = function() error("req.params of a route without parameters", 2) end })

-- The loop each connection's task runs. next_request ends the request
-- before it, so that a connection costs one call into C between requests.
local function connection_loop(app, access_log)
  local router, fallback = app._router, app._fallback
  local static = router._static
  local clock, access = task.clock, access_log and require("eddy.log").access
  local function on_error(err)
    if err == BAD_REQUEST then return err end
    return traceback(tostring(err), 2)
  end
  return function(res)
    while true do
      local method, path = next_request(res)
      if not method then return end
      local started = access and clock()
      local req = setmetatable({ method = method, path = path, _res = res }, Request)
      local by = static[method]
      local handler, params, allowed = by and by[path], NO_PARAMS, nil
      if not handler then
        handler, params, allowed = router:match(method, path)
      end
      if handler then
        req.params = params or NO_PARAMS
      elseif params == "method not allowed" then
        handler = function(_, r)
          r:status(405)
          r:header("Allow", allowed)
          r:send("method not allowed\n")
        end
      else
        handler = fallback
      end
      local ok, err = xpcall(handler, on_error, req, res)
      if not ok then
        if err == BAD_REQUEST then
          fail_response(res, 400)
        else
          log("error", format("http: %s %s: %s", method, path, err))
          fail_response(res, 500)
        end
      end
      if access then
        local status, bytes = res:_outcome()
        access(method, path, status, bytes, clock() - started, { remote = res:_peer_addr() })
      end
    end
  end
end

-- app:listen(host, port[, opts]) -> server (with close, port,
-- connections), or nil, err. opts (over the app's): backlog, reuseport,
-- ipv6only, max_connections, max_header_size (8 KiB: 431 past it),
-- max_headers (100), max_body (1 MiB: 413 past it), header_timeout (10 s:
-- 408), body_timeout (30 s), keepalive_timeout (75 s), write_timeout (30 s),
-- write_buffer (64 KiB), access_log (false: true writes a line per
-- request through eddy.log, at level info), tls (HTTPS: the TLS options of
-- eddy.tcp.listen: cert, key, names, alpn, handshake_timeout, ...; the
-- server's reload_tls(tls) swaps the certificate for new connections).
function App:listen(host, port, opts)
  if type(host) ~= "string" then error("bad argument #1 to 'listen' (host expected)", 2) end
  if type(port) ~= "number" then error("bad argument #2 to 'listen' (port expected)", 2) end
  local o = {}
  for k, v in pairs(self._opts) do o[k] = v end
  if opts then for k, v in pairs(opts) do o[k] = v end end
  local ip, err = dns.address(host)
  if not ip then return nil, err end
  return c.listen(ip, port, connection_loop(self, o.access_log), o)
end

M.unescape = unescape

-- The client: request, get, post, fetch_all (lua/eddy/http/client.lua),
-- loaded on first use.
setmetatable(M, { __index = function(t, name)
  if name == "request" or name == "get" or name == "post" or name == "fetch_all" or name == "configure" then
    local client = require "eddy.http.client"
    for _, f in ipairs({ "request", "get", "post", "fetch_all", "configure" }) do rawset(t, f, client[f]) end
    return client[name]
  end
end })
return M

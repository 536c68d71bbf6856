-- eddy.ws: WebSocket clients and rooms. The server side is
-- app:websocket(path, handler) in eddy.http; the sessions themselves
-- (framing, pings, close, limits) are in C (bindings/ws.c).
--
--   local ws = assert(eddy.ws.connect("ws://127.0.0.1:8080/chat"))
--   ws:send("hello")
--   print(ws:recv())          --> message, "text"
--   ws:close()

require "eddy" -- sets up the runtime when this module is loaded first
local c = require "eddy.c.ws"
local tcp = require "eddy.tcp"

local type, error, tonumber, pairs, concat, lower = type, error, tonumber, pairs, table.concat, string.lower

local M = {}

-- "ws://host:port/path?q" -> host, port, the request target, the Host
-- header. IPv6 hosts come in brackets.
local function parse_url(url)
  local scheme, rest = url:match("^(wss?)://(.+)$")
  if not scheme then return nil, "not a ws:// URL: " .. url end
  local authority, target = rest:match("^([^/?#]+)(.*)$")
  if not authority then return nil, "no host in " .. url end
  if target == "" then target = "/" end
  if target:sub(1, 1) == "?" then target = "/" .. target end
  local host, port = authority:match("^%[(.+)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil, "bad host in " .. url end
  port = tonumber(port) or (scheme == "wss" and 443 or 80)
  return host, port, target, authority, scheme == "wss"
end

-- eddy.ws.connect(url[, opts]) -> ws, or nil, err. opts: timeout (for the
-- connection and the handshake, default 10 s), headers (a table of extra
-- request headers), max_message (default 1 MiB), write_buffer, tls (for
-- wss://: the TLS options of eddy.tcp.connect: verify, ca, server_name,
-- cert, key, ...; a failure is nil, "tls failure", reason).
function M.connect(url, opts)
  if type(url) ~= "string" then error("bad argument #1 to 'connect' (URL expected)", 2) end
  opts = opts or {}
  local host, port, target, authority, secure = parse_url(url)
  if not host then error(port, 2) end
  local timeout = opts.timeout or 10
  local conn, err, reason = tcp.connect(host, port, {
    connect_timeout = timeout, tls = secure and (opts.tls or true) or nil })
  if not conn then return nil, err, reason end
  local key = c.key()
  local lines = {
    "GET " .. target .. " HTTP/1.1",
    "Host: " .. authority,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: " .. key,
    "Sec-WebSocket-Version: 13",
  }
  for name, value in pairs(opts.headers or {}) do
    lines[#lines + 1] = name .. ": " .. value
  end
  lines[#lines + 1] = "\r\n"
  local ok
  ok, err = conn:write(concat(lines, "\r\n"), { timeout = timeout })
  if not ok then conn:close() return nil, err end
  local head
  head, err = conn:read_until("\r\n\r\n", { max = 16384, timeout = timeout })
  if not head then conn:close() return nil, err end
  local status = head:match("^HTTP/1%.1 (%d%d%d)")
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    headers[lower(name)] = value
  end
  if status ~= "101" or lower(headers.upgrade or "") ~= "websocket"
    or headers["sec-websocket-accept"] ~= c.accept(key) then
    conn:close()
    return nil, "refused", tonumber(status)
  end
  return c.client(conn, opts)
end

-- =========================================================================
-- Rooms: the members of a name, on every reactor thread and worker process.
-- Each thread holds its own members; a broadcast reaches them, and goes to
-- the other threads through their room relay (a mailbox of eddy's own,
-- lua/eddy/mailbox.lua), which hands it to theirs.

local Room = {}
Room.__index = Room
local rooms = {}

local function everywhere()
  local worker = require("eddy").worker
  return worker.count() * worker.threads() > 1
end

-- Delivers to this thread's members; never waits: a member that is behind
-- by more than its write buffer misses the message (counted in
-- room.dropped), a closed one leaves.
local function deliver(room, data, kind, except)
  local sent = 0
  for ws in pairs(room._members) do
    if ws ~= except then
      local ok, err = ws:send(data, kind, { timeout = 0 })
      if ok then
        sent = sent + 1
      elseif err == "full" then
        room.dropped = room.dropped + 1
      else
        room._members[ws] = nil
      end
    end
  end
  return sent
end

local function new_room(name)
  local room = setmetatable({ name = name, _members = setmetatable({}, { __mode = "k" }), dropped = 0 }, Room)
  rooms[name] = room
  return room
end

local function on_relayed(msg)
  local room = rooms[msg[1]] or new_room(msg[1])
  deliver(room, msg[2], msg[3])
end

-- eddy.ws.room(name) -> the room of that name (made on first use).
function M.room(name)
  local room = rooms[name]
  if not room then
    room = new_room(name)
    if everywhere() then require("eddy.mailbox")._relay("rooms", on_relayed) end
  end
  return room
end

function Room:join(ws)
  self._members[ws] = true
end

function Room:leave(ws)
  self._members[ws] = nil
end

-- room:size() -> its members on this thread.
function Room:size()
  local n = 0
  for _ in pairs(self._members) do n = n + 1 end
  return n
end

-- room:broadcast(data[, kind[, except]]) -> how many members of this
-- thread it reached; it reaches those of the other threads and workers
-- too, without waiting for them (a thread whose relay is full misses it,
-- counted in room.dropped).
function Room:broadcast(data, kind, except)
  local sent = deliver(self, data, kind, except)
  if everywhere() then
    local _, full = require("eddy.mailbox")._relay_all("rooms", { self.name, data, kind })
    self.dropped = self.dropped + full
  end
  return sent
end

return M

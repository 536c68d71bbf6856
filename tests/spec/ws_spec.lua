-- eddy.ws and app:websocket (RFC 6455) against independent peers: the npm
-- `ws` package as a client (tests/node/ws_client.js) and as a server
-- (tests/node/ws_server.js); eddy's client against eddy's server in one
-- process (rooms, broadcast, slow members, limits); and raw TCP with
-- hand-made frames for every protocol fault, checking the close code in
-- the close frame the server sends and that the connection then ends.
--
-- Every test runs inside h.run, so a test that leaves a task, timer or
-- handle behind fails. Node runs in the background (its output and exit
-- status go to files) while the loop keeps serving; waits poll with
-- eddy.sleep and have generous limits that only stop a hang.
local h = require "helper"
local eddy = h.eddy
local bit = require "bit"

local char, byte, rep, concat = string.char, string.byte, string.rep, table.concat

-- Messages of 64 KiB a backpressure test sends: 64 MiB, more than any
-- socket buffers on the way can hold.
local FLOOD_N = 1000

-- =========================================================================
-- Files and background processes

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir
end

-- Sleeps without blocking the loop inside a task, and plainly outside one.
local function pause(s)
  if eddy.current() then eddy.sleep(s) else os.execute("sleep " .. s) end
end

-- Polls cond() every 10 ms for up to limit seconds (a guard against hangs,
-- not a timing check); returns its last value.
local function wait_until(cond, limit)
  local deadline = os.time() + (limit or 10)
  repeat
    local v = cond()
    if v then return v end
    pause(0.01)
  until os.time() > deadline
  return cond()
end

-- A command in the background, its output and exit status in files.
local Job = {}
Job.__index = Job

local function spawn(cmd)
  local dir = tmpdir()
  os.execute(("( (%s) > %s/out 2>&1 & echo $! > %s/pid; wait $!; echo $? > %s/rc.tmp; mv %s/rc.tmp %s/rc )"
    .. " < /dev/null > /dev/null 2>&1 &"):format(cmd, dir, dir, dir, dir, dir))
  return setmetatable({ dir = dir }, Job)
end

function Job:output()
  return read_file(self.dir .. "/out") or ""
end

-- Waits for the output to match pattern; returns the capture or nil.
function Job:expect(pattern, limit)
  return wait_until(function() return self:output():match(pattern) end, limit or 10)
end

function Job:kill()
  local pid = wait_until(function() return read_file(self.dir .. "/pid") end, 5)
  if pid then os.execute("kill -KILL " .. pid:match("%d+") .. " 2>/dev/null") end
end

-- Waits for the job to end (killing it after limit seconds); returns its
-- exit status (or "timeout") and its output.
function Job:wait(limit)
  local rc = wait_until(function() return read_file(self.dir .. "/rc") end, limit or 20)
  if not rc then
    self:kill()
    rc = "timeout"
  end
  local out = self:output()
  os.execute("rm -rf " .. self.dir)
  return tonumber(rc) or rc, out
end

-- Lines of text as a list.
local function lines(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

-- =========================================================================
-- The eddy server every test talks to

-- Starts an app on a free port inside the running loop. state.closes[id]
-- is what the handler's recv gave when the session ended (err, code,
-- reason), id being the ?id= of the URL; state.ws[id] is the server side
-- of a session; state.done counts handlers that have returned.
local function start_server()
  local state = { closes = {}, ws = {}, done = 0, started = 0 }
  local app = eddy.http.server()

  local function echo(ws, req)
    local id = req.query.id or "?"
    state.ws[id] = ws
    state.started = state.started + 1
    while true do
      local data, kind, code, reason = ws:recv()
      if not data then
        state.closes[id] = { err = kind, code = code, reason = reason }
        break
      end
      -- A send fails once the session is closing (a close frame that came
      -- right behind this message was answered already): recv says so next.
      if not ws:send(data, kind) then state.send_failed = (state.send_failed or 0) + 1 end
    end
    state.done = state.done + 1
  end

  app:websocket("/echo", echo)
  app:websocket("/small", echo, { max_message = 1000 })

  -- The server speaks first, then closes with a code and a reason.
  app:websocket("/bye", function(ws)
    state.started = state.started + 1
    ws:send("first")
    ws:send("\1\2\3", "binary")
    state.bye_close = { ws:close(4000, "server done") }
    state.done = state.done + 1
  end)

  -- A handler that returns at once (the session closes with 1000) and one
  -- that raises (1011).
  app:websocket("/return", function(ws)
    state.started = state.started + 1
    ws:send("hi")
    state.done = state.done + 1
  end)
  app:websocket("/raise", function()
    state.started = state.started + 1
    state.done = state.done + 1
    error("handler failed on purpose")
  end)

  -- Members of a room: each joins on arrival, leaves when it goes.
  app:websocket("/room/:name", function(ws, req)
    local room = eddy.ws.room(req.params.name)
    local id = req.query.id or "?"
    state.ws[id] = ws
    state.started = state.started + 1
    room:join(ws)
    while true do
      local data, kind, code = ws:recv()
      if not data then
        state.closes[id] = { err = kind, code = code }
        break
      end
      if data == "shout" then room:broadcast(id .. " shouts", "text", ws) end
    end
    room:leave(ws)
    state.done = state.done + 1
  end, { write_buffer = 16384 })

  -- A handler that reads nothing until state.release gets a value, then
  -- counts messages and checks that their numbers come in order.
  state.release = eddy.channel()
  app:websocket("/lazy", function(ws)
    state.started = state.started + 1
    state.release:recv()
    local n, in_order = 0, true
    while true do
      local data = ws:recv()
      if not data then break end
      n = n + 1
      if tonumber(data:sub(1, 8)) ~= n then in_order = false end
      state.lazy_got, state.lazy_order = n, in_order
    end
    state.done = state.done + 1
  end)

  -- A handler that sends FLOOD_N numbered 64 KiB messages as fast as
  -- send lets it, then waits for the client to go.
  app:websocket("/flood", function(ws)
    state.started = state.started + 1
    state.flood_sent = 0
    local chunk = rep("s", 65536 - 8)
    for i = 1, FLOOD_N do
      if not ws:send(("%08d"):format(i) .. chunk, "binary") then break end
      state.flood_sent = i
    end
    while ws:recv() do end
    state.done = state.done + 1
  end)

  -- A route that is not a WebSocket.
  app:get("/plain", function(_, res) res:send("plain\n") end)

  state.server = assert(app:listen("127.0.0.1", 0))
  state.port = state.server:port()
  state.url = "ws://127.0.0.1:" .. state.port
  return state
end

-- Closes the server once every session it started has ended; a session
-- still open after a while is a failure (and is closed, so the run ends).
local function stop_server(state)
  local ok = wait_until(function() return state.done >= state.started end, 10)
  if not ok then
    for _, ws in pairs(state.ws) do
      if not ws:closed() then ws:close(1001) end
    end
  end
  state.server:close()
  assert(ok, ("%d of %d server sessions never ended"):format(state.started - state.done, state.started))
end

-- Runs fn(state) with a fresh server inside h.run; returns fn's results.
local function with_server(fn)
  return h.run(function()
    local state = start_server()
    local results = { pcall(fn, state) }
    stop_server(state)
    if not results[1] then error(results[2], 0) end
    return unpack(results, 2)
  end)
end

-- =========================================================================
-- Raw frames

local function be16(n) return char(bit.rshift(n, 8) % 256, n % 256) end

local function be64(n)
  local t = {}
  for i = 8, 1, -1 do
    t[i] = char(n % 256)
    n = math.floor(n / 256)
  end
  return concat(t)
end

local function xor_mask(payload, key)
  local out = {}
  for i = 1, #payload do
    out[i] = char(bit.bxor(byte(payload, i), byte(key, (i - 1) % 4 + 1)))
  end
  return concat(out)
end

-- A frame as a client sends it: b0 is FIN, RSV and opcode; masked unless
-- opts.masked is false. opts.len16 / opts.len64 force a longer length
-- encoding than needed; opts.declared puts another length in the header.
local function frame(b0, payload, opts)
  opts = opts or {}
  payload = payload or ""
  local len = opts.declared or #payload
  local masked = opts.masked ~= false
  local mbit = masked and 0x80 or 0
  local head
  if opts.len64 or len >= 65536 then
    head = char(b0, mbit + 127) .. be64(len)
  elseif opts.len16 or len >= 126 then
    head = char(b0, mbit + 126) .. be16(len)
  else
    head = char(b0, mbit + len)
  end
  if not masked then return head .. payload end
  local key = opts.key or "\55\250\33\61"
  return head .. key .. xor_mask(payload, key)
end

local function close_payload(code, reason)
  return be16(code) .. (reason or "")
end

-- Splits bytes from a server into frames; returns the frames and whatever
-- trailing bytes do not make a whole frame.
local function parse_frames(s)
  local frames, i = {}, 1
  while #s - i + 1 >= 2 do
    local b0, b1 = byte(s, i, i + 1)
    local len, hl = b1 % 128, 2
    if len == 126 then
      if #s - i + 1 < 4 then break end
      len, hl = byte(s, i + 2) * 256 + byte(s, i + 3), 4
    elseif len == 127 then
      if #s - i + 1 < 10 then break end
      len = 0
      for k = 2, 9 do len = len * 256 + byte(s, i + k) end
      hl = 10
    end
    local masked = b1 >= 128
    if masked then hl = hl + 4 end
    if #s - i + 1 < hl + len then break end
    local payload = s:sub(i + hl, i + hl + len - 1)
    if masked then payload = xor_mask(payload, s:sub(i + hl - 4, i + hl - 1)) end
    local f = {
      fin = b0 >= 128, rsv = bit.band(b0, 0x70), opcode = b0 % 16, masked = masked,
      payload = payload,
    }
    if f.opcode == 8 and #f.payload >= 2 then
      f.code = byte(f.payload, 1) * 256 + byte(f.payload, 2)
      f.reason = f.payload:sub(3)
    end
    frames[#frames + 1] = f
    i = i + hl + len
  end
  return frames, s:sub(i)
end

local KEY = "dGhlIHNhbXBsZSBub25jZQ==" -- RFC 6455, 1.3
local ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

local function upgrade_request(path, extra)
  return "GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    .. "Connection: Upgrade\r\nSec-WebSocket-Key: " .. KEY .. "\r\n"
    .. (extra or "Sec-WebSocket-Version: 13\r\n") .. "\r\n"
end

-- Reads until the peer ends the connection; returns the bytes and how it
-- ended ("closed", or "timeout" when it never did).
local function read_to_end(conn)
  local parts = {}
  while true do
    local data, err, partial = conn:read_some(65536, { timeout = 10 })
    if partial then parts[#parts + 1] = partial end
    if not data then return concat(parts), err end
    parts[#parts + 1] = data
  end
end

-- Opens a raw connection and upgrades it; returns conn and the response
-- head.
local function raw_open(state, path, first_bytes)
  local conn = assert(eddy.tcp.connect("127.0.0.1", state.port))
  assert(conn:write(upgrade_request(path) .. (first_bytes or "")))
  local head = assert(conn:read_until("\r\n\r\n", { timeout = 10 }))
  assert(head:match("^HTTP/1%.1 101 "), head)
  assert(head:find("\r\nSec%-WebSocket%-Accept: " .. ACCEPT:gsub("%p", "%%%0")), head)
  return conn
end

-- Upgrades, sends bytes, and reads whatever the server sends until it
-- ends the connection. With then_close, it first reads `replies` frames
-- and only then sends then_close (so that no answer races the close).
-- Returns a summary: the frames' opcodes, the close frame's code, whether
-- the connection ended, and the handler's view.
local function raw_exchange(state, path, bytes, id, replies, then_close)
  local conn = raw_open(state, path .. "?id=" .. id)
  if type(bytes) == "table" then
    for _, piece in ipairs(bytes) do
      assert(conn:write(piece))
      eddy.sleep(0.005)
    end
  else
    assert(conn:write(bytes))
  end
  local early = ""
  if then_close then
    while #parse_frames(early) < replies do
      local more, err = conn:read_some(65536, { timeout = 10 })
      if not more then break end
      early = early .. more
    end
    assert(conn:write(then_close))
  end
  local data, ended = read_to_end(conn)
  data = early .. data
  conn:close()
  local frames, rest = parse_frames(data)
  local r = { ended = ended, rest = rest, opcodes = {}, frames = frames }
  for _, f in ipairs(frames) do
    r.opcodes[#r.opcodes + 1] = f.opcode
    if f.masked then r.masked = true end
    if f.opcode == 8 then r.code, r.reason = f.code, f.reason end
  end
  wait_until(function() return state.closes[id] end, 10)
  r.handler = state.closes[id]
  return r
end

-- =========================================================================
-- Helpers for eddy clients

local function connect(state, path, opts)
  return assert(eddy.ws.connect(state.url .. path, opts))
end

-- Runs fn in a task of its own and tells whether it finished without ever
-- waiting. The scheduler runs every task that was ready at the start of a
-- pass before it polls for I/O, so this task, yielding, runs right after
-- fn's task in the same pass: a wait inside fn shows as that task
-- "waiting", or (had anything woken it) as `ticks` having moved. A task
-- found waiting is cancelled so that the run can end.
local function never_waits(fn)
  local results, ticks, moved = nil, 0, false
  local t = eddy.spawn(function()
    local before = ticks
    results = { fn() }
    moved = ticks ~= before
  end)
  while t:status() == "ready" do
    ticks = ticks + 1
    eddy.yield()
  end
  if t:status() == "done" and not moved then return true, results end
  if t:status() ~= "done" then
    t:cancel()
    t:join()
  end
  return false, "waited"
end

-- Waits until count() reaches n, or stops growing for half a second
-- while the task that makes it grow waits; returns the count then.
local function until_done_or_held(count, n, task_waiting)
  local last, still = -1, 0
  wait_until(function()
    local c = count()
    if c >= n then return true end
    if c == last and task_waiting() then
      still = still + 1
    else
      last, still = c, 0
    end
    return still >= 50
  end, 60)
  return count()
end

-- =========================================================================

describe("eddy.ws", function()
  describe("eddy server, Node ws client", function()
    -- Runs ws_client.js against path; returns its exit status, its lines
    -- and the server's state.
    local function node_client(path, scenario)
      return with_server(function(state)
        local job = spawn(("node tests/node/ws_client.js %s%s %s"):format(state.url, path, scenario))
        local rc, out = job:wait(20)
        return rc, lines(out), state
      end)
    end

    it("a graceful stop tells the client it is going away (1001) and ends the handler", function()
      local script = tmpdir() .. "/stop.lua"
      local f = assert(io.open(script, "w"))
      f:write([[
        io.stdout:setvbuf("line")
        local eddy = require "eddy"
        local app = eddy.http.server()
        app:websocket("/", function(ws)
          while ws:recv() do ws:send("echo") end
          local _, _, code, reason = ws:recv()
          print("handler ended", code, reason)
        end)
        local server = assert(app:listen("127.0.0.1", 0))
        print("port " .. server:port())
      ]])
      f:close()
      local server = spawn(h.eddy_bin .. " " .. script)
      local port = server:expect("port (%d+)")
      assert.truthy(port, server:output())
      local client = spawn(("node tests/node/ws_client.js ws://127.0.0.1:%s/ wait"):format(port))
      assert.truthy(client:expect("echo echo"), client:output())
      local t0 = os.time()
      os.execute("kill -TERM " .. read_file(server.dir .. "/pid"):match("%d+"))
      local crc, cout = client:wait(10)
      local src, sout = server:wait(10)
      assert.equal(0, crc)
      assert.same({ "open", "echo echo", "close 1001 stopping" }, lines(cout))
      assert.equal(0, src, sout)
      assert.matches("handler ended\t1001\tstopping", sout)
      assert.is_true(os.time() - t0 < 4, "the stop waited for the grace period")
    end)

    it("echoes text, non-ASCII and empty", function()
      local rc, out, state = node_client("/echo?id=n", "text")
      assert.equal(0, rc)
      assert.same({
        "open",
        'text text "hello"',
        'text text "héllo wörld ✓ 日本語 🎉"',
        'text text ""',
        "close 1000 ",
      }, out)
      assert.same({ err = "closed", code = 1000, reason = "done" }, state.closes.n)
    end)

    it("echoes 70 KB of binary", function()
      local rc, out = node_client("/echo", "binary")
      assert.equal(0, rc)
      assert.same({ "open", "binary binary 71680 same", "close 1000 " }, out)
    end)

    it("echoes 2000 messages in order", function()
      local rc, out = node_client("/echo", "many")
      assert.equal(0, rc)
      assert.same({ "open", "many 2000 in order", "close 1000 " }, out)
    end)

    it("answers a ping with a pong carrying its data", function()
      local rc, out = node_client("/echo", "ping")
      assert.equal(0, rc)
      assert.same({ "open", "pong are you there", "close 1000 " }, out)
    end)

    it("close handshake: the client's code and reason reach the handler, the code comes back", function()
      local rc, out, state = node_client("/echo?id=c", "close")
      assert.equal(0, rc)
      assert.same({ "open", "close 4001 " }, out)
      assert.same({ err = "closed", code = 4001, reason = "bye now" }, state.closes.c)
    end)

    it("assembles fragmented messages (split inside a UTF-8 sequence, a ping between fragments)", function()
      local rc, out = node_client("/echo", "fragments")
      assert.equal(0, rc)
      assert.same({
        "open",
        'fragments text "frag: é and 🎉"',
        "fragments binary 00010203040506070809",
        "close 1000 ",
      }, out)
    end)

    it("server-initiated close: messages, then the server's code and reason", function()
      local rc, out, state = node_client("/bye", "server_close")
      assert.equal(0, rc)
      assert.same({ "open", "message text first", "message binary \1\2\3", "close 4000 server done" }, out)
      assert.same({ true }, state.bye_close)
    end)

    it("fails the connection with 1007 for text that is not UTF-8", function()
      local rc, out, state = node_client("/echo?id=u", "bad_utf8")
      assert.equal(0, rc)
      assert.same({ "open", "close 1007 " }, out)
      assert.same({ err = "closed", code = 1007, reason = "" }, state.closes.u)
    end)

    it("fails the connection with 1009 for a message over max_message", function()
      local rc, out, state = node_client("/small?id=b", "too_big")
      assert.equal(0, rc)
      assert.same({ "open", "close 1009 " }, out)
      assert.same({ err = "closed", code = 1009, reason = "" }, state.closes.b)
    end)

    it("fails the connection with 1009 for fragments that add up to more than max_message", function()
      local rc, out, state = node_client("/small?id=f", "too_big_fragments")
      assert.equal(0, rc)
      assert.same({ "open", "close 1009 " }, out)
      assert.same({ err = "closed", code = 1009, reason = "" }, state.closes.f)
    end)

    it("a handler that returns closes with 1000, one that raises with 1011", function()
      local rc1, out1 = node_client("/return", "server_close")
      local rc2, out2 = node_client("/raise", "server_close")
      assert.equal(0, rc1)
      assert.same({ "open", "message text hi", "close 1000 " }, out1)
      assert.equal(0, rc2)
      assert.same({ "open", "close 1011 " }, out2)
    end)

    it("a plain route refuses the upgrade", function()
      local rc, out = node_client("/plain", "text")
      assert.equal(0, rc)
      assert.matches("^refused %d+", out[1])
    end)
  end)

  describe("eddy client, Node ws server", function()
    local server, url

    setup(function()
      server = spawn("node tests/node/ws_server.js 0 60")
      local port = server:expect("ready (%d+)")
      assert(port, "the node server did not start:\n" .. server:output())
      url = "ws://127.0.0.1:" .. port .. "/any/path?q=1"
    end)

    teardown(function()
      server:kill()
      server:wait(5)
    end)

    it("echoes text and binary, and sends extra headers", function()
      local got = h.run(function()
        local ws = assert(eddy.ws.connect(url, { headers = { ["X-Test"] = "yes" } }))
        local r = {}
        assert(ws:send("héllo ✓"))
        r[#r + 1] = { ws:recv() }
        assert(ws:send("\0\1\2\255", "binary"))
        r[#r + 1] = { ws:recv() }
        assert(ws:send(""))
        r[#r + 1] = { ws:recv() }
        assert(ws:send("headers"))
        r[#r + 1] = { ws:recv() }
        assert(ws:close())
        return r
      end)
      assert.same({
        { "héllo ✓", "text" },
        { "\0\1\2\255", "binary" },
        { "", "text" },
        { "x-test=yes", "text" },
      }, got)
    end)

    it("sends and receives messages of 2 MB, and assembles a fragmented one", function()
      local got = h.run(function()
        local ws = assert(eddy.ws.connect(url, { max_message = 8 * 1024 * 1024 }))
        local big = {}
        for i = 0, 255 do big[#big + 1] = rep(char(i), 8192) end
        big = concat(big) -- 2 MiB
        assert(ws:send(big, "binary"))
        local back, kind = ws:recv()
        assert(ws:send("big 3000000"))
        local sent, skind = ws:recv()
        local ok_pattern = #sent == 3000000
        for _, i in ipairs({ 0, 1, 255, 256, 2999999 }) do
          if byte(sent, i + 1) ~= (i * 7) % 256 then ok_pattern = false end
        end
        assert(ws:send("frag"))
        local frag = { ws:recv() }
        ws:close()
        return { same = back == big, kind = kind, big_kind = skind, pattern = ok_pattern, frag = frag }
      end)
      assert.same({ same = true, kind = "binary", big_kind = "binary", pattern = true,
                    frag = { "one two three", "text" } }, got)
    end)

    it("ping: the Node server sees it (and answers with a pong eddy takes in silence)", function()
      local got = h.run(function()
        local ws = assert(eddy.ws.connect(url))
        local r = { ws:ping("hi there") }
        r[#r + 1] = ws:recv()
        ws:close()
        return r
      end)
      assert.same({ true, "ping:hi there" }, got)
    end)

    it("the client's close code and reason reach the Node server; recv then says closed", function()
      local got = h.run(function()
        local ws = assert(eddy.ws.connect(url))
        local r = { close = ws:close(4003, "client bye") }
        r.closed = ws:closed()
        r.recv = { ws:recv() }
        return r
      end)
      assert.is_true(got.close)
      assert.is_true(got.closed)
      assert.same({ nil, "closed", 4003 }, { got.recv[1], got.recv[2], got.recv[3] })
      assert.truthy(server:expect("closed 4003 client bye"))
    end)

    it("the server's close code and reason reach the client", function()
      local got = h.run(function()
        local ws = assert(eddy.ws.connect(url))
        assert(ws:send("close-me"))
        local r = { first = { ws:recv() }, again = { ws:recv() }, closed = ws:closed() }
        r.send = { ws:send("late") }
        return r
      end)
      assert.same({ nil, "closed", 4002, "as asked" }, got.first)
      assert.same({ nil, "closed", 4002, "as asked" }, got.again)
      assert.is_true(got.closed)
      assert.same({ nil, "closed" }, { got.send[1], got.send[2] })
      assert.truthy(server:expect("closed 4002 "))
    end)

    it("a message over the client's max_message fails the connection with 1009", function()
      local got = h.run(function()
        local ws = assert(eddy.ws.connect(url, { max_message = 1000 }))
        assert(ws:send("big 1001"))
        return { ws:recv() }
      end)
      assert.same({ nil, "closed", 1009, "" }, got)
      assert.truthy(server:expect("closed 1009 "))
    end)
  end)

  describe("eddy client, eddy server", function()
    it("echo, recv timeout, and the close seen on both sides", function()
      local got, state = with_server(function(state)
        local ws = connect(state, "/echo?id=a")
        local r = {}
        r.timeout = { ws:recv(0.05) }
        assert(ws:send("one"))
        assert(ws:send("two", "binary"))
        r.one = { ws:recv() }
        r.two = { ws:recv() }
        r.open_closed = ws:closed()
        r.close = ws:close(4321, "ciao ✓")
        r.after = { ws:recv() }
        r.closed = ws:closed()
        return r, state
      end)
      assert.same({ nil, "timeout" }, got.timeout)
      assert.same({ "one", "text" }, got.one)
      assert.same({ "two", "binary" }, got.two)
      assert.is_false(got.open_closed)
      assert.is_true(got.close)
      assert.same({ nil, "closed", 4321 }, { got.after[1], got.after[2], got.after[3] })
      assert.is_true(got.closed)
      assert.same({ err = "closed", code = 4321, reason = "ciao ✓" }, state.closes.a)
    end)

    it("server close, handler return and handler error, as an eddy client sees them", function()
      local got = with_server(function(state)
        local bye = connect(state, "/bye")
        local r = { bye = { { bye:recv() }, { bye:recv() }, { bye:recv() } } }
        local ret = connect(state, "/return")
        r.ret = { { ret:recv() }, { ret:recv() } }
        local raise = connect(state, "/raise")
        r.raise = { raise:recv() }
        return r
      end)
      assert.same({ { "first", "text" }, { "\1\2\3", "binary" }, { nil, "closed", 4000, "server done" } }, got.bye)
      assert.same({ { "hi", "text" }, { nil, "closed", 1000, "" } }, got.ret)
      assert.same({ nil, "closed", 1011, "" }, got.raise)
    end)

    it("text must be UTF-8: send raises; binary takes any bytes", function()
      local got = with_server(function(state)
        local ws = connect(state, "/echo")
        local ok, err = pcall(ws.send, ws, "\255bad")
        assert(ws:send("\255ok", "binary"))
        local back = { ws:recv() }
        ws:close()
        return { ok = ok, err = tostring(err), back = back }
      end)
      assert.is_false(got.ok)
      assert.matches("UTF%-8", got.err)
      assert.same({ "\255ok", "binary" }, got.back)
    end)

    it("connect refuses what is not a websocket, and bad URLs", function()
      local got = with_server(function(state)
        local r = {}
        r.plain = { eddy.ws.connect(state.url .. "/plain") }
        r.missing = { eddy.ws.connect(state.url .. "/nowhere") }
        r.bad = { pcall(eddy.ws.connect, "http://127.0.0.1/") }
        -- wss:// to a server that does not speak TLS
        r.wss = { eddy.ws.connect((state.url:gsub("^ws:", "wss:")) .. "/plain") }
        return r
      end)
      assert.same({ nil, "refused", 200 }, got.plain)
      assert.same({ nil, "refused", 404 }, got.missing)
      assert.is_false(got.bad[1])
      assert.matches("not a ws:// URL", got.bad[2])
      assert.is_nil(got.wss[1])
      assert.equal("tls failure", got.wss[2])
    end)

    it("max_message: a message one byte over closes with 1009, seen by the sender", function()
      local got, state = with_server(function(state)
        local ws = connect(state, "/small?id=big")
        assert(ws:send(rep("a", 1000)))
        local fits = { ws:recv() }
        assert(ws:send(rep("a", 1001)))
        return { fits = #fits[1], over = { ws:recv() } }, state
      end)
      assert.equal(1000, got.fits)
      assert.same({ nil, "closed", 1009, "" }, got.over)
      assert.same({ err = "closed", code = 1009, reason = "" }, state.closes.big)
    end)

    it("the client's max_message: a bigger message from the server closes with 1009 on both sides", function()
      local got, state = with_server(function(state)
        local ws = connect(state, "/echo?id=cm", { max_message = 100 })
        assert(ws:send(rep("b", 100)))
        local fits = ws:recv()
        assert(ws:send(rep("b", 101)))
        return { fits = #fits, over = { ws:recv() } }, state
      end)
      assert.equal(100, got.fits)
      assert.same({ nil, "closed", 1009, "" }, got.over)
      assert.same({ err = "closed", code = 1009, reason = "" }, state.closes.cm)
    end)

    it("URLs: no path, a query with no path, and an IPv6 host in brackets", function()
      local got = h.run(function()
        local app = eddy.http.server()
        app:websocket("/", function(ws, req)
          ws:send(req.path .. " id=" .. tostring(req.query.id) .. " host=" .. tostring(req:header("host")))
        end)
        local r = {}
        for _, host in ipairs({ "127.0.0.1", "::1" }) do
          local srv = assert(app:listen(host, 0))
          local authority = (host:find(":") and "[" .. host .. "]" or host) .. ":" .. srv:port()
          for _, rest in ipairs({ "", "/", "?id=7", "/?id=8" }) do
            local ws = assert(eddy.ws.connect("ws://" .. authority .. rest))
            r[#r + 1] = ws:recv():gsub(":%d+$", ":PORT")
            ws:recv() -- the handler's end closes it
          end
          srv:close()
        end
        return r
      end)
      assert.same({
        "/ id=nil host=127.0.0.1:PORT", "/ id=nil host=127.0.0.1:PORT",
        "/ id=7 host=127.0.0.1:PORT", "/ id=8 host=127.0.0.1:PORT",
        "/ id=nil host=[::1]:PORT", "/ id=nil host=[::1]:PORT",
        "/ id=7 host=[::1]:PORT", "/ id=8 host=[::1]:PORT",
      }, got)
    end)

    it("two tasks sending at once on one connection: every message arrives whole", function()
      local got = with_server(function(state)
        local ws = connect(state, "/echo")
        local wg = eddy.waitgroup()
        for _, tag in ipairs({ "a", "b" }) do
          wg:spawn(function()
            for i = 1, 50 do
              local body = rep(tag, 100000 + i)
              assert(ws:send(tag .. i .. ":" .. body, "binary"))
            end
          end)
        end
        local whole, next_i = 0, { a = 1, b = 1 }
        for _ = 1, 100 do
          local data = assert(ws:recv())
          local tag, i, body = data:match("^(%a)(%d+):(.*)$")
          i = tonumber(i)
          if tag and i == next_i[tag] and body == rep(tag, 100000 + i) then
            whole = whole + 1
            next_i[tag] = i + 1
          end
        end
        wg:wait()
        ws:close()
        return whole
      end)
      assert.equal(100, got)
    end)

    it("one task receives at a time", function()
      local got = with_server(function(state)
        local ws = connect(state, "/echo")
        local t = eddy.spawn(function() return ws:recv() end)
        eddy.yield()
        local ok, err = pcall(ws.recv, ws)
        assert(ws:send("x"))
        local _, data = t:join()
        ws:close()
        return { ok = ok, err = tostring(err), data = data }
      end)
      assert.is_false(got.ok)
      assert.matches("another task is receiving", got.err)
      assert.equal("x", got.data)
    end)

    it("50 clients at once, 100 messages each, every echo in order", function()
      local got = with_server(function(state)
        local wg = eddy.waitgroup()
        local ok = 0
        for c = 1, 50 do
          wg:add(1)
          eddy.spawn(function()
            local ws = connect(state, "/echo")
            local good = true
            for i = 1, 100 do assert(ws:send(c .. ":" .. i)) end
            for i = 1, 100 do
              if ws:recv() ~= c .. ":" .. i then good = false end
            end
            ws:close()
            if good then ok = ok + 1 end
            wg:done()
          end)
        end
        wg:wait()
        return ok
      end)
      assert.equal(50, got)
    end)

    it("send backpressure: a client's sends wait while the handler does not read; nothing is lost or reordered", function()
      local got = with_server(function(state)
        local ws = connect(state, "/lazy")
        local chunk, sent = rep("c", 65536 - 8), 0
        local sender = eddy.spawn(function()
          for i = 1, FLOOD_N do
            assert(ws:send(("%08d"):format(i) .. chunk, "binary"))
            sent = i
          end
        end)
        local held = until_done_or_held(function() return sent end, FLOOD_N,
          function() return sender:status() == "waiting" end)
        state.release:send(true)
        sender:join()
        wait_until(function() return state.lazy_got == FLOOD_N end, 60)
        ws:close()
        return { held = held, got = state.lazy_got, in_order = state.lazy_order }
      end)
      assert.is_true(got.held < FLOOD_N,
        ("all %d sends of 64 KiB went through while the peer read nothing: send never waited"):format(FLOOD_N))
      assert.same({ FLOOD_N, true }, { got.got, got.in_order })
    end)

    it("send backpressure: a handler's sends wait while the client does not read; nothing is lost or reordered", function()
      local got = with_server(function(state)
        local ws = connect(state, "/flood") -- reads nothing for now
        local held = until_done_or_held(function() return state.flood_sent or 0 end, FLOOD_N,
          function() return state.flood_sent ~= nil end)
        local n, in_order = 0, true
        for i = 1, FLOOD_N do
          local data = ws:recv()
          if not data then break end
          n = n + 1
          if tonumber(data:sub(1, 8)) ~= i then in_order = false end
        end
        ws:close()
        return { held = held, got = n, in_order = in_order }
      end)
      assert.is_true(got.held < FLOOD_N,
        ("all %d sends of 64 KiB went through while the peer read nothing: send never waited"):format(FLOOD_N))
      assert.same({ FLOOD_N, true }, { got.got, got.in_order })
    end)

    it("argument checks: ping data, close codes and reasons; sends after close", function()
      local got = with_server(function(state)
        local ws = connect(state, "/echo")
        local r = {}
        r.ping125 = ws:ping(rep("p", 125))
        r.ping126 = pcall(ws.ping, ws, rep("p", 126))
        r.code1005 = pcall(ws.close, ws, 1005)
        r.code999 = pcall(ws.close, ws, 999)
        r.reason124 = pcall(ws.close, ws, 1000, rep("r", 124))
        r.kind = pcall(ws.send, ws, "x", "json")
        r.still_open = not ws:closed()
        r.close = ws:close(1000, rep("r", 123))
        r.send = { ws:send("late") }
        r.ping = { ws:ping() }
        r.close_again = ws:close()
        return r
      end)
      assert.same({
        ping125 = true, ping126 = false, code1005 = false, code999 = false, reason124 = false, kind = false,
        still_open = true, close = true, send = { nil, "closed", 1000, "" }, ping = { nil, "closed", 1000, "" },
        close_again = true,
      }, got)
    end)

    it("connect: nothing listening is refused; a server that never answers the handshake times out", function()
      local got = h.run(function()
        local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
        local port = srv:port()
        local t = eddy.spawn(function()
          local conn = srv:accept()
          conn:read_until("\r\n\r\n")
          conn:read_some(100, { timeout = 10 }) -- until the client gives up
          conn:close()
        end)
        local r = { silent = { eddy.ws.connect("ws://127.0.0.1:" .. port .. "/", { timeout = 0.2 }) } }
        t:join()
        srv:close()
        r.refused = { eddy.ws.connect("ws://127.0.0.1:" .. port .. "/") }
        return r
      end)
      assert.same({ nil, "timeout" }, got.silent)
      assert.same({ nil, "refused" }, got.refused)
    end)

    describe("rooms", function()
      it("broadcast reaches every member, except one when asked; members leave", function()
        local got = with_server(function(state)
          local room = eddy.ws.room("lobby")
          local clients = {}
          for i = 1, 10 do clients[i] = connect(state, "/room/lobby?id=c" .. i) end
          wait_until(function() return room:size() == 10 end)
          local r = { size = room:size() }
          r.all = room:broadcast("to all")
          r.got_all = 0
          for i = 1, 10 do
            if clients[i]:recv() == "to all" then r.got_all = r.got_all + 1 end
          end
          -- except: c1 is skipped, and the next message it gets is the one after.
          r.except = room:broadcast("not to c1", "text", state.ws.c1)
          r.bin = room:broadcast("\0\1", "binary")
          r.c1 = { clients[1]:recv() }
          r.c2 = { { clients[2]:recv() }, { clients[2]:recv() } }
          for i = 3, 10 do clients[i]:recv() clients[i]:recv() end
          -- A member that broadcasts from its handler skips itself.
          assert(clients[5]:send("shout"))
          r.shout = { clients[6]:recv() }
          for i = 1, 10 do if i ~= 5 and i ~= 6 then clients[i]:recv() end end
          -- Leaving: three clients go; the room shrinks once their handlers end.
          for i = 1, 3 do clients[i]:close() end
          wait_until(function() return room:size() == 7 end)
          r.after_leave = room:size()
          r.rest = room:broadcast("seven")
          for i = 4, 10 do assert(clients[i]:recv() == "seven") end
          for i = 4, 10 do clients[i]:close() end
          wait_until(function() return room:size() == 0 end)
          r.empty = room:size()
          r.dropped = room.dropped
          return r
        end)
        assert.same({
          size = 10, all = 10, got_all = 10, except = 9, bin = 10,
          c1 = { "\0\1", "binary" }, c2 = { { "not to c1", "text" }, { "\0\1", "binary" } },
          shout = { "c5 shouts", "text" },
          after_leave = 7, rest = 7, empty = 0, dropped = 0,
        }, got)
      end)

      it("a member whose connection has closed leaves at the next broadcast", function()
        local got = with_server(function(state)
          local room = eddy.ws.room("manual") -- joined by hand, never left by a handler
          local a = connect(state, "/echo?id=ma")
          local b = connect(state, "/echo?id=mb")
          wait_until(function() return state.ws.ma and state.ws.mb end)
          room:join(state.ws.ma)
          room:join(state.ws.mb)
          a:close()
          wait_until(function() return state.closes.ma end)
          local r = { before = room:size(), reached = room:broadcast("still here?") }
          r.after = room:size()
          r.b = b:recv()
          b:close()
          return r
        end)
        assert.same({ before = 2, reached = 1, after = 1, b = "still here?" }, got)
      end)

      it("rooms are found by name and are separate", function()
        local got = with_server(function(state)
          assert.equal(eddy.ws.room("x"), eddy.ws.room("x"))
          local a = connect(state, "/room/ra")
          local b = connect(state, "/room/rb")
          wait_until(function() return eddy.ws.room("ra"):size() == 1 and eddy.ws.room("rb"):size() == 1 end)
          local n = eddy.ws.room("ra"):broadcast("for a")
          assert(eddy.ws.room("rb"):broadcast("for b") == 1)
          local r = { n = n, a = a:recv(), b = b:recv() }
          a:close() b:close()
          return r
        end)
        assert.same({ n = 1, a = "for a", b = "for b" }, got)
      end)

      it("ws:send with timeout 0 never waits: it answers true, or nil, \"full\" once the peer is behind", function()
        local got = with_server(function(state)
          -- The client never reads; its server side has a 16 KiB write buffer.
          local slow = connect(state, "/room/solo?id=s", { max_message = 65536 })
          wait_until(function() return state.ws.s end)
          local member = state.ws.s
          local chunk = rep("z", 32768)
          local r = { sent = 0 }
          for _ = 1, 2000 do -- up to 64 MiB, far more than any socket buffers
            local finished, res = never_waits(function() return member:send(chunk, "binary", { timeout = 0 }) end)
            if not finished then r.waited = true break end
            if res[1] ~= true then r.answer = { res[1], res[2] } break end
            r.sent = r.sent + 1
          end
          slow:close()
          return r
        end)
        assert.is_nil(got.waited, ("send with timeout 0 waited (after %d sends of 32 KiB)"):format(got.sent))
        assert.same({ nil, "full" }, got.answer)
        assert.is_true(got.sent > 0)
      end)

      it("a member that never reads misses messages (room.dropped) while the others get them all", function()
        local got = with_server(function(state)
          local room = eddy.ws.room("busy")
          local fast = {}
          for i = 1, 3 do fast[i] = connect(state, "/room/busy?id=f" .. i) end
          local slow = connect(state, "/room/busy?id=slow", { max_message = 65536 }) -- never reads
          wait_until(function() return room:size() == 4 end)
          local payload = rep("p", 32768)
          local r = { reached = 0, fast_ok = 0, n = 0 }
          local N = 600 -- 19 MiB to the slow member: more than socket buffers hold
          for i = 1, N do
            local msg = i .. ":" .. payload
            local finished, res = never_waits(function() return room:broadcast(msg, "binary") end)
            if not finished then r.waited_at = i break end
            r.reached = r.reached + res[1]
            r.n = i
            for j = 1, 3 do
              if fast[j]:recv() == msg then r.fast_ok = r.fast_ok + 1 end
            end
          end
          r.dropped = room.dropped
          r.size = room:size()
          for j = 1, 3 do fast[j]:close() end
          slow:close()
          return r
        end)
        assert.is_nil(got.waited_at, ("room:broadcast waited (at message %s)"):format(tostring(got.waited_at)))
        assert.equal(600, got.n)
        assert.equal(3 * 600, got.fast_ok)
        assert.is_true(got.dropped > 0, "the slow member dropped nothing")
        assert.equal(4 * 600 - got.dropped, got.reached)
        assert.equal(4, got.size) -- a slow member stays a member
      end)
    end)
  end)

  describe("raw TCP against the server", function()
    local function fault(name, path, bytes, code)
      it(("%s -> close %d"):format(name, code), function()
        local r = with_server(function(state)
          return raw_exchange(state, path, bytes, "raw")
        end)
        assert.same({ opcodes = { 8 }, code = code, reason = "", ended = "closed", rest = "", masked = nil },
          { opcodes = r.opcodes, code = r.code, reason = r.reason, ended = r.ended, rest = r.rest, masked = r.masked })
        assert.same({ err = "closed", code = code, reason = "" }, r.handler)
      end)
    end

    describe("protocol errors close with 1002", function()
      fault("an unmasked client frame", "/echo", frame(0x81, "hi", { masked = false }), 1002)
      fault("RSV1 set", "/echo", frame(0xC1, "hi"), 1002)
      fault("RSV2 set", "/echo", frame(0xA1, "hi"), 1002)
      fault("RSV3 set", "/echo", frame(0x91, "hi"), 1002)
      fault("RSV1 on a ping", "/echo", frame(0xC9, ""), 1002)
      fault("unknown data opcode 0x3", "/echo", frame(0x83, "hi"), 1002)
      fault("unknown data opcode 0x7", "/echo", frame(0x87, ""), 1002)
      fault("unknown control opcode 0xB", "/echo", frame(0x8B, ""), 1002)
      fault("unknown control opcode 0xF", "/echo", frame(0x8F, "x"), 1002)
      fault("a fragmented ping", "/echo", frame(0x09, "p"), 1002)
      fault("a fragmented close", "/echo", frame(0x08, close_payload(1000)), 1002)
      fault("a ping of 126 bytes", "/echo", frame(0x89, rep("p", 126)), 1002)
      fault("a pong of 126 bytes", "/echo", frame(0x8A, rep("p", 126)), 1002)
      fault("a close of 126 bytes", "/echo", frame(0x88, close_payload(1000, rep("r", 124))), 1002)
      fault("a continuation with no message started", "/echo", frame(0x80, "x"), 1002)
      fault("a non-final continuation with no message started", "/echo", frame(0x00, "x"), 1002)
      fault("a text frame inside a fragmented text message", "/echo", frame(0x01, "a") .. frame(0x81, "b"), 1002)
      fault("a binary frame inside a fragmented text message", "/echo", frame(0x01, "a") .. frame(0x82, "b"), 1002)
      fault("a text frame inside a fragmented binary message", "/echo",
        frame(0x02, "a") .. frame(0x81, "d"), 1002)
      fault("a 16-bit length for 5 bytes", "/echo", frame(0x81, "hello", { len16 = true }), 1002)
      fault("a 16-bit length for 125 bytes", "/echo", frame(0x82, rep("x", 125), { len16 = true }), 1002)
      fault("a 64-bit length for 200 bytes", "/echo", frame(0x82, rep("x", 200), { len64 = true }), 1002)
      fault("a 64-bit length for 65535 bytes", "/echo", frame(0x82, rep("x", 65535), { len64 = true }), 1002)
      fault("a 64-bit length with the top bit set", "/echo",
        char(0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1) .. "\1\2\3\4", 1002)
      fault("a close frame of one byte", "/echo", frame(0x88, "\3"), 1002)
      for _, code in ipairs({ 0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535 }) do
        fault("a close frame with code " .. code, "/echo", frame(0x88, close_payload(code)), 1002)
      end
    end)

    describe("invalid UTF-8 closes with 1007", function()
      fault("a stray byte 0xFF", "/echo", frame(0x81, "ab\255cd"), 1007)
      fault("a lone continuation byte", "/echo", frame(0x81, "\128"), 1007)
      fault("an overlong '/' (C0 AF)", "/echo", frame(0x81, "\192\175"), 1007)
      fault("an overlong 3-byte form (E0 80 AF)", "/echo", frame(0x81, "\224\128\175"), 1007)
      fault("a surrogate (ED A0 80)", "/echo", frame(0x81, "\237\160\128"), 1007)
      fault("a code point past U+10FFFF (F4 90 80 80)", "/echo", frame(0x81, "\244\144\128\128"), 1007)
      fault("F5", "/echo", frame(0x81, "\245\128\128\128"), 1007)
      fault("a message ending inside a sequence", "/echo", frame(0x81, "abc\226\130"), 1007)
      fault("a bad byte after a sequence split across fragments", "/echo",
        frame(0x01, "ok \226\130") .. frame(0x80, "A"), 1007)
      fault("a bad byte in a later fragment", "/echo", frame(0x01, "fine") .. frame(0x80, "\255"), 1007)
      fault("fragments ending inside a sequence", "/echo",
        frame(0x01, "a\240\159") .. frame(0x00, "\152") .. frame(0x80, ""), 1007)
      fault("a close reason that is not UTF-8", "/echo", frame(0x88, close_payload(1000, "bad \255")), 1007)
    end)

    describe("messages over max_message close with 1009", function()
      -- Only the header goes: the server must not wait for the payload.
      fault("a frame declaring 1001 bytes", "/small", frame(0x82, "", { declared = 1001 }), 1009)
      fault("a text frame declaring 1 TiB", "/small", frame(0x81, "", { declared = 2 ^ 40 }), 1009)
      fault("fragments of 400 + 400 + 400 bytes", "/small",
        frame(0x02, rep("a", 400)) .. frame(0x00, rep("a", 400)) .. frame(0x80, rep("a", 400)), 1009)
      fault("text fragments of 600 + 600 bytes", "/small",
        frame(0x01, rep("a", 600)) .. frame(0x80, rep("a", 600)), 1009)
    end)

    describe("valid frames", function()
      -- Sends bytes, reads the replies expected, then closes with 1000 "end".
      local function exchange(path, bytes, replies)
        return with_server(function(state)
          return raw_exchange(state, path, bytes, "v", replies, frame(0x88, close_payload(1000, "end")))
        end)
      end

      local function payloads(r)
        local t = {}
        for _, f in ipairs(r.frames) do
          if f.opcode ~= 8 then t[#t + 1] = { f.opcode, f.payload } end
        end
        return t
      end

      local function ends_cleanly(r)
        assert.equal(8, r.opcodes[#r.opcodes])
        assert.equal(1000, r.code)
        assert.equal("closed", r.ended)
        assert.equal("", r.rest)
        assert.is_nil(r.masked) -- a server never masks
        assert.same({ err = "closed", code = 1000, reason = "end" }, r.handler)
      end

      it("a ping is answered with a pong of the same data; a pong is ignored", function()
        local r = exchange("/echo", frame(0x89, "ping data") .. frame(0x8A, "unasked") .. frame(0x89, ""), 2)
        ends_cleanly(r)
        assert.same({ { 10, "ping data" }, { 10, "" } }, payloads(r))
      end)

      it("a ping of 125 bytes is fine", function()
        local r = exchange("/echo", frame(0x89, rep("q", 125)), 1)
        ends_cleanly(r)
        assert.same({ { 10, rep("q", 125) } }, payloads(r))
      end)

      it("16- and 64-bit lengths, each in its shortest form, come back in theirs", function()
        local m126, m64k, m70k = rep("m", 126), rep("n", 65535), rep("o", 70000)
        local r = exchange("/echo", frame(0x82, m126) .. frame(0x82, m64k) .. frame(0x82, m70k), 3)
        ends_cleanly(r)
        assert.same({ { 2, m126 }, { 2, m64k }, { 2, m70k } }, payloads(r))
      end)

      it("fragments with control frames between them; UTF-8 split across fragments", function()
        local r = exchange("/echo",
          frame(0x01, "Hel") .. frame(0x89, "mid") .. frame(0x00, "lo \195") .. frame(0x8A, "")
          .. frame(0x80, "\169!")
          .. frame(0x02, "\0") .. frame(0x00, "") .. frame(0x80, "\1")
          .. frame(0x01, "") .. frame(0x80, ""), 4)
        ends_cleanly(r)
        assert.same({ { 10, "mid" }, { 1, "Hello é!" }, { 2, "\0\1" }, { 1, "" } }, payloads(r))
      end)

      it("every valid UTF-8 edge: U+007F, U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF", function()
        local s = "\127\194\128\223\191\224\160\128\237\159\191\238\128\128\239\191\191\240\144\128\128\244\143\191\191"
        local r = exchange("/echo", frame(0x81, s), 1)
        ends_cleanly(r)
        assert.same({ { 1, s } }, payloads(r))
      end)

      it("frames sent one byte at a time", function()
        local bytes = frame(0x81, "slow") .. frame(0x82, rep("s", 300))
        local pieces = {}
        for i = 1, #bytes do pieces[i] = bytes:sub(i, i) end
        local r = with_server(function(state)
          return raw_exchange(state, "/echo", pieces, "v", 2, frame(0x88, close_payload(1000, "end")))
        end)
        ends_cleanly(r)
        assert.same({ { 1, "slow" }, { 2, rep("s", 300) } }, payloads(r))
      end)

      it("a frame that comes with the upgrade request itself", function()
        local r = with_server(function(state)
          local conn = raw_open(state, "/echo?id=v", frame(0x81, "early"))
          local echo = assert(conn:read(7, { timeout = 10 }))
          assert(conn:write(frame(0x88, close_payload(1000, "end"))))
          local data, ended = read_to_end(conn)
          data = echo .. data
          conn:close()
          wait_until(function() return state.closes.v end)
          local frames, rest = parse_frames(data)
          return { frames = frames, ended = ended, rest = rest, handler = state.closes.v }
        end)
        assert.equal(2, #r.frames)
        assert.same({ 1, "early" }, { r.frames[1].opcode, r.frames[1].payload })
        assert.same({ 8, 1000 }, { r.frames[2].opcode, r.frames[2].code })
        assert.equal("closed", r.ended)
        assert.same({ err = "closed", code = 1000, reason = "end" }, r.handler)
      end)

      it("a close frame with no body is answered with an empty close (the handler sees 1005)", function()
        local r = with_server(function(state)
          return raw_exchange(state, "/echo", frame(0x88, ""), "e")
        end)
        assert.same({ 8 }, r.opcodes)
        assert.equal("", r.frames[1].payload)
        assert.equal("closed", r.ended)
        assert.same({ err = "closed", code = 1005, reason = "" }, r.handler)
      end)

      it("the client's close code and a 123-byte reason reach the handler", function()
        local reason = rep("é", 61) .. "!" -- 123 bytes
        local r = with_server(function(state)
          return raw_exchange(state, "/echo", frame(0x88, close_payload(4999, reason)), "l")
        end)
        assert.same({ 8 }, r.opcodes)
        assert.equal(4999, r.code)
        assert.equal("closed", r.ended)
        assert.same({ err = "closed", code = 4999, reason = reason }, r.handler)
      end)

      it("a message of exactly max_message bytes, in fragments, is fine", function()
        local r = exchange("/small", frame(0x02, rep("a", 500)) .. frame(0x80, rep("b", 500)), 1)
        ends_cleanly(r)
        assert.same({ { 2, rep("a", 500) .. rep("b", 500) } }, payloads(r))
      end)
    end)

    describe("upgrade refusals", function()
      -- Sends a request and reads the whole answer (the server closes).
      local function ask(request)
        return with_server(function(state)
          local conn = assert(eddy.tcp.connect("127.0.0.1", state.port))
          assert(conn:write(request))
          local data, ended = read_to_end(conn)
          conn:close()
          return { status = tonumber(data:match("^HTTP/1%.1 (%d+)")), head = data, ended = ended }
        end)
      end

      local function request(lines_)
        return concat(lines_, "\r\n") .. "\r\n\r\n"
      end

      local base = {
        "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: " .. KEY, "Sec-WebSocket-Version: 13",
      }
      local function without(name, extra)
        local t = { "GET /echo HTTP/1.1" }
        for _, l in ipairs(base) do
          if not l:find("^" .. name .. ":") then t[#t + 1] = l end
        end
        if extra then t[#t + 1] = extra end
        return request(t)
      end

      it("a plain GET gets 400 and the connection closes", function()
        local r = ask(request({ "GET /echo HTTP/1.1", "Host: 127.0.0.1" }))
        assert.equal(400, r.status)
        assert.equal("closed", r.ended)
      end)

      it("no Upgrade header: 400", function()
        assert.equal(400, ask(without("Upgrade")).status)
      end)

      it("an Upgrade to something else: 400", function()
        assert.equal(400, ask(without("Upgrade", "Upgrade: h2c")).status)
      end)

      it("no Sec-WebSocket-Key: 400", function()
        assert.equal(400, ask(without("Sec%-WebSocket%-Key")).status)
      end)

      it("a Sec-WebSocket-Key that is not 16 bytes in base64: 400", function()
        assert.equal(400, ask(without("Sec%-WebSocket%-Key", "Sec-WebSocket-Key: c2hvcnQ=")).status)
      end)

      it("HTTP/1.0: 400", function()
        local req = without("Host"):gsub("HTTP/1%.1", "HTTP/1.0")
        assert.equal(400, ask(req).status)
      end)

      it("Sec-WebSocket-Version 8: 426 naming version 13, and the connection closes", function()
        local r = ask(without("Sec%-WebSocket%-Version", "Sec-WebSocket-Version: 8"))
        assert.equal(426, r.status)
        assert.matches("\r\nSec%-WebSocket%-Version: 13\r\n", r.head)
        assert.equal("closed", r.ended)
      end)

      it("no Sec-WebSocket-Version: 426", function()
        assert.equal(426, ask(without("Sec%-WebSocket%-Version")).status)
      end)

      it("browser-style headers are accepted: Connection: keep-alive, Upgrade and Upgrade: WebSocket", function()
        local r = with_server(function(state)
          local conn = assert(eddy.tcp.connect("127.0.0.1", state.port))
          assert(conn:write(request({
            "GET /echo?id=br HTTP/1.1", "Host: 127.0.0.1", "Upgrade: WebSocket", "Connection: keep-alive, Upgrade",
            "Sec-WebSocket-Key: " .. KEY, "sec-websocket-version: 13", "Origin: http://127.0.0.1",
          })))
          local head = conn:read_until("\r\n\r\n")
          conn:write(frame(0x81, "hi"))
          local echo = conn:read(4, { timeout = 10 })
          conn:write(frame(0x88, close_payload(1000)))
          local data = (echo or "") .. read_to_end(conn)
          conn:close()
          local frames = parse_frames(data)
          return { head = head, first = frames[1] and frames[1].payload }
        end)
        assert.matches("^HTTP/1%.1 101 ", r.head)
        assert.equal("hi", r.first)
      end)

      it("the 101 answer carries the RFC's accept key for the RFC's sample key", function()
        local r = with_server(function(state)
          local conn = assert(eddy.tcp.connect("127.0.0.1", state.port))
          assert(conn:write(upgrade_request("/echo?id=k")))
          local head = conn:read_until("\r\n\r\n")
          conn:write(frame(0x88, close_payload(1000)))
          read_to_end(conn)
          conn:close()
          return head
        end)
        assert.matches("^HTTP/1%.1 101 ", r)
        assert.matches("\r\nUpgrade: websocket", r)
        assert.matches("\r\nConnection: Upgrade", r)
        assert.matches("\r\nSec%-WebSocket%-Accept: s3pPLMBiTxaQ9kYGzzhZRbK%+xOo=", r)
      end)
    end)
  end)

  describe("raw TCP server against the eddy client", function()
    -- A one-connection server that answers the handshake with accept (or
    -- the right key) and then sends bytes; returns what the client's recv
    -- gave and the frames the client sent back.
    local function serve_once(reply, bytes, opts)
      return h.run(function()
        local accept = require("eddy.c.ws").accept
        local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
        local seen = {}
        local t = eddy.spawn(function()
          local conn = srv:accept()
          local head = conn:read_until("\r\n\r\n")
          local key = head:match("\r\n[Ss]ec%-[Ww]eb[Ss]ocket%-[Kk]ey: ([^\r\n]+)")
          conn:write(reply(accept(key)) .. (bytes or ""))
          local data = read_to_end(conn)
          conn:close()
          seen.frames = parse_frames(data)
        end)
        local ws, err, status = eddy.ws.connect("ws://127.0.0.1:" .. srv:port() .. "/", opts)
        local r = { connect = ws and true or { err, status } }
        if ws then
          r.recv = { ws:recv() }
          r.recv2 = { ws:recv() }
          ws:close()
        end
        t:join()
        srv:close()
        local sent = {}
        for _, f in ipairs(seen.frames or {}) do
          sent[#sent + 1] = { opcode = f.opcode, masked = f.masked, code = f.code }
        end
        r.sent = sent
        return r
      end)
    end

    local function ok101(accept)
      return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        .. "Sec-WebSocket-Accept: " .. accept .. "\r\n\r\n"
    end

    it("a server frame, then a server close: the client's frames are masked", function()
      local r = serve_once(ok101, frame(0x81, "hi", { masked = false })
        .. frame(0x88, close_payload(4000, "bye"), { masked = false }))
      assert.same({ "hi", "text" }, r.recv)
      assert.same({ nil, "closed", 4000, "bye" }, r.recv2)
      assert.same({ { opcode = 8, masked = true, code = 4000 } }, r.sent)
    end)

    it("a masked frame from the server: 1002", function()
      local r = serve_once(ok101, frame(0x81, "hi", { masked = true }))
      assert.same({ nil, "closed", 1002, "" }, r.recv)
      assert.same({ { opcode = 8, masked = true, code = 1002 } }, r.sent)
    end)

    it("bad UTF-8 from the server: 1007", function()
      local r = serve_once(ok101, frame(0x81, "\255", { masked = false }))
      assert.same({ nil, "closed", 1007, "" }, r.recv)
      assert.same({ { opcode = 8, masked = true, code = 1007 } }, r.sent)
    end)

    it("close against a server that never answers it: true, and the client ends the connection", function()
      local got = h.run(function()
        local accept = require("eddy.c.ws").accept
        local srv = assert(eddy.tcp.listen("127.0.0.1", 0))
        local seen = {}
        local t = eddy.spawn(function()
          local conn = srv:accept()
          local head = conn:read_until("\r\n\r\n")
          local key = head:match("\r\n[Ss]ec%-[Ww]eb[Ss]ocket%-[Kk]ey: ([^\r\n]+)")
          conn:write(ok101(accept(key)))
          seen.close_frame = parse_frames(conn:read(8, { timeout = 10 }))[1] -- 2 + 4 (mask) + 2 (code)
          -- Never answered: the client must end the connection (RFC 6455,
          -- 7.1.1) after its brief wait, long before this limit.
          seen.after = { conn:read_some(100, { timeout = 8 }) }
          conn:close()
        end)
        local ws = assert(eddy.ws.connect("ws://127.0.0.1:" .. srv:port() .. "/"))
        local r = { close = { ws:close(4000) } }
        r.closed = ws:closed()
        t:join()
        srv:close()
        r.code = seen.close_frame and seen.close_frame.code
        r.after = seen.after
        return r
      end)
      assert.equal(4000, got.code)
      assert.is_true(got.closed)
      assert.same({ true }, got.close)
      assert.same({ nil, "closed" }, got.after)
    end)

    it("a wrong Sec-WebSocket-Accept is refused", function()
      local r = serve_once(function() return ok101("AAAAAAAAAAAAAAAAAAAAAAAAAAA=") end)
      assert.same({ "refused", 101 }, r.connect)
    end)

    it("a 101 without Upgrade: websocket is refused", function()
      local r = serve_once(function(accept)
        return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " .. accept .. "\r\n\r\n"
      end)
      assert.same({ "refused", 101 }, r.connect)
    end)
  end)
end)

describe("rooms across reactor threads and worker processes", function()
  -- Eight members on a chat server run with several threads (the kernel
  -- spreads them); one speaks, and everyone hears it, whichever thread
  -- or worker holds them.
  local function everyone_hears(options)
    local pid, out, status = h.start_eddy(options .. " examples/chat/server.lua 0")
    local port = h.wait_for(out, "chat on http://127%.0%.0%.1:(%d+)/")
    local heard = {}
    h.run(function()
      local members = {}
      for i = 1, 8 do
        members[i] = assert(eddy.ws.connect(("ws://127.0.0.1:%s/ws?name=m%d"):format(port, i)))
      end
      eddy.sleep(0.2) -- all joined, their relays open
      members[1]:send("hello, all threads")
      local wg = eddy.waitgroup()
      for i, ws in ipairs(members) do
        wg:spawn(function()
          local deadline = eddy.now() + 3
          while eddy.now() < deadline do
            local msg = ws:recv(deadline - eddy.now())
            if not msg then break end
            if msg:find("hello, all threads", 1, true) then
              heard[i] = true
              break
            end
          end
          ws:close()
        end)
      end
      wg:wait()
    end)
    h.sh("kill -TERM " .. pid)
    h.wait_exit(pid)
    assert.equal("rc=0", h.wait_for(status, "(rc=%d+)"))
    for i = 1, 8 do assert.is_true(heard[i] == true, "member " .. i .. " did not hear it") end
  end

  it("reaches members on every reactor thread", function()
    everyone_hears("--threads 3")
  end)

  it("reaches members in every worker process", function()
    everyone_hears("--workers 2 --threads 2")
  end)
end)

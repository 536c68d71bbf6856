-- queue_memory.lua: eddy.queue's memory backend against a plain channel
-- (eddy.channel), in one run. Both carry the same table values through
-- the same tasks of one thread: C tasks push N messages between them,
-- then C tasks take them all (the queue also acks each one, its
-- at-least-once bookkeeping, and encodes and decodes each value, since a
-- memory queue's messages may cross threads); then one task does
-- push+pop(+ack) one message at a time, for the latency of a round.
-- Prints throughput and latency, and the ratios queue / channel and
-- queue / channel carrying encoded values.
--   build/eddy bench/queue_memory.lua [N] [C] [rounds]
local eddy = require "eddy"
local clock = require("eddy.c.task").clock -- monotonic, ns precision

local N = tonumber(arg and arg[1]) or 200000
local C = tonumber(arg and arg[2]) or 64
local ROUNDS = tonumber(arg and arg[3]) or 3
local MSG = { user = 42, email = "someone@example.com", pad = ("x"):rep(16) }

local function parallel(fn)
  local wg = eddy.waitgroup()
  for i = 1, C do wg:spawn(fn, i) end
  wg:wait()
end

local function share(i) return math.floor(N / C) + (i <= N % C and 1 or 0) end

-- push(v) / take() / round() for each contender.
local function queue_ops(name)
  local q = assert(eddy.queue.open(name))
  return {
    push = function(v) assert(q:push(v)) end,
    take = function() local m = q:pop(5) assert(q:ack(m)) return m.body end,
  }
end

local function channel_ops()
  local ch = eddy.channel(N)
  return {
    push = function(v) assert(ch:send(v)) end,
    take = function() return ch:recv(5) end,
  }
end

-- The same channel carrying each value encoded, as the queue must (its
-- messages may cross threads): what is left of the ratio is the queue's
-- own cost (C calls, a lock, at-least-once bookkeeping).
local codec = require "eddy.codec"
local function codec_channel_ops()
  local ch = eddy.channel(N)
  return {
    push = function(v) assert(ch:send(codec.encode(v))) end,
    take = function() return codec.decode(ch:recv(5)) end,
  }
end

local function measure(ops)
  collectgarbage("collect")
  local t0 = clock()
  parallel(function(i) for _ = 1, share(i) do ops.push(MSG) end end)
  local t1 = clock()
  parallel(function(i) for _ = 1, share(i) do ops.take() end end)
  local t2 = clock()
  -- Latency: one task, one message at a time.
  local lat = {}
  for i = 1, 20000 do
    local s = clock()
    ops.push(MSG)
    ops.take()
    lat[i] = clock() - s
  end
  table.sort(lat)
  return N / (t1 - t0), N / (t2 - t1), lat[math.floor(#lat / 2) + 1] * 1e6, lat[math.floor(#lat * 0.99)] * 1e6
end

eddy.run(function()
  print(("N=%d C=%d, %d rounds"):format(N, C, ROUNDS))
  print("round  what        push/s    take/s  p50 us  p99 us")
  for r = 1, ROUNDS do
    local qp, qt, q50, q99 = measure(queue_ops("bench-" .. r))
    local cp, ct, c50, c99 = measure(channel_ops())
    local ep, et, e50, e99 = measure(codec_channel_ops())
    print(("%5d  queue   %9.0f %9.0f %7.2f %7.2f"):format(r, qp, qt, q50, q99))
    print(("%5d  channel %9.0f %9.0f %7.2f %7.2f"):format(r, cp, ct, c50, c99))
    print(("%5d  ch+codec%9.0f %9.0f %7.2f %7.2f"):format(r, ep, et, e50, e99))
    print(("%5d  ratio   %9.2f %9.2f %7.2f %7.2f   queue / channel (latency: above 1 is slower)")
      :format(r, qp / cp, qt / ct, q50 / c50, q99 / c99))
    print(("%5d  ratio   %9.2f %9.2f %7.2f %7.2f   queue / channel+codec")
      :format(r, qp / ep, qt / et, q50 / e50, q99 / e99))
  end
end)

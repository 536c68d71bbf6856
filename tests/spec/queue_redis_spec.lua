-- eddy.queue's Redis Streams backend against a real redis-server: the
-- backend contract (tests/queue_backend_cases.lua), then what is Redis's
-- own: the keys it uses, "full" never trimming, a server restart.
local h = require "helper"
local eddy = h.eddy
local redis = require "eddy.redis"
local rq = require "eddy.queue.redis"

local host, port = h.server("redis")
-- A database of this spec's own on the shared test server.
local URL = ("redis://%s:%d/7"):format(host, port)

local function open(name, opts)
  local o = { url = URL, poll = 0.05 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return assert(rq.open(name, o))
end

local function with_conn(fn)
  return h.run(function()
    local c = assert(redis.connect(URL))
    local r = { fn(c) }
    c:close()
    return unpack(r)
  end)
end

describe("eddy.queue.redis", function()
  setup(function() with_conn(function(c) c:call("FLUSHDB") end) end)

  describe("backend contract", function()
    require("queue_backend_cases")(it, assert, open)
  end)

  it("keeps a stream per queue with a consumer group; acked entries leave it", function()
    h.run(function()
      local b = open("keys")
      b:push("a")
      b:push("b")
      local m = b:pop(1)
      b:ack(m.id)
      b:close()
    end)
    with_conn(function(c)
      assert.equal("stream", c:call("TYPE", "eddy:q:keys"))
      assert.equal(1, c:call("XLEN", "eddy:q:keys"))
      local groups = c:call("XINFO", "GROUPS", "eddy:q:keys")
      assert.equal(1, #groups)
      -- The closed consumer held nothing: it left the group.
      assert.same({}, c:call("XINFO", "CONSUMERS", "eddy:q:keys", "eddy"))
    end)
  end)

  it("never trims: at the maximum the stream keeps every unconsumed entry", function()
    h.run(function()
      local b = open("notrim", { max = 5 })
      for i = 1, 5 do assert(b:push("n" .. i)) end
      for _ = 1, 50 do assert.same({ nil, "full" }, { b:push("over") }) end
      for i = 1, 5 do
        local m = assert(b:pop(1))
        assert.equal("n" .. i, m.payload)
        b:ack(m.id)
      end
      b:close()
    end)
  end)

  it("takes what a producer in another process pushed, in order", function()
    local code = [[
      package.cpath = "./]] .. h.build .. [[/?.so;" .. package.cpath
      local eddy = require "eddy"
      assert(eddy.run(function()
        local b = assert(require("eddy.queue.redis").open("xproc", { url = "]] .. URL .. [[" }))
        for i = 1, 50 do assert(b:push("p" .. i)) end
        b:close()
        return true
      end))
    ]]
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(code)
    f:close()
    local rc, out = h.sh(("%s %s"):format(h.luajit, path))
    os.remove(path)
    assert.equal(0, rc, out)
    h.run(function()
      local b = open("xproc")
      for i = 1, 50 do
        local m = assert(b:pop(2))
        assert.equal("p" .. i, m.payload)
        b:ack(m.id)
      end
      b:close()
    end)
  end)

  it("answers nil, err when the server is gone", function()
    local phost, pport, stop, dir = h.private_server("redis")
    local url = ("redis://%s:%d"):format(phost, pport)
    h.run(function()
      local b = assert(rq.open("gone", { url = url }))
      assert(b:push("before"))
      b:close()
    end)
    stop()
    h.run(function()
      local b, err = rq.open("gone", { url = url })
      assert.is_nil(b)
      assert.truthy(err)
    end)
    os.execute("rm -rf " .. dir)
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() rq.open("") end)
    assert.has_error(function() rq.open("x", { url = 42 }) end)
    h.run(function()
      local b = open("args")
      assert.has_error(function() b:push(42) end)
      assert.has_error(function() b:ack(12) end)
      b:close()
    end)
  end)
end)

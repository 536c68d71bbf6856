-- examples/db/service.lua against the tests' MariaDB and redis-server,
-- driven with curl: writes, reads through the cache, an update dropping
-- the cached copy, bad input, and a Redis that is down.

local h = require "helper"

local function curl(port, args)
  local rc, out = h.sh(("curl -s -m 10 -D - %s http://127.0.0.1:%s"):format(args, port))
  assert.equal(0, rc, out)
  local status = tonumber(out:match("^HTTP/1.1 (%d+)"))
  local cache = out:match("\r\n[Xx]%-[Cc]ache: (%a+)\r\n")
  local body = out:match("\r\n\r\n(.*)$")
  return status, body, cache
end

local function start(redis_url)
  local mhost, mport = h.server("mysql")
  local pid, out = h.start_eddy(("examples/db/service.lua 0 %s:%d %s"):format(mhost, mport, redis_url))
  local port = h.wait_for(out, "listening port=(%d+)")
  return pid, out, port
end

local function stop(pid)
  h.sh("kill " .. pid)
  h.wait_exit(pid)
end

describe("examples/db/service.lua", function()
  it("writes to MariaDB and reads through the Redis cache", function()
    local rhost, rport = h.server("redis")
    local pid, out, port = start(("redis://%s:%d/0"):format(rhost, rport))
    local status, body
    -- curl's URL comes last: the path goes after the port
    assert.equal(400, (curl(port .. "/users", [[-X POST -d 'not json']])))
    status, body = curl(port .. "/users", [[-X POST -d '{"name":"Ada","email":"ada@example.org"}']])
    assert.equal(201, status, body)
    local id = body:match('"id":(%d+)')
    assert.truthy(id, body)
    local cache
    status, body, cache = curl(port .. "/users/" .. id, "")
    assert.equal(200, status)
    assert.equal("miss", cache)
    assert.matches('"name":"Ada"', body)
    status, body, cache = curl(port .. "/users/" .. id, "")
    assert.equal("hit", cache)
    assert.matches('"email":"ada@example.org"', body)
    status = curl(port .. "/users/" .. id, [[-X PUT -d '{"name":"Ada L.","email":"ada@example.org"}']])
    assert.equal(200, status)
    status, body, cache = curl(port .. "/users/" .. id, "")
    assert.equal("miss", cache)
    assert.matches('"name":"Ada L."', body)
    assert.equal(404, (curl(port .. "/users/999999999", "")))
    stop(pid)
    assert.is_nil(h.read_file(out):match("error"), h.read_file(out))
  end)

  it("answers from MariaDB when Redis is down, and keeps serving", function()
    local pid, _, port = start("redis://127.0.0.1:1/0") -- nothing listens on port 1
    local status, body = curl(port .. "/users", [[-X POST -d '{"name":"Bo","email":"bo@example.org"}']])
    assert.equal(201, status, body)
    local id = body:match('"id":(%d+)')
    for _ = 1, 3 do
      local s, b, cache = curl(port .. "/users/" .. id, "")
      assert.equal(200, s)
      assert.equal("off", cache)
      assert.matches('"name":"Bo"', b)
    end
    stop(pid)
  end)
end)

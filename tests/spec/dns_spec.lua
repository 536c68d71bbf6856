-- eddy.dns: names, literals, families, errors, option checks and the cache.
-- Names under .invalid never exist (RFC 6761), so "not found" is certain.
local h = require "helper"
local eddy = h.eddy

-- A .invalid name no other test asks for, so that it is not cached yet.
local counter = 0
local function fresh_invalid()
  counter = counter + 1
  return string.format("eddy-spec-%d-%d-%d.invalid", os.time(), math.random(1e9), counter)
end

-- Calls fn() and tells whether it waited: a task spawned just before runs
-- only once the caller gives up the loop.
local function waited(fn)
  local ran = false
  eddy.spawn(function() ran = true end)
  local r = { fn() }
  local did_wait = ran
  eddy.sleep(0) -- let the spawned task end
  return did_wait, r
end

describe("eddy.dns", function()
  it("resolves localhost", function()
    local addrs = h.run(function() return eddy.dns.resolve("localhost") end)
    assert.is_table(addrs)
    local found = false
    for _, ip in ipairs(addrs) do
      if ip == "127.0.0.1" or ip == "::1" then found = true end
    end
    assert.is_true(found, "localhost gave " .. table.concat(addrs, ", "))
  end)

  it("returns IP literals as themselves, without waiting", function()
    local r = h.run(function()
      local out = {}
      for _, ip in ipairs({ "127.0.0.1", "192.0.2.7", "::1", "2001:db8::1", "fe80::1" }) do
        local w, res = waited(function() return eddy.dns.resolve(ip) end)
        out[ip] = { waited = w, res = res[1] }
      end
      return out
    end)
    for _, ip in ipairs({ "127.0.0.1", "192.0.2.7", "::1", "2001:db8::1", "fe80::1" }) do
      assert.same({ waited = false, res = { ip } }, r[ip])
    end
  end)

  it("answers nil, 'not found' for a name that does not exist", function()
    local r = h.run(function()
      return {
        any = { eddy.dns.resolve(fresh_invalid()) },
        v4 = { eddy.dns.resolve(fresh_invalid(), { family = "inet" }) },
        v6 = { eddy.dns.resolve(fresh_invalid(), { family = "inet6", timeout = 5 }) },
      }
    end)
    assert.same({ nil, "not found" }, r.any)
    assert.same({ nil, "not found" }, r.v4)
    assert.same({ nil, "not found" }, r.v6)
  end)

  it("family limits the answers to one address family", function()
    local r = h.run(function()
      return {
        inet = eddy.dns.resolve("localhost", { family = "inet" }),
        ipv4 = eddy.dns.resolve("localhost", { family = "ipv4" }),
        any = eddy.dns.resolve("localhost", { family = "any" }),
        inet6 = { eddy.dns.resolve("localhost", { family = "inet6" }) },
      }
    end)
    assert.is_true(#r.inet >= 1)
    for _, ip in ipairs(r.inet) do assert.matches("^%d+%.%d+%.%d+%.%d+$", ip) end
    assert.same(r.inet, r.ipv4)
    assert.is_true(#r.any >= 1)
    -- localhost may have no IPv6 address here; what comes back must be IPv6.
    if r.inet6[1] then
      for _, ip in ipairs(r.inet6[1]) do assert.matches(":", ip) end
    else
      assert.equal("not found", r.inet6[2])
    end
  end)

  it("raises on a bad family", function()
    h.run(function()
      assert.has_error(function() eddy.dns.resolve("localhost", { family = "ipx" }) end)
      assert.has_error(function() eddy.dns.resolve("localhost", { family = 4 }) end)
    end)
  end)

  it("checks the timeout option", function()
    h.run(function()
      assert.has_error(function() eddy.dns.resolve("localhost", { timeout = -1 }) end)
      assert.has_error(function() eddy.dns.resolve("localhost", { timeout = "soon" }) end)
      assert.has_error(function() eddy.dns.resolve("localhost", "soon") end)
      assert.has_error(function() eddy.dns.resolve("localhost", { timeout = 0 / 0 }) end)
      -- A good one is accepted.
      assert.is_table(eddy.dns.resolve("localhost", { timeout = 5 }))
      assert.is_table(eddy.dns.resolve("127.0.0.1", { timeout = 0.5, family = "inet" }))
    end)
  end)

  it("raises on a bad name", function()
    h.run(function()
      assert.has_error(function() eddy.dns.resolve() end)
      assert.has_error(function() eddy.dns.resolve(nil) end)
      assert.has_error(function() eddy.dns.resolve("") end)
      assert.has_error(function() eddy.dns.resolve(string.rep("a", 300)) end)
      assert.has_error(function() eddy.dns.resolve("local\0host") end)
    end)
  end)

  it("answers a second lookup of the same name from the cache, without waiting", function()
    local r = h.run(function()
      -- One lookup right after the other, as sequential code does.
      local name = fresh_invalid()
      local ran1, ran2 = false, false
      eddy.spawn(function() ran1 = true end)
      local r1 = { eddy.dns.resolve(name) }
      local w1 = ran1
      eddy.spawn(function() ran2 = true end)
      local r2 = { eddy.dns.resolve(name) }
      local w2 = ran2
      eddy.sleep(0)
      return { w1 = w1, r1 = r1, w2 = w2, r2 = r2 }
    end)
    -- (The first goes to the resolver; c-ares may fail it at once when no
    -- name server answers, so whether it waited is not checked.)
    assert.same({ nil, "not found" }, r.r1)
    assert.same({ nil, "not found" }, r.r2)
    assert.is_false(r.w2, "the second lookup waited: it was not answered from the cache")
  end)

  it("answers from the cache once the loop has turned, too", function()
    local r = h.run(function()
      local name = fresh_invalid()
      local r1 = { eddy.dns.resolve(name) }
      eddy.sleep(0.01)
      local w2, r2 = waited(function() return eddy.dns.resolve(name) end)
      return { r1 = r1, w2 = w2, r2 = r2 }
    end)
    assert.same({ nil, "not found" }, r.r1)
    assert.same({ nil, "not found" }, r.r2)
    assert.is_false(r.w2)
  end)

  it("keeps families apart in the cache", function()
    local r = h.run(function()
      local v4 = eddy.dns.resolve("localhost", { family = "inet" })
      eddy.sleep(0.01)
      local v6 = { eddy.dns.resolve("localhost", { family = "inet6" }) }
      local v4again = eddy.dns.resolve("localhost", { family = "inet" })
      return { v4 = v4, v6 = v6, v4again = v4again }
    end)
    assert.same(r.v4, r.v4again)
    for _, ip in ipairs(r.v6[1] or {}) do assert.matches(":", ip) end
  end)

  it("answers every task that asks for the same name at once", function()
    local r = h.run(function()
      local name = fresh_invalid()
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = eddy.spawn(function() return eddy.dns.resolve(name, { timeout = 5 }) end)
      end
      local out = {}
      for i = 1, 5 do out[i] = { tasks[i]:join(10) } end
      return out
    end)
    for i = 1, 5 do assert.same({ true, nil, "not found" }, r[i]) end
  end)

  it("cancelling a task waiting in resolve answers nil, 'cancelled'", function()
    local r = h.run(function()
      local seen
      local t = eddy.spawn(function() seen = { eddy.dns.resolve(fresh_invalid()) } end)
      eddy.yield()
      local status = t:status()
      t:cancel()
      t:join(5)
      -- The lookup it left still completes (and fills the cache) quietly.
      eddy.sleep(0.05)
      return { status = status, seen = seen }
    end)
    assert.equal("waiting", r.status)
    assert.same({ nil, "cancelled" }, r.seen)
  end)

  it("must be called inside a task for a name that needs a lookup", function()
    -- Outside eddy.run there is no task to suspend.
    local ok, err = pcall(eddy.dns.resolve, fresh_invalid())
    assert.is_false(ok)
    assert.matches("task", tostring(err))
  end)
end)

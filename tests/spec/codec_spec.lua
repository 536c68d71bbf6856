-- eddy.codec: round trips of every kind of value that crosses (nil,
-- booleans, numbers, strings, nested tables), lists of values, the values
-- that cannot be encoded, and decoding damaged or hostile bytes.
local h = require "helper"
local eddy = h.eddy
local ffi = require "ffi"

local codec = eddy.codec
local unpack = table.unpack or unpack

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Encodes the values, decodes them again, returns what came back packed.
local function round_trip(...)
  local s, err = codec.encode(...)
  assert(s, err)
  return pack(codec.decode(s))
end

-- The one value that came back from a round trip of v.
local function rt1(v)
  local r = round_trip(v)
  assert.equal(1, r.n)
  return r[1]
end

-- Decodes s expecting it to raise; returns the message.
local function decode_error(s)
  local ok, err = pcall(codec.decode, s)
  assert.is_false(ok, "decode should have raised")
  assert.equal("string", type(err))
  return err
end

-- Encodes the values expecting nil, err; returns err.
local function encode_error(...)
  local r = pack(codec.encode(...))
  assert.equal(2, r.n)
  assert.is_nil(r[1])
  assert.equal("string", type(r[2]))
  return r[2]
end

-- A varint as the format writes it (7 bits a byte, low first).
local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = math.floor(n / 128)
    if n > 0 then b = b + 128 end
    out[#out + 1] = string.char(b)
  until n == 0
  return table.concat(out)
end

-- The header of a list of n values: 'E', then a table of n array values.
local function list(n)
  return "E" .. "T" .. varint(n) .. "\0"
end

-- A table holding a table ... n tables deep.
local function nest(n)
  local t = {}
  for _ = 2, n do t = { t } end
  return t
end

local function depth_of(t)
  local d = 0
  while type(t) == "table" do
    d = d + 1
    t = t[1]
  end
  return d
end

describe("eddy.codec round trips", function()
  it("nil and booleans", function()
    local r = round_trip(nil, true, false)
    assert.equal(3, r.n)
    assert.is_nil(r[1])
    assert.is_true(r[2])
    assert.is_false(r[3])
  end)

  it("integers, including the ends of the exact range, go as 'i'", function()
    for _, n in ipairs { 0, 1, -1, 127, 128, -64, -65, 2^31, -2^31, 2^32,
                         2^53, -2^53, 2^53 - 1, -(2^53 - 1) } do
      local s = codec.encode(n)
      assert.equal("i", s:sub(5, 5), "tag of " .. n)
      assert.equal(n, rt1(n))
    end
    -- The shortest forms: zigzag puts 0, -1, 1 at 0, 1, 2.
    assert.equal("ET\1\0i\0", codec.encode(0))
    assert.equal("ET\1\0i\1", codec.encode(-1))
    assert.equal("ET\1\0i\2", codec.encode(1))
  end)

  it("integral numbers past 2^53 go as doubles and come back exact", function()
    for _, n in ipairs { 2^53 + 2, -(2^53 + 2), 2^60, -2^60, 2^63, 2^64,
                         1e300 } do
      local s = codec.encode(n)
      assert.equal("d", s:sub(5, 5), "tag of " .. n)
      assert.equal(9 + 4, #s)
      assert.equal(n, rt1(n))
    end
  end)

  it("fractional numbers come back bit for bit", function()
    for _, n in ipairs { 0.5, -0.5, 1.25, 1 / 3, -1 / 3, math.pi, 1e-300,
                         5e-324, 1.7976931348623157e308, 2^51 + 0.5 } do
      local s = codec.encode(n)
      assert.equal("d", s:sub(5, 5))
      assert.equal(n, rt1(n))
    end
    -- Little-endian IEEE 754: 0.5 is 0x3FE0000000000000.
    assert.equal("ET\1\0d\0\0\0\0\0\0\224\63", codec.encode(0.5))
  end)

  it("-0.0 keeps its sign", function()
    local z = -0.0
    assert.equal(-math.huge, 1 / z) -- the test's own -0.0 is one
    local s = codec.encode(z)
    assert.equal("d", s:sub(5, 5)) -- not 'i': zigzag has no -0
    local back = rt1(z)
    assert.equal(0, back)
    assert.equal(-math.huge, 1 / back)
    assert.equal(math.huge, 1 / rt1(0))
    -- in a table too
    assert.equal(-math.huge, 1 / rt1({ z })[1])
  end)

  it("NaN, inf and -inf", function()
    local nan = rt1(0 / 0)
    assert.equal("number", type(nan))
    assert.is_true(nan ~= nan)
    assert.equal(math.huge, rt1(math.huge))
    assert.equal(-math.huge, rt1(-math.huge))
    assert.equal("d", codec.encode(math.huge):sub(5, 5))
  end)

  it("strings with NUL bytes, every byte value, and empty", function()
    assert.equal("a\0b\0", rt1("a\0b\0"))
    assert.equal("\0", rt1("\0"))
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    all = table.concat(all)
    assert.equal(all, rt1(all))
    assert.equal("", rt1(""))
    assert.equal("ET\1\0s\0", codec.encode(""))
    -- a string that looks like an encoding stays a string
    local inner = codec.encode(1, 2)
    assert.equal(inner, rt1(inner))
  end)

  it("a 1 MB string", function()
    local chunk = {}
    for b = 0, 255 do chunk[#chunk + 1] = string.char(b) end
    local big = table.concat(chunk):rep(4096)
    assert.equal(1024 * 1024, #big)
    local s = codec.encode(big)
    -- 'E' 'T' 1 0 's' varint(2^20) (3 bytes) then the bytes
    assert.equal(#big + 8, #s)
    local back = codec.decode(s)
    assert.equal(#big, #back)
    assert.is_true(back == big)
  end)

  it("arrays, hashes and mixed tables, nested", function()
    local arr = { 1, 2.5, "three", true, false }
    assert.same(arr, rt1(arr))
    local hash = { a = 1, b = "two", c = { d = { e = "deep" } } }
    assert.same(hash, rt1(hash))
    local mixed = { 10, 20, 30, x = "y", [0] = "zero", [-1] = "minus",
                    nested = { { 1 }, { 2, { 3 } }, k = {} } }
    assert.same(mixed, rt1(mixed))
    assert.same({}, rt1({}))
    assert.equal("ET\1\0T\0\0", codec.encode({}))
  end)

  it("an array goes as an array part, a hash as pairs", function()
    assert.equal("ET\1\0T\3\0i\2i\4i\6", codec.encode({ 1, 2, 3 }))
    assert.equal("ET\1\0T\0\1s\1ai\2", codec.encode({ a = 1 }))
  end)

  it("hashes of 127, 128 and 20,000 pairs, nested in a large table, with the canonical count", function()
    for _, n in ipairs({ 127, 128, 16383, 16384, 20000 }) do
      local t = {}
      for i = 1, n do t["k" .. i] = i end
      local outer = { "before", t, x = { "after" } }
      assert.same(outer, rt1(outer))
      -- the count is written as few bytes as it takes, as for narray
      local s = codec.encode({ [true] = t })
      assert.equal("ET\1\0T\0\1tT\0" .. varint(n), s:sub(1, 10 + #varint(n)))
    end
  end)

  it("boolean keys and float keys", function()
    local t = { [true] = "yes", [false] = "no", [1.5] = "one and a half",
                [-0.25] = "neg", [2^60] = "big", [math.huge] = "inf",
                [-math.huge] = "-inf" }
    local back = rt1(t)
    assert.same(t, back)
    assert.equal("yes", back[true])
    assert.equal("no", back[false])
    assert.equal("one and a half", back[1.5])
    assert.equal("inf", back[math.huge])
  end)

  it("integral keys past the array part come back as the same keys", function()
    local t = { [1] = "a", [2] = "b", [100] = "c", [2^53] = "d", [0] = "e" }
    local back = rt1(t)
    assert.same(t, back)
  end)

  it("tables as keys come back as fresh tables with the same contents", function()
    local k1, k2 = { 1, 2 }, { name = "k" }
    local back = rt1({ [k1] = "first", [k2] = { [k1] = true } })
    local seen = {}
    for k, v in pairs(back) do
      assert.equal("table", type(k))
      if k.name then
        seen.k2 = true
        assert.same({ name = "k" }, k)
        -- the inner key is one more fresh copy of k1
        local ik, iv = next(v)
        assert.same({ 1, 2 }, ik)
        assert.is_true(iv)
        assert.is_nil(next(v, ik))
      else
        seen.k1 = true
        assert.same({ 1, 2 }, k)
        assert.equal("first", v)
      end
      assert.is_true(k ~= k1 and k ~= k2)
    end
    assert.same({ k1 = true, k2 = true }, seen)
  end)

  -- Holes: the array part runs to the border that # finds; a nil inside it
  -- goes as nil and is left unset, the values past it go as pairs. So what
  -- comes back holds exactly the same keys and values, holes included,
  -- though # of it may be another border.
  it("sparse arrays with holes come back with the same keys, holes kept", function()
    local cases = {
      { 1, nil, 3 },
      { nil, nil, 3 },
      { 1, 2, nil },
      { [1] = 1, [1000] = 2 },
      { [2] = "b", [4] = "d" },
    }
    for _, t in ipairs(cases) do
      local back = rt1(t)
      assert.same(t, back)
      local nkeys, nback = 0, 0
      for _ in pairs(t) do nkeys = nkeys + 1 end
      for _ in pairs(back) do nback = nback + 1 end
      assert.equal(nkeys, nback)
    end
    local back = rt1({ 1, nil, 3 })
    assert.equal(1, back[1])
    assert.is_nil(back[2])
    assert.equal(3, back[3])
  end)

  it("a shared subtable (a DAG) is fine, and comes back as two copies", function()
    local shared = { 1, 2, x = "s" }
    local back = rt1({ a = shared, b = shared, list = { shared, shared } })
    assert.same(shared, back.a)
    assert.same(shared, back.b)
    assert.is_true(back.a ~= back.b)
    assert.is_true(back.list[1] ~= back.list[2])
    back.a.x = "changed"
    assert.equal("s", back.b.x)
    -- the same table as two values of the list
    local r = round_trip(shared, shared)
    assert.equal(2, r.n)
    assert.same(shared, r[1])
    assert.same(shared, r[2])
    assert.is_true(r[1] ~= r[2])
  end)

  it("metatables stay behind: only the raw contents cross", function()
    local t = setmetatable({ 1, 2 }, {
      __index = function() return "from __index" end,
      __len = function() return 10 end,
      __newindex = function() error("no") end,
    })
    local back = rt1(t)
    assert.is_nil(getmetatable(back))
    assert.same({ 1, 2 }, back)
    assert.is_nil(back.missing)
  end)

  it("tables nested 99 deep", function()
    local back = rt1(nest(99))
    assert.equal(99, depth_of(back))
  end)

  it("whatever nesting encode accepts, decode accepts (100 deep)", function()
    local s, err = codec.encode(nest(100))
    assert.is_string(s, err)
    local ok, back = pcall(codec.decode, s)
    assert.is_true(ok, back)
    assert.equal(100, depth_of(back))
  end)

  it("re-encoding what decode returned gives the same bytes (arrays)", function()
    local s = assert(codec.encode({ 1, -2, 2.5, "x\0y", { true, false, {} },
                                    { { { "deep" } } } }, 7, "last"))
    assert.equal(s, codec.encode(codec.decode(s)))
    -- and once more
    local again = codec.encode(codec.decode(codec.encode(codec.decode(s))))
    assert.equal(s, again)
  end)

  it("a decoded table is a fresh one each time", function()
    local s = codec.encode({ 1 })
    local a, b = codec.decode(s), codec.decode(s)
    assert.is_true(a ~= b)
    a[1] = 2
    assert.equal(1, b[1])
  end)
end)

describe("eddy.codec lists of values", function()
  it("zero values encode and decode to zero values", function()
    local s = codec.encode()
    assert.equal("ET\0\0", s)
    assert.equal(0, select("#", codec.decode(s)))
  end)

  it("the count of values comes back, trailing and embedded nils kept", function()
    local cases = {
      pack(nil),
      pack(nil, nil, nil),
      pack(1, nil),
      pack(nil, 1),
      pack(1, nil, nil, 2, nil),
      pack("a", nil, {}, nil, false, nil, nil),
    }
    for _, c in ipairs(cases) do
      local s = codec.encode(unpack(c, 1, c.n))
      assert.equal(c.n, select("#", codec.decode(s)))
      local r = pack(codec.decode(s))
      for i = 1, c.n do
        assert.same(c[i], r[i])
      end
    end
  end)

  it("many values", function()
    local t = {}
    for i = 1, 1000 do t[i] = i % 7 == 0 and nil or i end
    local r = round_trip(unpack(t, 1, 1000))
    assert.equal(1000, r.n)
    for i = 1, 1000 do assert.equal(t[i], r[i]) end
  end)

  it("at most 4096 values in a list, both ways", function()
    local t = {}
    for i = 1, 5000 do t[i] = i end
    local s = assert(codec.encode(unpack(t, 1, 4096)))
    assert.equal(4096, select("#", codec.decode(s)))
    local none, err = codec.encode(unpack(t, 1, 4097))
    assert.is_nil(none)
    assert.equal("too many values (at most 4096)", err)
    local forged = "ET" .. varint(5000) .. "\0" .. ("n"):rep(5000)
    assert.equal("eddy.codec.decode: too many values", decode_error(forged))
  end)
end)

describe("eddy.codec.encode errors", function()
  it("a function, named with its 1-based position", function()
    assert.equal("value 1: a function cannot be encoded",
                 encode_error(function() end))
    assert.equal("value 2: a function cannot be encoded",
                 encode_error(1, print, 3))
    assert.equal("value 3: a function cannot be encoded",
                 encode_error(nil, nil, print))
  end)

  it("a function inside a table, as value or as key", function()
    assert.equal("value 1: a function cannot be encoded",
                 encode_error({ f = print }))
    assert.equal("value 2: a function cannot be encoded",
                 encode_error(1, { 1, 2, { print } }))
    assert.equal("value 1: a function cannot be encoded",
                 encode_error({ [print] = 1 }))
  end)

  it("userdata, a coroutine, cdata", function()
    assert.equal("value 1: a userdata cannot be encoded",
                 encode_error(io.stdout))
    assert.equal("value 2: a thread cannot be encoded",
                 encode_error("x", coroutine.create(function() end)))
    assert.equal("value 1: a cdata cannot be encoded",
                 encode_error(ffi.new("int")))
    assert.equal("value 1: a cdata cannot be encoded",
                 encode_error({ n = ffi.new("int64_t", 1) }))
  end)

  it("a table that contains itself, directly or indirectly", function()
    local t = {}
    t[1] = t
    assert.equal("value 1: a table that contains itself cannot be encoded",
                 encode_error(t))
    local k = {}
    k[k] = true
    assert.equal("value 1: a table that contains itself cannot be encoded",
                 encode_error(k))
    local a, b, c = {}, {}, {}
    a.next, b.next, c.next = b, c, a
    assert.equal("value 2: a table that contains itself cannot be encoded",
                 encode_error(1, a))
  end)

  it("nesting deeper than 100", function()
    assert.equal("value 1: tables nested too deep to encode",
                 encode_error(nest(101)))
    assert.equal("value 3: tables nested too deep to encode",
                 encode_error(1, 2, { x = nest(100) }))
    assert.equal("value 1: tables nested too deep to encode",
                 encode_error(nest(1000)))
  end)

  it("encode still works after a failure", function()
    encode_error(print)
    local t = {}
    t.t = t
    encode_error(t)
    assert.same({ 1, 2 }, rt1({ 1, 2 }))
  end)
end)

describe("eddy.codec.decode of damaged input", function()
  -- A valid encoding with every kind of value in it.
  local valid = codec.encode(nil, true, false, 0, -300, 2^60, 0.5, -0.0,
    "str\0ing", "", { 1, 2, { a = "b", [true] = 1.5 }, [{ "k" }] = {} },
    { x = { y = { z = "deep" } } }, 1e100)

  it("the sample decodes", function()
    assert.equal(13, select("#", codec.decode(valid)))
  end)

  it("an empty string or another format byte", function()
    assert.equal("eddy.codec.decode: not an eddy encoding", decode_error(""))
    assert.equal("eddy.codec.decode: not an eddy encoding",
                 decode_error("X" .. valid:sub(2)))
    assert.equal("eddy.codec.decode: not an eddy encoding",
                 decode_error('{"json": true}'))
    assert.equal("eddy.codec.decode: not an eddy encoding",
                 decode_error("e" .. valid:sub(2)))
  end)

  it("no string at all is a bad argument", function()
    local ok, err = pcall(codec.decode)
    assert.is_false(ok)
    assert.matches("bad argument #1", err)
  end)

  it("every truncation raises 'truncated'", function()
    for n = 1, #valid - 1 do
      local ok, err = pcall(codec.decode, valid:sub(1, n))
      assert.is_false(ok, "prefix of " .. n .. " bytes decoded")
      assert.equal("eddy.codec.decode: truncated", err, "prefix of " .. n)
    end
  end)

  it("a value that is not a list of values", function()
    assert.equal("eddy.codec.decode: not a list of values",
                 decode_error("Ei\2"))
    assert.equal("eddy.codec.decode: not a list of values",
                 decode_error("ET\0\1s\1ai\2"))
  end)

  it("random byte flips decode or raise cleanly", function()
    math.randomseed(20240611)
    local decoded, raised = 0, 0
    for _ = 1, 3000 do
      local bytes = { valid:byte(1, -1) }
      for _ = 1, math.random(1, 3) do
        local i = math.random(2, #bytes)
        bytes[i] = math.random(0, 255)
      end
      local s = string.char(unpack(bytes))
      local r = pack(pcall(codec.decode, s))
      if r[1] then
        decoded = decoded + 1
        -- what came back is plain values: they encode again
        local again = codec.encode(unpack(r, 2, r.n))
        assert.is_string(again)
      else
        raised = raised + 1
        assert.equal("string", type(r[2]))
        assert.matches("^eddy%.codec%.decode: ", r[2])
      end
    end
    assert.is_true(raised > 0)
    assert.is_true(decoded > 0)
  end)

  it("a huge declared string length raises 'truncated' without allocating", function()
    for _, n in ipairs { 2^31, 2^40, 2^53, 2^63 } do
      assert.equal("eddy.codec.decode: truncated",
                   decode_error(list(1) .. "s" .. varint(n) .. "abc"))
    end
  end)

  it("a huge declared table count raises 'truncated'", function()
    assert.equal("eddy.codec.decode: truncated",
                 decode_error(list(1) .. "T" .. varint(2^32 - 1) .. "\0nnn"))
    assert.equal("eddy.codec.decode: truncated",
                 decode_error(list(1) .. "T\0" .. varint(2^31) .. "nnnn"))
    assert.equal("eddy.codec.decode: truncated",
                 decode_error(list(1) .. "T" .. varint(2^40) .. varint(2^40)))
    -- the list itself
    assert.equal("eddy.codec.decode: truncated",
                 decode_error("ET" .. varint(2^32 - 1) .. "\0nn"))
    -- counts that fit the bytes left one way but not both ways
    assert.equal("eddy.codec.decode: truncated",
                 decode_error(list(1) .. "T\2\2nnnn"))
  end)

  it("nested tables that each claim the whole input allocate little", function()
    local n = 100000
    local heads = {}
    for i = 1, 90 do heads[i] = "T" .. varint(n) .. "\0" end
    local s = list(1) .. table.concat(heads) .. ("n"):rep(n + 1000)
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    local ok, err = pcall(codec.decode, s)
    local grew = (collectgarbage("count") - before) * 1024
    collectgarbage("restart")
    assert.is_false(ok)
    assert.equal("eddy.codec.decode: truncated", err)
    assert.is_true(grew < 20 * #s, ("%d bytes of input allocated %d bytes")
                   :format(#s, grew))
  end)

  it("a varint longer than 64 bits", function()
    assert.equal("eddy.codec.decode: bad length",
                 decode_error(list(1) .. "i" .. ("\255"):rep(11)))
  end)

  it("an unknown tag", function()
    assert.equal("eddy.codec.decode: unknown value tag",
                 decode_error(list(1) .. "Z"))
    assert.equal("eddy.codec.decode: unknown value tag",
                 decode_error(list(1) .. "\0"))
  end)

  it("bytes after the values", function()
    assert.equal("eddy.codec.decode: bytes after the values",
                 decode_error(codec.encode(1, 2) .. "n"))
    assert.equal("eddy.codec.decode: bytes after the values",
                 decode_error(codec.encode() .. "\0"))
    assert.equal("eddy.codec.decode: bytes after the values",
                 decode_error(valid .. valid))
  end)

  it("a table key that decodes to nil, or NaN", function()
    assert.equal("eddy.codec.decode: a table key is nil or NaN",
                 decode_error(list(1) .. "T\0\1ni\2"))
    local nan = "d\0\0\0\0\0\0\248\127"
    assert.equal("eddy.codec.decode: a table key is nil or NaN",
                 decode_error(list(1) .. "T\0\1" .. nan .. "i\2"))
    -- a NaN value is fine
    local v = codec.decode(list(1) .. "T\0\1s\1a" .. nan)
    assert.is_true(v.a ~= v.a)
  end)

  it("nesting deeper than the limit in crafted bytes raises", function()
    assert.equal("eddy.codec.decode: tables nested too deep",
                 decode_error(list(1) .. ("T\1\0"):rep(150) .. "n"))
    -- far deeper than a C stack would take if it recursed
    assert.equal("eddy.codec.decode: tables nested too deep",
                 decode_error(list(1) .. ("T\1\0"):rep(200000) .. "n"))
  end)

  it("an 'i' past 2^53 decodes to the nearest number", function()
    -- zigzag of 2^60 is 2^61; 2^53 + 1 rounds to an even neighbour
    assert.equal(2^60, codec.decode(list(1) .. "i" .. varint(2^61)))
    -- zigzag 2^55 + 2 is 2^54 + 1, which rounds to 2^54
    local v = codec.decode(list(1) .. "i\130" .. ("\128"):rep(6) .. "\64")
    assert.equal(2^54, v)
  end)

  it("a failed decode leaves nothing behind to get in the way", function()
    for _ = 1, 100 do
      pcall(codec.decode, valid:sub(1, #valid - 1))
    end
    assert.equal(13, select("#", codec.decode(valid)))
  end)
end)

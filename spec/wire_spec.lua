-- core.wire: the message codec of the distribution layer (docs/design.md, "Wire and trust").
-- Round trips of every value kind, every refusal with its path, and hostile input
-- decoded safely (nil and a reason, never a crash, never a large allocation).

local wire = require("acoro.core").wire
local encode, decode = wire.encode, wire.decode

local function rt(v, enc, dec)
  local s = encode(v, enc)
  local got, why = decode(s, dec)
  assert(why == nil, why)
  return got, s
end

local function refused(v, enc)
  local ok, err = pcall(encode, v, enc)
  assert.is_false(ok)
  return err
end

local function bad(s)
  local v, why = decode(s)
  assert.is_nil(v)
  assert.is_string(why)
  return why
end

local function nest(n, leaf)
  local t = leaf
  for _ = 1, n do t = { t } end
  return t
end

describe("core.wire round trips", function()
  it("keeps booleans, strings and numbers", function()
    for _, v in ipairs({ true, false, "", "ping", 0, 1, -1, 127, 128, -32, -33, 255, 256,
                         65535, 65536, 2^32, -2^31 - 1, 2^53, -2^53, 0.5, -1.25, 1e300,
                         1/0, -1/0 }) do
      local got = rt(v)
      assert.are.equal(v, got)
    end
    local nan = rt(0/0)
    assert.is_true(nan ~= nan)
  end)

  it("sends integral numbers within +-2^53 as integers and brings them back exactly", function()
    local _, s = rt(2^53)
    assert.are.equal("\xcf\x00\x20\x00\x00\x00\x00\x00\x00", s)
    _, s = rt(-2^53)
    assert.are.equal("\xd3\xff\xe0\x00\x00\x00\x00\x00\x00", s)
    _, s = rt(5)
    assert.are.equal("\x05", s)
    -- beyond 2^53 a number is a float64, exact all the same
    local got
    got, s = rt(2^53 + 2)
    assert.are.equal(2^53 + 2, got)
    assert.are.equal("\xcb", s:sub(1, 1))
    got, s = rt(-2^63)
    assert.are.equal(-2^63, got)
    assert.are.equal("\xcb", s:sub(1, 1))
  end)

  it("keeps the sign of -0", function()
    local got = rt(-0.0)
    assert.are.equal(-math.huge, 1 / got)
  end)

  it("keeps binary strings with NULs and every byte value", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes) .. "\0\0end"
    assert.are.equal(all, (rt(all)))
    local long = string.rep("a\0b", 30000) -- str32
    assert.are.equal(long, (rt(long)))
  end)

  it("keeps tables built as arrays as arrays and everything else as maps", function()
    assert.are.same({}, (rt({})))
    assert.are.equal("\x90", encode({}))
    assert.are.same({ 1, "two", true }, (rt({ 1, "two", true })))
    assert.are.equal("\x93", encode({ 1, 2, 3 }):sub(1, 1))
    local sparse = { [1] = "a", [3] = "c" }
    local got, s = rt(sparse)
    assert.are.same(sparse, got)
    assert.is_nil(got[2])
    assert.are.equal("\x82", s:sub(1, 1)) -- a map of 2
    local mixed = { 1, 2, x = "y" }
    assert.are.same(mixed, (rt(mixed)))
    local keys = { [0] = "zero", [-1] = "neg", [1.5] = "half", [true] = "yes", [false] = "no" }
    assert.are.same(keys, (rt(keys)))
  end)

  it("keeps maps of more than 15 and more than 65535 pairs", function()
    for _, n in ipairs({ 16, 70000 }) do
      local t = {}
      for i = 1, n do t["k" .. i] = i end
      local got, s = rt(t)
      assert.are.same(t, got)
      assert.are.equal(n == 16 and "\xde" or "\xdf", s:sub(1, 1))
    end
  end)

  it("keeps nested tables and shared (acyclic) subtables", function()
    local shared = { "s" }
    local v = { op = "ping", seq = 7, data = { a = { b = { 1, 2, { c = "deep" } } } },
                left = shared, right = shared }
    assert.are.same(v, (rt(v)))
  end)

  it("accepts 64 nested tables and refuses 65, naming the path", function()
    assert.are.same(nest(64, "leaf"), (rt(nest(64, "leaf"))))
    assert.are.same(nest(63, {}), (rt(nest(63, {})))) -- 64 tables, the last one empty
    assert.matches("nesting deeper than 64", refused(nest(64, {})), 1, true)
    local err = refused(nest(65, "leaf"))
    assert.matches("nesting deeper than 64", err, 1, true)
    assert.matches("msg" .. string.rep("[1]", 64) .. ":", err, 1, true)
  end)

  it("turns userdata and tables with a metatable into ext types through the hooks", function()
    local Handle = {}
    Handle.__index = Handle
    local function handle(id) return setmetatable({ id = id }, Handle) end
    local function ext_encoder(v)
      if getmetatable(v) == Handle then return 5, tostring(v.id) end
      if type(v) == "userdata" then return 6, "ud" end
      return nil
    end
    local function ext_decoder(t, payload)
      if t == 5 then return handle(tonumber(payload)) end
      return "ext" .. t .. ":" .. payload
    end
    local h = handle(42)
    local msg = { to = h, list = { h, io.stdout }, [h] = "as a key" }
    local got = rt(msg, ext_encoder, ext_decoder)
    assert.are.equal(Handle, getmetatable(got.to))
    assert.are.equal(42, got.to.id)
    assert.are.equal(42, got.list[1].id)
    assert.are.equal("ext6:ud", got.list[2])
    local n = 0
    for k, v in pairs(got) do
      if getmetatable(k) == Handle then
        n = n + 1
        assert.are.equal("as a key", v)
      end
    end
    assert.are.equal(1, n)
    -- a long payload (ext32) and every fixext size
    for _, len in ipairs({ 1, 2, 4, 8, 16, 3, 300, 70000 }) do
      local p = string.rep("x", len)
      local out = rt(handle(0), function() return 7, p end, function(t, q) return { t, q } end)
      assert.are.same({ 7, p }, out)
    end
  end)

  it("lets an ext_encoder encode a value itself (nested encode)", function()
    local mt = {}
    local inner = setmetatable({ 1, 2 }, mt)
    local got = rt({ x = inner }, function(v) return 1, encode({ v[1], v[2] }) end,
      function(_, p) return decode(p) end)
    assert.are.same({ x = { 1, 2 } }, got)
  end)

  it("decodes a frame made by another encoder (bin, float32, fixext)", function()
    assert.are.equal("ab\0", decode("\xc4\x03ab\0"))
    assert.are.equal(1.5, decode("\xca\x3f\xc0\x00\x00"))
    assert.are.same({ 9, "x" }, decode("\xd4\x09\x78", function(t, p) return { t, p } end))
    assert.are.equal(-1, decode("\xd0\xff"))
    assert.are.equal(-129, decode("\xd1\xff\x7f"))
    assert.are.equal(2^32 - 1, decode("\xce\xff\xff\xff\xff"))
  end)
end)

describe("core.wire refusals", function()
  it("refuses functions, threads and unclaimed userdata, naming the path", function()
    assert.are.equal("acoro: cannot send msg.handler: a function",
      refused({ handler = print }))
    assert.are.equal("acoro: cannot send msg[3].co: a userdata",
      refused({ 1, 2, { co = io.stdout } }))
    assert.are.equal("acoro: cannot send msg: a thread (coroutine object)",
      refused(coroutine.create(print)))
    assert.are.equal("acoro: cannot send msg[\"a key\"][2]: a function",
      refused({ ["a key"] = { 1, print } }))
    assert.are.equal("acoro: cannot send msg[2][true]: a function",
      refused({ 1, { [true] = print } }))
  end)

  it("refuses userdata and metatables that the ext_encoder does not claim", function()
    local decline = function() return nil end
    assert.are.equal("acoro: cannot send msg.x: a userdata", refused({ x = io.stdout }, decline))
    assert.are.equal("acoro: cannot send msg.x: a table with a metatable",
      refused({ x = setmetatable({}, {}) }))
    assert.are.equal("acoro: cannot send msg.x: a table with a metatable",
      refused({ x = setmetatable({}, {}) }, decline))
  end)

  it("refuses cycles", function()
    local t = { a = {} }
    t.a.back = t
    assert.are.equal("acoro: cannot send msg.a.back: a cycle (a table inside itself)", refused(t))
    local s = {}
    s[1] = s
    assert.are.equal("acoro: cannot send msg[1]: a cycle (a table inside itself)", refused(s))
  end)

  it("refuses tables as keys", function()
    assert.matches("cannot send msg.x%[<table>%]: a table as a key", refused({ x = { [{}] = 1 } }))
  end)

  it("refuses a message over 64 MB", function()
    local err = refused({ string.rep("x", 33 * 2^20), string.rep("y", 32 * 2^20) })
    assert.matches("larger than 67108864 bytes", err, 1, true)
    -- the codec is still usable afterwards
    assert.are.equal("ok", decode(encode("ok")))
  end)

  it("raises an ext_encoder's error and a bad ext_encoder result clearly", function()
    local ok, err = pcall(encode, io.stdout, function() error("boom", 0) end)
    assert.is_false(ok)
    assert.are.equal("boom", err)
    ok, err = pcall(encode, io.stdout, function() return 200, "x" end)
    assert.is_false(ok)
    assert.matches("type in 0..127", err, 1, true)
    assert.are.equal("ok", decode(encode("ok")))
  end)

  it("refuses nil", function()
    assert.are.equal("acoro: cannot send msg: nil", refused(nil))
  end)
end)

describe("core.wire decoding hostile input", function()
  it("refuses nil values, integers beyond 2^53, reserved bytes and trailing bytes", function()
    assert.matches("nil is not a message value", bad("\xc0"))
    assert.matches("nil is not a message value", bad("\x91\xc0"))
    assert.matches("beyond", bad("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"))
    assert.matches("beyond", bad("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"))
    assert.matches("reserved byte 0xc1", bad("\xc1"))
    assert.matches("2 bytes after the value", bad("\x01\x02\x03"))
    assert.matches("ext type 3 and no ext_decoder", bad("\xd4\x03\x00"))
    assert.matches("an array or map as a map key", bad("\x81\x90\x01"))
    assert.matches("NaN as a map key", bad("\x81\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\x01"))
  end)

  it("refuses an empty string and truncated frames of every kind", function()
    bad("")
    local full = encode({ op = "ping", seq = 70000, f = 1.5, data = string.rep("z", 300),
                          list = { 1, -200, true, { x = "y" } } })
    for n = 0, #full - 1 do bad(full:sub(1, n)) end
    assert.is_table(decode(full))
  end)

  it("refuses a str header declaring 4 GB and an array header declaring 2^32 elements", function()
    assert.are.equal("str of 4294967295 bytes in 0 bytes left (at byte 0)", bad("\xdb\xff\xff\xff\xff"))
    assert.are.equal("bin of 4294967295 bytes in 3 bytes left (at byte 0)", bad("\xc6\xff\xff\xff\xffabc"))
    assert.are.equal("array of 4294967295 elements in 9 bytes left (at byte 0)",
      bad("\xdd\xff\xff\xff\xff" .. string.rep("\x01", 9)))
    assert.are.equal("map of 4294967295 pairs in 0 bytes left (at byte 0)", bad("\xdf\xff\xff\xff\xff"))
    assert.matches("ext of 4294967295 bytes", bad("\xc9\xff\xff\xff\xff\x01"))
  end)

  it("refuses 100,000 nested arrays at depth 65 without recursing", function()
    local s = string.rep("\x91", 100000) .. "\x01"
    assert.are.equal("nesting deeper than 64 (at byte 64)", bad(s))
    assert.are.same(nest(64, 1), decode(string.rep("\x91", 64) .. "\x01"))
    assert.matches("nesting deeper than 64", bad(string.rep("\x81\x01", 65) .. "\x01"))
  end)

  it("refuses a map with an odd number of items", function()
    assert.matches("map of 2 pairs in 3 bytes left", bad("\x82\x01\x02\x03"))
    assert.matches("truncated", bad("\x92\x82\x01\x02\x03\x04"))
  end)

  it("never crashes on random bytes", function()
    math.randomseed(6)
    local ok_count = 0
    for _ = 1, 20000 do
      local len = math.random(0, 40)
      local b = {}
      for i = 1, len do b[i] = string.char(math.random(0, 255)) end
      local v, why = decode(table.concat(b))
      if v ~= nil then
        ok_count = ok_count + 1
        -- whatever decodes, encodes again and decodes the same
        assert.are.same(v, decode(encode(v)))
      else
        assert.is_string(why)
      end
    end
    assert.is_true(ok_count > 0)
  end)
end)

describe("core.wire envelope", function()
  local envelope = wire.envelope

  it("encodes {e1, ..., en, msg} in one pass, byte for byte as encode does", function()
    local msg = { ping = true, data = { 1, 2, "x" } }
    assert.are.equal(encode({ 1, 42, msg }), envelope(nil, msg, 1, 42))
    assert.are.equal(encode({ "m" }), envelope(nil, "m"))
    local Handle = {}
    local function ext(v) if getmetatable(v) == Handle then return 7, "h" end end
    local h = setmetatable({}, Handle)
    local s = envelope(ext, { from = h, list = { h } }, 3, h)
    assert.are.equal(encode({ 3, h, { from = h, list = { h } } }, ext), s)
  end)

  it("names a refused value's path from msg, as encode(msg) does", function()
    local ok, err = pcall(envelope, nil, { handler = print }, 1, 2)
    assert.is_false(ok)
    assert.are.equal("acoro: cannot send msg.handler: a function", err)
    ok, err = pcall(envelope, nil, { a = { coroutine.create(print) } }, 1)
    assert.is_false(ok)
    assert.are.equal("acoro: cannot send msg.a[1]: a thread (coroutine object)", err)
    local t = {}
    t.self = t
    ok, err = pcall(envelope, nil, t, 1)
    assert.is_false(ok)
    assert.are.equal("acoro: cannot send msg.self: a cycle (a table inside itself)", err)
  end)

  it("gives the message its own 64 levels (the envelope is the 65th)", function()
    assert.is_string(envelope(nil, nest(64, "leaf"), 1))
    local ok, err = pcall(envelope, nil, nest(65, "leaf"), 1)
    assert.is_false(ok)
    assert.matches("msg" .. string.rep("[1]", 64) .. ": nesting deeper than 64", err, 1, true)
  end)

  it("raises for an element of the envelope itself, naming which", function()
    local ok, err = pcall(envelope, nil, "m", 1, print)
    assert.is_false(ok)
    assert.are.equal("acoro: envelope element 2 cannot be sent: a function", err)
    assert.has_error(function() envelope(42, "m") end)
    assert.has_error(function() envelope(nil) end)
  end)

  it("reuses its buffer inside an ext encoder's own encode", function()
    local Box = {}
    local function ext(v)
      if getmetatable(v) == Box then return 9, envelope(nil, v.inner, 0) end
    end
    local box = setmetatable({ inner = { deep = "x" } }, Box)
    local s = envelope(ext, { box, box }, 1)
    local got = decode(s, function(t, p) return t .. ":" .. p end)
    local inner = "9:" .. encode({ 0, { deep = "x" } })
    assert.are.same({ 1, { inner, inner } }, got)
  end)
end)

-- The bounds a hostile peer runs into, one process: a coroutine's mailbox limit
-- (lua/acoro/init.lua over core/mailbox.c), ext values nested inside one message's
-- 64 levels and the decode budget (bindings/lwire.c's EXT NESTING and DECODE
-- BUDGET), and node.lua's NaN timeouts and mailbox_bytes option. The attacks
-- themselves, between processes: spec/security_peer_spec.lua.

local acoro = require "acoro"
local core = require "acoro.core"
local wire = core.wire
local encode, decode = wire.encode, wire.decode

describe("a coroutine's mailbox limit", function()
  -- The first drop of each mailbox is logged: expected here, kept off the output.
  local dropped, prev_writer
  before_each(function()
    dropped = {}
    prev_writer = acoro.log.set_writer(function(_, msg) dropped[#dropped + 1] = msg end)
  end)
  after_each(function() acoro.log.set_writer(prev_writer) end)

  it("drops the newest past the limit: send false, counted, room again once one is taken", function()
    acoro.run(function()
      local co = acoro.spawn(function() acoro.suspend() end)
      co:set_mailbox_limit(3)
      for i = 1, 3 do assert.is_true(co:send(i)) end
      assert.is_false(co:send(4))
      assert.is_false(co:send(5))
      assert.are.equal(2, co:mailbox_dropped())
      co:terminate()
    end)
  end)

  it("keeps the oldest in order, and a receiver that takes one makes room for one", function()
    acoro.run(function()
      local got = {}
      local co = acoro.spawn(function()
        acoro.suspend()
        got[1] = acoro.receive()
        got[2] = acoro.receive(0, "none")
        got[3] = acoro.receive(0, "none")
      end)
      acoro.yield() -- co waits in suspend
      co:set_mailbox_limit(2)
      co:send("a")
      co:send("b")
      assert.is_false(co:send("c"))
      co:resume()
      co:join()
      assert.are.same({ "a", "b", "none" }, got)
    end)
  end)

  it("deliver to a full mailbox returns nil, \"full\" at once", function()
    acoro.run(function()
      local co = acoro.spawn(function() acoro.suspend() end)
      co:set_mailbox_limit(1)
      co:send(1)
      assert.are.same({ nil, "full", "ENOBUFS" }, { co:deliver(2, 5) })
      assert.are.equal(1, co:mailbox_dropped())
      co:terminate()
    end)
  end)

  it("never drops an acoro.Exit of a monitor", function()
    acoro.run(function()
      local got = {}
      local watcher = acoro.spawn(function()
        acoro.suspend()
        got[1] = acoro.receive()
        got[2] = acoro.receive(0, "none")
      end)
      watcher:set_mailbox_limit(1)
      watcher:send("filler")
      local target = acoro.spawn(function() end)
      target:monitor(watcher)
      target:join()
      acoro.yield()
      watcher:resume()
      watcher:join()
      assert.are.equal("filler", got[1])
      assert.is_true(acoro.is_exit(got[2]))
      assert.are.equal(0, watcher:mailbox_dropped())
    end)
  end)

  it("takes a whole number; nil or 0 removes it", function()
    acoro.run(function()
      local co = acoro.spawn(function() acoro.suspend() end)
      for _, bad in ipairs({ -1, 1.5, 0 / 0, "3", 2 ^ 32 }) do
        assert.has_error(function() co:set_mailbox_limit(bad) end)
      end
      co:set_mailbox_limit(1)
      co:send(1)
      assert.is_false(co:send(2))
      co:set_mailbox_limit(0)
      assert.is_true(co:send(3))
      co:set_mailbox_limit(nil)
      assert.is_true(co:send(4))
      co:terminate()
    end)
  end)
end)

-- Ext type 7 in these tests: a table {v = value} with metatable Box, whose payload
-- is encode(value).
local Box = {}
local function box(v) return setmetatable({ v = v }, Box) end
local function ext_encode(v)
  if getmetatable(v) == Box then return 7, encode(v.v, ext_encode) end
end
local IN_PLACE = { [7] = true }
local function ext_decode(t, v)
  assert(t == 7)
  return box(v)
end
local function nest(n, inner) -- n tables around inner
  for _ = 1, n do inner = { inner } end
  return inner
end
local function u32(n)
  return string.char(math.floor(n / 2^24) % 256, math.floor(n / 2^16) % 256,
    math.floor(n / 2^8) % 256, n % 256)
end

describe("core.wire: ext values nest within one message's 64 levels", function()
  it("decodes an in-place ext's payload in place and gives its decoder the value", function()
    local s = encode({ a = box({ 1, "two" }) }, ext_encode)
    local v = assert(decode(s, ext_decode, IN_PLACE))
    assert.are.equal(Box, getmetatable(v.a))
    assert.are.same({ 1, "two" }, v.a.v)
    -- without the in-place table: the payload's bytes, as before
    local raw = assert(decode(s, function(_, p) return p end))
    assert.are.equal(encode({ 1, "two" }), raw.a)
  end)

  it("counts a box's payload one level below it, encoding and decoding alike", function()
    -- 62 tables, a box (its payload one level down), a table at level 64: fits
    local ok64 = nest(62, box({ 1 }))
    local s = encode(ok64, ext_encode)
    assert.is_table(decode(s, ext_decode, IN_PLACE))
    -- one table more anywhere does not
    assert.has_error(function() encode(nest(63, box({ 1 })), ext_encode) end,
      "acoro: cannot send msg: nesting deeper than 64")
    assert.has_error(function() encode(nest(62, box({ { 1 } })), ext_encode) end)
    -- boxes in boxes: each one a level
    local b = 1
    for _ = 1, 64 do b = box(b) end
    assert.are.equal(Box, getmetatable(decode(encode(b, ext_encode), ext_decode, IN_PLACE)))
    assert.has_error(function() encode(box(b), ext_encode) end)
  end)

  it("refuses frames nesting deeper through exts, and 100,000 exts in exts, at once", function()
    -- 70 levels of box({box(...)}) written by hand
    local pre, len = {}, 1
    for i = 1, 70 do
      local payload = 1 + len
      pre[71 - i] = "\xc9" .. u32(payload) .. "\x07\x91"
      len = 6 + payload
    end
    local v, why = decode(table.concat(pre) .. "\x01", ext_decode, IN_PLACE)
    assert.is_nil(v)
    assert.matches("nesting deeper than 64", why)
    -- an ext whose payload is an ext whose payload is ...: no table, still levels
    pre, len = {}, 1
    for i = 1, 100000 do
      pre[100001 - i] = "\xc9" .. u32(len) .. "\x07"
      len = len + 6
    end
    v, why = decode(table.concat(pre) .. "\x01", ext_decode, IN_PLACE)
    assert.is_nil(v)
    assert.matches("nesting deeper than 64", why)
  end)

  it("refuses a message that would expand past the decode budget", function()
    local n = 4 * 2^20 -- 4 M empty arrays in 4 MB: 64 bytes or more each
    local v, why = decode("\xdd" .. u32(n) .. string.rep("\x90", n))
    assert.is_nil(v)
    assert.matches("a message expanding past " .. ("%d"):format(wire.max_expand) .. " bytes", why)
    collectgarbage()
  end)
end)

describe("acoro.node's options and timeouts", function()
  it("raise for a NaN timeout and a bad mailbox_bytes", function()
    acoro.run(function()
      assert.has_error(function() acoro.locate("x", { timeout = 0 / 0 }) end,
        "bad argument #2 to 'acoro.locate' (opts.timeout is NaN)")
      for _, bad in ipairs({ 0, -1, 0 / 0, 1 / 0 }) do
        assert.has_error(function()
          acoro.node({ host = "127.0.0.1", port = 0, discover = false, mailbox_bytes = bad })
        end)
      end
      assert.is_nil(acoro.node())
      acoro.node({ host = "127.0.0.1", port = 0, discover = false, mailbox_bytes = 2^20 })
      assert.has_error(function() acoro.peer("127.0.0.1:1", 0 / 0) end,
        "bad argument #2 to 'acoro.peer' (timeout is NaN)")
      assert.has_error(function() acoro.locate("x", { timeout = 0 / 0 }) end,
        "bad argument #2 to 'acoro.locate' (opts.timeout is NaN)")
      assert.has_error(function() acoro.locate_channel("x", { timeout = 0 / 0 }) end)
    end)
  end)
end)

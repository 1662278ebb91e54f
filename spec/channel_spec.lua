-- acoro.channel (lua/acoro/channel.lua): every method, its timeouts and errors;
-- hierarchies and their delivery counts, transforms, cycles, closing, dead
-- subscribers, a deliverer ended while it waits, and locate_channel. Every wait
-- is bounded, and the specs wait for events, not for the clock.

local acoro = require "acoro"
local support = require "spec.support"

local spawn_blocked = support.spawn_blocked

-- A coroutine that receives n messages (5 s at most each) and returns them.
local function collector(n)
  return acoro.spawn(function()
    local got = {}
    for i = 1, n do got[i] = acoro.receive(5, "timeout") end
    return got
  end)
end

local function joined(co)
  local ok, v = co:join(5)
  assert.is_true(ok, tostring(v))
  return v
end

-- A subscriber that does not receive: it waits for a resume (drained), then
-- returns every message its mailbox holds, in order.
local function drainer()
  return spawn_blocked(function(ready)
    ready()
    acoro.suspend(5)
    local got = {}
    for i = 1, 1000 do
      got[i] = acoro.receive(0)
      if got[i] == nil then break end
    end
    return got
  end)
end

local function drained(co)
  assert.is_true(co:resume())
  return joined(co)
end

describe("acoro.channel", function()
  it("makes a named channel: name, tostring, is_channel", function()
    local ch = acoro.channel("news")
    assert.equal("news", ch.name)
    assert.is_nil(ch.location)
    assert.equal("channel:news", tostring(ch))
    assert.is_true(acoro.is_channel(ch))
    assert.is_false(acoro.is_channel({}))
    assert.is_false(acoro.is_channel(nil))
    assert.equal(0, ch:subscribers())
  end)

  it("rejects a bad name or transform", function()
    assert.has_error(function() acoro.channel() end)
    assert.has_error(function() acoro.channel("") end)
    assert.has_error(function() acoro.channel(3) end)
    assert.has_error(function() acoro.channel("x", 3) end,
      "acoro.channel: transform must be a function or nil, got number")
  end)
end)

describe("ch:subscribe / ch:unsubscribe", function()
  it("return true; subscribing twice is a no-op; unsubscribing a stranger fails", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local co = collector(1)
      assert.is_true(ch:subscribe(co))
      assert.is_true(ch:subscribe(co, 1))
      assert.equal(1, ch:subscribers())
      ch:send("once")
      assert.same({ "once" }, joined(co))
      local other = drainer()
      assert.same({ nil, "not subscribed", "ENOENT" }, { ch:unsubscribe(other) })
      assert.is_true(ch:subscribe(other))
      assert.is_true(ch:unsubscribe(other, 1))
      assert.equal(0, ch:subscribers())
      assert.same({}, drained(other))
    end)
  end)

  it("refuse a dead coroutine with nil, 'dead'", function()
    acoro.run(function()
      local co = acoro.spawn(function() end)
      co:join(5)
      assert.same({ nil, "dead", "EDEAD" }, { acoro.channel("c"):subscribe(co) })
    end)
  end)

  it("raise on a bad subscriber or timeout", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      assert.has_error(function() ch:subscribe({}) end,
        "acoro.Channel:subscribe: expected a coroutine or a channel, got table")
      assert.has_error(function() ch:subscribe(nil) end)
      assert.has_error(function() ch:unsubscribe("x") end)
      assert.has_error(function() ch:subscribe(acoro.self(), "soon") end,
        "acoro.Channel:subscribe: timeout must be a number or nil, got string")
    end)
  end)

  it("refuse a subscription that would make a cycle, with nil and a message", function()
    local a, b, c = acoro.channel("a"), acoro.channel("b"), acoro.channel("c")
    assert.is_true(a:subscribe(b))
    assert.is_true(b:subscribe(c))
    local ok, err = c:subscribe(a)
    assert.is_nil(ok)
    assert.equal("cycle: channel a already reaches channel c", err)
    ok, err = a:subscribe(a)
    assert.is_nil(ok)
    assert.equal("cycle: channel a already reaches channel a", err)
    assert.is_true(a:subscribe(c)) -- a diamond is no cycle
    assert.equal(0, c:subscribers())
  end)
end)

describe("ch:send", function()
  it("broadcasts to every subscriber in order, without blocking", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local cos = {}
      for i = 1, 10 do
        cos[i] = drainer() -- they do not receive: the sends must not wait for them
        ch:subscribe(cos[i])
      end
      local ran = false
      acoro.spawn(function() ran = true end)
      for m = 1, 3 do ch:send(m) end
      assert.is_false(ran) -- the sender never gave up the processor
      for i = 1, 10 do assert.same({ 1, 2, 3 }, drained(cos[i])) end
    end)
  end)

  it("raises on a nil message", function()
    assert.has_error(function() acoro.channel("c"):send(nil) end,
      "acoro.Channel:send: message is nil")
  end)

  it("passes messages down a hierarchy, each channel applying its transform", function()
    acoro.run(function()
      local top = acoro.channel("top")
      local double = acoro.channel("double", function(_, m) return m * 2 end)
      local odd = acoro.channel("odd", function(_, m) if m % 2 == 1 then return m end end)
      top:subscribe(double)
      top:subscribe(odd)
      local d, o, t = collector(3), collector(2), collector(3)
      double:subscribe(d)
      odd:subscribe(o)
      top:subscribe(t)
      for m = 1, 3 do top:send(m) end
      assert.same({ 2, 4, 6 }, joined(d))
      assert.same({ 1, 3 }, joined(o))
      assert.same({ 1, 2, 3 }, joined(t))
    end)
  end)

  it("a transform gets the channel's name and may replace or drop the message", function()
    acoro.run(function()
      local seen = {}
      local ch = acoro.channel("t", function(name, m)
        seen[#seen + 1] = name
        if m ~= "drop" then return m .. "!" end
      end)
      local co = collector(2)
      ch:subscribe(co)
      ch:send("a")
      ch:send("drop")
      ch:send("b")
      assert.same({ "a!", "b!" }, joined(co))
      assert.same({ "t", "t", "t" }, seen)
      ch:set_transform(nil)
      local co2 = collector(1)
      ch:subscribe(co2)
      ch:send("plain")
      assert.same({ "plain" }, joined(co2))
      assert.has_error(function() ch:set_transform(1) end,
        "acoro.Channel:set_transform: expected a function or nil, got number")
    end)
  end)

  it("survives unsubscribes and subscribes made during the broadcast", function()
    acoro.run(function()
      local top = acoro.channel("top")
      local cos, late = {}, drainer()
      for i = 1, 6 do cos[i] = drainer() end
      top:subscribe(cos[1])
      top:subscribe(cos[2])
      -- the second subscriber of top is a channel whose transform takes
      -- cos[1] (already served) and cos[3] (not yet) off top, and adds `late`
      local meddler = acoro.channel("meddler", function(_, m)
        if m == 1 then
          top:unsubscribe(cos[1])
          top:unsubscribe(cos[3])
          top:subscribe(late)
        end
        return m
      end)
      top:subscribe(meddler)
      for i = 3, 6 do top:subscribe(cos[i]) end
      top:send(1)
      top:send(2)
      assert.same({ 1 }, drained(cos[1]))
      assert.same({ 1, 2 }, drained(cos[2]))
      assert.same({}, drained(cos[3]))
      for i = 4, 6 do assert.same({ 1, 2 }, drained(cos[i])) end
      assert.same({ 2 }, drained(late)) -- added during message 1: gets message 2
    end)
  end)

  it("drops the message and logs one line naming the channel when a transform fails", function()
    local out, err, code = support.run_script([[
      local acoro = require "acoro"
      local ch = acoro.channel("flaky", function(_, m)
        if m == 2 then error("bad number") end
        return m
      end)
      local co = acoro.spawn(function()
        print(acoro.receive(5, "timeout"), acoro.receive(5, "timeout"))
      end)
      ch:subscribe(co)
      ch:send(1)
      ch:send(2)
      ch:send(3)
      print("sender goes on")
    ]])
    assert.equal(0, code, err)
    assert.equal("sender goes on\n1\t3\n", out)
    local lines = support.lines(err)
    assert.equal(1, #lines, err)
    assert.matches("^acoro: channel flaky: transform failed, message dropped: .*bad number$", lines[1])
  end)

  it("a subscriber whose mailbox is full keeps its subscription; what it missed is counted", function()
    local logged = {}
    local prev = acoro.log.set_writer(function(_, msg) logged[#logged + 1] = msg end)
    finally(function() acoro.log.set_writer(prev) end)
    acoro.run(function()
      local ch, me = acoro.channel("busy"), acoro.self()
      -- reads nothing until resumed; then reads three messages, telling the
      -- spec once it has read the two its mailbox held
      local slow = spawn_blocked(function(ready)
        ready()
        acoro.suspend(5)
        local got = { acoro.receive(5, "timeout"), acoro.receive(5, "timeout") }
        me:send("read")
        got[3] = acoro.receive(5, "timeout")
        return got
      end)
      slow:set_mailbox_limit(2)
      local other = collector(4)
      assert.is_true(ch:subscribe(slow))
      assert.is_true(ch:subscribe(other))
      for i = 1, 3 do ch:send(i) end -- the third finds slow's mailbox full
      assert.equal(1, slow:mailbox_dropped())
      assert.equal(2, ch:subscribers())
      assert.is_true(slow:resume())
      assert.equal("read", acoro.receive(5, "timeout"))
      ch:send(4)
      assert.same({ 1, 2, 3, 4 }, joined(other))
      assert.same({ 1, 2, 4 }, joined(slow))
      assert.equal(1, slow:mailbox_dropped())
    end)
    assert.equal(1, #logged, table.concat(logged, "\n"))
    assert.matches("^mailbox of coroutine %d+ full %(limit 2%): dropping new messages$", logged[1])
  end)
end)

describe("ch:deliver", function()
  it("returns the number of end points across a hierarchy that took the message", function()
    acoro.run(function()
      local top = acoro.channel("top")
      local sub = acoro.channel("sub")
      top:subscribe(sub)
      local a, b, c = collector(1), collector(1), collector(2)
      sub:subscribe(a)
      sub:subscribe(b)
      top:subscribe(c)
      assert.equal(3, top:deliver("m1", 5))
      sub:set_transform(function() return nil end)
      assert.equal(1, top:deliver("m2", 5))
      assert.same({ "m1", "m2" }, joined(c))
      assert.same({ "m1" }, joined(a))
      assert.same({ "m1" }, joined(b))
    end)
  end)

  it("with n waits for n subscribers, else returns 0 and sends nothing", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local co = drainer()
      ch:subscribe(co)
      local t0 = acoro.now()
      assert.equal(0, ch:deliver("x", 0.05, 2))
      support.assert_took(acoro.now() - t0, 0.05)
      assert.equal(0, ch:deliver("x", 0, 2))
      assert.same({}, drained(co)) -- nothing was sent
      -- a second subscriber comes while the deliverer waits
      local a = collector(1)
      ch:subscribe(a)
      acoro.spawn(function() ch:subscribe(collector(1)) end)
      assert.equal(2, ch:deliver("y", 5, 2))
      assert.same({ "y" }, joined(a))
    end)
  end)

  it("delivers to all end points at once and takes back what was not taken in time", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local slow = drainer()
      local fast = {}
      for i = 1, 20 do
        fast[i] = collector(1)
        ch:subscribe(fast[i])
      end
      ch:subscribe(slow)
      local t0 = acoro.now()
      assert.equal(20, ch:deliver("m", 0.5))
      support.assert_took(acoro.now() - t0, 0.5) -- one timeout for all, not one each
      for i = 1, 20 do assert.same({ "m" }, joined(fast[i])) end
      assert.same({}, drained(slow)) -- taken back
    end)
  end)

  it("hands the message to all end points at once: the first may wait for the last", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local first = acoro.spawn(function()
        acoro.suspend(5) -- takes its message only after `last` took its own
        return acoro.receive(0)
      end)
      local last = acoro.spawn(function()
        local m = acoro.receive(5)
        first:resume()
        return m
      end)
      ch:subscribe(first)
      ch:subscribe(last)
      assert.equal(2, ch:deliver("m", 5))
      assert.same({ true, "m" }, { first:join(5) })
      assert.same({ true, "m" }, { last:join(5) })
    end)
  end)

  it("does not count an end point that ends before taking the message", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local doomed, ok = drainer(), collector(1)
      ch:subscribe(doomed)
      ch:subscribe(ok)
      acoro.spawn(function()
        for _ = 1, 3 do acoro.yield() end
        doomed:terminate()
      end)
      assert.equal(1, ch:deliver("m", 5))
      assert.same({ "m" }, joined(ok))
      assert.equal(0, ch:subscribers())
    end)
  end)

  it("leaves out the caller when it is an end point", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local co = collector(1)
      ch:subscribe(acoro.self())
      ch:subscribe(co)
      assert.equal(1, ch:deliver("m", 5))
      assert.same({ "m" }, joined(co))
      assert.is_nil(acoro.receive(0))
    end)
  end)

  it("returns 0 without end points, and raises on bad arguments", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      assert.equal(0, ch:deliver("m", 1))
      assert.equal(0, ch:deliver("m"))
      assert.has_error(function() ch:deliver(nil) end, "acoro.Channel:deliver: message is nil")
      assert.has_error(function() ch:deliver("m", "1") end)
      assert.has_error(function() ch:deliver("m", 1, -1) end)
      assert.has_error(function() ch:deliver("m", 1, 1.5) end)
    end)
  end)

  it("a deliverer terminated while it waits: its messages are taken back", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local a, b = drainer(), drainer()
      ch:subscribe(a)
      ch:subscribe(b)
      local d = spawn_blocked(function(ready)
        acoro.spawn(ready)
        return ch:deliver("m", 5)
      end)
      for _ = 1, 3 do acoro.yield() end -- its helpers have queued the message
      assert.equal("suspended", d:status())
      assert.is_true(d:terminate())
      assert.same({ false, "terminated" }, { d:join(5) })
      assert.same({}, drained(a))
      assert.same({}, drained(b))
    end)
  end)

  it("a deliverer thrown to while it waits gets the error; its messages are taken back", function()
    support.expect_failures("stop")
    acoro.run(function()
      local ch = acoro.channel("c")
      local a = drainer()
      ch:subscribe(a)
      local d = spawn_blocked(function(ready)
        acoro.spawn(ready)
        return ch:deliver("m", 5)
      end)
      for _ = 1, 3 do acoro.yield() end
      d:throw("stop")
      assert.same({ false, "stop" }, { d:join(5) })
      assert.equal(1, ch:subscribers())
      assert.same({}, drained(a))
    end)
  end)
end)

describe("dead subscribers", function()
  it("are dropped when they end, even when they return nothing", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local cos = {}
      for i = 1, 1000 do
        cos[i] = acoro.spawn(function() acoro.receive(5) end)
        ch:subscribe(cos[i])
      end
      local t = drainer()
      ch:subscribe(t)
      assert.equal(1001, ch:subscribers())
      for i = 1, 500 do cos[i]:send("go") end
      for i = 1, 500 do cos[i]:join(5) end
      assert.equal(501, ch:subscribers())
      for i = 501, 1000 do cos[i]:terminate() end
      assert.equal(1, ch:subscribers())
      t:terminate()
      assert.equal(0, ch:subscribers())
    end)
  end)

  it("a coroutine on several channels leaves them all", function()
    acoro.run(function()
      local a, b = acoro.channel("a"), acoro.channel("b")
      local co = drainer()
      a:subscribe(co)
      b:subscribe(co)
      b:unsubscribe(co)
      b:subscribe(co)
      assert.same({}, drained(co))
      assert.equal(0, a:subscribers())
      assert.equal(0, b:subscribers())
    end)
  end)
end)

describe("ch:close", function()
  it("unsubscribes everything, leaves its parents, unregisters; later use raises", function()
    acoro.run(function()
      local top, ch = acoro.channel("top"), acoro.channel("closing")
      top:subscribe(ch)
      local co = drainer()
      ch:subscribe(co)
      assert.is_true(ch:register())
      assert.is_true(ch:close())
      assert.is_false(ch:close())
      assert.equal("channel:closing (closed)", tostring(ch))
      assert.equal(0, top:subscribers())
      assert.equal(0, ch:subscribers())
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate_channel("closing") })
      for _, call in ipairs({
        function() ch:send(1) end, function() ch:deliver(1, 1) end,
        function() ch:subscribe(co) end, function() ch:unsubscribe(co) end,
        function() ch:set_transform(nil) end, function() ch:register() end,
        function() top:subscribe(ch) end,
      }) do
        assert.has_error(call, "acoro: channel closing is closed")
      end
      top:send("after")
      assert.same({}, drained(co))
    end)
  end)

  it("a deliver waiting for subscribers returns 0 when the channel closes", function()
    acoro.run(function()
      local ch = acoro.channel("c")
      local d = spawn_blocked(function(ready)
        acoro.spawn(ready)
        return ch:deliver("m", 5, 1)
      end)
      ch:close()
      assert.same({ true, 0 }, { d:join(5) })
    end)
  end)
end)

describe("acoro.locate_channel", function()
  it("finds a registered channel; register / unregister; names are unique", function()
    local ch = acoro.channel("loc")
    assert.same({ nil, "not found", "ENOENT" }, { acoro.locate_channel("loc") })
    assert.is_true(ch:register())
    assert.is_true(ch:register())
    assert.equal(ch, acoro.locate_channel("loc"))
    assert.equal(ch, acoro.locate_channel("loc", { timeout = 1 }))
    assert.same({ nil, "not found", "ENOENT" }, { acoro.locate_channel("loc", { location = "elsewhere:1" }) })
    assert.same({ nil, "name taken", "EEXIST" }, { acoro.channel("loc"):register() })
    assert.is_true(ch:unregister())
    assert.is_false(ch:unregister())
    assert.same({ nil, "not found", "ENOENT" }, { acoro.locate_channel("loc") })
  end)

  it("with a timeout waits for the name to be registered", function()
    acoro.run(function()
      local finder = spawn_blocked(function(ready)
        acoro.spawn(ready)
        return acoro.locate_channel("later", { timeout = 5 })
      end)
      local ch = acoro.channel("later")
      ch:register()
      local ok, got = finder:join(5)
      assert.is_true(ok)
      assert.equal(ch, got)
      ch:unregister()
      local t0 = acoro.now()
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate_channel("never", { timeout = 0.05 }) })
      support.assert_took(acoro.now() - t0, 0.05)
    end)
  end)

  it("a finder terminated while it waits is forgotten", function()
    acoro.run(function()
      local finder = spawn_blocked(function(ready)
        acoro.spawn(ready)
        return acoro.locate_channel("gone", { timeout = 5 })
      end)
      finder:terminate()
      local ch = acoro.channel("gone")
      assert.is_true(ch:register()) -- wakes nobody dead
      ch:unregister()
    end)
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() acoro.locate_channel(1) end)
    assert.has_error(function() acoro.locate_channel("x", 1) end)
    assert.has_error(function() acoro.locate_channel("x", { timeout = "1" }) end)
  end)
end)

describe("ch:close during a broadcast", function()
  it("a transform closing the channel ends the broadcast cleanly", function()
    acoro.run(function()
      local top = acoro.channel("top")
      local a, b = drainer(), drainer()
      top:subscribe(a)
      top:subscribe(acoro.channel("closer", function(_, m)
        top:close()
        return m
      end))
      top:subscribe(b)
      top:send("m")
      assert.same({ "m" }, drained(a))
      assert.same({}, drained(b))
      assert.has_error(function() top:send("again") end, "acoro: channel top is closed")
    end)
  end)
end)

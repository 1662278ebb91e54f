-- Messages: send/receive order, timeouts and alarms, receive_match, deliver, and the
-- error raised by blocking calls made outside an acoro coroutine.

local acoro = require "acoro"
local support = require "spec.support"

local spawn_blocked = support.spawn_blocked

local function is_even(m) return type(m) == "number" and m % 2 == 0 end

describe("co:send / acoro.receive", function()
  it("delivers messages in FIFO order", function()
    acoro.run(function()
      local co = acoro.spawn(function()
        local got = {}
        for i = 1, 100 do got[i] = acoro.receive(5, "timeout") end
        return got
      end)
      local expected = {}
      for i = 1, 100 do
        expected[i] = i
        assert.is_true(co:send(i))
        if i % 7 == 0 then acoro.yield() end
      end
      local ok, got = co:join(5)
      assert.is_true(ok)
      assert.same(expected, got)
    end)
  end)

  it("keeps messages from several senders in arrival order", function()
    acoro.run(function()
      local me = acoro.self()
      for _, name in ipairs({ "a", "b" }) do
        acoro.spawn(function()
          for i = 1, 3 do me:send(name .. i); acoro.yield() end
        end)
      end
      local got = {}
      for i = 1, 6 do got[i] = acoro.receive(5, "timeout") end
      assert.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, got)
    end)
  end)

  it("queues messages sent before the receiver runs", function()
    acoro.run(function()
      local co = acoro.spawn(function() return acoro.receive(0), acoro.receive(0) end)
      co:send("x")
      co:send("y")
      assert.same({ true, "x", "y" }, { co:join(5) })
    end)
  end)

  it("passes any non-nil value, tables by reference", function()
    acoro.run(function()
      local t, f = {}, function() end
      local me = acoro.self()
      for _, v in ipairs({ false, 0, "", "s\0bin", t, f, me }) do
        assert.is_true(me:send(v))
        assert.equal(v, acoro.receive(0, "none"))
      end
      local co = acoro.spawn(function() return acoro.receive(5) end)
      co:send(t)
      local ok, got = co:join(5)
      assert.is_true(ok)
      assert.equal(t, got) -- same table, not a copy
    end)
  end)

  it("send to self is received by self", function()
    acoro.run(function()
      acoro.self():send("note")
      assert.equal("note", acoro.receive(0))
    end)
  end)

  it("send(nil) raises 'send: message is nil'", function()
    acoro.run(function()
      local ok, err = pcall(function() acoro.self():send(nil) end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("send: message is nil", 1, true))
      ok, err = pcall(function() acoro.self():send() end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("send: message is nil", 1, true))
      assert.equal("empty", acoro.receive(0, "empty"))
    end)
  end)

  it("send never blocks", function()
    acoro.run(function()
      local ran = false
      local co = acoro.spawn(function() ran = true; acoro.receive(5) end)
      for i = 1, 1000 do co:send(i) end
      assert.is_false(ran) -- the sender kept running throughout
      co:join(5)
    end)
  end)

  it("send to a dead coroutine is a silent no-op returning false", function()
    acoro.run(function()
      local co = acoro.spawn(function() end)
      co:join(5)
      assert.is_false(co:send("lost"))
      assert.is_false(co:send({}))
    end)
  end)

  it("send to a live coroutine returns true", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); acoro.sleep(30) end)
      assert.is_true(co:send("queued"))
      co:terminate()
    end)
  end)
end)

describe("acoro.receive with a timeout", function()
  it("returns the alarm (nil by default) after the timeout", function()
    acoro.run(function()
      local t0 = acoro.now()
      local n, v = (function(...) return select("#", ...), ... end)(acoro.receive(0.05))
      support.assert_took(acoro.now() - t0, 0.05)
      assert.is_nil(v)
      assert.is_true(n <= 1)
      t0 = acoro.now()
      assert.equal("alarm", acoro.receive(0.05, "alarm"))
      support.assert_took(acoro.now() - t0, 0.05)
      assert.is_false(acoro.receive(0.01, false))
    end)
  end)

  it("timeout 0 or negative returns the alarm at once when nothing is queued", function()
    acoro.run(function()
      for _, timeout in ipairs({ 0, -1, -0.001 }) do
        local t0 = acoro.now()
        assert.equal("alarm", acoro.receive(timeout, "alarm"))
        assert.is_nil(acoro.receive(timeout))
        support.assert_took(acoro.now() - t0, 0, 5)
      end
    end)
  end)

  it("timeout 0 or negative returns a queued message", function()
    acoro.run(function()
      local me = acoro.self()
      me:send("one"); me:send("two")
      assert.equal("one", acoro.receive(0, "alarm"))
      assert.equal("two", acoro.receive(-1, "alarm"))
      assert.equal("alarm", acoro.receive(0, "alarm"))
    end)
  end)

  it("returns a message that arrives before the timeout", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); return acoro.receive(5, "alarm") end)
      co:send("in time")
      assert.same({ true, "in time" }, { co:join(5) })
    end)
  end)

  it("a receive that timed out does not lose a later message", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        local first = acoro.receive(0.02, "alarm")
        ready()
        return first, acoro.receive(5, "alarm")
      end)
      co:send("late")
      assert.same({ true, "alarm", "late" }, { co:join(5) })
    end)
  end)
end)

describe("acoro.receive_match", function()
  it("takes the first matching message; the others stay queued in order", function()
    acoro.run(function()
      local me = acoro.self()
      for _, v in ipairs({ 1, 3, 2, 5, 4, 6 }) do me:send(v) end
      assert.equal(2, acoro.receive_match(is_even, 0))
      assert.equal(4, acoro.receive_match(is_even, 0))
      local rest = {}
      for i = 1, 4 do rest[i] = acoro.receive(0, "none") end
      assert.same({ 1, 3, 5, 6 }, rest)
      assert.equal("none", acoro.receive(0, "none"))
    end)
  end)

  it("checks messages arriving later, in arrival order", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        ready()
        local m = acoro.receive_match(is_even, 5, "alarm")
        local rest = {}
        for i = 1, 3 do rest[i] = acoro.receive(0, "none") end
        return m, rest
      end)
      co:send(1)
      acoro.yield()
      co:send(3)
      co:send(8)
      co:send(10)
      co:send(5)
      local ok, m, rest = co:join(5)
      assert.is_true(ok)
      assert.equal(8, m)
      assert.same({ 1, 3, 10 }, rest)
    end)
  end)

  it("returns the alarm on timeout and leaves non-matching messages queued", function()
    acoro.run(function()
      local me = acoro.self()
      me:send(1); me:send(3)
      local t0 = acoro.now()
      assert.equal("alarm", acoro.receive_match(is_even, 0.05, "alarm"))
      support.assert_took(acoro.now() - t0, 0.05)
      assert.is_nil(acoro.receive_match(is_even, 0))
      assert.equal("alarm", acoro.receive_match(is_even, -1, "alarm"))
      assert.equal(1, acoro.receive(0))
      assert.equal(3, acoro.receive(0))
    end)
  end)

  it("passes each message to the predicate", function()
    acoro.run(function()
      local me = acoro.self()
      local t = { kind = "wanted" }
      me:send({ kind = "other" }); me:send(t)
      local got = acoro.receive_match(function(m) return m.kind == "wanted" end, 0)
      assert.equal(t, got)
      assert.equal("other", acoro.receive(0).kind)
    end)
  end)

  it("without a timeout waits for a match", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        ready(); return acoro.receive_match(is_even)
      end)
      co:send(7)
      co:send(12)
      assert.same({ true, 12 }, { co:join(5) })
    end)
  end)
end)

describe("co:deliver", function()
  it("returns true once the receiver's receive returned the message", function()
    acoro.run(function()
      local taken
      local receiver = spawn_blocked(function(ready)
        ready()
        acoro.sleep(0.02)
        taken = acoro.receive(5)
      end)
      local t = {}
      local ok, why = receiver:deliver(t, 5)
      assert.is_true(ok)
      assert.is_nil(why)
      acoro.yield()
      assert.equal(t, taken)
      receiver:join(5)
    end)
  end)

  it("waits for that very message, not an earlier one", function()
    acoro.run(function()
      local got = {}
      local step = acoro.self()
      local receiver = spawn_blocked(function(ready)
        ready()
        got[1] = acoro.receive(5)  -- "first"
        step:send("took first")
        acoro.sleep(0.02)
        got[2] = acoro.receive(5)  -- "second"
      end)
      receiver:send("first")
      assert.is_true((receiver:deliver("second", 5)))
      acoro.yield()
      assert.equal("second", got[2]) -- had deliver returned at "first", it would be nil
      assert.equal("took first", acoro.receive(0))
      receiver:join(5)
      assert.same({ "first", "second" }, got)
    end)
  end)

  it("succeeds when receive_match takes the message", function()
    acoro.run(function()
      local receiver = spawn_blocked(function(ready)
        ready()
        return acoro.receive_match(function(m) return m == "b" end, 5)
      end)
      receiver:send("a")
      assert.is_true((receiver:deliver("b", 5)))
      assert.same({ true, "b" }, { receiver:join(5) })
    end)
  end)

  it("returns nil, 'timeout' when not taken in time", function()
    acoro.run(function()
      local receiver = spawn_blocked(function(ready) ready(); acoro.sleep(30) end)
      local t0 = acoro.now()
      local ok, why = receiver:deliver("ignored", 0.05)
      support.assert_took(acoro.now() - t0, 0.05)
      assert.is_nil(ok)
      assert.equal("timeout", why)
      receiver:terminate()
    end)
  end)

  it("returns nil, 'dead' for a dead receiver", function()
    acoro.run(function()
      local co = acoro.spawn(function() end)
      co:join(5)
      assert.same({ nil, "dead", "EDEAD" }, { co:deliver("x", 5) })
      assert.same({ nil, "dead", "EDEAD" }, { co:deliver("x") })
    end)
  end)

  it("returns nil, 'dead' when the receiver ends without taking it", function()
    acoro.run(function()
      local receiver = spawn_blocked(function(ready) ready(); acoro.sleep(0.02) end)
      assert.same({ nil, "dead", "EDEAD" }, { receiver:deliver("never read", 5) })
      local other = spawn_blocked(function(ready) ready(); acoro.sleep(30) end)
      acoro.spawn(function() acoro.sleep(0.02); other:terminate() end)
      assert.same({ nil, "dead", "EDEAD" }, { other:deliver("never read", 5) })
    end)
  end)

  it("deliver(nil) raises like send(nil)", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); acoro.receive(5) end)
      local ok, err = pcall(function() return co:deliver(nil, 1) end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("message is nil", 1, true))
      co:send("end")
      co:join(5)
    end)
  end)
end)

describe("blocking calls outside an acoro coroutine", function()
  local function assert_outside(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("outside an acoro coroutine", 1, true),
      "unexpected error: " .. tostring(err))
  end

  it("raise for receive, receive_match, sleep, suspend, yield", function()
    assert_outside(function() acoro.receive() end)
    assert_outside(function() acoro.receive(0) end)
    assert_outside(function() acoro.receive_match(is_even, 0) end)
    assert_outside(function() acoro.sleep(0.01) end)
    assert_outside(function() acoro.suspend(0) end)
    assert_outside(function() acoro.yield() end)
  end)

  it("raise for locate with a timeout", function()
    assert_outside(function() acoro.locate("outside-nobody", { timeout = 0.01 }) end)
  end)

  it("raise for join and deliver", function()
    local live, dead
    local ok = pcall(acoro.run, function()
      dead = acoro.spawn(function() end)
      live = acoro.spawn(function() acoro.receive() end)
      live:set_daemon()
      dead:join(5)
    end)
    assert.is_true(ok)
    assert_outside(function() dead:join(1) end)
    assert_outside(function() dead:deliver("x", 1) end)
    assert_outside(function() live:join(1) end)
    assert_outside(function() live:deliver("x", 1) end)
  end)

  it("raise inside a plain Lua coroutine too", function()
    local co = coroutine.create(function() acoro.receive(0) end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("outside an acoro coroutine", 1, true))
  end)

  it("leave the engine usable afterwards", function()
    pcall(acoro.receive, 0)
    assert.equal(7, acoro.run(function() acoro.sleep(0.001); return 7 end))
  end)
end)

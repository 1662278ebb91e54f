-- acoro.suspend / co:resume: the value passed, timeouts and alarms, and resume of a
-- coroutine that is not waiting in suspend.

local acoro = require "acoro"
local support = require "spec.support"

local spawn_blocked = support.spawn_blocked

describe("acoro.suspend / co:resume", function()
  it("resume(v) wakes a suspended coroutine; suspend returns v", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); return acoro.suspend(5, "alarm") end)
      assert.equal("suspended", co:status())
      local t = {}
      assert.is_true(co:resume(t))
      assert.same({ true, t }, { co:join(5) })
    end)
  end)

  it("resume() or resume(nil) makes suspend return nil", function()
    acoro.run(function()
      for _, args in ipairs({ {}, { n = 1 } }) do
        local co = spawn_blocked(function(ready) ready(); return acoro.suspend(5, "alarm") end)
        assert.is_true(co:resume(unpack(args, 1, args.n or 0)))
        local ok, v = co:join(5)
        assert.is_true(ok)
        assert.is_nil(v)
      end
    end)
  end)

  it("resume(false) passes false", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); return acoro.suspend(5, "alarm") end)
      assert.is_true(co:resume(false))
      assert.same({ true, false }, { co:join(5) })
    end)
  end)

  it("without a timeout waits until resumed", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); return acoro.suspend() end)
      acoro.sleep(0.02)
      assert.equal("suspended", co:status())
      assert.is_true(co:resume("late"))
      assert.same({ true, "late" }, { co:join(5) })
    end)
  end)

  it("a second resume before it ran returns false; the first value wins", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); return acoro.suspend(5, "alarm") end)
      assert.is_true(co:resume("first"))
      assert.is_false(co:resume("second"))
      assert.same({ true, "first" }, { co:join(5) })
    end)
  end)

  it("is not ended by a message", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        ready(); return acoro.suspend(5, "alarm"), acoro.receive(0, "none")
      end)
      co:send("msg")
      acoro.yield()
      assert.equal("suspended", co:status())
      assert.is_true(co:resume("v"))
      assert.same({ true, "v", "msg" }, { co:join(5) })
    end)
  end)

  it("is ended by throw and terminate", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); return pcall(acoro.suspend, 30) end)
      assert.is_true(co:throw("thrown"))
      assert.same({ true, false, "thrown" }, { co:join(5) })
      co = spawn_blocked(function(ready) ready(); acoro.suspend(30) end)
      assert.is_true(co:terminate())
      assert.same({ false, "terminated" }, { co:join(5) })
      assert.is_false(co:resume("too late"))
    end)
  end)
end)

describe("acoro.suspend with a timeout", function()
  it("returns the alarm (nil by default) on timeout", function()
    acoro.run(function()
      local t0 = acoro.now()
      assert.equal("alarm", acoro.suspend(0.05, "alarm"))
      support.assert_took(acoro.now() - t0, 0.05)
      t0 = acoro.now()
      assert.is_nil(acoro.suspend(0.02))
      support.assert_took(acoro.now() - t0, 0.02)
    end)
  end)

  it("timeout <= 0 returns the alarm at once", function()
    acoro.run(function()
      for _, timeout in ipairs({ 0, -1, -0.01 }) do
        local t0 = acoro.now()
        assert.equal("alarm", acoro.suspend(timeout, "alarm"))
        assert.is_nil(acoro.suspend(timeout))
        support.assert_took(acoro.now() - t0, 0, 5)
      end
    end)
  end)

  it("after a timed-out suspend, the next suspend can be resumed", function()
    acoro.run(function()
      local parent = acoro.self()
      local co = acoro.spawn(function()
        local first = acoro.suspend(0.02, "alarm1")
        parent:send("timed out")
        local second = acoro.suspend(0.05, "alarm2")
        return first, second
      end)
      assert.equal("timed out", acoro.receive(5))
      -- co is now in its second suspend: resume wakes that one
      assert.is_true(co:resume("v"))
      assert.same({ true, "alarm1", "v" }, { co:join(5) })
      assert.is_false(co:resume("dead"))
    end)
  end)

  it("a resume before the suspend is not remembered", function()
    acoro.run(function()
      local co = acoro.spawn(function() return acoro.suspend(0.05, "alarm") end)
      assert.is_false(co:resume("early")) -- co is ready, not suspended
      assert.same({ true, "alarm" }, { co:join(5) })
    end)
  end)
end)

describe("co:resume of a coroutine that is not suspended", function()
  it("returns false for running, ready, sleeping, receiving, joining and dead", function()
    acoro.run(function()
      assert.is_false(acoro.self():resume("me")) -- running

      local ready = acoro.spawn(function() end)
      assert.equal("ready", ready:status())
      assert.is_false(ready:resume("x"))

      local sleeper = spawn_blocked(function(r) r(); acoro.sleep(30) end)
      assert.is_false(sleeper:resume("x"))
      assert.equal("suspended", sleeper:status()) -- still sleeping

      local receiver = spawn_blocked(function(r) r(); return acoro.receive(30, "alarm") end)
      assert.is_false(receiver:resume("x"))
      assert.equal("receiving", receiver:status())

      local joiner = spawn_blocked(function(r) r(); return sleeper:join(30) end)
      assert.is_false(joiner:resume("x"))

      ready:join(5)
      assert.is_false(ready:resume("x")) -- dead

      receiver:send("msg")
      assert.same({ true, "msg" }, { receiver:join(5) })
      sleeper:terminate()
      assert.same({ true, false, "terminated" }, { joiner:join(5) })
    end)
  end)
end)

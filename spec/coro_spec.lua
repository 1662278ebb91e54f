-- Coroutines: acoro.run, spawn, self, identity (id, name, tostring), status in each
-- state, is_alive, set_daemon, yield ordering, sleep and now (docs/lua-api-notes.md).
-- Every wait has a bound; a child reports "I am about to block" with a message before it
-- blocks, so the parent waits for events rather than sleeping.

local acoro = require "acoro"
local support = require "spec.support"

local spawn_blocked = support.spawn_blocked

describe("acoro.run", function()
  it("returns the main function's results and passes it arguments", function()
    local n, a, b, c = (function(...) return select("#", ...), ... end)(
      acoro.run(function(x, y) return x + y, nil, y end, 1, 2))
    assert.equal(3, n)
    assert.equal(3, a)
    assert.is_nil(b)
    assert.equal(2, c)
  end)

  it("returns nothing when the main function returns nothing", function()
    assert.equal(0, select("#", acoro.run(function() end)))
  end)

  it("runs the function as the main coroutine, named main", function()
    local name, id = acoro.run(function() return acoro.self().name, acoro.self().id end)
    assert.equal("main", name)
    assert.is_number(id)
  end)

  it("re-raises a string error with a traceback appended", function()
    local ok, err = pcall(acoro.run, function() error("boom in main") end)
    assert.is_false(ok)
    assert.is_string(err)
    assert.truthy(err:find("boom in main", 1, true))
    assert.truthy(err:find("traceback", 1, true))
  end)

  it("re-raises a non-string error value as is", function()
    local e = { code = 42 }
    local ok, err = pcall(acoro.run, function() error(e) end)
    assert.is_false(ok)
    assert.equal(e, err)
  end)

  it("waits for every non-daemon coroutine before returning", function()
    local done = {}
    acoro.run(function()
      for i = 1, 3 do
        acoro.spawn(function() acoro.sleep(0.01 * i); done[#done + 1] = i end)
      end
    end)
    assert.same({ 1, 2, 3 }, done)
  end)

  it("raises 'acoro: deadlock' when all remaining coroutines are blocked for ever", function()
    local ok, err = pcall(acoro.run, function()
      acoro.spawn(function() acoro.receive() end)
      acoro.suspend()
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("^acoro: deadlock"))
  end)

  it("raises deadlock when a child waits for ever after main ended", function()
    local ok, err = pcall(acoro.run, function()
      acoro.spawn(function() acoro.receive() end)
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("^acoro: deadlock"))
  end)

  it("may be called again after it returned or raised", function()
    assert.equal(1, acoro.run(function() return 1 end))
    pcall(acoro.run, function() error("x") end)
    pcall(acoro.run, function() acoro.receive() end)
    assert.equal(2, acoro.run(function() acoro.sleep(0.001); return 2 end))
  end)
end)

describe("acoro.spawn", function()
  it("starts the function later: the caller keeps running", function()
    acoro.run(function()
      local started = false
      local co = acoro.spawn(function() started = true end)
      assert.is_false(started)
      assert.equal("ready", co:status())
      assert.is_true((co:join(5)))
      assert.is_true(started)
    end)
  end)

  it("passes arguments, including nils, to the function", function()
    acoro.run(function()
      local co = acoro.spawn(function(...) return select("#", ...), ... end, 1, nil, "c")
      local ok, n, a, b, c = co:join(5)
      assert.is_true(ok)
      assert.equal(3, n)
      assert.equal(1, a)
      assert.is_nil(b)
      assert.equal("c", c)
    end)
  end)

  it("runs spawned coroutines in spawn order", function()
    local order = {}
    acoro.run(function()
      for i = 1, 5 do acoro.spawn(function() order[#order + 1] = i end) end
    end)
    assert.same({ 1, 2, 3, 4, 5 }, order)
  end)

  it("can spawn from a spawned coroutine", function()
    local got = acoro.run(function()
      local inner
      local outer = acoro.spawn(function()
        inner = acoro.spawn(function() return "inner" end)
        return "outer"
      end)
      assert.is_true((outer:join(5)))
      return select(2, inner:join(5))
    end)
    assert.equal("inner", got)
  end)
end)

describe("acoro.self", function()
  it("is the coroutine spawn returned", function()
    acoro.run(function()
      local me = acoro.self()
      local co = acoro.spawn(function() me:send(acoro.self().id) end)
      assert.equal(co.id, acoro.receive(5))
      assert.are_not.equal(me.id, co.id)
      assert.equal(me.id, acoro.self().id)
    end)
  end)
end)

describe("coroutine identity", function()
  it("ids are unique numbers and never reused", function()
    acoro.run(function()
      local seen = { [acoro.self().id] = true }
      for _ = 1, 3 do
        local batch = {}
        for i = 1, 300 do
          local co = acoro.spawn(function() end)
          assert.is_number(co.id)
          assert.is_nil(seen[co.id])
          seen[co.id] = true
          batch[i] = co
        end
        for _, co in ipairs(batch) do assert.is_true((co:join(5))) end
        collectgarbage()
      end
    end)
    -- and across runs of the engine within one process
    local id1 = acoro.run(function() return acoro.self().id end)
    local id2 = acoro.run(function() return acoro.self().id end)
    assert.are_not.equal(id1, id2)
  end)

  it("name is nil for a spawned coroutine, 'main' for the main one", function()
    acoro.run(function()
      assert.equal("main", acoro.self().name)
      local co = acoro.spawn(function() end)
      assert.is_nil(co.name)
      co:join(5)
    end)
  end)

  it("location is nil without a node", function()
    acoro.run(function()
      assert.is_nil(acoro.self().location)
      assert.is_nil(acoro.spawn(function() end).location)
    end)
  end)

  it("tostring is coro:<name or '-'>/<id>", function()
    acoro.run(function()
      local me = acoro.self()
      assert.equal("coro:main/" .. me.id, tostring(me))
      local co = spawn_blocked(function(ready) ready(); acoro.receive(5) end)
      assert.equal("coro:-/" .. co.id, tostring(co))
      assert.is_true((co:register("spec-tostring")))
      assert.equal("spec-tostring", co.name)
      assert.equal("coro:spec-tostring/" .. co.id, tostring(co))
      co:send("go")
      co:join(5)
    end)
  end)
end)

describe("co:status and co:is_alive", function()
  it("is 'running' for the running coroutine", function()
    acoro.run(function()
      assert.equal("running", acoro.self():status())
      assert.is_true(acoro.self():is_alive())
      local ok, inner = acoro.spawn(function() return acoro.self():status() end):join(5)
      assert.is_true(ok)
      assert.equal("running", inner)
    end)
  end)

  it("is 'ready' after spawn and 'dead' after it ended", function()
    acoro.run(function()
      local co = acoro.spawn(function() end)
      assert.equal("ready", co:status())
      assert.is_true(co:is_alive())
      co:join(5)
      assert.equal("dead", co:status())
      assert.is_false(co:is_alive())
    end)
  end)

  it("is 'ready' when woken but not yet run", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); return acoro.receive(5) end)
      assert.equal("receiving", co:status())
      co:send("wake")
      assert.equal("ready", co:status())
      assert.is_true(co:is_alive())
      assert.same({ true, "wake" }, { co:join(5) })
    end)
  end)

  it("is 'ready' for a coroutine that yielded", function()
    acoro.run(function()
      local parent = acoro.self()
      local co = acoro.spawn(function() parent:send("r"); acoro.yield() end)
      assert.equal("r", acoro.receive(5))
      assert.equal("ready", co:status())
      assert.is_true(co:is_alive())
      co:join(5)
    end)
  end)

  it("is 'receiving' in receive and receive_match", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready) ready(); acoro.receive(5) end)
      assert.equal("receiving", co:status())
      assert.is_true(co:is_alive())
      co:send(1)
      co:join(5)
      co = spawn_blocked(function(ready)
        ready(); acoro.receive_match(function(m) return m == 2 end, 5)
      end)
      assert.equal("receiving", co:status())
      co:send(1) -- does not match: still receiving
      acoro.yield()
      assert.equal("receiving", co:status())
      co:send(2)
      co:join(5)
      assert.equal("dead", co:status())
    end)
  end)

  it("is 'suspended' while sleeping, suspended, joining or delivering", function()
    acoro.run(function()
      local sleeper = spawn_blocked(function(ready) ready(); acoro.sleep(30) end)
      assert.equal("suspended", sleeper:status())
      assert.is_true(sleeper:is_alive())

      local susp = spawn_blocked(function(ready) ready(); acoro.suspend(30) end)
      assert.equal("suspended", susp:status())

      local joiner = spawn_blocked(function(ready) ready(); sleeper:join(30) end)
      assert.equal("suspended", joiner:status())

      local deliverer = spawn_blocked(function(ready) ready(); sleeper:deliver("x", 30) end)
      assert.equal("suspended", deliverer:status())

      for _, co in ipairs({ deliverer, joiner, susp, sleeper }) do
        assert.is_true(co:terminate())
        assert.equal("dead", co:status())
        assert.is_false(co:is_alive())
      end
    end)
  end)

  it("is 'dead' after an error or terminate", function()
    support.expect_failures("spec: expected failure")
    acoro.run(function()
      local failed = acoro.spawn(function() error("spec: expected failure", 0) end)
      failed:join(5)
      assert.equal("dead", failed:status())
      assert.is_false(failed:is_alive())
      local killed = acoro.spawn(function() acoro.sleep(30) end)
      killed:terminate()
      assert.equal("dead", killed:status())
      assert.is_false(killed:is_alive())
    end)
  end)
end)

describe("co:set_daemon", function()
  it("a daemon blocked for ever does not keep run alive (no deadlock)", function()
    local served = {}
    acoro.run(function()
      local server = acoro.spawn(function()
        while true do served[#served + 1] = acoro.receive() end
      end)
      server:set_daemon()
      server:send("a")
      server:send("b")
      acoro.yield()
    end)
    assert.same({ "a", "b" }, served)
  end)

  it("set_daemon(true) from inside the daemon itself", function()
    local started = false
    acoro.run(function()
      acoro.spawn(function()
        acoro.self():set_daemon(true); started = true; acoro.receive()
      end)
      acoro.yield()
    end)
    assert.is_true(started)
  end)

  it("set_daemon(false) makes it keep run alive again", function()
    local finished = false
    acoro.run(function()
      local co = acoro.spawn(function() acoro.sleep(0.05); finished = true end)
      co:set_daemon(true)
      co:set_daemon(false)
    end)
    assert.is_true(finished)
  end)

  it("main waiting on nothing but daemons is a deadlock", function()
    local ok, err = pcall(acoro.run, function()
      local d = acoro.spawn(function() acoro.receive() end)
      d:set_daemon()
      acoro.receive()
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("^acoro: deadlock"))
  end)
end)

describe("acoro.yield", function()
  it("lets a ready coroutine run, then continues", function()
    acoro.run(function()
      local ran = false
      acoro.spawn(function() ran = true end)
      assert.is_false(ran)
      acoro.yield()
      assert.is_true(ran)
    end)
  end)

  it("interleaves yielding coroutines round-robin", function()
    local log = {}
    acoro.run(function()
      for _, name in ipairs({ "a", "b", "c" }) do
        acoro.spawn(function()
          for i = 1, 3 do
            log[#log + 1] = name .. i
            acoro.yield()
          end
        end)
      end
    end)
    assert.same({ "a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3" }, log)
  end)

  it("returns at once when nothing else is ready", function()
    acoro.run(function()
      local t0 = acoro.now()
      for _ = 1, 100 do acoro.yield() end
      support.assert_took(acoro.now() - t0, 0, 5)
    end)
  end)
end)

describe("acoro.sleep", function()
  it("sleeps at least the given time", function()
    acoro.run(function()
      local t0 = acoro.now()
      acoro.sleep(0.05)
      support.assert_took(acoro.now() - t0, 0.05)
    end)
  end)

  it("with s <= 0 just yields", function()
    acoro.run(function()
      for _, s in ipairs({ 0, -1, -0.5 }) do
        local ran = false
        acoro.spawn(function() ran = true end)
        local t0 = acoro.now()
        acoro.sleep(s)
        assert.is_true(ran)
        support.assert_took(acoro.now() - t0, 0, 5)
      end
    end)
  end)

  it("lets others run while sleeping", function()
    acoro.run(function()
      local count = 0
      local co = acoro.spawn(function()
        for _ = 1, 10 do count = count + 1; acoro.yield() end
      end)
      acoro.sleep(0.02)
      assert.equal(10, count)
      co:join(5)
    end)
  end)

  it("wakes sleepers in deadline order", function()
    local order = {}
    acoro.run(function()
      for _, d in ipairs({ 0.06, 0.02, 0.04 }) do
        acoro.spawn(function() acoro.sleep(d); order[#order + 1] = d end)
      end
    end)
    assert.same({ 0.02, 0.04, 0.06 }, order)
  end)

  it("is not ended by a message or a resume", function()
    acoro.run(function()
      local t0
      local co = spawn_blocked(function(ready)
        t0 = acoro.now(); ready(); acoro.sleep(0.1); return acoro.now() - t0
      end)
      co:send("hello")
      assert.is_false(co:resume("v"))
      local ok, slept = co:join(5)
      assert.is_true(ok)
      support.assert_took(slept, 0.1)
    end)
  end)

  it("is ended by throw and by terminate", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        ready(); return pcall(acoro.sleep, 30)
      end)
      assert.is_true(co:throw("wake up"))
      local ok, pok, perr = co:join(5)
      assert.is_true(ok)
      assert.is_false(pok)
      assert.equal("wake up", perr)

      co = spawn_blocked(function(ready) ready(); acoro.sleep(30) end)
      local t0 = acoro.now()
      assert.is_true(co:terminate())
      assert.same({ false, "terminated" }, { co:join(5) })
      support.assert_took(acoro.now() - t0, 0, 5)
    end)
  end)
end)

describe("acoro.now", function()
  it("is a monotonic number of seconds", function()
    acoro.run(function()
      local last = acoro.now()
      assert.is_number(last)
      for i = 1, 1000 do
        local t = acoro.now()
        assert.is_true(t >= last)
        last = t
        if i % 100 == 0 then acoro.yield() end
      end
      acoro.sleep(0.02)
      local t = acoro.now()
      assert.is_true(t - last >= 0.02 - 1e-3)
      assert.is_true(t - last < 5)
    end)
  end)
end)

-- Hot swapping: acoro.hot_swappable / co:hot_swap. A swap keeps the coroutine (id, name,
-- queued messages); the old code may refuse it by catching the request; a monitor may
-- restart a coroutine that died with an error.

local acoro = require "acoro"
local support = require "support"

local spawn_blocked = support.spawn_blocked

-- A replacement function reporting who it runs as, its arguments, and the messages
-- queued for it (taken without waiting), to `to`.
local function reporter(to)
  return function(...)
    local me = acoro.self()
    local queued = {}
    while true do
      local m = acoro.receive(0)
      if m == nil then break end
      queued[#queued + 1] = m
    end
    to:send({ id = me.id, name = me.name, args = { ... }, queued = queued })
    return "swapped"
  end
end

describe("co:hot_swap", function()
  it("at receive: the new function runs in the same coroutine with its arguments", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        acoro.hot_swappable(true)
        assert(acoro.self():register("swap-recv"))
        ready()
        acoro.receive(30)
        return "old ended"
      end)
      local id = co.id
      assert.is_true(co:hot_swap(reporter(acoro.self()), "a", 2))
      local r = acoro.receive(5, "no report")
      assert.is_table(r)
      assert.equal(id, r.id)
      assert.equal("swap-recv", r.name)
      assert.same({ "a", 2 }, r.args)
      assert.same({ true, "swapped" }, { co:join(5) })
    end)
  end)

  it("keeps queued messages, in order, for the new function", function()
    acoro.run(function()
      -- the old code waits in receive_match for a message that never comes, so the
      -- others stay queued when the swap arrives
      local co = spawn_blocked(function(ready)
        acoro.hot_swappable(true)
        ready()
        acoro.receive_match(function(m) return m == "never" end, 30)
      end)
      co:send("m1"); co:send("m2"); co:send("m3")
      acoro.yield()
      assert.is_true(co:hot_swap(reporter(acoro.self())))
      local r = acoro.receive(5, "no report")
      assert.is_table(r)
      assert.equal(co.id, r.id)
      assert.same({ "m1", "m2", "m3" }, r.queued)
      assert.same({ true, "swapped" }, { co:join(5) })
    end)
  end)

  it("at sleep and at suspend", function()
    acoro.run(function()
      local waits = {
        function() acoro.sleep(30) end,
        function() acoro.suspend(30) end,
      }
      for _, wait in ipairs(waits) do
        local co = spawn_blocked(function(ready)
          acoro.hot_swappable(true); ready(); wait(); return "old ended"
        end)
        co:send("queued")
        assert.is_true(co:hot_swap(reporter(acoro.self()), "x"))
        local r = acoro.receive(5, "no report")
        assert.is_table(r)
        assert.equal(co.id, r.id)
        assert.same({ "x" }, r.args)
        assert.same({ "queued" }, r.queued)
        assert.same({ true, "swapped" }, { co:join(5) })
      end
    end)
  end)

  it("the new function can itself be swapped", function()
    acoro.run(function()
      local parent = acoro.self()
      local function version(n)
        return function()
          acoro.hot_swappable(true)
          parent:send(n)
          return acoro.receive(30)
        end
      end
      local co = acoro.spawn(version(1))
      assert.equal(1, acoro.receive(5))
      assert.is_true(co:hot_swap(version(2)))
      assert.equal(2, acoro.receive(5))
      assert.is_true(co:hot_swap(version(3)))
      assert.equal(3, acoro.receive(5))
      co:send("done")
      assert.same({ true, "done" }, { co:join(5) })
    end)
  end)

  it("does not interrupt a coroutine that is not swappable", function()
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        acoro.hot_swappable(false)
        ready()
        local ok, m = pcall(acoro.receive, 5)
        return ok, m
      end)
      co:hot_swap(function() return "new" end)
      acoro.yield()
      assert.equal("receiving", co:status())
      co:send("still old")
      assert.same({ true, true, "still old" }, { co:join(5) })
    end)
  end)

  it("of a dead coroutine that is not being restarted returns false", function()
    acoro.run(function()
      local co = acoro.spawn(function() end)
      co:join(5)
      assert.is_false(co:hot_swap(function() end))
    end)
  end)
end)

describe("refusing a swap", function()
  it("the old code catches the request, inspects it, and goes on", function()
    acoro.run(function()
      local parent = acoro.self()
      local new_fn = function() parent:send("new code ran") end
      local co = spawn_blocked(function(ready)
        acoro.hot_swappable(true)
        ready()
        local seen = {}
        while true do
          local ok, m = pcall(acoro.receive, 30)
          if ok then
            if m == "stop" then break end
            seen[#seen + 1] = m
          elseif acoro.is_hot_swap(m) then
            seen[#seen + 1] = { refused = true, fn_ok = (m.fn == new_fn), args = { m.args[1], m.args[2] } }
          else
            error(m, 0)
          end
        end
        return seen
      end)
      co:send("before")
      acoro.yield()
      assert.is_true(co:hot_swap(new_fn, "arg1", 2))
      acoro.yield()
      co:send("after")
      co:send("stop")
      local ok, seen = co:join(5)
      assert.is_true(ok)
      assert.same({ "before", { refused = true, fn_ok = true, args = { "arg1", 2 } }, "after" },
        seen)
      assert.equal("none", acoro.receive(0.02, "none")) -- the new function never ran
    end)
  end)

  it("is_hot_swap is false for other values", function()
    acoro.run(function()
      for _, v in ipairs({ "x", 1, {}, { fn = print, args = {} }, false }) do
        assert.is_false(acoro.is_hot_swap(v))
      end
      assert.is_false(acoro.is_hot_swap(nil))
    end)
  end)
end)

describe("restarting a failed coroutine from its monitor", function()
  it("hot_swap from the watcher restarts a coroutine that died with an error", function()
    support.expect_failures("spec: expected failure before restart")
    acoro.run(function()
      local co = spawn_blocked(function(ready)
        ready()
        acoro.receive(5)
        error("spec: expected failure before restart", 0)
      end)
      co:monitor()
      co:send("fail now")
      local m = acoro.receive_match(acoro.is_exit, 5, "no exit")
      assert.is_true(acoro.is_exit(m))
      assert.equal("error", m.reason)
      assert.equal("dead", co:status())

      assert.is_true(m.coro:hot_swap(function(tag)
        return tag, acoro.self().id, acoro.receive(5, "alarm")
      end, "restarted"))
      assert.is_true(co:is_alive())
      assert.is_true(co:send("fresh message"))
      assert.same({ true, "restarted", co.id, "fresh message" }, { co:join(5) })
    end)
  end)

  it("only from a watcher, and only after an error exit", function()
    support.expect_failures("spec: expected failure, no restart")
    acoro.run(function()
      local failed = acoro.spawn(function() error("spec: expected failure, no restart", 0) end)
      local watcher = acoro.spawn(function()
        failed:monitor()
        local m = acoro.receive_match(acoro.is_exit, 5, {})
        return m.reason
      end)
      assert.same({ true, "error" }, { watcher:join(5) })
      assert.is_false(failed:hot_swap(function() end)) -- the caller is not its watcher
      assert.equal("dead", failed:status())

      local normal = acoro.spawn(function() return 1 end)
      normal:monitor()
      assert.equal("normal", acoro.receive_match(acoro.is_exit, 5, {}).reason)
      assert.is_false(normal:hot_swap(function() end)) -- it did not fail
      assert.equal("dead", normal:status())
    end)
  end)
end)

describe("a restarted channel subscriber", function()
  it("is back on its channels: messages sent after the restart reach it", function()
    support.expect_failures("spec: subscriber fails on purpose")
    acoro.run(function()
      local ch = acoro.channel("spec-restart-sub")
      local other = acoro.channel("spec-restart-other")
      local got = {}
      local function body(tag)
        return function()
          while true do
            local m = acoro.receive(10, "no message")
            if m == "crash" then error("spec: subscriber fails on purpose", 0) end
            got[#got + 1] = tag .. ":" .. tostring(m)
            if m == "last" then return "done" end
          end
        end
      end
      local sub = acoro.spawn(body("v1"))
      sub:monitor()
      assert.is_true(ch:subscribe(sub))
      assert.is_true(other:subscribe(sub))
      ch:send("a")
      ch:send("crash")
      local m = acoro.receive_match(acoro.is_exit, 10, "no exit")
      assert.is_true(acoro.is_exit(m))
      assert.equal("error", m.reason)
      assert.equal(0, ch:subscribers()) -- a dead coroutine is on no channel
      other:close() -- closed meanwhile: not joined again
      assert.is_true(sub:hot_swap(body("v2")))
      assert.equal(1, ch:subscribers())
      assert.equal(0, other:subscribers())
      ch:send("b")
      ch:send("last")
      assert.same({ true, "done" }, { sub:join(10) })
      assert.same({ "v1:a", "v2:b", "v2:last" }, got)
      assert.equal(0, ch:subscribers()) -- it ended normally: it left
    end)
  end)
end)

-- Names: co:register / co:unregister / acoro.locate, including locate waiting for a
-- later register, a name taken by another live coroutine, and release on death.

local acoro = require "acoro"
local support = require "spec.support"

local spawn_blocked = support.spawn_blocked

local function idle()
  return spawn_blocked(function(ready) ready(); return acoro.receive(30) end)
end

describe("co:register and acoro.locate", function()
  it("registers a name that locate finds", function()
    acoro.run(function()
      local co = idle()
      assert.same({ true }, { co:register("reg-a") })
      assert.equal("reg-a", co.name)
      assert.equal("coro:reg-a/" .. co.id, tostring(co))
      local found = acoro.locate("reg-a")
      assert.is_not_nil(found)
      assert.equal(co.id, found.id)
      assert.is_true(found:send("via locate")) -- the located handle works
      assert.same({ true, "via locate" }, { co:join(5) })
    end)
  end)

  it("a coroutine can register itself", function()
    acoro.run(function()
      local co = acoro.spawn(function()
        assert(acoro.self():register("reg-self"))
        return acoro.receive(5)
      end)
      acoro.yield()
      local found = acoro.locate("reg-self")
      assert.equal(co.id, found.id)
      co:send("bye")
      co:join(5)
    end)
  end)

  it("locate of an unknown name gives nil, 'not found'", function()
    acoro.run(function()
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("reg-nobody") })
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("reg-nobody", {}) })
    end)
  end)

  it("a name taken by another live coroutine gives nil, 'name taken'", function()
    acoro.run(function()
      local a, b = idle(), idle()
      assert.is_true((a:register("reg-taken")))
      assert.same({ nil, "name taken", "EEXIST" }, { b:register("reg-taken") })
      assert.is_nil(b.name)
      assert.equal(a.id, acoro.locate("reg-taken").id)
      a:terminate(); b:terminate()
    end)
  end)

  it("registering the same name again on the same coroutine is fine", function()
    acoro.run(function()
      local a = idle()
      assert.is_true((a:register("reg-again")))
      assert.is_true((a:register("reg-again")))
      assert.equal(a.id, acoro.locate("reg-again").id)
      a:terminate()
    end)
  end)

  it("unregister frees the name", function()
    acoro.run(function()
      local a, b = idle(), idle()
      assert.is_true((a:register("reg-free")))
      a:unregister()
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("reg-free") })
      assert.is_true((b:register("reg-free")))
      assert.equal(b.id, acoro.locate("reg-free").id)
      assert.is_true(a:is_alive())
      a:terminate(); b:terminate()
    end)
  end)

  it("a coroutine's name is released when it dies, whatever the end", function()
    acoro.run(function()
      local ends = {
        function(co) co:send("return") end,
        function(co) co:throw("spec: expected failure via throw") end,
        function(co) co:terminate() end,
      }
      for i, finish in ipairs(ends) do
        local name = "reg-dies-" .. i
        local co = idle()
        assert.is_true((co:register(name)))
        finish(co)
        co:join(5)
        assert.same({ nil, "not found", "ENOENT" }, { acoro.locate(name) })
        local heir = idle()
        assert.is_true((heir:register(name)))
        assert.equal(heir.id, acoro.locate(name).id)
        heir:terminate()
      end
    end)
  end)
end)

describe("acoro.locate with a timeout", function()
  it("waits for a name registered later", function()
    acoro.run(function()
      local co = acoro.spawn(function()
        acoro.sleep(0.02)
        assert(acoro.self():register("reg-later"))
        return acoro.receive(5)
      end)
      local found, err = acoro.locate("reg-later", { timeout = 5 })
      assert.is_nil(err)
      assert.equal(co.id, found.id)
      found:send("hi")
      assert.same({ true, "hi" }, { co:join(5) })
    end)
  end)

  it("returns at once when the name is already registered", function()
    acoro.run(function()
      local co = idle()
      co:register("reg-now")
      local t0 = acoro.now()
      assert.equal(co.id, acoro.locate("reg-now", { timeout = 5 }).id)
      support.assert_took(acoro.now() - t0, 0, 1)
      co:terminate()
    end)
  end)

  it("gives nil, 'not found' after the timeout", function()
    acoro.run(function()
      local t0 = acoro.now()
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("reg-never", { timeout = 0.05 }) })
      support.assert_took(acoro.now() - t0, 0.05)
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("reg-never", { timeout = 0 }) })
    end)
  end)

  it("several locators waiting for the same name all find it", function()
    acoro.run(function()
      local finders = {}
      for i = 1, 3 do
        finders[i] = acoro.spawn(function()
          local co = acoro.locate("reg-many", { timeout = 5 })
          return co and co.id
        end)
      end
      acoro.yield()
      local target = idle()
      target:register("reg-many")
      for i = 1, 3 do assert.same({ true, target.id }, { finders[i]:join(5) }) end
      target:terminate()
    end)
  end)
end)

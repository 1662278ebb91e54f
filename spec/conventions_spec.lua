-- The rules every module follows (docs/lua-api-notes.md, "Errors"): an
-- expected failure returns nil, message, code (coroutines and channels keep
-- their bare word as the message, with an upper-case code as I/O has);
-- registering a taken name fails the same way everywhere; both kinds of
-- channel send return true; tostring(co) carries the node's location;
-- every lock-like primitive has locked().

local acoro = require "acoro"
local check = require "acoro.check"
local support = require "spec.support"

local function idle()
  return support.spawn_blocked(function(ready) ready(); return acoro.receive(30) end)
end

describe("expected failures: nil, message, code", function()
  it("coroutine calls: timeout, dead, full, name taken, not found", function()
    acoro.run(function()
      local co = acoro.spawn(acoro.sleep, 30) -- never receives: its mailbox fills
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { co:join(0) })
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { co:join(0.01) })
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { co:deliver("x", 0) })
      co:set_mailbox_limit(1)
      co:send("first")
      acoro.log.set_level("error") -- the mailbox's warning is expected here
      assert.same({ nil, "full", "ENOBUFS" }, { co:deliver("x", 1) })
      assert.is_true(co:register("conv-taken"))
      local other = idle()
      assert.same({ nil, "name taken", "EEXIST" }, { other:register("conv-taken") })
      other:terminate()
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("conv-nobody") })
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("conv-nobody", { timeout = 0.01 }) })
      acoro.log.set_level("info")
      co:terminate()
      assert.same({ nil, "dead", "EDEAD" }, { co:deliver("x", 1) })
    end)
  end)

  it("co:register on a dead coroutine: nil, 'dead', 'EDEAD', and the name stays free", function()
    acoro.run(function()
      local co = acoro.spawn(function() end)
      co:join()
      assert.same({ nil, "dead", "EDEAD" }, { co:register("conv-dead") })
      assert.is_nil(co.name)
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate("conv-dead") })
      local other = idle()
      assert.is_true(other:register("conv-dead"))
      other:terminate()
    end)
  end)

  it("channel calls: dead, cycle, not subscribed, name taken, not found", function()
    acoro.run(function()
      local a, b = acoro.channel("conv-a"), acoro.channel("conv-b")
      local dead = acoro.spawn(function() end)
      dead:join()
      assert.same({ nil, "dead", "EDEAD" }, { a:subscribe(dead) })
      assert.is_true(a:subscribe(b))
      local r = { b:subscribe(a) }
      assert.same({ nil, "cycle: channel conv-a already reaches channel conv-b", "ELOOP" }, r)
      assert.same({ nil, "not subscribed", "ENOENT" }, { b:unsubscribe(a) })
      assert.is_true(a:register())
      assert.same({ nil, "name taken", "EEXIST" }, { acoro.channel("conv-a"):register() })
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate_channel("conv-none") })
      assert.same({ nil, "not found", "ENOENT" }, { acoro.locate_channel("conv-none", { timeout = 0.01 }) })
      a:close(); b:close()
    end)
  end)

  it("I/O keeps its form: nil, 'ECODE: message', 'ECODE'", function()
    acoro.run(function()
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      srv:close()
      local s, msg, code = acoro.tcp.connect("127.0.0.1", port, { timeout = 5 })
      assert.is_nil(s)
      assert.equal("ECONNREFUSED", code)
      assert.equal("ECONNREFUSED: ", msg:sub(1, 14))
    end)
  end)

  it("check.fail maps each bare word to its code, one table for every module", function()
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { check.fail("timeout") })
    assert.same({ nil, "unreachable", "ENOPEER" }, { check.fail("unreachable") })
    assert.same({ nil, "cycle: x", "ELOOP" }, { check.fail("cycle: x", "ELOOP") })
    for word, code in pairs(check.CODES) do
      assert.is_string(word)
      assert.matches("^E[A-Z]+$", code)
    end
  end)

  it("a message with detail gets its word's code: distribution's refusals and I/O's ECODE", function()
    assert.same({ nil, "cycle: x", "ELOOP" }, { check.fail("cycle: x") })
    assert.equal("EFBIG", check.code("too large: 5000 > max_file_size 1000"))
    assert.equal("EACCES", check.code("path escapes dest_path (symbolic link out)"))
    assert.equal("ECONNREFUSED", check.code("refused: wrong secret (proof mismatch)"))
    assert.equal("ENOENT", check.code("ENOENT: no such file or directory"))
    assert.equal("EINVAL", check.code("a message without a word of the table"))
  end)
end)

describe("one behaviour where there were two", function()
  it("a local channel's send returns true, as a remote channel's does when it is queued", function()
    acoro.run(function()
      local ch = acoro.channel("conv-send")
      local co = idle()
      assert.is_true(ch:subscribe(co))
      assert.same({ true }, { ch:send("m") })
      assert.equal("m", select(2, co:join()))
      assert.same({ true }, { ch:send("nobody listens") })
      ch:close()
    end)
  end)

  it("tostring(co) is coro:NAME/ID before a node runs and coro:NAME/ID@LOCATION while one does",
    function()
      acoro.run(function()
        local co = idle()
        assert.equal("coro:-/" .. co.id, tostring(co))
        local node = acoro.node({ host = "127.0.0.1", port = 0, discover = false })
        assert.equal("coro:-/" .. co.id .. "@" .. node.location, tostring(co))
        assert.is_true(co:register("conv-where"))
        assert.equal("coro:conv-where/" .. co.id .. "@" .. co.location, tostring(co))
        co:terminate()
      end)
      assert.is_nil(acoro.node())
    end)

  it("locked() on every lock-like primitive: Lock, RLock, Semaphore, Condition", function()
    acoro.run(function()
      for _, p in ipairs({ acoro.Lock(), acoro.RLock(), acoro.Semaphore(), acoro.Condition() }) do
        assert.is_false(p:locked())
        assert.is_true(p:acquire())
        assert.is_true(p:locked())
        p:release()
        assert.is_false(p:locked())
      end
      local s = acoro.Semaphore(2)
      s:acquire()
      assert.is_false(s:locked())
      s:acquire()
      assert.is_true(s:locked())
      assert.is_true(acoro.Semaphore(0):locked())
      local cond = acoro.Condition(acoro.Lock())
      local holder = acoro.spawn(function() cond:acquire(); acoro.receive() end)
      acoro.yield()
      assert.is_true(cond:locked()) -- held by another coroutine
      holder:terminate()
      assert.has_error(function() acoro.Semaphore.locked(acoro.Lock()) end)
      assert.has_error(function() acoro.Condition().locked(5) end)
    end)
  end)
end)

describe("the public tables", function()
  it("acoro.log has no underscore field: what acoro.run needs of it is acoro.internal's", function()
    local log = require "acoro.log"
    for k in pairs(log) do assert.is_nil(tostring(k):match("^_"), k) end
    assert.is_function(require("acoro.internal").log_drain)
    assert.equal(log, acoro.log)
  end)
end)

describe("the public tables", function()
  it("no table reachable from require 'acoro' has a field starting with '_'", function()
    local I = require "acoro.internal"
    I.load_all() -- the lazy modules (tcp, fs, node, rci, ...) fill their fields
    local roots = { acoro = acoro }
    for _, name in ipairs({ "acoro.discoro", "acoro.limits" }) do
      local ok, m = pcall(require, name)
      if ok and type(m) == "table" then roots[name] = m end
    end
    local seen, bad = {}, {}
    local function walk(t, path, depth)
      if seen[t] or depth > 4 then return end
      seen[t] = true
      for k, v in pairs(t) do
        -- "__index", "__tostring": metamethods of an exposed class are no fields
        if type(k) == "string" and k:match("^_") and not k:match("^__") then
          bad[#bad + 1] = path .. "." .. k
        end
        if type(v) == "table" and type(k) == "string" then walk(v, path .. "." .. k, depth + 1) end
      end
    end
    for name, t in pairs(roots) do walk(t, name, 0) end
    table.sort(bad)
    assert.same({}, bad)
  end)
end)

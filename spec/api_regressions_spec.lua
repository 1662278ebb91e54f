-- Regression specs of the API's argument checks, one per fixed bug, named
-- after it: methods called with a wrong self, Semaphore:release with a huge
-- count, NaN timeouts. The crash and the hang run in a child process (a
-- segfault or an endless loop there fails the spec, not busted).
local acoro = require "acoro"
local support = require "support"

-- Runs `source` with the CLI under a short limit: stdout, stderr, exit code.
local function child(source, limit)
  local path = support.write_temp(source)
  local out, err, code = support.run_cli(support.shell_quote(path), "", limit or 20)
  support.cleanup()
  return out, err, code
end

-- The error message of f(...), without its position.
local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(e):gsub("^[^:]*:%d+: ", ""))
end

describe("regression", function()
  it("co-send-with-a-wrong-self-segfaults", function()
    local out, err, code = child([[
      local acoro = require "acoro"
      local co = acoro.spawn(function() end)
      for _, bad in ipairs({ 5, "abc", io.stdout, newproxy(true), acoro.Lock(), {}, false }) do
        local ok, e = pcall(co.send, bad, "msg")
        print(ok, e)
      end
    ]])
    assert.are.equal(0, code, err)
    local lines = support.lines(out)
    assert.are.equal(7, #lines)
    assert.are.equal("false\tbad self to co:send (acoro coroutine expected, got number)", lines[1])
    assert.are.equal("false\tbad self to co:send (acoro coroutine expected, got string)", lines[2])
    assert.are.equal("false\tbad self to co:send (acoro coroutine expected, got userdata)", lines[3])
    assert.are.equal("false\tbad self to co:send (acoro coroutine expected, got userdata)", lines[4])
    assert.are.equal("false\tbad self to co:send (acoro coroutine expected, got acoro.Lock)", lines[5])
    assert.are.equal("false\tbad self to co:send (acoro coroutine expected, got table)", lines[6])
    assert.are.equal("false\tbad self to co:send (acoro coroutine expected, got boolean)", lines[7])
  end)

  it("every-coroutine-method-checks-its-self", function()
    acoro.run(function()
      local co = acoro.spawn(function() end)
      -- (send: in a child process above; it crashed)
      for _, m in ipairs({ "resume", "deliver", "throw", "terminate", "join", "set_daemon",
        "is_alive", "status", "monitor", "register", "unregister", "hot_swap" }) do
        for _, bad in ipairs({ 42, "s", acoro.Event() }) do
          local e = err_of(co[m], bad, "x")
          assert.matches("^bad self to co:" .. m .. " %(acoro coroutine expected, got ", e)
        end
      end
    end)
  end)

  it("methods-of-every-object-check-their-self", function()
    acoro.run(function()
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local p = assert(acoro.process.spawn({ "true" }))
      local job = acoro.pool.submit(function() return 1 end)
      local objects = {
        { "Lock", acoro.Lock(), { "acquire", "release", "locked", "with" } },
        { "RLock", acoro.RLock(), { "acquire", "release", "locked", "with" } },
        { "Semaphore", acoro.Semaphore(), { "acquire", "release", "with" } },
        { "Event", acoro.Event(), { "set", "clear", "is_set", "wait" } },
        { "Condition", acoro.Condition(), { "acquire", "release", "wait", "wait_for", "notify",
          "notify_all", "with" } },
        { "channel", acoro.channel("c"), { "send", "deliver", "subscribe", "unsubscribe",
          "subscribers", "register", "unregister", "close", "set_transform" } },
        { "stream", s, { "recv", "recvall", "readline", "read", "lines", "send", "write", "send_msg",
          "recv_msg", "settimeout", "shutdown", "getpeername", "getsockname", "setnodelay",
          "starttls", "close", "is_open" } },
        { "server", srv, { "accept", "getsockname", "settimeout", "close", "is_open" } },
        { "udp", u, { "sendto", "recvfrom", "getsockname", "close", "is_open", "dropped" } },
        { "process", p, { "wait", "kill", "close", "communicate" } },
        { "job", job, { "result" } },
      }
      for _, o in ipairs(objects) do
        local kind, obj, methods = o[1], o[2], o[3]
        for _, m in ipairs(methods) do
          local f = obj[m]
          assert.is_function(f, kind .. ":" .. m)
          for _, bad in ipairs({ 7, "str", acoro.self() }) do
            local e = err_of(f, bad, 0)
            assert.is_truthy(e:find("^bad self to ") or e:find("expected, got ")
              or e:find("expected a channel, got "), kind .. ":" .. m .. ": " .. e)
          end
        end
      end
      p:wait(5)
      s:close()
      srv:close()
      u:close()
    end)
  end)

  it("semaphore-release-of-2^53-loops-for-ever", function()
    local out, err, code = child([[
      local acoro = require "acoro"
      local s = acoro.Semaphore(0)
      local got = 0
      for _ = 1, 3 do acoro.spawn(function() if s:acquire() then got = got + 1 end end) end
      acoro.yield() -- the three wait
      s:release(2 ^ 53)
      acoro.yield() -- and run, granted
      print(got, s:acquire(0), s:acquire(false))
      s:release(1e308)
      print(s:acquire(0))
    ]], 10)
    assert.are.equal(0, code, err)
    assert.are.same({ "3\ttrue\ttrue", "true" }, support.lines(out))
  end)

  it("semaphore-release-takes-only-a-positive-whole-n", function()
    local s = acoro.Semaphore(0)
    for _, bad in ipairs({ 0, -1, 0.5, 0 / 0, math.huge, -math.huge, "2", {} }) do
      assert.matches("^acoro.Semaphore:release: n must be a positive integer, got ", err_of(s.release, s, bad))
    end
    local c = acoro.Condition()
    acoro.run(function()
      c:acquire()
      for _, bad in ipairs({ -1, 0.5, 0 / 0, math.huge, "x" }) do
        assert.matches("^acoro.Condition:notify: n must be a non%-negative integer, got ", err_of(c.notify, c, bad))
      end
      c:notify(2 ^ 53) -- no waiter: returns at once
      c:release()
    end)
  end)

  it("nan-timeout-is-taken-as-no-wait-or-misreported", function()
    local NAN = 0 / 0
    acoro.run(function()
      local co = acoro.spawn(function() acoro.receive() end)
      local l, rl, sem, ev, cond = acoro.Lock(), acoro.RLock(), acoro.Semaphore(0), acoro.Event(),
        acoro.Condition()
      local ch = acoro.channel("nan")
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local p = assert(acoro.process.spawn({ "true" }))
      local job = acoro.pool.submit(function() return 1 end)
      local cases = {
        { "acoro.receive", acoro.receive, NAN },
        { "acoro.suspend", acoro.suspend, NAN },
        { "acoro.receive_match", acoro.receive_match, function() end, NAN },
        { "co:deliver", co.deliver, co, "m", NAN },
        { "co:join", co.join, co, NAN },
        { "acoro.locate", acoro.locate, "nobody", { timeout = NAN } },
        { "acoro.Lock:acquire", l.acquire, l, NAN },
        { "acoro.Lock:acquire", l.acquire, l, true, NAN },
        { "acoro.RLock:acquire", rl.acquire, rl, NAN },
        { "acoro.Semaphore:acquire", sem.acquire, sem, NAN },
        { "acoro.Event:wait", ev.wait, ev, NAN },
        { "acoro.Condition:wait_for", cond.wait_for, cond, function() end, NAN },
        { "acoro.Channel:subscribe", ch.subscribe, ch, co, NAN },
        { "acoro.Channel:unsubscribe", ch.unsubscribe, ch, co, NAN },
        { "acoro.Channel:deliver", ch.deliver, ch, "m", NAN },
        { "acoro.locate_channel", acoro.locate_channel, "nobody", { timeout = NAN } },
        { "s:recv", s.recv, s, nil, NAN },
        { "s:recvall", s.recvall, s, 1, NAN },
        { "s:readline", s.readline, s, nil, NAN },
        { "s:read", s.read, s, nil, NAN },
        { "s:send", s.send, s, "x", NAN },
        { "s:recv_msg", s.recv_msg, s, NAN },
        { "s:settimeout", s.settimeout, s, NAN },
        { "s:starttls", s.starttls, s, {}, NAN },
        { "server:accept", srv.accept, srv, NAN },
        { "server:settimeout", srv.settimeout, srv, NAN },
        { "acoro.tcp.connect", acoro.tcp.connect, "127.0.0.1", port, { timeout = NAN } },
        { "u:recvfrom", u.recvfrom, u, NAN },
        { "u:sendto", u.sendto, u, "x", "127.0.0.1", port, NAN },
        { "p:wait", p.wait, p, NAN },
        { "p:communicate", p.communicate, p, nil, NAN },
        { "job:result", job.result, job, NAN },
      }
      for _, c in ipairs(cases) do
        local e = err_of(c[2], unpack(c, 3, 7))
        assert.matches("^bad argument #%d to '" .. c[1]:gsub("%p", "%%%0") .. "' %(.*timeout is NaN%)$", e)
      end
      assert.matches("^bad argument #1 to 'acoro.sleep' %(seconds is NaN%)$", err_of(acoro.sleep, NAN))
      cond:acquire()
      assert.matches("timeout is NaN", err_of(cond.wait, cond, NAN))
      assert.is_true(cond:release() == nil)
      -- the C bindings refuse NaN too (defence in depth under the Lua checks)
      assert.matches("timeout is NaN", err_of(u._recv, u, NAN))
      co:terminate()
      p:wait(5)
      s:close()
      srv:close()
      u:close()
    end)
  end)

  it("wait-with-a-timeout-after-a-nested-wait-ignores-its-timeout", function()
    -- A blocking call made from a plain coroutine inside an acoro coroutine
    -- leaves a wait registered; the acoro coroutine's next waits must raise,
    -- not wait (for ever) past their timeouts, nor join report an end.
    local got = acoro.run(function()
      local other = acoro.spawn(function() acoro.receive() end)
      local co = acoro.spawn(function()
        coroutine.wrap(function() return acoro.receive() end)()
        local r = {}
        local function try(name, f, ...)
          local ok, e = pcall(f, ...)
          r[#r + 1] = name .. ": " .. (ok and "returned" or tostring(e):match("already waiting") or tostring(e))
        end
        try("receive", acoro.receive, 0.01)
        try("suspend", acoro.suspend, 0.01)
        try("receive_match", acoro.receive_match, function() return false end, 0.01)
        try("join", other.join, other, 0.01)
        try("deliver", other.deliver, other, "m", 0.01)
        try("locate", acoro.locate, "nobody", { timeout = 0.01 })
        return r
      end)
      local ok, r = co:join(5)
      other:terminate()
      assert.is_true(ok, tostring(r))
      return r
    end)
    assert.are.same({ "receive: already waiting", "suspend: already waiting",
      "receive_match: already waiting", "join: already waiting", "deliver: already waiting",
      "locate: already waiting" }, got)
  end)

  it("udp-send-to-an-address-while-a-name-resolves-raises", function()
    local got = acoro.run(function()
      local r = assert(acoro.udp.bind("127.0.0.1", 0))
      local _, port = r:getsockname()
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local a = acoro.spawn(function() return u:sendto("by name", "localhost", port, 5) end)
      acoro.yield() -- a waits for the resolution of "localhost"
      local ok, n = pcall(u.sendto, u, "by address", "127.0.0.1", port, 5)
      local _, an = a:join(5)
      local seen = {}
      for _ = 1, 2 do seen[#seen + 1] = r:recvfrom(5) end
      table.sort(seen)
      r:close()
      u:close()
      return { ok, n, an, seen[1], seen[2] }
    end)
    assert.are.same({ true, 10, 7, "by address", "by name" }, got)
  end)

  it("udp-send-to-a-dotted-quad-that-is-no-address-leaves-a-stale-wait", function()
    -- "256.256.256.256" looked numeric to udp.lua but is a name to libuv:
    -- its resolution started with the coroutine's wait registered, then the
    -- send raised ESTATE and the next wait raised "already waiting".
    local got = acoro.run(function()
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local ok, r = pcall(u.sendto, u, "x", "256.256.256.256", 9, 1)
      local ok2, r2 = pcall(acoro.receive, 0.01, "alarm")
      u:close()
      return { ok, r, ok2, r2 }
    end)
    assert.are.same({ true, nil, true, "alarm" }, got)
  end)

  it("stream-of-fd-2^32-wraps-fd-0", function()
    -- C took the fd as an int: 2^32 became fd 0, 2^32 + 4 an fd of the
    -- engine's own (closing it aborts: a child process, then).
    local out, err, code = child([[
      local acoro = require "acoro"
      for _, bad in ipairs({ 2 ^ 32, 2 ^ 32 + 4, 2 ^ 53, -1, 0.5, 0 / 0, math.huge }) do
        local ok, e = pcall(acoro.stream, bad)
        print(ok, (tostring(e):gsub("^[^:]*:%d+: ", "")))
      end
      local ok, e = pcall(acoro.process.spawn, { "true", stdin = 2 ^ 32 })
      print(ok, e and tostring(e):match("stdin must be") or e)
      collectgarbage()
      acoro.sleep(0.01)
    ]])
    assert.are.equal(0, code, err)
    local lines = support.lines(out)
    assert.are.equal(8, #lines)
    for i = 1, 7 do
      assert.matches("^false\tacoro.stream: expected an fd number or a stream, got ", lines[i])
    end
    assert.are.equal("false\tstdin must be", lines[8])
  end)

  it("infinite-timeouts-mean-forever-and-at-once", function()
    local INF = math.huge
    acoro.run(function()
      acoro.self():send("m")
      assert.are.equal("m", acoro.receive(INF))
      assert.are.equal("alarm", acoro.receive(-INF, "alarm"))
      assert.are.equal("alarm", acoro.suspend(-INF, "alarm"))
      local l = acoro.Lock()
      assert.is_true(l:acquire(INF))
      assert.is_false(l:acquire(-INF))
      l:release()
      local ev = acoro.Event()
      assert.is_false(ev:wait(-INF))
      acoro.spawn(function() ev:set() end)
      assert.is_true(ev:wait(INF))
      local co = acoro.spawn(function() return 7 end)
      assert.are.same({ true, 7 }, { co:join(INF) })
    end)
  end)
end)

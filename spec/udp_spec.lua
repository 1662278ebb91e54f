-- acoro.udp (lua/acoro/udp.lua, bindings/ludp.c, core/udp.c): bind options,
-- sendto to numbers and names, recvfrom with timeouts, the bounded receive
-- queue, close while waiting, closed-object errors and bad arguments. Only
-- 127.0.0.1; every wait is bounded.

local acoro = require "acoro"
local support = require "support"

local function run(fn)
  return acoro.run(fn)
end

local function pair()
  local a = assert(acoro.udp.bind("127.0.0.1", 0))
  local b = assert(acoro.udp.bind("127.0.0.1", 0))
  return a, b
end

describe("acoro.udp", function()
  it("binds to an ephemeral port; getsockname tells it", function()
    run(function()
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local host, port = u:getsockname()
      assert.equal("127.0.0.1", host)
      assert.is_true(port > 0)
      assert.truthy(tostring(u):find("^acoro.udp"))
      u:close()
      assert.truthy(tostring(u):find("closed"))
    end)
  end)

  it("sendto and recvfrom carry a datagram with the sender's address", function()
    run(function()
      local a, b = pair()
      local _, pa = a:getsockname()
      local _, pb = b:getsockname()
      assert.equal(5, a:sendto("hello", "127.0.0.1", pb))
      assert.same({ "hello", "127.0.0.1", pa }, { b:recvfrom(10) })
      -- binary-safe, empty datagrams too, and numbers as strings
      assert.equal(3, b:sendto("\0\1\255", "127.0.0.1", pa))
      assert.equal(0, b:sendto("", "127.0.0.1", pa))
      assert.equal(2, b:sendto(42, "127.0.0.1", pa))
      assert.equal("\0\1\255", (a:recvfrom(10)))
      assert.equal("", (a:recvfrom(10)))
      assert.equal("42", (a:recvfrom(10)))
      a:close()
      b:close()
    end)
  end)

  it("sends to a host name, resolved without blocking the loop", function()
    run(function()
      local a, b = pair()
      local _, pb = b:getsockname()
      assert.equal(4, a:sendto("name", "localhost", pb, 10))
      assert.equal("name", (b:recvfrom(10)))
      -- several coroutines sending to names on one socket take turns
      local cos = {}
      for i = 1, 5 do
        cos[i] = acoro.spawn(function() return a:sendto("n" .. i, "localhost", pb, 10) end)
      end
      for i = 1, 5 do assert.same({ true, 2 }, { cos[i]:join(10) }) end
      local got = {}
      for _ = 1, 5 do got[#got + 1] = (b:recvfrom(10)) end
      table.sort(got)
      assert.same({ "n1", "n2", "n3", "n4", "n5" }, got)
      a:close()
      b:close()
    end)
  end)

  it("a name that does not resolve is a failure, not an error", function()
    run(function()
      local a = assert(acoro.udp.bind("127.0.0.1", 0))
      local ok, err, code = a:sendto("x", "no-such-host.invalid", 9, 20)
      assert.is_nil(ok)
      assert.is_string(err)
      assert.is_string(code)
      a:close()
    end)
  end)

  it("recvfrom times out with nil, \"timeout\", \"ETIMEDOUT\"", function()
    run(function()
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local t0 = acoro.now()
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { u:recvfrom(0.05) })
      support.assert_took(acoro.now() - t0, 0.05)
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { u:recvfrom(0) })
      u:close()
    end)
  end)

  it("a server coroutine receives from many client coroutines", function()
    run(function()
      local srv = assert(acoro.udp.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local got = {}
      local server = acoro.spawn(function()
        for _ = 1, 20 do
          local msg = assert(srv:recvfrom(10))
          got[#got + 1] = msg
        end
      end)
      for i = 1, 20 do
        acoro.spawn(function()
          local c = assert(acoro.udp.bind("127.0.0.1", 0))
          c:sendto("client " .. i, "127.0.0.1", port)
          c:close()
        end)
      end
      assert.is_true((server:join(10)))
      assert.equal(20, #got)
      srv:close()
    end)
  end)

  it("queues up to 1024 datagrams and drops the rest", function()
    run(function()
      -- Sends 1100 datagrams to b in batches of 10 that the loop moves from the
      -- kernel's buffer into b's queue between them: after each batch a datagram
      -- to c, sent after the batch, is awaited (the poll that sees it sees b's
      -- batch, and libuv reads 32 datagrams per readiness). Returns how many were
      -- queued (received in order) and how many b dropped. Should the kernel still
      -- drop some, n + dropped < 1100 and the attempt is made again.
      local function attempt()
        local a, b = pair()
        local c = assert(acoro.udp.bind("127.0.0.1", 0))
        local _, pb = b:getsockname()
        local _, pc = c:getsockname()
        for i = 1, 1100 do
          assert.truthy(a:sendto("d" .. i, "127.0.0.1", pb))
          if i % 10 == 0 then
            assert.truthy(a:sendto("tick", "127.0.0.1", pc))
            assert.equal("tick", (c:recvfrom(5)))
          end
        end
        c:close()
        local n, last = 0, 0
        while true do
          local d = b:recvfrom(0)
          if not d then break end
          local k = tonumber(d:match("^d(%d+)$"))
          assert.truthy(k and k > last, "out of order: " .. d)
          last = k
          n = n + 1
        end
        local dropped = b:dropped()
        a:close()
        return n, dropped, b, pb
      end
      local n, dropped, b, pb
      for _ = 1, 20 do
        if b then b:close() end
        n, dropped, b, pb = attempt()
        if n + dropped == 1100 then break end -- the kernel dropped none
      end
      assert.equal(1100, n + dropped) -- else the kernel dropped some in every attempt
      assert.equal(1024, n)
      assert.equal(76, dropped)
      local a = assert(acoro.udp.bind("127.0.0.1", 0))
      -- the socket works on afterwards
      a:sendto("again", "127.0.0.1", pb)
      local got
      for _ = 1, 1200 do
        got = b:recvfrom(10)
        if got == "again" or got == nil then break end
      end
      assert.equal("again", got)
      a:close()
      b:close()
    end)
  end)

  it("close wakes a waiting recvfrom with nil, \"closed\", \"ECLOSED\"", function()
    run(function()
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local reader = support.spawn_blocked(function(ready)
        ready()
        return u:recvfrom(10)
      end)
      u:close()
      assert.same({ true, nil, "closed", "ECLOSED" }, { reader:join(10) })
      assert.is_false(u:is_open())
    end)
  end)

  it("methods of a closed socket raise; close twice is fine", function()
    run(function()
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      u:close()
      u:close()
      assert.has_error(function() u:recvfrom(1) end, "acoro: recvfrom: the socket is closed")
      assert.has_error(function() u:sendto("x", "127.0.0.1", 9) end, "acoro: sendto: the socket is closed")
      assert.has_error(function() u:getsockname() end, "acoro: getsockname: the socket is closed")
    end)
  end)

  it("a second coroutine receiving on the same socket raises", function()
    run(function()
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      local reader = support.spawn_blocked(function(ready)
        ready()
        return u:recvfrom(10)
      end)
      assert.has_error(function() u:recvfrom(1) end)
      u:close()
      reader:join(10)
    end)
  end)

  it("address reuse lets two sockets bind one port; without it the second fails", function()
    run(function()
      local a = assert(acoro.udp.bind("127.0.0.1", 0, { reuse = true }))
      local _, port = a:getsockname()
      local b = assert(acoro.udp.bind("127.0.0.1", port, { reuse = true }))
      local c, err, code = acoro.udp.bind("127.0.0.1", port)
      assert.is_nil(c)
      assert.equal("EADDRINUSE", code, err)
      local d = assert(acoro.udp.bind("127.0.0.1", 0, { broadcast = true }))
      assert.truthy(d:sendto("b", "127.0.0.1", port))
      a:close()
      b:close()
      d:close()
    end)
  end)

  it("raises for bad arguments", function()
    run(function()
      assert.has_error(function() acoro.udp.bind(1, 2) end)
      assert.has_error(function() acoro.udp.bind("127.0.0.1", -1) end)
      assert.has_error(function() acoro.udp.bind("127.0.0.1", 70000) end)
      assert.has_error(function() acoro.udp.bind("127.0.0.1", 0, "reuse") end)
      local u = assert(acoro.udp.bind(nil, 0))
      assert.has_error(function() u:sendto({}, "127.0.0.1", 9) end)
      assert.has_error(function() u:sendto("x", nil, 9) end)
      assert.has_error(function() u:sendto("x", "127.0.0.1", 65536) end)
      assert.has_error(function() u:sendto("x", "127.0.0.1", 9, "soon") end)
      assert.has_error(function() u:recvfrom("soon") end)
      assert.has_error(function() u.recvfrom({}) end)
      u:close()
    end)
    local u
    run(function() u = assert(acoro.udp.bind("127.0.0.1", 0)) end)
    assert.has_error(function() u:recvfrom(1) end)
    u:close()
  end)

  it("bind failures return nil, message, code", function()
    run(function()
      local u, err, code = acoro.udp.bind("192.0.2.1", 0) -- not an address of this host
      assert.is_nil(u)
      assert.equal("EADDRNOTAVAIL", code, err)
    end)
  end)
end)

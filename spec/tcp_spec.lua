-- acoro.tcp (lua/acoro/io.lua over core/tcp.c and core/stream.c): real sockets on
-- 127.0.0.1. Every call of the TCP API, timeouts on every waiting call (and that a
-- timeout loses no bytes), EOF mid-read, refused connections, a reset peer, misuse
-- (a second reader, a closed stream, bad arguments), a stream closed under a waiting
-- reader, and 1,000 concurrent connections. Every wait is bounded.

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"

local T = 10 -- the bound of every wait that should end by an event

-- A listening server on an ephemeral port of 127.0.0.1, and its port.
local function listen(opts)
  local srv = assert(acoro.tcp.listen("127.0.0.1", 0, opts))
  local _, port = srv:getsockname()
  return srv, port
end

-- A connected pair: client stream, server-side stream, server.
local function pair()
  local srv, port = listen()
  local c = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = T }))
  local s = assert(srv:accept(T))
  return c, s, srv
end

describe("acoro.tcp.connect / listen / accept", function()
  it("connect and accept give streams that carry bytes both ways", function()
    acoro.run(function()
      local c, s, srv = pair()
      assert.equal(5, c:send("hello"))
      assert.same({ "hello" }, { s:recvall(5, T) }) -- all of it, no "timeout" after it
      assert.equal(3, s:send("abc"))
      assert.same({ "abc" }, { c:recvall(3, T) })
      c:close(); s:close(); srv:close()
      assert.is_false(c:is_open())
      assert.is_false(srv:is_open())
    end)
  end)

  it("getsockname / getpeername name both ends; setnodelay answers true", function()
    acoro.run(function()
      local c, s, srv = pair()
      local _, sport = srv:getsockname()
      local h1, p1 = c:getpeername()
      local h2, p2 = s:getsockname()
      assert.equal("127.0.0.1", h1)
      assert.equal(sport, p1)
      assert.equal("127.0.0.1", h2)
      assert.equal(sport, p2)
      local h3, p3 = c:getsockname()
      local h4, p4 = s:getpeername()
      assert.equal(h3, h4)
      assert.equal(p3, p4)
      assert.is_true(c:setnodelay(true))
      assert.is_true(c:setnodelay(false))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("connect with opts.nodelay, and by host name (localhost)", function()
    acoro.run(function()
      local srv, port = listen()
      local c = assert(acoro.tcp.connect("localhost", port, { timeout = T, nodelay = true }))
      local s = assert(srv:accept(T))
      c:send("x")
      assert.equal("x", s:recv(10, T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("connect to a port nobody listens on: nil, ECONNREFUSED", function()
    acoro.run(function()
      local srv, port = listen()
      srv:close() -- the port was free a moment ago, and nobody listens now
      local c, err, code = acoro.tcp.connect("127.0.0.1", port, { timeout = T })
      assert.is_nil(c)
      assert.equal("ECONNREFUSED", code)
      assert.matches("^ECONNREFUSED: ", err)
    end)
  end)

  it("connect to a name that does not resolve fails with a resolver code", function()
    acoro.run(function()
      local c, err, code = acoro.tcp.connect("no-such-host.invalid", 80, { timeout = T })
      assert.is_nil(c)
      assert.matches("^EAI_", code)
      assert.is_string(err)
    end)
  end)

  it("listen on a port in use: nil, EADDRINUSE", function()
    acoro.run(function()
      local srv, port = listen()
      local s2, err, code = acoro.tcp.listen("127.0.0.1", port)
      assert.is_nil(s2)
      assert.equal("EADDRINUSE", code, err)
      srv:close()
    end)
  end)

  it("accept times out (nil, 'timeout', 'ETIMEDOUT') and still accepts afterwards", function()
    acoro.run(function()
      local srv, port = listen()
      local t0 = acoro.now()
      local s, err, code = srv:accept(0.05)
      assert.is_nil(s)
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      support.assert_took(acoro.now() - t0, 0.05)
      local c = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = T }))
      s = assert(srv:accept(T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("server:settimeout is the default timeout of accept", function()
    acoro.run(function()
      local srv = listen()
      srv:settimeout(0.02)
      local s, err = srv:accept()
      assert.is_nil(s)
      assert.equal("timeout", err)
      srv:close()
    end)
  end)

  it("a server closed by another coroutine wakes its accept with nil, 'closed'", function()
    acoro.run(function()
      local srv = listen()
      local co = support.spawn_blocked(function(ready)
        ready()
        return srv:accept(T)
      end)
      srv:close()
      local ok, s, err, code = co:join(T)
      assert.is_true(ok)
      assert.is_nil(s)
      assert.equal("closed", err)
      assert.equal("ECLOSED", code)
      assert.has_error(function() srv:accept(0) end, "acoro: accept: the server is closed")
    end)
  end)

  it("a second coroutine calling accept while one waits raises", function()
    acoro.run(function()
      local srv = listen()
      local co = support.spawn_blocked(function(ready)
        ready()
        return srv:accept(T)
      end)
      assert.has_error(function() srv:accept(1) end)
      srv:close()
      co:join(T)
    end)
  end)

  it("bad arguments raise", function()
    acoro.run(function()
      assert.has_error(function() acoro.tcp.connect(1, 2) end)
      assert.has_error(function() acoro.tcp.connect("127.0.0.1", "x") end)
      assert.has_error(function() acoro.tcp.connect("127.0.0.1", 70000) end)
      assert.has_error(function() acoro.tcp.connect("127.0.0.1", 1.5) end)
      assert.has_error(function() acoro.tcp.connect("127.0.0.1", 1, "opts") end)
      assert.has_error(function() acoro.tcp.connect("127.0.0.1", 1, { timeout = "x" }) end)
      assert.has_error(function() acoro.tcp.listen("127.0.0.1", -1) end)
      assert.has_error(function() acoro.tcp.listen({}, 0) end)
      assert.has_error(function() acoro.tcp.listen("127.0.0.1", 0, 5) end)
      local c, s, srv = pair()
      assert.has_error(function() c:send({}) end)
      assert.has_error(function() c:send(nil) end)
      assert.has_error(function() c:recv("x") end)
      assert.has_error(function() c:recv(0) end)
      assert.has_error(function() c:recv(10, "soon") end)
      assert.has_error(function() c:recvall(-1) end)
      assert.has_error(function() c:recvall("many") end)
      assert.has_error(function() c:readline("x") end)
      assert.has_error(function() c:send_msg(42) end)
      assert.has_error(function() c:settimeout("x") end)
      assert.has_error(function() srv:accept("x") end)
      assert.has_error(function() c:starttls("notatable") end)
      c:close(); s:close(); srv:close()
    end)
  end)

  it("waiting calls outside an acoro coroutine raise", function()
    assert.has_error(function() acoro.tcp.connect("127.0.0.1", 1) end)
  end)
end)

describe("stream reading and writing (TCP)", function()
  it("recv returns what is there, up to max", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("0123456789")
      assert.equal("0123456789", s:recvall(10, T))
      c:send("abcdef")
      local got = ""
      while #got < 6 do got = got .. assert(s:recv(4, T)) end
      assert.equal("abcdef", got)
      c:close(); s:close(); srv:close()
    end)
  end)

  it("recv times out with nil, 'timeout', 'ETIMEDOUT', and later data still arrives", function()
    acoro.run(function()
      local c, s, srv = pair()
      local t0 = acoro.now()
      local d, err, code = s:recv(nil, 0.05)
      assert.is_nil(d)
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      support.assert_took(acoro.now() - t0, 0.05)
      c:send("late")
      assert.equal("late", s:recvall(4, T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("a reader waiting for n bytes gets them when exactly n arrive, the stream still open", function()
    acoro.run(function()
      local c, s, srv = pair()
      for _, n in ipairs({ 1, 5, 4096 }) do
        local data = string.rep("x", n)
        -- no timeout: one would end the wait and hand over the bytes all the same
        local reader = support.spawn_blocked(function(ready)
          ready()
          return s:recvall(n)
        end)
        assert.equal(n, c:send(data))
        assert.same({ true, data }, { reader:join(T) })
      end
      c:close(); s:close(); srv:close()
    end)
  end)

  it("recvall on timeout returns the partial data + 'timeout'; the rest is read after", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("abc")
      assert.equal("a", s:recvall(1, T)) -- "bc" is now buffered
      local d, err, code = s:recvall(10, 0.05)
      assert.equal("bc", d)
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      c:send("defghijklm")
      assert.equal("defghijklm", s:recvall(10, T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("readline returns whole lines with their newline; partial + 'timeout' loses nothing", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("one\ntwo\nthr")
      assert.equal("one\n", s:readline(nil, T))
      assert.equal("two\n", s:readline(nil, T))
      local d, err, code = s:readline(nil, 0.05)
      assert.equal("thr", d)
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      c:send("ee\nfour\n")
      assert.equal("ee\n", s:readline(nil, T))
      assert.equal("four\n", s:readline(nil, T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("a line over max: readline returns nil, the limit, EMSGSIZE and takes nothing; lines raises", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("abc\nabcdefgh\n")
      assert.equal("abc\n", s:readline(4, T)) -- max counts the "\n": 4 bytes is not over
      assert.same({ nil, "line over the 4-byte limit", "EMSGSIZE" }, { s:readline(4, T) })
      local ok, err = pcall(function()
        for _ in s:lines(4, T) do error("no line is short enough") end
      end)
      assert.is_false(ok)
      assert.matches("s:lines: line over the 4%-byte limit %(EMSGSIZE%)", err)
      assert.equal("abcdefgh\n", s:readline(100, T)) -- still all there
      c:close(); s:close(); srv:close()
    end)
  end)

  it("lines(max, timeout): a timeout raises, the unfinished line stays for readline", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("one\ntwo\npartial")
      local got = {}
      local ok, err = pcall(function()
        for l in s:lines(1024, 0.2) do got[#got + 1] = l end
      end)
      assert.same({ "one", "two" }, got)
      assert.is_false(ok)
      assert.matches("s:lines: timeout %(ETIMEDOUT%)", err)
      c:send(" line\nlast")
      assert.equal("partial line\n", s:readline(nil, T))
      c:close() -- at EOF the last line comes without its "\n", then the loop ends
      got = {}
      for l in s:lines(1024, T) do got[#got + 1] = l end
      assert.same({ "last" }, got)
      s:close(); srv:close()
    end)
  end)

  it("EOF mid-read: recvall / readline give the partial data + 'eof', then nil, 'eof'", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("abc")
      c:shutdown()
      local d, err = s:recvall(10, T)
      assert.equal("abc", d)
      assert.equal("eof", err)
      d, err = s:recv(10, T)
      assert.is_nil(d)
      assert.equal("eof", err)
      -- the other direction still works after a half-close
      s:send("back")
      assert.equal("back", c:recvall(4, T))
      s:close()
      local c2 = assert(acoro.tcp.connect("127.0.0.1", select(2, srv:getsockname())))
      local s2 = assert(srv:accept(T))
      c2:send("line\npart")
      c2:close()
      assert.equal("line\n", s2:readline(nil, T))
      d, err = s2:readline(nil, T)
      assert.equal("part", d)
      assert.equal("eof", err)
      assert.same({ nil, "eof" }, { s2:readline(nil, T) })
      c:close(); s2:close(); srv:close()
    end)
  end)

  it("read(), read('l'), read(n) and lines() read like a file", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("first\nsecond\nthird\n12345rest of it")
      c:close()
      assert.equal("first", s:read("l", T))
      local lines = {}
      for l in s:lines(nil, T) do
        lines[#lines + 1] = l
        if #lines == 2 then break end
      end
      assert.same({ "second", "third" }, lines)
      assert.equal("12345", s:read(5, T))
      assert.equal("rest of it", s:read(nil, T))
      s:close(); srv:close()
    end)
  end)

  it("settimeout is the default timeout of recv, recvall, readline", function()
    acoro.run(function()
      local c, s, srv = pair()
      s:settimeout(0.02)
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { s:recv() })
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { s:recvall(3) })
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { s:readline() })
      s:settimeout(nil)
      c:send("x\n")
      assert.equal("x\n", s:readline())
      c:close(); s:close(); srv:close()
    end)
  end)

  it("send of a large block that the peer reads later completes; send accepts numbers", function()
    acoro.run(function()
      local c, s, srv = pair()
      local big = string.rep("0123456789abcdef", 4 * 65536) -- 4 MB
      local sender = acoro.spawn(function() return c:send(big, T) end)
      local got = assert(s:recvall(#big, T))
      assert.is_true(got == big)
      assert.same({ true, #big }, { sender:join(T) })
      assert.equal(2, c:send(42))
      assert.equal("42", s:recvall(2, T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("send times out while the peer does not read, and what it took still goes out", function()
    acoro.run(function()
      local c, s, srv = pair()
      local chunk = string.rep("x", 1024 * 1024)
      local sent, err, code = 0, nil, nil
      for _ = 1, 256 do -- the kernel's buffers hold a few MB at most
        local n
        n, err, code = c:send(chunk, 0.05)
        if not n then break end
        sent = sent + n
      end
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      -- every byte of every call went out, the timed-out one's included
      local total, want = 0, sent + #chunk
      while total < want do
        local d = assert(s:recv(1024 * 1024, T))
        total = total + #d
      end
      assert.equal(want, total)
      c:close(); s:close(); srv:close()
    end)
  end)

  it("a second concurrent reader raises; a second concurrent writer raises", function()
    acoro.run(function()
      local c, s, srv = pair()
      local co = support.spawn_blocked(function(ready)
        ready()
        return s:recv(nil, T)
      end)
      assert.has_error(function() s:recv(nil, 1) end,
        "acoro: read: another coroutine is already reading this stream")
      assert.has_error(function() s:readline(nil, 1) end)
      c:send("ok")
      assert.same({ true, "ok" }, { co:join(T) })
      -- a writer that waits (the peer does not read) blocks the next writer's send
      local chunk = string.rep("y", 1024 * 1024)
      local w = support.spawn_blocked(function(ready)
        ready()
        for _ = 1, 256 do
          local n, err = c:send(chunk, T)
          if not n then return err end
        end
      end)
      -- the writer is now waiting for the kernel (or about to): try until it does
      local raised
      for _ = 1, 1000 do
        if c._write_status and not c:_write_status() then
          raised = not pcall(c.send, c, "z", 1)
          break
        end
        acoro.yield()
      end
      assert.is_true(raised)
      c:close()
      assert.same({ true, "closed" }, { w:join(T) })
      s:close(); srv:close()
    end)
  end)

  it("a stream closed by another coroutine while one waits in recv: nil, 'closed'", function()
    acoro.run(function()
      local c, s, srv = pair()
      local co = support.spawn_blocked(function(ready)
        ready()
        return s:recv(nil, T)
      end)
      s:close()
      assert.same({ true, nil, "closed", "ECLOSED" }, { co:join(T) })
      co = support.spawn_blocked(function(ready)
        ready()
        return c:readline(nil, T)
      end)
      c:close()
      assert.same({ true, nil, "closed", "ECLOSED" }, { co:join(T) })
      srv:close()
    end)
  end)

  it("using a closed stream raises; close twice is fine", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:close()
      c:close()
      assert.has_error(function() c:send("x") end, "acoro: send: the stream is closed")
      assert.has_error(function() c:recv() end, "acoro: recv: the stream is closed")
      assert.has_error(function() c:recvall(1) end)
      assert.has_error(function() c:readline() end)
      assert.has_error(function() c:send_msg("x") end)
      assert.has_error(function() c:recv_msg() end)
      assert.has_error(function() c:shutdown() end)
      assert.has_error(function() c:getpeername() end)
      assert.has_error(function() c:getsockname() end)
      assert.has_error(function() c:setnodelay(true) end)
      assert.matches("closed", tostring(select(2, pcall(c.starttls, c, {}))))
      s:close(); srv:close()
    end)
  end)

  it("the peer reads EOF after close; recv after the peer closed gives nil, 'eof'", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:close()
      assert.same({ nil, "eof" }, { s:recv(nil, T) })
      assert.same({ nil, "eof" }, { s:recvall(5, T) })
      assert.same({ nil, "eof" }, { s:readline(nil, T) })
      s:close(); srv:close()
    end)
  end)

  it("a reset peer (SO_LINGER 0): recv fails with ECONNRESET and send then fails too", function()
    acoro.run(function()
      local srv, port = listen()
      local child = net.spawn("luajit spec/net_rst.lua " .. port)
      local s = assert(srv:accept(T))
      assert.equal("hello", s:recvall(5, T))
      s:send("g")
      local d, err, code = s:recv(nil, T)
      assert.is_nil(d)
      assert.equal("ECONNRESET", code, err)
      assert.matches("^ECONNRESET: ", err)
      -- writing to a reset connection fails (no SIGPIPE kills the process)
      local n, err2, code2
      for _ = 1, 10 do
        n, err2, code2 = s:send(string.rep("z", 65536), T)
        if not n then break end
      end
      assert.is_nil(n)
      assert.is_string(code2, err2)
      s:close(); srv:close()
      child:close()
    end)
  end)

  it("write after the peer reset: a child acoro process survives (SIGPIPE)", function()
    local out, err, code = support.run_script([[
      local acoro = require "acoro"
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
      local s = assert(srv:accept(10))
      c:send("unread data")
      assert(s:recvall(1, 10))  -- s has read it all into its buffer ...
      c:close()                 -- ... c closes; s writes until the kernel says reset
      local n, e, k
      for _ = 1, 100 do
        n, e, k = s:send(string.rep("z", 65536), 10)
        if not n then break end
      end
      print(n, k)
    ]])
    assert.equal(0, code, err)
    assert.matches("^nil%s+E[%u]+", out)
  end)

  it("1,000 concurrent connections, each echoing its own data", function()
    -- 2,000 sockets in one process: raise the soft fd limit in the child.
    local script = support.write_temp([[
      local acoro = require "acoro"
      local N = 1000
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0, { backlog = 1024 }))
      local _, port = srv:getsockname()
      acoro.spawn(function()
        for _ = 1, N do
          local s = assert(srv:accept(30))
          acoro.spawn(function()
            local line = assert(s:readline(nil, 30))
            s:send(line)
            s:close()
          end)
        end
        srv:close()
      end)
      local done, ok = 0, 0
      local clients = {}
      for i = 1, N do
        clients[i] = acoro.spawn(function()
          local c = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 30 }))
          local msg = "client " .. i .. "\n"
          c:send(msg)
          local back = c:readline(nil, 30)
          c:close()
          if back == msg then ok = ok + 1 end
          done = done + 1
        end)
      end
      for i = 1, N do assert(clients[i]:join(60)) end
      print(done, ok)
    ]])
    local out, err, code = support.run_cli(
      support.shell_quote(script), nil, 120) -- the limit is raised below
    if code ~= 0 and err:match("EMFILE") then
      -- run_cli cannot raise the limit itself: retry through a shell that does
      local p = io.popen(("cd %s && ulimit -n 4096 && timeout 120 %s %s 2>&1"):format(
        support.shell_quote(support.root), support.shell_quote(support.bin), support.shell_quote(script)))
      out = p:read("*a")
      p:close()
      code = 0
    end
    assert.equal(0, code, err)
    assert.equal("1000\t1000\n", out)
  end)
end)

describe("send_msg / recv_msg", function()
  it("frames arrive whole and in order, empty ones and large ones too", function()
    acoro.run(function()
      local c, s, srv = pair()
      local big = string.rep("m", 200000)
      acoro.spawn(function()
        c:send_msg("one")
        c:send_msg("")
        c:send_msg(big)
        c:send_msg("last")
      end)
      assert.equal("one", s:recv_msg(T))
      assert.equal("", s:recv_msg(T))
      assert.is_true(s:recv_msg(T) == big)
      assert.equal("last", s:recv_msg(T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("a timeout mid-frame takes nothing: the whole frame comes later", function()
    acoro.run(function()
      local c, s, srv = pair()
      c:send("\0\0\0\5ab") -- header + 2 of 5 bytes
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { s:recv_msg(0.05) })
      c:send("cde")
      assert.equal("abcde", s:recv_msg(T))
      c:close(); s:close(); srv:close()
    end)
  end)

  it("a frame over max closes that connection only; others go on", function()
    acoro.run(function()
      local srv, port = listen()
      local c1 = assert(acoro.tcp.connect("127.0.0.1", port))
      local s1 = assert(srv:accept(T))
      local c2 = assert(acoro.tcp.connect("127.0.0.1", port))
      local s2 = assert(srv:accept(T))
      c1:send("\0\1\0\0garbage") -- a 65,536-byte frame announced
      local m, err, code = s1:recv_msg(T, 1000)
      assert.is_nil(m)
      assert.equal("EMSGSIZE", code)
      assert.matches("over the 1000%-byte limit", err)
      assert.is_false(s1:is_open())
      assert.same({ nil, "eof" }, { c1:recv(nil, T) })
      c2:send_msg("fine")
      assert.equal("fine", s2:recv_msg(T, 1000))
      c1:close(); c2:close(); s2:close(); srv:close()
    end)
  end)

  it("a peer that disconnects mid-frame: nil, 'eof in the middle of a frame'", function()
    acoro.run(function()
      local srv, port = listen()
      local c1 = assert(acoro.tcp.connect("127.0.0.1", port))
      local s1 = assert(srv:accept(T))
      local c2 = assert(acoro.tcp.connect("127.0.0.1", port))
      local s2 = assert(srv:accept(T))
      c1:send("\0\0\0\10abc")
      c1:close()
      assert.same({ nil, "eof in the middle of a frame" }, { s1:recv_msg(T) })
      c2:send("\0\0")
      c2:close()
      assert.same({ nil, "eof in the middle of a frame" }, { s2:recv_msg(T) })
      s1:close(); s2:close(); srv:close()
    end)
  end)

  it("recv_msg's default max is the documented 64 MB: a frame of it waits, one byte more closes", function()
    local max = require("acoro.limits").MSG_MAX
    assert.equal(64 * 2^20, max)
    local function header(n) return string.char(math.floor(n / 2^24) % 256, math.floor(n / 2^16) % 256,
      math.floor(n / 2^8) % 256, n % 256) end
    acoro.run(function()
      local c, s, srv = pair()
      c:send(header(max) .. "abc") -- announced: the whole 64 MB
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { s:recv_msg(0.05) })
      assert.is_true(s:is_open())
      c:close(); s:close()
      local c2 = assert(acoro.tcp.connect("127.0.0.1", select(2, srv:getsockname()), { timeout = T }))
      local s2 = assert(srv:accept(T))
      c2:send(header(max + 1))
      assert.same({ nil, ("frame of %d bytes is over the %d-byte limit"):format(max + 1, max), "EMSGSIZE" },
        { s2:recv_msg(T) })
      assert.is_false(s2:is_open())
      c2:close(); srv:close()
    end)
  end)

  it("send_msg over the 64 MB limit raises", function()
    acoro.run(function()
      local c, s, srv = pair()
      assert.has_error(function() c:send_msg(string.rep("x", 64 * 1024 * 1024 + 1)) end)
      c:close(); s:close(); srv:close()
    end)
  end)
end)

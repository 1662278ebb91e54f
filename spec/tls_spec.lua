-- TLS (core/tls.c, OpenSSL over memory BIOs; lua/acoro/io.lua) on real sockets of
-- 127.0.0.1, with certificates the spec makes itself (spec/net_support.lua): verified
-- and mutual TLS, failed handshakes that name their reason while the server goes on,
-- starttls, timeouts, and 100 MB checked by SHA-256. Every wait is bounded.

local acoro = require "acoro"
local net = require "net_support"

local T = 20
local certs = net.certs()

local function server_opts(extra)
  local o = { cert = certs["server.pem"], key = certs["server.key"] }
  for k, v in pairs(extra or {}) do o[k] = v end
  return { tls = o }
end

local function listen(opts)
  local srv = assert(acoro.tcp.listen("127.0.0.1", 0, opts or server_opts()))
  local _, port = srv:getsockname()
  return srv, port
end

local function client(port, tls, host)
  return acoro.tcp.connect(host or "127.0.0.1", port, { timeout = T, tls = tls })
end

-- An echo server coroutine: accepts `n` clients one after another; each one's first
-- line (or the reason it failed) goes to `report` as a message.
local function echo_server(srv, n, report)
  return acoro.spawn(function()
    for _ = 1, n do
      local s = assert(srv:accept(T))
      acoro.spawn(function()
        local line, err, code = s:readline(nil, T)
        if line then s:send(line) end
        report:send({ line = line, err = err, code = code })
        s:close()
      end)
    end
  end)
end

describe("TLS", function()
  teardown(net.cleanup_certs)

  it("a client that verifies the server against the CA talks to it", function()
    acoro.run(function()
      local srv, port = listen()
      echo_server(srv, 2, acoro.self())
      for _, host in ipairs({ "127.0.0.1", "localhost" }) do
        local c, err = client(port, { ca = certs["ca.pem"] }, host)
        assert.truthy(c, err)
        c:send("hello " .. host .. "\n")
        assert.equal("hello " .. host .. "\n", c:readline(nil, T))
        assert.equal("hello " .. host .. "\n", acoro.receive(T).line)
        c:close()
      end
      srv:close()
    end)
  end)

  it("accept on a TLS server returns at once; the handshake ends in the first recv", function()
    acoro.run(function()
      local srv, port = listen()
      -- a plain TCP client that says nothing: accept still returns
      local raw = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = T }))
      local s = assert(srv:accept(T))
      local d, err, code = s:recv(nil, 0.05) -- the handshake cannot finish
      assert.is_nil(d)
      assert.equal("ETIMEDOUT", code, err)
      raw:close()
      s:close()
      srv:close()
    end)
  end)

  it("a failed handshake names its reason; the server keeps accepting", function()
    acoro.run(function()
      local srv, port = listen()
      local me = acoro.self()
      echo_server(srv, 6, me)
      local cases = {
        { tls = { ca = certs["other_ca.pem"] }, why = "certificate verify failed" },
        { tls = { ca = certs["ca.pem"], server_name = "elsewhere.invalid" },
          why = "certificate verify failed: [Hh]ostname mismatch" },
        { tls = {}, why = "certificate verify failed" }, -- the system's CAs know nothing of ours
      }
      for _, case in ipairs(cases) do
        local c, err, code = client(port, case.tls)
        assert.is_nil(c)
        assert.equal("ETLS", code)
        assert.matches(case.why, err)
        local r = acoro.receive(T) -- the server side failed too, with a reason
        assert.is_nil(r.line)
        assert.equal("ETLS", r.code)
        assert.matches("^TLS ", r.err)
      end
      -- a plain client talking to the TLS server
      local raw = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = T }))
      raw:send("GET / HTTP/1.0\r\n\r\n")
      local r = acoro.receive(T)
      assert.is_nil(r.line)
      assert.equal("ETLS", r.code)
      assert.matches("TLS handshake failed", r.err)
      raw:close()
      -- a client that goes away during the handshake
      raw = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = T }))
      raw:close()
      r = acoro.receive(T)
      assert.is_nil(r.line)
      assert.matches("TLS handshake failed", r.err)
      -- and then a good client is served
      local c = assert(client(port, { ca = certs["ca.pem"] }))
      c:send("still here\n")
      assert.equal("still here\n", c:readline(nil, T))
      assert.equal("still here\n", acoro.receive(T).line)
      c:close()
      srv:close()
    end)
  end)

  it("a certificate for another name, an expired one, a self-signed one are refused", function()
    acoro.run(function()
      local function try(cert, key, tls)
        local srv, port = listen({ tls = { cert = certs[cert], key = certs[key] } })
        local got = {}
        local co = acoro.spawn(function()
          local s = assert(srv:accept(T))
          got = { s:recv(nil, T) }
          s:close()
        end)
        local c, err, code = client(port, tls)
        if c then c:close() end
        co:join(T)
        srv:close()
        return c, err, code, got
      end
      local ca = { ca = certs["ca.pem"] }
      local c, err, code = try("wrongname.pem", "wrongname.key", ca)
      assert.is_nil(c)
      assert.equal("ETLS", code)
      assert.matches("certificate verify failed: IP address mismatch", err)
      c, err = try("expired.pem", "expired.key", ca)
      assert.is_nil(c)
      assert.matches("certificate has expired", err)
      c, err = try("self.pem", "self.key", ca)
      assert.is_nil(c)
      assert.matches("self[- ]signed", err)
      -- verify = false accepts anything; the self-signed cert as its own CA works
      c, err = try("self.pem", "self.key", { verify = false })
      assert.truthy(c, err)
      c, err = try("self.pem", "self.key", { ca = certs["self.pem"] })
      assert.truthy(c, err)
    end)
  end)

  it("mutual TLS: a server with ca + verify needs a client certificate", function()
    acoro.run(function()
      local srv, port = listen(server_opts({ ca = certs["ca.pem"], verify = true }))
      local me = acoro.self()
      echo_server(srv, 3, me)
      -- no client certificate: the server refuses (TLS 1.3 clients may only see it
      -- on their first read)
      local c, err = client(port, { ca = certs["ca.pem"] })
      if c then
        c:send("no cert\n")
        local d
        d, err = c:readline(nil, T)
        assert.is_nil(d)
        c:close()
      end
      assert.is_string(err)
      local r = acoro.receive(T)
      assert.is_nil(r.line)
      assert.equal("ETLS", r.code)
      assert.matches("certificate", r.err)
      -- a certificate from another CA (the self-signed one)
      c = client(port, { ca = certs["ca.pem"], cert = certs["self.pem"], key = certs["self.key"] })
      if c then
        c:send("wrong cert\n")
        assert.is_nil(c:readline(nil, T))
        c:close()
      end
      r = acoro.receive(T)
      assert.is_nil(r.line)
      assert.equal("ETLS", r.code)
      -- with the CA's client certificate
      c = assert(client(port, { ca = certs["ca.pem"], cert = certs["client.pem"], key = certs["client.key"] }))
      c:send("with cert\n")
      assert.equal("with cert\n", c:readline(nil, T))
      assert.equal("with cert\n", acoro.receive(T).line)
      c:close()
      srv:close()
    end)
  end)

  it("starttls upgrades a plain connection after some plain talk", function()
    acoro.run(function()
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local port = select(2, srv:getsockname())
      local co = acoro.spawn(function()
        local s = assert(srv:accept(T))
        assert.equal("STARTTLS\n", s:readline(nil, T))
        s:send("GO\n")
        assert(s:starttls({ server = true, cert = certs["server.pem"], key = certs["server.key"] }, T))
        local line = s:readline(nil, T)
        s:send("secret back: " .. line)
        s:close()
      end)
      local c = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = T }))
      c:send("STARTTLS\n")
      assert.equal("GO\n", c:readline(nil, T))
      assert.is_true(c:starttls({ ca = certs["ca.pem"], server_name = "localhost" }, T))
      c:send("s3cret\n")
      assert.equal("secret back: s3cret\n", c:readline(nil, T))
      assert.is_true(co:join(T))
      -- starttls twice raises
      assert.has_error(function() c:starttls({ ca = certs["ca.pem"] }) end)
      c:close()
      srv:close()
    end)
  end)

  it("a TLS client whose server never answers the handshake times out", function()
    acoro.run(function()
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local port = select(2, srv:getsockname())
      local t0 = acoro.now()
      local c, err, code = acoro.tcp.connect("127.0.0.1", port,
        { timeout = 0.1, tls = { ca = certs["ca.pem"] } })
      assert.is_nil(c)
      assert.equal("ETIMEDOUT", code, err)
      assert.is_true(acoro.now() - t0 >= 0.099)
      srv:close()
    end)
  end)

  it("bad TLS options: wrong types raise, unreadable files fail with a reason", function()
    acoro.run(function()
      assert.has_error(function() acoro.tcp.listen("127.0.0.1", 0, { tls = "yes" }) end)
      local s, err, code = acoro.tcp.listen("127.0.0.1", 0, { tls = { cert = certs["server.pem"] } })
      assert.is_nil(s)
      assert.equal("ETLS", code)
      assert.matches("needs cert and key", err)
      s, err = acoro.tcp.listen("127.0.0.1", 0, { tls = { cert = "/nonexistent.pem", key = "/nonexistent.key" } })
      assert.is_nil(s)
      assert.matches("cannot load certificate '/nonexistent.pem'", err)
      s, err = acoro.tcp.listen("127.0.0.1", 0,
        { tls = { cert = certs["server.pem"], key = certs["client.key"] } })
      assert.is_nil(s)
      assert.matches("cannot load key", err)
      s, err = acoro.tcp.connect("127.0.0.1", 1, { tls = { ca = "/nonexistent-ca.pem" } })
      assert.is_nil(s)
      assert.matches("cannot load CA", err)
    end)
  end)

  it("a timeout on a TLS stream loses nothing; recvall and readline give partial data", function()
    acoro.run(function()
      local srv, port = listen()
      local co = acoro.spawn(function()
        local s = assert(srv:accept(T))
        s:send("abc")
        assert.equal("go\n", s:readline(nil, T))
        s:send("defg\nrest")
        s:close()
      end)
      local c = assert(client(port, { ca = certs["ca.pem"] }))
      -- Each short wait ends in a timeout that hands over what came; "abc"
      -- may take more than one of them on a loaded machine.
      local got = ""
      for _ = 1, 400 do
        local data, err, code = c:recvall(10, 0.05)
        assert.same({ "timeout", "ETIMEDOUT" }, { err, code })
        got = got .. data
        if #got >= 3 then break end
      end
      assert.equal("abc", got)
      c:send("go\n")
      assert.equal("defg\n", c:readline(nil, T))
      assert.same({ "rest", "eof" }, { c:readline(nil, T) })
      assert.is_true(co:join(T))
      c:close()
      srv:close()
    end)
  end)

  it("send_msg / recv_msg over TLS, with frames larger than a TLS record", function()
    acoro.run(function()
      local srv, port = listen()
      local big = string.rep("0123456789", 100000)
      local co = acoro.spawn(function()
        local s = assert(srv:accept(T))
        for _ = 1, 3 do s:send_msg(assert(s:recv_msg(T))) end
        s:close()
      end)
      local c = assert(client(port, { ca = certs["ca.pem"] }))
      for _, m in ipairs({ "small", big, "" }) do
        c:send_msg(m)
        assert.is_true(c:recv_msg(T) == m)
      end
      assert.is_true(co:join(T))
      c:close()
      srv:close()
    end)
  end)

  it("100 MB through TLS arrive intact (SHA-256 on both sides)", function()
    acoro.run(function()
      local srv, port = listen()
      local total = 100 * 1024 * 1024
      -- seven distinct 1 MB blocks at varying offsets: no two chunks in a row alike
      local blocks = {}
      math.randomseed(42)
      for i = 1, 7 do
        local t = {}
        for j = 1, 1024 do t[j] = string.char(math.random(0, 255)):rep(1024 / 8) .. ("%07d"):format(i * 10000 + j) end
        blocks[i] = table.concat(t)
      end
      local sender = acoro.spawn(function()
        local s = assert(srv:accept(T))
        local h = net.sha256()
        local sent = 0
        local i = 0
        while sent < total do
          i = i + 1
          local b = blocks[i % 7 + 1]
          local off = (i * 4099) % 1000
          local chunk = b:sub(off + 1) .. b:sub(1, off)
          chunk = chunk:sub(1, math.min(#chunk, total - sent))
          h:update(chunk)
          assert(s:send(chunk, 60))
          sent = sent + #chunk
        end
        s:close()
        return h:hex()
      end)
      local c = assert(client(port, { ca = certs["ca.pem"] }))
      local h = net.sha256()
      local got = 0
      for _ = 1, 1e6 do
        local d, err = c:recv(256 * 1024, 60)
        if not d then
          assert.equal("eof", err)
          break
        end
        h:update(d)
        got = got + #d
      end
      c:close()
      srv:close()
      assert.equal(total, got)
      local ok, want = sender:join(60)
      assert.is_true(ok, want)
      assert.equal(want, h:hex())
    end)
  end)

  -- Once seen stalling for 20 s (ASan build, one run in five): the client's 1 ms sleeps
  -- below waited for the server's 20 s timer. A timer already due when the engine
  -- entered libuv's loop woke its coroutine before libuv's poll, which then blocked
  -- (fixed in core/engine.c; C test timer_due_before_poll_does_not_block).
  it("recvall of a block larger than the read buffer's high-water mark over TLS", function()
    acoro.run(function()
      local srv, port = listen()
      -- just over 256 KB (the mark): the last records may wait in OpenSSL's buffers
      -- with nothing more to come from the socket
      for _, size in ipairs({ 256 * 1024 + 5000, 256 * 1024 + 20000, 2 * 1024 * 1024 }) do
        local data = string.rep("abcdefghijklmnop", size / 16 + 1):sub(1, size)
        local co = acoro.spawn(function()
          local s = assert(srv:accept(T))
          s:send(data, T)
          assert.equal("thanks", acoro.receive(T)) -- the connection stays open
          s:close()
        end)
        local c = assert(client(port, { ca = certs["ca.pem"] }))
        assert.equal("abcd", c:recvall(4, T))
        -- let everything arrive (and reading stop at the mark) first; the outcome
        -- must be the same however long this takes
        for _ = 1, 50 do acoro.sleep(0.001) end
        local got = assert(c:recvall(#data - 4, T))
        assert.is_true(got == data:sub(5))
        co:send("thanks")
        assert.is_true(co:join(T))
        c:close()
      end
      srv:close()
    end)
  end)
end)

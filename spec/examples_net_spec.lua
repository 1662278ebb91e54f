-- The socket examples (examples/tut_sock_*, chat_sock_*, chat_msg, webserver, tls_echo)
-- run as child processes on 127.0.0.1, checked by what they print. Servers print their
-- port (they listen on port 0); the spec waits for lines, never for the clock, and
-- every child runs under `timeout`.

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"

local q = support.shell_quote

local function example(name) return q("examples/" .. name) end

describe("examples/tut_sock_server.lua + tut_sock_client.lua", function()
  it("the server prints the 3 lines of each of 5 clients and ends", function()
    local srv = net.spawn_acoro(example("tut_sock_server.lua") .. " 127.0.0.1 0 5")
    local port = srv:expect("^listening on 127%.0%.0%.1:(%d+)$")
    local out, err, code = support.run_cli(example("tut_sock_client.lua") .. " 127.0.0.1 " .. port .. " 5")
    assert.equal(0, code, err)
    assert.equal("5 clients done\n", out)
    srv:close()
    local seen = {}
    for _, l in ipairs(srv.seen) do
      local c, m = l:match("^server received: client (%d+), message (%d+)$")
      if c then seen[#seen + 1] = c .. "/" .. m end
    end
    table.sort(seen)
    local want = {}
    for c = 1, 5 do for m = 1, 3 do want[#want + 1] = c .. "/" .. m end end
    table.sort(want)
    assert.same(want, seen)
    assert.equal("served 5 clients", srv.seen[#srv.seen])
  end)
end)

-- Runs a chat server and two clients whose standard input the spec feeds through
-- FIFOs; each must see the other's lines. `server_cmd(port0)` and `client_cmd(port,
-- name)` give the command lines.
local function chat(server_cmd, client_cmd, line_of)
  local srv = net.spawn_acoro(server_cmd)
  local port = srv:expect("^listening on 127%.0%.0%.1:(%d+)$")
  local clients = {}
  for _, name in ipairs({ "alice", "bob" }) do
    local fifo = net.fifo()
    local child = net.spawn_acoro(client_cmd(port, name), fifo)
    local w = assert(io.open(fifo, "w")) -- opens once the child's shell opened it
    w:setvbuf("line")
    child:expect("^connected as " .. name .. "$")
    srv:expect("^" .. name .. " joined$") -- so alice is a member before bob talks
    clients[name] = { child = child, w = w, fifo = fifo }
  end
  local a, b = clients.alice, clients.bob
  a.w:write("hello from alice\n")
  assert.equal(line_of("alice", "hello from alice"), b.child:expect("^(.*alice.*)$"))
  b.w:write("hi alice, bob here\n")
  assert.equal(line_of("bob", "hi alice, bob here"), a.child:expect("^(.*bob.*)$"))
  a.w:write("second line\n")
  assert.equal(line_of("alice", "second line"), b.child:expect("^(.*alice.*)$"))
  -- the end of standard input ends each client. All the writers close first: bob's
  -- shell inherited the spec's end of alice's FIFO (Lua's files are not close-on-exec),
  -- so alice sees EOF only once bob has ended.
  for _, c in pairs(clients) do c.w:close() end
  for _, name in ipairs({ "bob", "alice" }) do
    clients[name].child:close()
    os.remove(clients[name].fifo)
  end
  local left = {}
  for _ = 1, 2 do left[srv:expect("^(%w+) left$")] = true end
  assert.same({ alice = true, bob = true }, left)
  srv:kill()
  srv:close()
  -- neither client saw its own lines
  for _, l in ipairs(a.child.seen) do assert.is_nil(l:match("^alice:"), a.child:output()) end
  for _, l in ipairs(b.child.seen) do assert.is_nil(l:match("^bob:"), b.child:output()) end
end

describe("examples/chat_sock_server.lua + chat_sock_client.lua", function()
  it("two clients reading their stdin asynchronously see each other's lines", function()
    chat(example("chat_sock_server.lua") .. " 127.0.0.1 0",
      function(port, name) return example("chat_sock_client.lua") .. " 127.0.0.1 " .. port .. " " .. name end,
      function(name, text) return name .. ": " .. text end)
  end)
end)

describe("examples/chat_msg.lua (send_msg / recv_msg)", function()
  it("two clients see each other's messages", function()
    chat(example("chat_msg.lua") .. " server 127.0.0.1 0",
      function(port, name) return example("chat_msg.lua") .. " client 127.0.0.1 " .. port .. " " .. name end,
      function(name, text) return name .. ": " .. text end)
  end)

  it("a client sending garbage or an oversize frame only loses its own connection", function()
    local srv = net.spawn_acoro(example("chat_msg.lua") .. " server 127.0.0.1 0")
    local port = tonumber(srv:expect("^listening on 127%.0%.0%.1:(%d+)$"))
    acoro.run(function()
      local good = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
      good:send_msg("carol")
      srv:expect("^carol joined$")
      local bad = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
      bad:send_msg("mallory")
      srv:expect("^mallory joined$")
      bad:send("\255\255\255\255garbage") -- a 4 GB frame announced
      assert.same({ nil, "eof" }, { bad:recv(nil, 10) })
      srv:expect("^mallory left$")
      local half = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
      half:send_msg("trudy")
      srv:expect("^trudy joined$")
      half:send("\0\0\0\100only part of it")
      half:close()
      srv:expect("^trudy left$")
      -- the server still serves: a new member talks to carol
      local dave = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
      dave:send_msg("dave")
      srv:expect("^dave joined$")
      dave:send_msg("anyone?")
      assert.equal("dave: anyone?", good:recv_msg(10))
      good:close()
      dave:close()
    end)
    srv:kill()
    srv:close()
  end)
end)

describe("examples/webserver.lua", function()
  it("answers Pong! with keep-alive, and closes on Connection: close", function()
    local srv = net.spawn_acoro(example("webserver.lua") .. " 127.0.0.1 0")
    local port = tonumber(srv:expect("^listening on 127%.0%.0%.1:(%d+)$"))
    acoro.run(function()
      local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
      local function response()
        local status = assert(s:readline(nil, 10))
        local headers = {}
        while true do
          local l = assert(s:readline(nil, 10))
          if l == "\r\n" then break end
          local k, v = l:match("^([^:]+):%s*(.-)\r\n$")
          headers[k:lower()] = v
        end
        return status, headers, assert(s:recvall(tonumber(headers["content-length"]), 10))
      end
      for _ = 1, 3 do -- three requests on one connection
        s:send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        local status, headers, body = response()
        assert.equal("HTTP/1.1 200 OK\r\n", status)
        assert.equal("5", headers["content-length"])
        assert.equal("Pong!", body)
      end
      s:send("GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      local status, headers, body = response()
      assert.equal("HTTP/1.1 200 OK\r\n", status)
      assert.equal("close", headers["connection"])
      assert.equal("Pong!", body)
      assert.same({ nil, "eof" }, { s:recv(nil, 10) })
      s:close()
      -- HTTP/1.0 without keep-alive: one answer, then the server closes
      s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
      s:send("GET / HTTP/1.0\r\n\r\n")
      local all = s:read(nil, 10)
      assert.matches("^HTTP/1.1 200 OK\r\n.*\r\n\r\nPong!$", all)
      s:close()
    end)
    srv:kill()
    srv:close()
  end)
end)

describe("examples/tls_echo.lua", function()
  teardown(net.cleanup_certs)

  it("echoes three lines over TLS, verified against the CA", function()
    local c = net.certs()
    local out, err, code = support.run_cli(example("tls_echo.lua") .. " " .. q(c["server.pem"]) .. " "
      .. q(c["server.key"]) .. " " .. q(c["ca.pem"]))
    assert.equal(0, code, err)
    assert.matches("^TLS echo server on port %d+\necho: hello\necho: over\necho: TLS\ndone\n$", out)
  end)

  it("with a client certificate (mutual TLS)", function()
    local c = net.certs()
    local out, err, code = support.run_cli(example("tls_echo.lua") .. " " .. q(c["server.pem"]) .. " "
      .. q(c["server.key"]) .. " " .. q(c["ca.pem"]) .. " " .. q(c["client.pem"]) .. " " .. q(c["client.key"]))
    assert.equal(0, code, err)
    assert.matches("echo: hello\necho: over\necho: TLS\ndone\n$", out)
  end)

  it("fails with the reason when the CA does not match", function()
    local c = net.certs()
    local _, err, code = support.run_cli(example("tls_echo.lua") .. " " .. q(c["server.pem"]) .. " "
      .. q(c["server.key"]) .. " " .. q(c["other_ca.pem"]))
    assert.equal(1, code)
    assert.matches("certificate verify failed", err)
  end)
end)

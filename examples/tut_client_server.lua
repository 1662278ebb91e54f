-- tut_client_server.lua: local clients sending messages to a server coroutine
-- (port of asyncoro's tut_client_server.py).
--
-- Shows: a daemon coroutine (it does not keep the program alive), message passing with
-- send/receive, and a reply so a client knows its message was handled.
-- 10 clients each send 3 messages; the program ends when the clients are done, while the
-- server is still waiting in receive.
--
-- Run: build/acoro examples/tut_client_server.lua

local acoro = require "acoro"

math.randomseed(os.time())

local function server()
  acoro.self():set_daemon() -- serve for ever, but don't keep the program running
  while true do
    local msg = acoro.receive()
    print(string.format("server received: client %d, message %d", msg.client, msg.seq))
    msg.from:send("ok") -- tell the client it was handled
  end
end

local function client(srv, n)
  for seq = 1, 3 do
    acoro.sleep(math.random() * 0.1) -- do some "work" in between
    srv:send({ from = acoro.self(), client = n, seq = seq })
    assert(acoro.receive(5) == "ok", "no reply from the server")
  end
end

local srv = acoro.spawn(server)
for n = 1, 10 do
  acoro.spawn(client, srv, n)
end

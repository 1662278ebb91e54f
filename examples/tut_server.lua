-- tut_server.lua: asyncoro's tut_server.py, over acoro's nodes. A coroutine
-- registers as "server_coro" and prints every message it receives; clients
-- (examples/tut_client.lua) on other nodes locate it by name and send to it.
--   acoro --listen 127.0.0.1:0 --secret-file KEY examples/tut_server.lua [N]
-- prints "server at HOST:PORT", then a line per message; with N it ends after
-- N messages, else it runs until stopped. Without --listen it starts a node
-- with the defaults (discovery on: clients on the LAN find it).
local acoro = require "acoro"

local n = tonumber(arg and arg[1])
local node = acoro.node() or acoro.node {}
print("server at " .. node.location)
io.stdout:flush()

local server = acoro.spawn(function()
  local i = 0
  while not n or i < n do
    local msg = acoro.receive()
    i = i + 1
    print("received: " .. tostring(msg))
    io.stdout:flush()
  end
end)
server:register("server_coro")

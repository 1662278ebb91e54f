-- remote_channel_client.lua: asyncoro's remote_channel_client.py, over acoro's
-- nodes. Locates the channel "2clients" on any peer (waiting for the server's
-- node to appear, so it may start first), subscribes this coroutine to it and
-- prints what the server sends until "quit".
--   acoro --listen 127.0.0.1:0 --secret-file KEY --peer SERVER examples/remote_channel_client.lua [ID]
-- (or let discovery find the server: no --peer). Run two of them.
local acoro = require "acoro"

local id = arg and arg[1] or "1"
local node = acoro.node() or acoro.node {}
print(("client %s at %s"):format(id, node.location))
io.stdout:flush()

local ch, err = acoro.locate_channel("2clients", { timeout = 60 })
if not ch then error("remote_channel_client: 2clients: " .. err, 0) end
assert(ch:subscribe(acoro.self(), 10))
print(("client %s subscribed to %s"):format(id, tostring(ch)))
io.stdout:flush()
while true do
  local msg = acoro.receive(60)
  if msg == nil then error("remote_channel_client: nothing from the server in 60 s", 0) end
  print(("client %s received: %s"):format(id, tostring(msg)))
  io.stdout:flush()
  if msg == "quit" then break end
end

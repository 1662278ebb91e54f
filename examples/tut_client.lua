-- tut_client.lua: asyncoro's tut_client.py, over acoro's nodes. Locates the
-- coroutine registered as "server_coro" on any peer (waiting for its node
-- to appear, so it may start before the server) and sends it 3 messages.
--   acoro --listen 127.0.0.1:0 --secret-file KEY --peer SERVER examples/tut_client.lua [ID]
-- (or let discovery find the server: no --peer). Prints "sent 3 messages".
local acoro = require "acoro"

local id = arg and arg[1] or "1"
local node = acoro.node() or acoro.node {}
print("client at " .. node.location)
io.stdout:flush()

local server, err = acoro.locate("server_coro", { timeout = 30 })
if not server then error("tut_client: server_coro: " .. err, 0) end
for x = 1, 3 do
  server:send(("client %s: message %d"):format(id, x))
  acoro.sleep(0.01 * x)
end
print("sent 3 messages")

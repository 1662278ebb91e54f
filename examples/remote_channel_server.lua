-- remote_channel_server.lua: asyncoro's remote_channel_server.py, over acoro's
-- nodes. Creates the channel "2clients" and registers it; clients on other
-- nodes (examples/remote_channel_client.lua) locate it and subscribe. The
-- server deliver()s "start" with n = 2 (it waits until two subscribers are
-- there, then until each has taken the message) and prints how many took it;
-- then it sends a few messages and "quit" to every subscriber.
--   acoro --listen 127.0.0.1:0 --secret-file KEY examples/remote_channel_server.lua
-- prints "server at HOST:PORT", then "delivered start to 2 subscribers". Clients
-- may start first: give the server --peer CLIENT for each, or let discovery
-- find them (no --listen: a node with the defaults).
local acoro = require "acoro"

local node = acoro.node() or acoro.node {}
print("server at " .. node.location)
io.stdout:flush()

local ch = acoro.channel("2clients")
assert(ch:register())

-- waits (at most 60 s) for 2 subscribers, then hands "start" to each
local n = ch:deliver("start", 60, 2)
print(("delivered start to %d subscribers"):format(n))
io.stdout:flush()
if n < 2 then error("remote_channel_server: fewer than 2 clients in 60 s", 0) end
for i = 1, 3 do ch:send("message " .. i) end
ch:send("quit")
-- the node's end writes out what was sent before the process exits

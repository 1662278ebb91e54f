-- remote_coro_server.lua: asyncoro's remote_coro_server.py, over acoro's
-- RCI. The server registers the function "server_proc" as an RCI: a client
-- on another node (examples/remote_coro_client.lua) locates it by name and
-- calls it, which starts server_proc as a coroutine HERE; the client then
-- sends that coroutine messages, which it prints and answers. Only the
-- registered function runs: the client sends a name and arguments, no code.
--   acoro --listen 127.0.0.1:0 --secret-file KEY examples/remote_coro_server.lua
-- prints "server at HOST:PORT", then a line per coroutine started and per
-- message; it runs until stopped. Without --listen it starts a node with
-- the defaults (discovery on).
local acoro = require "acoro"

local node = acoro.node() or acoro.node {}
print("server at " .. node.location)
io.stdout:flush()

-- Runs on this node for each call; `client` (the caller's coroutine,
-- arriving as a remote handle) gets a reply to each message.
local function server_proc(client)
  local me = acoro.self()
  print(("%s started for %s"):format(tostring(me.id), tostring(client)))
  io.stdout:flush()
  while true do
    local msg = acoro.receive()
    if msg == "quit" then break end
    print(("server %s received: %s"):format(me.id, tostring(msg.text)))
    io.stdout:flush()
    client:send({ i = msg.i, reply = "got " .. tostring(msg.text) })
  end
  return "bye"
end

acoro.rci.register("server_proc", server_proc)

acoro.receive() -- (runs until stopped)

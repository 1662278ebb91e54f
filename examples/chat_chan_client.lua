-- chat_chan_client.lua: asyncoro's chat_chan_client.py, over acoro's nodes.
-- Locates the channel "chat_channel" (examples/chat_chan_server.lua), subscribes
-- a receiver coroutine that prints every other client's lines, and sends each
-- line typed on standard input (acoro.stdin, read asynchronously) to the
-- channel. A client never sees its own lines: each line carries the receiver's
-- handle, and the handle of one of our own coroutines comes back as that very
-- coroutine. "quit" (or the end of input) ends the client.
--   acoro --listen 127.0.0.1:0 --secret-file KEY --peer SERVER examples/chat_chan_client.lua NAME
local acoro = require "acoro"
io.stdout:setvbuf("line")

local name = arg and arg[1] or "anonymous"
local node = acoro.node() or acoro.node {}
print(("chat client %s at %s"):format(name, node.location))

local ch, err = acoro.locate_channel("chat_channel", { timeout = 60 })
if not ch then error("chat_chan_client: chat_channel: " .. err, 0) end

local receiver
receiver = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if type(m) == "table" and m.client ~= receiver then
      print(("%s: %s"):format(tostring(m.name), tostring(m.text)))
    end
  end
end)
assert(ch:subscribe(receiver, 10))
print("joined as " .. name)

for line in acoro.stdin:lines() do
  if line == "quit" then break end
  local ok, why = ch:send({ client = receiver, name = name, text = line })
  if not ok then
    print("not sent: " .. why)
    break
  end
end
ch:unsubscribe(receiver, 10)
receiver:terminate()
print("bye")

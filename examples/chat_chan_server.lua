-- chat_chan_server.lua: asyncoro's chat_chan_server.py, over acoro's nodes.
-- Registers the channel "chat_channel"; chat clients on other nodes
-- (examples/chat_chan_client.lua) subscribe to it and send their lines to it,
-- so every line reaches every client. The channel's transform runs here, on
-- the owner's node, for every line: it drops all-uppercase lines (shouting)
-- and prints them as "dropped: <line>".
--   acoro --listen 127.0.0.1:0 --secret-file KEY examples/chat_chan_server.lua
-- prints "chat server at HOST:PORT" and runs until stopped (Ctrl-C).
local acoro = require "acoro"

local node = acoro.node() or acoro.node {}

-- Messages are {client = receiver handle, name = string, text = string}.
local function no_shouting(_, msg)
  local text = type(msg) == "table" and msg.text
  if type(text) == "string" and text:match("%a") and text:upper() == text then
    print(("dropped: %s"):format(text))
    io.stdout:flush()
    return nil
  end
  return msg
end

local ch = acoro.channel("chat_channel", no_shouting)
assert(ch:register())
print("chat server at " .. node.location)
io.stdout:flush()
acoro.receive() -- for ever: the channel does the work

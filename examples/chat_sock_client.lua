-- chat_sock_client.lua: a client of chat_sock_server.lua (port of asyncoro's
-- chat_sock_client.py). One coroutine reads lines typed on standard input
-- (acoro.stdin, read asynchronously) and sends them; another prints what the server
-- sends. Ends at the end of standard input.
--
-- Run: build/acoro examples/chat_sock_client.lua host port name

local acoro = require "acoro"
io.stdout:setvbuf("line")

local host, port, name = arg[1], tonumber(arg[2]), arg[3] or "anonymous"
if not host or not port then error("usage: chat_sock_client.lua host port [name]") end

local s = assert(acoro.tcp.connect(host, port, { timeout = 10 }))
s:send(name .. "\n")
print("connected as " .. name)

local receiver = acoro.spawn(function()
  while true do
    local line = s:readline()
    if not line then break end
    io.write(line)
  end
end)

for line in acoro.stdin:lines() do
  s:send(line .. "\n")
end
s:shutdown()  -- the server sees EOF, drops us, and closes: the receiver ends
receiver:join(10)
s:close()

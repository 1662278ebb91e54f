-- chat_msg.lua: the chat of chat_sock_server.lua / chat_sock_client.lua with
-- length-prefixed messages (send_msg / recv_msg) instead of lines, server and client
-- in one file.
--
-- Run: build/acoro examples/chat_msg.lua server [host [port]]
--      build/acoro examples/chat_msg.lua client host port name
--   the server prints "listening on HOST:PORT"; a client sends each line of its
--   standard input as one message and prints the messages it gets.

local acoro = require "acoro"
io.stdout:setvbuf("line")

local mode = arg[1]

local function server(host, port)
  local members = {}
  local function client(s)
    local name = s:recv_msg(nil, 256)
    if not name then return s:close() end
    members[s] = name
    print(name .. " joined")
    while true do
      local m = s:recv_msg(nil, 64 * 1024) -- a bigger or broken frame ends this client only
      if not m then break end
      for o in pairs(members) do
        if o ~= s then o:send_msg(name .. ": " .. m, 5) end
      end
    end
    members[s] = nil
    s:close()
    print(name .. " left")
  end
  local srv = assert(acoro.tcp.listen(host, port))
  local h, p = srv:getsockname()
  print(("listening on %s:%d"):format(h, p))
  while true do acoro.spawn(client, assert(srv:accept())) end
end

local function client(host, port, name)
  local s = assert(acoro.tcp.connect(host, port, { timeout = 10 }))
  s:send_msg(name)
  print("connected as " .. name)
  local receiver = acoro.spawn(function()
    while true do
      local m = s:recv_msg()
      if not m then break end
      print(m)
    end
  end)
  for line in acoro.stdin:lines() do s:send_msg(line) end
  s:shutdown()
  receiver:join(10)
  s:close()
end

if mode == "server" then
  server(arg[2] or "127.0.0.1", tonumber(arg[3] or 0))
elseif mode == "client" and arg[2] and tonumber(arg[3]) then
  client(arg[2], tonumber(arg[3]), arg[4] or "anonymous")
else
  error("usage: chat_msg.lua server [host [port]] | client host port [name]")
end

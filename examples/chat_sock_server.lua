-- chat_sock_server.lua: a chat server (port of asyncoro's chat_sock_server.py). Each
-- client's first line is its name; every later line goes to all the other clients as
-- "name: line". A coroutine per client reads; sends go straight to the others' sockets.
--
-- Run: build/acoro examples/chat_sock_server.lua [host [port]]
--   prints "listening on HOST:PORT" (port 0, the default, picks a free one).

local acoro = require "acoro"
io.stdout:setvbuf("line")

local host, port = arg[1] or "127.0.0.1", tonumber(arg[2] or 0)
local members = {} -- stream -> name

local function broadcast(from, text)
  for s in pairs(members) do
    if s ~= from then s:send(text, 5) end
  end
end

local function client(s)
  local name = s:readline(256)
  if not name then return s:close() end
  name = name:gsub("%s+$", "")
  members[s] = name
  print(name .. " joined")
  while true do
    local line = s:readline()
    if not line or line:sub(-1) ~= "\n" then break end
    broadcast(s, name .. ": " .. line)
  end
  members[s] = nil
  s:close()
  print(name .. " left")
end

local srv = assert(acoro.tcp.listen(host, port))
local h, p = srv:getsockname()
print(("listening on %s:%d"):format(h, p))
while true do
  local s = assert(srv:accept())
  acoro.spawn(client, s)
end

-- tut_sock_client.lua: clients of tut_sock_server.lua (port of asyncoro's
-- tut_sock_client.py): several coroutines each connect, send three lines and wait for
-- the server's "ok" to each.
--
-- Run: build/acoro examples/tut_sock_client.lua host port [clients]

local acoro = require "acoro"

local host, port, n = arg[1], tonumber(arg[2]), tonumber(arg[3] or 5)
if not host or not port then error("usage: tut_sock_client.lua host port [clients]") end

local function client(i)
  local s = assert(acoro.tcp.connect(host, port, { timeout = 10 }))
  for j = 1, 3 do
    s:send(("client %d, message %d\n"):format(i, j))
    local reply = assert(s:readline(nil, 10))
    assert(reply == "ok\n", "unexpected reply " .. reply)
  end
  s:close()
end

local cos = {}
for i = 1, n do cos[i] = acoro.spawn(client, i) end
for i = 1, n do
  local ok, err = cos[i]:join()
  if not ok then error(err) end
end
print(("%d clients done"):format(n))

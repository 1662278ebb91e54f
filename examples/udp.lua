-- udp.lua: asyncoro's udp.py in acoro: a server coroutine receives the
-- datagrams that client coroutines send it over UDP, each client from a
-- socket of its own.
--   acoro examples/udp.lua [clients]
local acoro = require "acoro"

local n = tonumber(arg and arg[1]) or 10

local function server_proc(count, sock)
  for _ = 1, count do
    local msg, host, port = assert(sock:recvfrom())
    print(("Received \"%s\" from %s:%d"):format(msg, host, port))
  end
  sock:close()
end

local function client_proc(i, host, port)
  local sock = assert(acoro.udp.bind("127.0.0.1", 0))
  assert(sock:sendto("client " .. i, host, port))
  sock:close()
end

local sock = assert(acoro.udp.bind("127.0.0.1", 0))
local host, port = sock:getsockname()
local server = acoro.spawn(server_proc, n, sock)
for i = 1, n do acoro.spawn(client_proc, i, host, port) end
server:join()

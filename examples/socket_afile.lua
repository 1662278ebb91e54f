-- socket_afile.lua: a client sends a file over a socket; the server writes
-- what it receives into a file with acoro's asynchronous files (port of
-- asyncoro's socket_afile.py, where the socket itself became an
-- asynchronous file).
--
-- Shows: acoro.fs files read and written in chunks on the thread pool while
-- the TCP client and server coroutines run on the engine thread; a
-- length-prefixed header (send_msg/recv_msg) and then the raw bytes.
--
-- Run: build/acoro examples/socket_afile.lua [input [output]]
-- (input defaults to this script, output to a temporary file).

local acoro = require "acoro"

local input = arg[1] or arg[0]
local output = arg[2] or os.tmpname()
local CHUNK = 64 * 1024

local function server(listener, done)
  local conn = assert(listener:accept(10))
  local size = tonumber(assert(conn:recv_msg(10)))
  local out = assert(acoro.fs.open(output, "wb"))
  local got = 0
  while got < size do
    local data, err = conn:recv(CHUNK, 10)
    if not data then error("server: " .. tostring(err)) end
    assert(out:write(data))
    got = got + #data
  end
  assert(out:close())
  conn:send_msg("ok " .. got)
  conn:close()
  listener:close()
  done:send(got)
end

local function client(port)
  local st = assert(acoro.fs.stat(input))
  local f = assert(acoro.fs.open(input, "rb"))
  local conn = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 10 }))
  conn:send_msg(tostring(st.size))
  local sent = 0
  while true do
    local data = f:read(CHUNK)
    if not data then break end
    assert(conn:send(data))
    sent = sent + #data
  end
  f:close()
  print(("client: sent %d bytes of %s"):format(sent, input))
  print("client: server says " .. assert(conn:recv_msg(10)))
  conn:close()
end

local listener = assert(acoro.tcp.listen("127.0.0.1", 0))
local _, port = listener:getsockname()
acoro.spawn(server, listener, acoro.self())
local cl = acoro.spawn(client, port)
local got = acoro.receive(60)
assert(cl:join(60))
print(("server: wrote %d bytes to %s"):format(got, output))

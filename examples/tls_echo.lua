-- tls_echo.lua: a TLS echo server and its client in one script. The server listens
-- with a certificate and key; the client verifies it against a CA, sends a few lines
-- and prints what comes back. With a client certificate and key, the server asks
-- clients for one (mutual TLS).
--
-- Run: build/acoro examples/tls_echo.lua server.pem server.key ca.pem [client.pem client.key]
--   make the files with openssl (see spec/examples_net_spec.lua for the commands).

local acoro = require "acoro"
io.stdout:setvbuf("line")

local cert, key, ca, ccert, ckey = arg[1], arg[2], arg[3], arg[4], arg[5]
if not (cert and key and ca) then
  error("usage: tls_echo.lua server.pem server.key ca.pem [client.pem client.key]")
end

local mutual = ccert ~= nil
local srv = assert(acoro.tcp.listen("127.0.0.1", 0,
  { tls = { cert = cert, key = key, ca = mutual and ca or nil, verify = mutual } }))
local _, port = srv:getsockname()
print("TLS echo server on port " .. port)

local server = acoro.spawn(function()
  local s = assert(srv:accept(10))
  while true do
    local line, err = s:readline(nil, 10)
    if not line then
      if err ~= "eof" then print("server: " .. err) end
      break
    end
    s:send(line)
  end
  s:close()
  srv:close()
end)

local c, err = acoro.tcp.connect("localhost", port,
  { timeout = 10, tls = { ca = ca, cert = ccert, key = ckey } })
if not c then error("connect: " .. err) end
for _, text in ipairs({ "hello", "over", "TLS" }) do
  c:send(text .. "\n")
  io.write("echo: ", assert(c:readline(nil, 10)))
end
c:close()
server:join(10)
print("done")

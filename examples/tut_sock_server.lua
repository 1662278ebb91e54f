-- tut_sock_server.lua: a TCP server with a coroutine per connection (port of
-- asyncoro's tut_sock_server.py). Each client sends lines; the server prints each and
-- answers "ok". Run with tut_sock_client.lua.
--
-- Run: build/acoro examples/tut_sock_server.lua [host [port [clients]]]
--   port 0 (the default) picks a free port, printed as "listening on HOST:PORT";
--   with `clients`, the server ends after that many clients have left.

local acoro = require "acoro"
io.stdout:setvbuf("line") -- a reader on a pipe sees each line at once

local host, port, clients = arg[1] or "127.0.0.1", tonumber(arg[2] or 0), tonumber(arg[3])

local function serve(s, peer)
  while true do
    local line, err = s:readline()
    if not line then
      if err ~= "eof" then print("client " .. peer .. " failed: " .. err) end
      break
    end
    print("server received: " .. line:gsub("\n$", ""))
    s:send("ok\n")
  end
  s:close()
end

local srv = assert(acoro.tcp.listen(host, port))
local h, p = srv:getsockname()
print(("listening on %s:%d"):format(h, p))

local handlers = {}
local n = 0
while not clients or n < clients do
  local s, err = srv:accept()
  if not s then error("accept: " .. err) end
  n = n + 1
  local ph, pp = s:getpeername()
  handlers[#handlers + 1] = acoro.spawn(serve, s, ph .. ":" .. pp)
end
srv:close()
for _, co in ipairs(handlers) do co:join() end
print(("served %d clients"):format(n))

-- webserver.lua: the "Ping Pong" HTTP server of asyncoro's webserver.py: every
-- request gets "Pong!". An accept loop, a coroutine per connection that reads the
-- request's header lines, keep-alive unless the client says `Connection: close` (or
-- speaks HTTP/1.0 without keep-alive).
--
-- Run: build/acoro examples/webserver.lua [host [port]]
--   prints "listening on HOST:PORT" (port 0 picks a free one).

local acoro = require "acoro"
io.stdout:setvbuf("line")

local host, port = arg[1] or "127.0.0.1", tonumber(arg[2] or 8080)
local BODY = "Pong!"

local function serve(s)
  while true do
    local request = s:readline(8192, 30)
    if not request or request:sub(-1) ~= "\n" then break end
    local version = request:match("HTTP/(%d%.%d)") or "1.0"
    local keep = version ~= "1.0"
    repeat -- the header lines, up to the empty one
      local line = s:readline(8192, 30)
      if not line or line:sub(-1) ~= "\n" then return s:close() end
      local conn = line:lower():match("^connection:%s*([%w%-]+)")
      if conn == "close" then keep = false elseif conn == "keep-alive" then keep = true end
    until line == "\r\n" or line == "\n"
    local ok = s:send(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s")
      :format(#BODY, keep and "" or "Connection: close\r\n", BODY), 30)
    if not ok or not keep then break end
  end
  s:close()
end

local srv = assert(acoro.tcp.listen(host, port))
local h, p = srv:getsockname()
print(("listening on %s:%d"):format(h, p))
while true do
  local s = srv:accept()
  if s then acoro.spawn(serve, s) end
end

-- W4 / W4k http-pong server (defined in bench/README.md), acoro version, written the
-- way users write servers with coroutines (as asyncoro's webserver.py): an
-- accept loop, one coroutine per connection, `readline` for the request
-- lines, `send` for the answer. No HTTP library: a request is its lines up to
-- the blank line that ends the headers (no bodies).
--
-- Usage: build/acoro bench/w4_http.lua [close|keep] [PORT] [--tls CERT KEY]
--   close (W4, default): answer "HTTP/1.0 200 OK", Content-Length: 5,
--         "Pong!", then close the connection
--   keep  (W4k): HTTP/1.1 keep-alive, one answer per request
--   PORT  on 127.0.0.1 (default 0: any free port)
--   --tls CERT KEY: serve over TLS (W4k over TLS: `keep --tls ...`)
-- Prints "PORT=n" once listening, then serves until killed. bench/run loads
-- it with wrk.
local acoro = require "acoro"

local keep, port, tls = false, 0, nil
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if a == "close" then keep = false
  elseif a == "keep" then keep = true
  elseif a == "--tls" then
    tls = { cert = assert(arg[i + 1], "--tls CERT KEY"), key = assert(arg[i + 2], "--tls CERT KEY") }
    i = i + 2
  elseif tonumber(a) then port = tonumber(a)
  else error("w4_http.lua: unknown argument " .. a) end
  i = i + 1
end

local ANSWER = keep and "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nPong!"
  or "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nPong!"
local MAX_LINE = 8192

-- One connection: read a request (the request line, then header lines up to
-- the blank one), answer it; again while keep-alive.
local function serve(s)
  repeat
    local line = s:readline(MAX_LINE)
    if not line then break end -- the client closed (or reset) the connection
    repeat
      line = s:readline(MAX_LINE)
    until line == "\r\n" or line == "\n" or line == nil
    if line == nil or not s:send(ANSWER) then break end
  until not keep
  s:close()
end

local server = assert(acoro.tcp.listen("127.0.0.1", port, { backlog = 1024, tls = tls }))
local _, bound = server:getsockname()
io.stdout:write("PORT=", bound, "\n")
io.stdout:flush()
while true do
  local s, err = server:accept()
  if s then
    s:setnodelay()
    acoro.spawn(serve, s)
  else
    io.stderr:write("w4_http.lua: accept: ", tostring(err), "\n")
  end
end

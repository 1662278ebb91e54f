-- webserver.lua: the "Ping Pong" HTTP server of asyncoro's webserver.py, on
-- acoro.http: every request gets "Pong!". The server parses (in C), keeps
-- connections alive unless the client says `Connection: close` (or speaks
-- HTTP/1.0 without keep-alive), and closes slow or oversized requests.
--
-- Run: build/acoro examples/webserver.lua [host [port]]
--   prints "listening on HOST:PORT" (port 0 picks a free one).

local http = require "acoro.http"
io.stdout:setvbuf("line")

local host, port = arg[1] or "127.0.0.1", tonumber(arg[2] or 8080)

local srv = assert(http.server({ host = host, port = port }))
srv:route("*", "/*", function(_, res) res:send("Pong!") end)
print(("listening on %s:%d"):format(host, srv.port))
srv:serve()

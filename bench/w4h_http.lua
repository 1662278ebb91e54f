-- W4k through acoro.http: the same keep-alive "Pong!" answer as
-- bench/w4_http.lua keep, but parsed, routed and written by acoro.http, the
-- way a user serves a page. bench/run's w4h row loads it with wrk against the
-- libuv C reference.
--
-- Usage: build/acoro bench/w4h_http.lua [PORT]
-- Prints "PORT=n" once listening, then serves until killed.
local http = require "acoro.http"

local srv = assert(http.server({ port = tonumber(arg and arg[1]) or 0, max_conns = 10000 }))
srv:route("GET", "/", function(_, res) res:send("Pong!") end)
io.stdout:write("PORT=", srv.port, "\n")
io.stdout:flush()
srv:serve()

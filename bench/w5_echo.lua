-- W5 tcp-echo (defined in bench/README.md), acoro version: an echo server with a
-- coroutine per connection, and 100 client coroutines that each send 10,000
-- 64-byte messages one at a time and read each echo back.
--
-- Usage: build/acoro bench/w5_echo.lua [CONNS [MSGS [SIZE]]]
--          server and clients in this one process (the workload as defined)
--        build/acoro bench/w5_echo.lua server [PORT]
--          the echo server alone on 127.0.0.1:PORT (0: any free port); prints
--          "PORT=n" once listening, serves until killed
--        build/acoro bench/w5_echo.lua client PORT [CONNS [MSGS [SIZE]]]
--          the clients alone, against any echo server (e.g. bench_ref echo)
-- The runs with clients print: W5 rts=N secs=S rts_per_s=R
local acoro = require "acoro"

local function echo(s)
  while true do
    local data = s:recv()
    if not data or not s:send(data) then break end
  end
  s:close()
end

-- The accept loop, in a coroutine of its own; a daemon when clients run in
-- this process too, so that the program ends when they are done.
local function server(port, daemon)
  local srv = assert(acoro.tcp.listen("127.0.0.1", port, { backlog = 1024 }))
  acoro.spawn(function()
    if daemon then acoro.self():set_daemon() end
    while true do
      local s = srv:accept()
      if s then
        s:setnodelay()
        acoro.spawn(echo, s)
      end
    end
  end)
  local _, bound = srv:getsockname()
  return bound
end

local function clients(port, conns, msgs, size)
  local main = acoro.self()
  local msg = string.rep("x", size)
  local rts, failed = 0, nil
  for _ = 1, conns do
    acoro.spawn(function()
      local c, err = acoro.tcp.connect("127.0.0.1", port, { nodelay = true, timeout = 30 })
      if c then
        for _ = 1, msgs do
          if not c:send(msg) then err = "send failed"; break end
          local back, why = c:recvall(size)
          if back ~= msg then err = "bad echo: " .. tostring(why); break end
          rts = rts + 1
        end
        c:close()
      end
      if err then failed = err end
      main:send("done")
    end)
  end
  local t0 = acoro.now()
  for _ = 1, conns do acoro.receive() end
  local secs = acoro.now() - t0
  if failed then
    io.stderr:write("w5_echo.lua: a client failed: ", tostring(failed), "\n")
    os.exit(1)
  end
  io.stdout:write(string.format("W5 rts=%d secs=%.6f rts_per_s=%.0f\n", rts, secs, rts / secs))
end

local a = arg or {}
if a[1] == "server" then
  io.stdout:write("PORT=", server(tonumber(a[2]) or 0), "\n")
  io.stdout:flush()
elseif a[1] == "client" then
  clients(assert(tonumber(a[2]), "client PORT"), tonumber(a[3]) or 100, tonumber(a[4]) or 10000,
    tonumber(a[5]) or 64)
else
  local port = server(0, true)
  clients(port, tonumber(a[1]) or 100, tonumber(a[2]) or 10000, tonumber(a[3]) or 64)
end

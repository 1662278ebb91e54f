-- remote_coro_client.lua: asyncoro's remote_coro_client.py, over acoro's
-- RCI. Locates the RCI "server_proc" that examples/remote_coro_server.lua
-- registers (waiting for its node to appear: the client may start first),
-- calls it to start a coroutine on the server's node, sends that coroutine 3
-- messages and prints the replies it sends back.
--   acoro --listen 127.0.0.1:0 --secret-file KEY --peer SERVER examples/remote_coro_client.lua [ID]
-- (or let discovery find the server: no --peer). Prints "client at
-- HOST:PORT", a "reply" line per message, then "done: bye".
local acoro = require "acoro"

local id = arg and arg[1] or "1"
local node = acoro.node() or acoro.node {}
print("client at " .. node.location)
io.stdout:flush()

local rci, err = acoro.rci.locate("server_proc", { timeout = 30 })
if not rci then error("remote_coro_client: server_proc: " .. err, 0) end
-- starts server_proc(this coroutine) over there, this coroutine monitoring
-- it from the start: its Exit carries its result even when it ends before a
-- join would reach the server (its handle may be gone there by then); raises
-- if it cannot start
local me = acoro.self()
local server = rci:call({ monitor = me }, me)
for i = 1, 3 do
  server:send({ i = i, text = ("client %s: message %d"):format(id, i) })
  local m = acoro.receive(30)
  if m == nil then error("remote_coro_client: no reply in 30 s", 0) end
  print(("reply %d: %s"):format(m.i, m.reply))
  io.stdout:flush()
end
server:send("quit")
local e = acoro.receive_match(function(m) return acoro.is_exit(m) and m.coro == server end, 30)
if e == nil then error("remote_coro_client: server_proc did not end in 30 s", 0) end
if e.reason ~= "normal" then error("remote_coro_client: server_proc: " .. tostring(e.error), 0) end
print("done: " .. tostring(e.value))

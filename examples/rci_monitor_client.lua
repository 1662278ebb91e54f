-- rci_monitor_client.lua: asyncoro's rci_monitor_client.py, over acoro's
-- RCI. Locates the RCI "rci_1" of examples/rci_monitor_server.lua, calls it
-- N times (rci_1(x, x) for x = 0 .. N-1: the odd ones fail there), monitors
-- each coroutine it started and prints how each ended.
--   acoro --listen 127.0.0.1:0 --secret-file KEY examples/rci_monitor_client.lua [N [SERVER [TIMEOUT]]]
-- N defaults to 5. SERVER ("host:port") is connected to once (a refusal,
-- e.g. another secret, is printed); else --peer or discovery finds the
-- server, which may start later. TIMEOUT (default 30 s) bounds the locate.
local acoro = require "acoro"

local n = tonumber(arg and arg[1]) or 5
local server_at = arg and arg[2]
local timeout = tonumber(arg and arg[3]) or 30
local node = acoro.node() or acoro.node {}
print("client at " .. node.location)
io.stdout:flush()

if server_at then
  local ok, why = acoro.peer(server_at, 10)
  if not ok then
    print("cannot peer with " .. server_at .. ": " .. why)
    io.stdout:flush()
  end
end
local rci_1, err = acoro.rci.locate("rci_1", { timeout = timeout })
if not rci_1 then error("rci_monitor_client: rci_1: " .. err, 0) end

-- Prints one line per Exit, until all n arrived.
local monitor = acoro.spawn(function()
  for _ = 1, n do
    local m = acoro.receive()
    if m.reason == "normal" then
      print(("%s finished with: %s"):format(tostring(m.coro), tostring(m.value)))
    else
      print(("%s failed with: %s (%s)"):format(tostring(m.coro), tostring(m.error), m.reason))
    end
    io.stdout:flush()
  end
end)

for x = 0, n - 1 do
  -- starts rci_1(x, x) there, monitored by `monitor` before it can run
  -- (`rci_1(x, x)` then `co:monitor(monitor)` works too, as rci_1 waits
  -- for a message first); co is a remote handle of that coroutine
  local co = rci_1:call({ monitor = monitor }, x, x)
  co:send("msg:" .. x)
end
monitor:join()
print("all " .. n .. " ended")

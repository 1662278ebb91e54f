-- rci_monitor_server.lua: asyncoro's rci_monitor_server.py, over acoro's
-- RCI. Registers the function "rci_1" as an RCI. Each call from a client
-- (examples/rci_monitor_client.lua) starts rci_1(a, b) as a coroutine here;
-- it waits for one message, then ends with a + b when b is even and fails
-- with an error when b is odd: the client monitors each coroutine it started
-- and prints how each ended.
--   acoro --listen 127.0.0.1:0 --secret-file KEY examples/rci_monitor_server.lua
-- prints "server at HOST:PORT" and a line per coroutine; it runs until
-- stopped. A node with
-- another secret is refused (one line on stderr says why); without --listen
-- it starts a node with the defaults (discovery on).
local acoro = require "acoro"

local node = acoro.node() or acoro.node {}
print("server at " .. node.location)
io.stdout:flush()

local function rci_1(a, b)
  local me = acoro.self()
  print(("running %s with %s, %s"):format(tostring(me.id), tostring(a), tostring(b)))
  io.stdout:flush()
  local msg = acoro.receive()
  if type(b) == "number" and b % 2 == 0 then
    acoro.sleep(0.01 * b)
    print(("%s got %s: done"):format(tostring(me.id), tostring(msg)))
    io.stdout:flush()
    return a + b -- the monitor's Exit: reason "normal", value a + b
  end
  -- the monitor's Exit: reason "error", this error
  error("invalid invocation: " .. tostring(b), 0)
end

acoro.rci.register("rci_1", rci_1)

acoro.receive() -- (runs until stopped)

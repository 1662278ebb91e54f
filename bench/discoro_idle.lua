-- discoro_idle.lua: DIDLE, the idle cost of a computation: schedules one on
-- the acoro-node at LOCATION, waits for its 2 servers, prints "DIDLE ready"
-- and then does nothing until it is stopped; bench/run reads the node's and
-- its servers' CPU time and RSS from /proc meanwhile.
--   acoro --listen 127.0.0.1:0 --no-discover --secret-file KEY \
--     bench/discoro_idle.lua LOCATION
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local main = acoro.self()
local status = acoro.spawn(function()
  local up = 0
  while true do
    if acoro.receive().status == "ServerInitialized" then
      up = up + 1
      if up == 2 then main:send("ready") end
    end
  end
end)
status:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = status, code = "function sq(x) return x * x end" })
assert(comp:schedule())
assert(acoro.receive(30) == "ready", "the node's 2 servers did not come up")
assert(comp:run_result("sq", 3) == 9)
print("DIDLE ready")
io.stdout:flush()
acoro.receive() -- idle until stopped

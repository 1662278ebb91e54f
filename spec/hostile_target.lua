-- The target of spec/hostile_peer.lua's attacks (spec/security_peer_spec.lua,
-- bench/peer_attacks.lua): a node of its own (so that it can take node
-- options) with a coroutine registered as "echo" (answers {from=, n=} with
-- n) and one as "sink" that never receives, until "go" comes to the one
-- registered as "control".
--   acoro hostile_target.lua KEYFILE MAILBOX_BYTES|- SINK_LIMIT|-
-- Prints "listening LOCATION", "pid PID", "ready"; "draining" once the sink
-- receives; "dropped N" when an echo asks for a report.
local acoro = require "acoro"
local ffi = require "ffi"
ffi.cdef "int getpid(void);"
local function say(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  print(table.concat(t, " "))
  io.stdout:flush()
end
local f = assert(io.open(arg[1]))
local secret = f:read("*a"):gsub("\r?\n$", "")
f:close()
do -- the CLI runs this chunk as a coroutine
  local node = acoro.node({ host = "127.0.0.1", port = 0, secret = secret, discover = false,
    mailbox_bytes = tonumber(arg[2]) })
  say("listening", node.location)
  say("pid", ffi.C.getpid())
  -- never receives, until "go" comes to the coroutine registered as control
  local sink = acoro.spawn(function()
    acoro.suspend()
    say("draining")
    while true do acoro.receive() end
  end)
  local control = acoro.spawn(function()
    while true do
      local m = acoro.receive()
      if m == "go" then sink:resume() end
      if m == "register" then acoro.spawn(acoro.suspend):register("later") end
    end
  end)
  control:register("control")
  if tonumber(arg[3]) then sink:set_mailbox_limit(tonumber(arg[3])) end
  local echo = acoro.spawn(function()
    while true do
      local m = acoro.receive()
      if type(m) == "table" and m.from then
        if m.report then say("dropped", sink:mailbox_dropped()) end
        m.from:send(m.n)
      end
    end
  end)
  echo:register("echo")
  sink:register("sink")
  say("ready")
  acoro.receive()
end

-- w6_remote.lua: W6 (remote ping-pong) and W6s (remote stream) of bench/README.md,
-- two acoro processes (nodes) on loopback.
--   acoro bench/w6_remote.lua server
--       starts a node on 127.0.0.1 (any port), registers the coroutine "w6",
--       prints "PORT=n" and serves until killed: a {ping} message is sent
--       back to its sender; stream messages are counted and {done=co} is
--       answered with the count.
--   acoro bench/w6_remote.lua ping PORT [N]     W6: N (100,000) round trips;
--       prints "W6 rts=N secs=S rts_per_s=R median_us=M"
--   acoro bench/w6_remote.lua stream PORT [N]   W6s: N (1,000,000) small
--       messages one way, then {done=}; prints "W6s msgs=N secs=S msgs_per_s=R"
-- bench/run runs them against bench_ref_remote (the floor) alternately.
local acoro = require "acoro"

local role, port, n = arg[1], tonumber(arg[2]), tonumber(arg[3])

local function fail(...)
  io.stderr:write("w6_remote: ", ...)
  io.stderr:write("\n")
  os.exit(1)
end

local node = acoro.node { host = "127.0.0.1", port = 0, discover = false }

if role == "server" then
  local srv = acoro.spawn(function()
    local count = 0
    while true do
      local m = acoro.receive()
      if m == 1 then
        count = count + 1
      elseif m.ping then
        m.from:send(m)
      elseif m.done then
        m.done:send(count)
        count = 0
      end
    end
  end)
  srv:set_daemon()
  assert(srv:register("w6"))
  print("PORT=" .. node.location:match(":(%d+)$"))
  io.stdout:flush()
  acoro.suspend() -- until killed
elseif role == "ping" or role == "stream" then
  local loc = "127.0.0.1:" .. assert(port, "port")
  local ok, err = acoro.peer(loc, 10)
  if not ok then fail("cannot reach ", loc, ": ", tostring(err)) end
  local srv = acoro.locate("w6", { location = loc, timeout = 10 })
  if not srv then fail("w6 not found at ", loc) end
  local me = acoro.self()
  if role == "ping" then
    n = n or 100000
    local rtts, now = {}, acoro.now
    local msg = { ping = true, from = me }
    local t0 = now()
    for i = 1, n do
      local t = now()
      srv:send(msg)
      if acoro.receive(10) == nil then fail("no answer to round trip ", i) end
      rtts[i] = now() - t
    end
    local secs = now() - t0
    table.sort(rtts)
    print(("W6 rts=%d secs=%.3f rts_per_s=%.0f median_us=%.1f"):format(n, secs, n / secs,
      rtts[math.floor(n / 2) + 1] * 1e6))
  else
    n = n or 1000000
    local t0 = acoro.now()
    for _ = 1, n do srv:send(1) end
    srv:send({ done = me })
    local got = acoro.receive(60)
    local secs = acoro.now() - t0
    if got ~= n then fail("the server counted ", tostring(got), " of ", n) end
    print(("W6s msgs=%d secs=%.3f msgs_per_s=%.0f"):format(n, secs, n / secs))
  end
else
  io.stderr:write("usage: acoro bench/w6_remote.lua server | ping PORT [N] | stream PORT [N]\n")
  os.exit(2)
end

-- An authenticated but hostile peer, for spec/security_peer_spec.lua: it knows
-- the secret, so it passes the handshake, then sends what acoro.node would never
-- send: the shared lying peer (spec/lying_peer.lua: core.net, not acoro.node),
-- writing its frames as raw MessagePack bytes, so nothing on this side checks them.
--   acoro hostile_peer.lua MODE TARGET KEYFILE [ARGS...]
-- TARGET has a coroutine registered as "echo" that answers {from = handle, n =
-- k} with k; the round trip after an attack tells when the target has handled
-- it (a link keeps order). Coroutines are found with LOCATE (a node takes SENDs
-- only for handles it gave out). Modes:
--   nest NAME DEPTH BYTES  one SEND to NAME: acoro.Exit values nested DEPTH
--                          deep around a string of BYTES bytes
--   locate N WAIT          N LOCATEs of a name nobody has, each waiting WAIT s
--   flood NAME N [report | paused]  N small SENDs to NAME (stops when the
--                          target has read nothing for 3 s), then an echo
--                          (report: the target prints what it dropped;
--                          paused: the echo is expected to wait, "echo_paused",
--                          until the target reads again, "echo_after")
--   deliver NAME N         N DELIVERs to NAME, each waiting an hour
--   poke NAME [MSG]        one SEND of MSG (default "go") to NAME
--   held SHORT LONG        SHORT LOCATEs of "later" waiting 0.01 to 0.5 s and LONG
--                          waiting an hour; once the short ones have expired,
--                          one more, then "register" to "control": counts the
--                          FOUNDs with a handle
-- Prints key/value lines: "up", figures, "done".
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".")
package.path = here .. "/?.lua;" .. package.path
local acoro = require "acoro"
local core = require "acoro.core"
local LP = require "lying_peer"
local wire = core.wire

local mode, target, keyfile = arg[1], arg[2], arg[3]

local function say(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  print(table.concat(t, " "))
  io.stdout:flush()
end

-- MessagePack pieces.
local function u32(n)
  return string.char(math.floor(n / 2^24) % 256, math.floor(n / 2^16) % 256,
    math.floor(n / 2^8) % 256, n % 256)
end
local function str32(s) return "\xdb" .. u32(#s) .. s end

do -- the CLI runs this chunk as a coroutine
  local found_false, busy = 0, 0
  local p = LP.connect(target, keyfile)
  -- answers a flood brings are counted, not queued
  function p.filter(m)
    if m[1] == LP.OP.found and m[3] == false then
      found_false = found_false + 1
      return true
    end
    if m[1] == LP.OP.delivered and m[3] == "busy" then
      busy = busy + 1
      return true
    end
  end
  say("up")
  local function send(data, patience) return p:raw(data, patience) end

  local handle = p.handle
  local k, echo_id = 0, nil
  -- Sends an echo request (from a coroutine of its own: the link may be
  -- busy until the target reads again); returns a function(wait) -> seconds
  -- since it was started when the answer is in, or nil when none came in
  -- `wait` more seconds.
  local function echo_start(report)
    k = k + 1
    local n, t0 = k, acoro.now()
    local data = wire.envelope(p.ext_encode, { from = handle, n = n, report = report }, 1, echo_id)
    acoro.spawn(function() send(data, 60) end)
    local rtt
    return function(wait)
      if rtt then return rtt end
      local r = p:next(function(m) return m[1] == LP.OP.send and m[3] == n end, wait)
      rtt = r and acoro.now() - t0
      return rtt
    end
  end
  local function echo(wait, report) return echo_start(report)(wait) end

  local function locate(name) return p:locate(name) end
  echo_id = locate("echo")
  say("echo_before", ("%.6f"):format(assert(echo(10))))

  if mode == "nest" then
    local id, depth, size = locate(arg[4]), tonumber(arg[5]), tonumber(arg[6])
    -- Level i (1 innermost): ext 2 (acoro.Exit) of {false, "normal", <level
    -- i - 1>, false, false}; level 0: the string.
    local pre, len = {}, 5 + size
    for i = 1, depth do
      local payload = 9 + len + 2
      pre[depth - i + 1] = "\xc9" .. u32(payload) .. "\x02" .. "\x95\xc2\xa6normal"
      len = 6 + payload
    end
    local frame = "\x93\x01" .. wire.encode(id) .. table.concat(pre)
      .. str32(string.rep("x", size)) .. string.rep("\xc2\xc2", depth)
    say("nest_bytes", #frame)
    local t0 = acoro.now()
    assert(send(frame))
    local rtt = echo(60)
    say("handled_secs", rtt and ("%.3f"):format(acoro.now() - t0) or "never")
  elseif mode == "locate" then
    local n, wait = tonumber(arg[4]), tonumber(arg[5])
    local t0 = acoro.now()
    for i = 1, n do
      assert(send(wire.encode({ 2, i, "nobody", wait, "coro" })), "blocked")
    end
    local rtt = echo(60)
    say("handled_secs", rtt and ("%.3f"):format(acoro.now() - t0) or "never")
    say("found_false", found_false)
    say("echo_after", rtt and ("%.6f"):format(rtt) or "never")
  elseif mode == "flood" then
    local id, n = locate(arg[4]), tonumber(arg[5])
    local frame = wire.envelope(nil, 1, 1, id)
    local t0, sent = acoro.now(), 0
    for _ = 1, n do
      if not send(frame) then break end
      sent = sent + 1
    end
    say("sent", sent, sent < n and "blocked" or "all")
    say("flood_secs", ("%.3f"):format(acoro.now() - t0))
    local wait = echo_start(arg[6] == "report")
    if arg[6] == "paused" then
      local rtt = wait(LP.BLOCKED)
      say("echo_paused", rtt and ("%.6f"):format(rtt) or "never")
    end
    local rtt = wait(60)
    say("echo_after", rtt and ("%.6f"):format(rtt) or "never")
  elseif mode == "deliver" then
    local id, n = locate(arg[4]), tonumber(arg[5])
    local body, t0 = wire.encode("x"), acoro.now()
    for i = 1, n do
      assert(send(wire.encode({ 6, i, id, body, 3600 })), "blocked")
    end
    local rtt = echo(60)
    say("handled_secs", rtt and ("%.3f"):format(acoro.now() - t0) or "never")
    say("busy", busy)
    say("echo_after", rtt and ("%.6f"):format(rtt) or "never")
  elseif mode == "poke" then
    assert(send(wire.envelope(nil, arg[5] or "go", 1, locate(arg[4]))))
  elseif mode == "held" then
    local short, long = tonumber(arg[4]), tonumber(arg[5])
    local control = locate("control")
    for i = 1, short + long do
      local wait = i <= short and (i % 50 + 1) / 100 or 3600
      assert(send(wire.encode({ 2, i, "later", wait, "coro" })))
    end
    assert(echo(60), "no echo")
    acoro.sleep(0.6) -- past every short deadline: the target drops those at its next LOCATE
    assert(send(wire.encode({ 2, short + long + 1, "later", 3600, "coro" })))
    assert(send(wire.envelope(nil, "register", 1, control)))
    local found = {}
    for _ = 1, long + 1 do
      local r = p:next(function(m) return m[1] == LP.OP.found and m[3] end, 10)
      if not r then break end
      found[#found + 1] = r[2]
    end
    table.sort(found)
    say("found", #found, found[1], found[#found])
    say("found_false", found_false)
  end
  say("done")
  LP.stop()
end

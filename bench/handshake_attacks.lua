-- HS: what attacks on the transport's handshake cost a node (the figures
-- spec/security_handshake_spec.lua used to print; the spec asserts what the
-- target does, this measures it).
-- Usage: build/acoro bench/handshake_attacks.lua
-- Prints: HS reflect_s=A relay_s=B guess_s=C lockout_peer_s=D lockout_closed=E
--   storm_connects=F storm_s=G storm_log_lines=H rss_growth_kb=I
-- Each attack (spec/handshake_wire.lua) runs against a fresh target node
-- on 127.0.0.1 (build/acoro, or $ACORO): A, B, C: seconds from the first
-- connect until the target refused the reflected handshake, the relay, the
-- wrong proof; D: seconds for a real node (this one) to peer with the
-- target while 100 idle connections are held, E: how many of those the
-- target closed to make room; F: connects the target made for 2,000 forged
-- discovery pings announcing 50 ports, G: the storm's seconds, H: the
-- target's log lines meanwhile; I: the largest growth of a target's VmRSS.
package.path = "spec/?.lua;" .. package.path
local acoro = require "acoro"
local HW = require "handshake_wire"

local BIN = os.getenv("ACORO") or "build/acoro"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function sh_read(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local tmp = sh_read("mktemp -d")
local key, script = tmp .. "/key", tmp .. "/target.lua"
local secret = sh_read(q(BIN) .. " --gen-secret")
local f = assert(io.open(key, "w"))
f:write(secret, "\n")
f:close()
f = assert(io.open(script, "w"))
f:write(HW.TARGET)
f:close()

local function rss_kb(pid)
  local s = io.open("/proc/" .. pid .. "/status")
  if not s then return 0 end
  local kb = tonumber(s:read("*a"):match("VmRSS:%s*(%d+)")) or 0
  s:close()
  return kb
end

local targets = {} -- {p=, pid=, rss0=}
local function target(udp)
  local p = assert(io.popen(("exec timeout 120 %s %s %d %s 2>&1"):format(q(BIN), q(script), udp or 0, q(key))))
  local loc = assert(p:read("*l"):match("^listening (%S+)$"), "no target")
  local pid = assert(tonumber(p:read("*l"):match("^pid (%d+)$")))
  local t = { p = p, pid = pid, rss0 = rss_kb(pid) }
  targets[#targets + 1] = t
  return t, loc, tonumber(loc:match(":(%d+)$"))
end

local grow = 0
-- Stops t; returns its log lines counted.
local function stop(t)
  grow = math.max(grow, rss_kb(t.pid) - t.rss0)
  os.execute("kill " .. t.pid)
  local lines = 0
  for l in t.p:read("*a"):gmatch("[^\n]+") do
    if l:find("^acoro: node:") then lines = lines + 1 end
  end
  t.p:close()
  return lines
end

local udp = HW.free_udp_port()
local t, _, port = target(udp)
local r, _, reflect = HW.reflection(port, udp)
assert(r == "refused", "reflection: " .. r)
stop(t)

udp = HW.free_udp_port()
local tt, _, t_port = target(0)
local x = target(udp)
local relay
r, _, relay = HW.relay(t_port, udp)
assert(r == "refused", "relay: " .. r)
stop(tt)
stop(x)

t, _, port = target(0)
local _, guess = HW.guess(port)
stop(t)

local loc
t, loc, port = target(0)
local socks, opened = HW.idle_connections(port, 100)
assert(opened == 100, "idle connections: " .. opened)
acoro.node({ host = "127.0.0.1", secret = secret, discover = false })
local t0 = acoro.now()
assert(acoro.peer(loc, 10))
local lockout = acoro.now() - t0
local closed = HW.closed_by_target(socks, 100)
stop(t)

udp = HW.free_udp_port()
t, _, port = target(udp)
local _, connects, storm = HW.storm(port, udp)
local lines = stop(t)

print(("HS reflect_s=%.3f relay_s=%.3f guess_s=%.3f lockout_peer_s=%.3f lockout_closed=%d "
  .. "storm_connects=%d storm_s=%.2f storm_log_lines=%d rss_growth_kb=%d")
  :format(reflect, relay, guess, lockout, closed, connects, storm, lines, grow))
os.execute("rm -rf " .. q(tmp))

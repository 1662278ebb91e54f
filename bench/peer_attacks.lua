-- PA: what an authenticated hostile peer's attacks cost a node in time (the
-- figures spec/security_peer_spec.lua used to print; the spec asserts the
-- bounds, this measures them).
-- Usage: build/acoro bench/peer_attacks.lua
-- Prints: PA nest_s=A locate_s=B deliver_s=C flood_s=D rss_growth_mb=E
-- Each attack runs spec/hostile_peer.lua against a fresh spec/hostile_target.lua
-- node on 127.0.0.1: A, one message of acoro.Exit values nested 4,000 deep
-- around 1 MB (refused at 64 levels); B, 20,000 LOCATEs of a missing name;
-- C, 20,000 DELIVERs to a coroutine that never receives; D, 1,000,000 SENDs
-- to one with a mailbox limit of 1,000. A to C: seconds from the first
-- frame until an echo through the target after the attack came back; D:
-- seconds to send them all. E: the largest growth of the target's VmRSS
-- over the four.
local BIN = os.getenv("ACORO") or "build/acoro"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function sh_read(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local tmp = sh_read("mktemp -d")
local key = tmp .. "/key"
local f = assert(io.open(key, "w"))
f:write(sh_read(q(BIN) .. " --gen-secret"), "\n")
f:close()

local function rss_mb(pid)
  local s = io.open("/proc/" .. pid .. "/status")
  if not s then return 0 end
  local kb = tonumber(s:read("*a"):match("VmRSS:%s*(%d+)")) or 0
  s:close()
  return kb / 1024
end

local function expect(p, pattern)
  while true do
    local l = p:read("*l")
    if l == nil then error("bench/peer_attacks: ended before " .. pattern) end
    local c = l:match(pattern)
    if c then return c end
  end
end

local grow = 0
-- Runs the hostile peer's mode against a fresh target (sink limit or "-");
-- returns the seconds it reports on the line `key`.
local function attack(mode, args, sink_limit, key_line)
  local t = assert(io.popen(("exec %s spec/hostile_target.lua %s - %s 2>&1")
    :format(q(BIN), q(key), sink_limit)))
  local loc = expect(t, "^listening (%S+)$")
  local pid = tonumber(expect(t, "^pid (%d+)$"))
  expect(t, "^ready$")
  local before = rss_mb(pid)
  local h = assert(io.popen(("exec %s spec/hostile_peer.lua %s %s %s %s 2>&1")
    :format(q(BIN), mode, q(loc), q(key), args)))
  local secs = tonumber(expect(h, "^" .. key_line .. " (%S+)$"))
  expect(h, "^done$")
  h:close()
  grow = math.max(grow, rss_mb(pid) - before)
  os.execute("kill " .. pid)
  t:close()
  assert(secs, mode .. ": never handled")
  return secs
end

local nest = attack("nest", "sink 4000 1048576", "-", "handled_secs")
local locate = attack("locate", "20000 3600", "-", "handled_secs")
local deliver = attack("deliver", "sink 20000", "-", "handled_secs")
local flood = attack("flood", "sink 1000000 report", "1000", "flood_secs")
print(("PA nest_s=%.3f locate_s=%.3f deliver_s=%.3f flood_s=%.3f rss_growth_mb=%.1f")
  :format(nest, locate, deliver, flood, grow))
os.execute("rm -rf " .. q(tmp))

-- The transport's handshake spoken by an adversary (acoro.tcp and
-- acoro.udp on 127.0.0.1), for spec/security_handshake_spec.lua (which
-- asserts what the target does) and bench/handshake_attacks.lua (which
-- measures what it costs). The attacks run inside an acoro coroutine,
-- against a target node started from HW.TARGET; each returns what it saw
-- and the seconds it took.
local acoro = require "acoro"

local HW = {}

local F_HELLO, F_PROOF, F_SELECT, F_REFUSE = 1, 2, 3, 4
local CHAL_LEN = 32
HW.F_HELLO, HW.F_PROOF, HW.F_SELECT, HW.F_REFUSE, HW.CHAL_LEN = F_HELLO, F_PROOF, F_SELECT, F_REFUSE, CHAL_LEN

-- ---- the wire (core/net_internal.h) ----

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
    math.floor(n / 256) % 256, n % 256)
end

local function be64(n) return be32(0) .. be32(n) end

local function pad(s, n) return s .. ("\0"):rep(n - #s) end

local function frame(t, payload) return be32(#payload + 1) .. string.char(t) .. payload end

-- The next frame on s: type, payload | nil, "eof" | "timeout" | error.
local function read_frame(s, timeout)
  local h, why = s:recvall(4, timeout)
  if not h or #h < 4 then return nil, why or "eof" end
  local len = ((h:byte(1) * 256 + h:byte(2)) * 256 + h:byte(3)) * 256 + h:byte(4)
  local body
  body, why = s:recvall(len, timeout)
  if not body or #body < len then return nil, why or "eof" end
  return body:byte(1), body:sub(2)
end

-- A HELLO payload: version (4 bytes, as the target sent it), incarnation,
-- challenge, has-a-secret flag, location, name.
local function hello(version, inc, chal, location, name)
  return "ACORONET" .. version .. be64(inc) .. chal .. "\1\0\0\0" .. pad(location, 64)
    .. pad(name, 64)
end

local function chal_of(h) return h:sub(21, 20 + CHAL_LEN) end

-- Whether HELLO a's node arbitrates against b's: the lower (incarnation,
-- location), as core/net_handshake.c key_cmp.
local function arbiter(a, b)
  local ia, ib = a:sub(13, 20), b:sub(13, 20)
  if ia ~= ib then return ia < ib end
  return a:sub(57, 120):gsub("%z.*", "") < b:sub(57, 120):gsub("%z.*", "")
end
local function version_of(h) return h:sub(9, 12) end

-- A discovery ping (148 bytes) announcing location.
local function ping(version, inc, location)
  return "ACORODSC" .. version .. be64(inc) .. pad(location, 64) .. pad("forged", 64)
end

HW.frame, HW.read_frame, HW.hello, HW.ping, HW.version_of = frame, read_frame, hello, ping, version_of

-- ---- the target: a node process ----

-- arg[1]: discovery UDP port (0: none); arg[2]: the secret's file. Prints its
-- location, pid, then "online|offline LOCATION" for each peer change.
HW.TARGET = [[
local acoro = require "acoro"
local ffi = require "ffi"
ffi.cdef "int getpid(void);"
local udp = tonumber(arg[1])
local f = assert(io.open(arg[2], "rb"))
local secret = f:read("*a"):gsub("\r?\n$", "")
f:close()
local node = acoro.node({ host = "127.0.0.1", port = 0, secret = secret,
  udp_port = udp > 0 and udp or nil, discover = udp > 0 })
print("listening " .. node.location)
print("pid " .. ffi.C.getpid())
io.stdout:flush()
acoro.peer_status(acoro.self())
while true do
  local m = acoro.receive()
  if acoro.is_peer_status(m) then
    print(m.status .. " " .. m.location)
    io.stdout:flush()
  end
end
]]

-- A UDP port free now on 127.0.0.1 (the target's discovery port).
function HW.free_udp_port()
  local u = assert(acoro.udp.bind("127.0.0.1", 0))
  local port = select(2, u:getsockname())
  u:close()
  return port
end

-- The protocol version the target speaks (4 bytes of its HELLO).
function HW.target_version(port)
  local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
  local t, h = read_frame(s, 5)
  s:close()
  assert(t == F_HELLO, "no HELLO from the target")
  return version_of(h)
end

-- Reads frames on l until the link is up or closed: "authenticated", or
-- "refused" and why the read ended. relaying: we stand for another node,
-- so a SELECT from the target means up too, and when select_ours() says
-- that node arbitrates we answer the target's PROOF with our SELECT.
local function outcome(l, relaying, select_ours)
  while true do
    local ft, p = read_frame(l, 6)
    if ft == nil then return "refused", p end
    if relaying then
      if ft == F_PROOF and select_ours() then l:send(frame(F_SELECT, "")) end
      if ft == F_SELECT then return "authenticated" end
    end
    if ft >= 5 then return "authenticated" end -- a heartbeat or a message: the link is up
  end
end

-- The first PROOF on l, or nil once the target refuses or closes.
local function proof_on(l)
  while true do
    local ft, p = read_frame(l, 6)
    if ft == nil or ft == F_REFUSE then return nil end
    if ft == F_PROOF then return p end
  end
end

-- Reflection: the target as its own oracle. Link 1 reads its acceptor
-- challenge A1; a forged discovery ping (to its discovery port udp) makes
-- it dial us (link 2), where we answer with A1 as our challenge and take
-- its proof over it to link 1. Returns "refused" | "authenticated", why
-- the read ended, seconds.
function HW.reflection(port, udp)
  local t0 = acoro.now()
  local lst = assert(acoro.tcp.listen("127.0.0.1", 0))
  local me = "127.0.0.1:" .. select(2, lst:getsockname())
  local l1 = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
  local t, h1 = read_frame(l1, 5)
  assert(t == F_HELLO, "no HELLO on link 1")
  local version, a1 = version_of(h1), chal_of(h1)
  local u = assert(acoro.udp.bind("127.0.0.1", 0))
  u:sendto(ping(version, 2, me), "127.0.0.1", udp)
  local l2 = assert(lst:accept(5))
  local h2
  t, h2 = read_frame(l2, 5)
  assert(t == F_HELLO, "no HELLO on link 2")
  local a2 = chal_of(h2)
  -- link 2: answer with A1 as our challenge: an initiator proof over (A2, A1)?
  l2:send(frame(F_HELLO, hello(version, 2, a1, me, "mirror")))
  local proof = proof_on(l2)
  -- link 1: our challenge A2, the target's own proof forwarded (or junk)
  l1:send(frame(F_HELLO, hello(version, 1, a2, me, "mirror")))
  l1:send(frame(F_PROOF, proof or ("\0"):rep(32)))
  l1:send(frame(F_SELECT, ""))
  local result, why = outcome(l1)
  local took = acoro.now() - t0
  l1:close()
  l2:close()
  lst:close()
  u:close()
  return result, why, took
end

-- Relay: another node with the secret (the oracle, discovery on udp) is
-- made to dial us by a ping; each one's HELLO goes to the other, the
-- oracle's proof to the target (t_port). Returns as reflection.
function HW.relay(t_port, udp)
  local t0 = acoro.now()
  local lst = assert(acoro.tcp.listen("127.0.0.1", 0))
  local me = "127.0.0.1:" .. select(2, lst:getsockname())
  local l1 = assert(acoro.tcp.connect("127.0.0.1", t_port, { timeout = 5 }))
  local t, h_t = read_frame(l1, 5)
  assert(t == F_HELLO, "no HELLO from the target")
  local u = assert(acoro.udp.bind("127.0.0.1", 0))
  u:sendto(ping(version_of(h_t), 2, me), "127.0.0.1", udp)
  local l2 = assert(lst:accept(5))
  local h_x
  t, h_x = read_frame(l2, 5)
  assert(t == F_HELLO, "no HELLO from the oracle")
  -- to the oracle, the target's HELLO; to the target, the oracle's
  l2:send(frame(F_HELLO, h_t))
  local proof = proof_on(l2)
  l1:send(frame(F_HELLO, h_x))
  l1:send(frame(F_PROOF, proof or ("\0"):rep(32)))
  -- the lower (incarnation, location) arbitrates: the target's SELECT, or
  -- ours in the oracle's name
  local result, why = outcome(l1, true, function() return not arbiter(h_t, h_x) end)
  local took = acoro.now() - t0
  l1:close()
  l2:close()
  lst:close()
  u:close()
  return result, why, took
end

-- The guessing oracle: a client without the secret sends a HELLO and a
-- wrong proof. Returns the frame types the target sent after its HELLO
-- (an array), seconds.
function HW.guess(port)
  local t0 = acoro.now()
  local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
  local t, h = read_frame(s, 5)
  assert(t == F_HELLO, "no HELLO from the target")
  s:send(frame(F_HELLO, hello(version_of(h), 1, ("g"):rep(CHAL_LEN), "127.0.0.1:1", "guess")))
  s:send(frame(F_PROOF, ("\0"):rep(32))) -- a wrong proof
  local frames = {}
  while true do
    local ft = read_frame(s, 6)
    if ft == nil then break end
    frames[#frames + 1] = ft
  end
  s:close()
  return frames, acoro.now() - t0
end

-- Opens n idle connections to port: the sockets (nil where one failed),
-- how many opened.
function HW.idle_connections(port, n)
  local socks, opened = {}, 0
  for i = 1, n do
    socks[i] = acoro.tcp.connect("127.0.0.1", port, { timeout = 5 })
    if socks[i] then opened = opened + 1 end
  end
  return socks, opened
end

-- Closes the sockets; returns how many the target had closed already.
function HW.closed_by_target(socks, n)
  local closed = 0
  for i = 1, n do
    if socks[i] then
      local d, why = socks[i]:recv(4096, 0.01)
      while d do d, why = socks[i]:recv(4096, 0.01) end
      if why ~= "timeout" then closed = closed + 1 end
      socks[i]:close()
    end
  end
  return closed
end

-- The discovery storm: 2,000 forged pings to the target's discovery port
-- udp (target's TCP port: port), 100 every 0.1 s, announcing 50 ports
-- where we accept and close at once. Returns pings sent, connects
-- accepted, seconds of the storm.
function HW.storm(port, udp)
  local t0 = acoro.now()
  local accepted, sent = 0, 0
  local listeners, ports = {}, {}
  for i = 1, 50 do
    listeners[i] = assert(acoro.tcp.listen("127.0.0.1", 0))
    ports[i] = select(2, listeners[i]:getsockname())
    acoro.spawn(function()
      while true do
        local s = listeners[i]:accept()
        if not s then return end
        accepted = accepted + 1
        s:close() -- every link the target opens fails
      end
    end)
  end
  local u = assert(acoro.udp.bind("127.0.0.1", 0))
  local version = HW.target_version(port)
  for round = 1, 20 do
    for i = 1, 100 do
      local k = (round * 100 + i) % 50 + 1
      u:sendto(ping(version, 1000 + k, "127.0.0.1:" .. ports[k]), "127.0.0.1", udp)
      sent = sent + 1
    end
    acoro.sleep(0.1) -- pacing the sender, not a wait for the target
  end
  local took = acoro.now() - t0
  -- the target's last connects land within a handshake's time
  local last, n = acoro.now(), accepted
  while acoro.now() - last < 1 do
    acoro.sleep(0.1)
    if accepted ~= n then last, n = acoro.now(), accepted end
  end
  for i = 1, 50 do listeners[i]:close() end
  u:close()
  return sent, accepted, took
end

return HW

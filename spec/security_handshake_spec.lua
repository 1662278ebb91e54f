-- Attacks on the peer transport (core/net*.c), each played by an adversary
-- speaking the wire from this process (acoro.tcp and acoro.udp on 127.0.0.1)
-- against a real `acoro` node process: a reflected handshake, the offline
-- guessing oracle, the lock-out of new peers by idle connections and the
-- discovery storm. Each prints its figures (time to refuse, the target's RSS
-- from /proc before and after); bounds are on counts, not on time.

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote

local F_HELLO, F_PROOF, F_SELECT, F_REFUSE = 1, 2, 3, 4
local CHAL_LEN = 32

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

local function rss_kb(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- ---- the target: a node process ----

-- arg[1]: discovery UDP port (0: none); arg[2]: the secret's file. Prints its
-- location, pid, then "online|offline LOCATION" for each peer change.
local TARGET = [[
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

local function free_udp_port()
  local port
  acoro.run(function()
    local u = assert(acoro.udp.bind("127.0.0.1", 0))
    port = select(2, u:getsockname())
    u:close()
  end)
  return port
end

local function start_target(udp_port)
  local path = support.write_temp(TARGET)
  local c = ns.track(net.spawn(("%s %s %d %s"):format(q(support.bin), q(path), udp_port or 0,
    q(ns.secret))))
  local loc = c:expect("^listening (127%.0%.0%.1:%d+)$")
  local pid = tonumber(c:expect("^pid (%d+)$"))
  return c, loc, pid, tonumber(loc:match(":(%d+)$"))
end

-- The protocol version the target speaks (4 bytes of its HELLO). In a run.
local function target_version(port)
  local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
  local t, h = read_frame(s, 5)
  s:close()
  assert(t == F_HELLO, "no HELLO from the target")
  return version_of(h)
end

-- Reads the target's lines until one matches pattern; returns it.
local function target_says(c, pattern)
  return c:expect(pattern)
end

describe("transport security: attacks from a peer that speaks the wire", function()
  after_each(ns.stop_all)

  it("a reflected handshake (the target as its own oracle, through a forged discovery "
    .. "ping) is refused: no proof made on one link opens another", function()
    local udp = free_udp_port()
    local c, _, pid, port = start_target(udp)
    local rss0 = rss_kb(pid)
    local result, took, why
    acoro.run(function()
      local t0 = acoro.now()
      local lst = assert(acoro.tcp.listen("127.0.0.1", 0))
      local lport = select(2, lst:getsockname())
      local me = "127.0.0.1:" .. lport
      -- link 1: read the target's acceptor challenge A1
      local l1 = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
      local t, h1 = read_frame(l1, 5)
      assert.equal(F_HELLO, t)
      local version, a1 = version_of(h1), chal_of(h1)
      -- a forged ping makes the target dial the attacker (link 2)
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      u:sendto(ping(version, 2, me), "127.0.0.1", udp)
      local l2 = assert(lst:accept(5))
      local h2
      t, h2 = read_frame(l2, 5)
      assert.equal(F_HELLO, t)
      local a2 = chal_of(h2)
      -- link 2: answer with A1 as our challenge: an initiator proof over (A2, A1)?
      l2:send(frame(F_HELLO, hello(version, 2, a1, me, "mirror")))
      local proof
      while true do
        local ft, p = read_frame(l2, 6)
        if ft == nil or ft == F_REFUSE then break end
        if ft == F_PROOF then
          proof = p
          break
        end
      end
      -- link 1: our challenge A2, the target's own proof forwarded (or junk)
      l1:send(frame(F_HELLO, hello(version, 1, a2, me, "mirror")))
      l1:send(frame(F_PROOF, proof or ("\0"):rep(32)))
      l1:send(frame(F_SELECT, ""))
      result = "refused"
      while true do
        local ft, p = read_frame(l1, 6)
        if ft == nil then
          why = p
          break
        end
        if ft >= 5 then -- a heartbeat or a message: the link is up
          result = "authenticated"
          break
        end
      end
      took = acoro.now() - t0
      l1:close()
      l2:close()
      lst:close()
      u:close()
    end)
    print(("\n  reflection: %s in %.2f s (%s); RSS %d -> %d kB"):format(
      result, took, tostring(why), rss0, rss_kb(pid)))
    assert.equal("refused", result)
    assert.equal("eof", why)
    print("  target: " .. target_says(c, "refused: ([^\n]*)"))
  end)

  it("a relay through a discovered link (another node with the secret as the oracle) "
    .. "is refused: the node dialled on a ping must be where the ping said", function()
    local udp = free_udp_port()
    local t_c, _, t_pid, t_port = start_target(0) -- the target: no discovery
    local x_c = start_target(udp)                  -- the oracle: discovery on
    local rss0 = rss_kb(t_pid)
    local result, took, why
    acoro.run(function()
      local t0 = acoro.now()
      local lst = assert(acoro.tcp.listen("127.0.0.1", 0))
      local me = "127.0.0.1:" .. select(2, lst:getsockname())
      local l1 = assert(acoro.tcp.connect("127.0.0.1", t_port, { timeout = 5 }))
      local t, h_t = read_frame(l1, 5)
      assert.equal(F_HELLO, t)
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      u:sendto(ping(version_of(h_t), 2, me), "127.0.0.1", udp)
      local l2 = assert(lst:accept(5))
      local h_x
      t, h_x = read_frame(l2, 5)
      assert.equal(F_HELLO, t)
      -- to the oracle, the target's HELLO; to the target, the oracle's
      l2:send(frame(F_HELLO, h_t))
      local proof
      while true do
        local ft, p = read_frame(l2, 6)
        if ft == nil or ft == F_REFUSE then break end
        if ft == F_PROOF then
          proof = p
          break
        end
      end
      l1:send(frame(F_HELLO, h_x))
      l1:send(frame(F_PROOF, proof or ("\0"):rep(32)))
      result = "refused"
      while true do
        local ft, p = read_frame(l1, 6)
        if ft == nil then
          why = p
          break
        end
        -- the lower (incarnation, location) arbitrates: the target's SELECT,
        -- or ours in the oracle's name
        if ft == F_PROOF and not arbiter(h_t, h_x) then l1:send(frame(F_SELECT, "")) end
        if ft == F_SELECT or ft >= 5 then
          result = "authenticated"
          break
        end
      end
      took = acoro.now() - t0
      l1:close()
      l2:close()
      lst:close()
      u:close()
    end)
    print(("\n  relay: %s in %.2f s (%s); RSS %d -> %d kB"):format(result, took, tostring(why),
      rss0, rss_kb(t_pid)))
    assert.equal("refused", result)
    print("  oracle: " .. target_says(x_c, "refused: ([^\n]*)"))
    print("  target: " .. target_says(t_c, "refused: ([^\n]*)"))
  end)

  it("the acceptor proves nothing before the initiator has proved: a client without the "
    .. "secret gets no proof to test guesses against", function()
    local c, _, pid, port = start_target(0)
    local rss0 = rss_kb(pid)
    local frames, took = {}, nil
    acoro.run(function()
      local t0 = acoro.now()
      local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
      local t, h = read_frame(s, 5)
      assert.equal(F_HELLO, t)
      s:send(frame(F_HELLO, hello(version_of(h), 1, ("g"):rep(CHAL_LEN), "127.0.0.1:1", "guess")))
      s:send(frame(F_PROOF, ("\0"):rep(32))) -- a wrong proof
      while true do
        local ft = read_frame(s, 6)
        if ft == nil then break end
        frames[#frames + 1] = ft
      end
      took = acoro.now() - t0
      s:close()
    end)
    local line = target_says(c, "refused: ([^\n]*)")
    print(("\n  guessing oracle: frames after HELLO {%s} in %.2f s; target: %s; RSS %d -> %d kB")
      :format(table.concat(frames, ","), took, line, rss0, rss_kb(pid)))
    for _, ft in ipairs(frames) do assert.are_not.equal(F_PROOF, ft) end
    assert.equal(F_REFUSE, frames[1])
    assert.matches("wrong secret", line)
  end)

  it("a client holding 100 idle connections does not lock out a new peer: the idlest "
    .. "unauthenticated ones are closed to make room", function()
    local c, tloc, pid, port = start_target(0)
    local rss0 = rss_kb(pid)
    local socks, opened = {}, 0
    acoro.run(function()
      for i = 1, 100 do
        socks[i] = acoro.tcp.connect("127.0.0.1", port, { timeout = 5 })
        if socks[i] then opened = opened + 1 end
      end
    end)
    -- the sockets stay open (idle) while a real node peers with the target
    local peer = ns.start(ns.PRELUDE .. [[
local t0 = acoro.now()
local ok, why = acoro.peer(arg[1], 10)
say("peer", ok, why, ("%.2f"):format(acoro.now() - t0))
]], nil, nil, q(tloc))
    local verdict = peer:expect("^peer (.*)$")
    local ok = verdict:find("^true nil") ~= nil
    local online = ok and target_says(c, "^online (.*)$")
    local rss1 = rss_kb(pid)
    local closed = 0
    acoro.run(function()
      for i = 1, #socks do
        if socks[i] then
          local d, why = socks[i]:recv(4096, 0.01)
          while d do d, why = socks[i]:recv(4096, 0.01) end
          if why ~= "timeout" then closed = closed + 1 end
          socks[i]:close()
        end
      end
    end)
    print(("\n  lock-out: %d idle connections held, new peer: %s s, idle ones closed by the "
      .. "target: %d; RSS %d -> %d kB"):format(opened, verdict, closed, rss0, rss1))
    assert(ok, verdict)
    assert.truthy(online)
    assert.equal(100, opened)
    assert.is_true(closed >= 100 - 32)
  end)

  it("a discovery storm (2,000 forged pings announcing 50 ports) opens a bounded number "
    .. "of connections and logs a few lines", function()
    local udp = free_udp_port()
    local c, _, pid, port = start_target(udp)
    local rss0 = rss_kb(pid)
    local accepted, sent, took = 0, 0, 0
    acoro.run(function()
      local t0 = acoro.now()
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
      local version = target_version(port)
      for round = 1, 20 do
        for i = 1, 100 do
          local k = (round * 100 + i) % 50 + 1
          u:sendto(ping(version, 1000 + k, "127.0.0.1:" .. ports[k]), "127.0.0.1", udp)
          sent = sent + 1
        end
        acoro.sleep(0.1) -- pacing the sender, not a wait for the target
      end
      took = acoro.now() - t0
      -- the target's last connects land within a handshake's time
      local last, n = acoro.now(), accepted
      while acoro.now() - last < 1 do
        acoro.sleep(0.1)
        if accepted ~= n then last, n = acoro.now(), accepted end
      end
      for i = 1, 50 do listeners[i]:close() end
      u:close()
    end)
    local rss1 = rss_kb(pid)
    ns.forget(c)
    c:kill()
    c:close()
    local lines = 0
    for l in c:output():gmatch("[^\n]+") do
      if l:find("^acoro: node:") then
        lines = lines + 1
        print("  | " .. l)
      end
    end
    print(("\n  discovery storm: %d pings in %.2f s -> %d connects, %d log lines; RSS %d -> %d kB")
      :format(sent, took, accepted, lines, rss0, rss1))
    assert.is_true(accepted <= 16 + 4 * (took + 2), "connects: " .. accepted)
    assert.is_true(lines <= 3, "log lines: " .. lines)
  end)
end)

describe("transport security: the secret", function()
  it("acoro --gen-secret prints a new random secret (64 hex digits) each time", function()
    local a, err, code = support.run_cli("--gen-secret")
    assert.equal(0, code, err)
    local b = support.run_cli("--gen-secret")
    assert.matches("^%x+\n$", a)
    assert.equal(65, #a)
    assert.are_not.equal(a, b)
  end)

  -- The start log line comes through the net's event queue; a failed peer
  -- (a round trip through the same queue) comes after it.
  local NODE = [[
local acoro = require "acoro"
acoro.node({ host = "127.0.0.1", secret = arg[1], discover = false })
print(acoro.peer("127.0.0.1:1", 5))
]]

  it("a secret shorter than 16 characters gets a warning at start; a longer one none",
    function()
      local out, err = support.run_script(NODE, q("short"))
      assert.matches("^nil", out)
      assert.matches("the secret is shorter than 16 characters", err)
      assert.matches("acoro %-%-gen%-secret", err)
      out, err = support.run_script(NODE, q("sixteen chars ok"))
      assert.matches("^nil", out)
      assert.is_nil(err:find("shorter than", 1, true))
    end)
end)

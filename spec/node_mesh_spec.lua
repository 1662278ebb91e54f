-- Discovery that converges (core/net_discover.c, DISCOVERY LIMITS and
-- RE-ANNOUNCEMENT): a node whose first handshake was refused is dialled
-- again, and a node whose start ping was lost still joins by the others'
-- later pings. The nodes are real `acoro` processes on 127.0.0.1 with
-- discovery on a UDP port free at the start of each test; the refusing
-- node is played by this process (spec/handshake_wire.lua). One link per
-- pair and heartbeats on idle links only: spec/c/test-net-mesh.c.

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"
local ns = require "node_support"
local HW = require "handshake_wire"

local q = support.shell_quote

-- A node with discovery on `udp` (arg[1]) that prints "listening LOC", then
-- "online LOC" / "offline LOC" for each peer. `flags`: CLI flags before
-- the script (-e code, --listen).
local NODE = [[
local acoro = require "acoro"
local f = assert(io.open(arg[2], "rb"))
local secret = f:read("*a"):gsub("\r?\n$", "")
f:close()
local opts = { host = "127.0.0.1", secret = secret, udp_port = tonumber(arg[1]) }
if arg[3] then opts.port = tonumber(arg[3]) end
local node = acoro.node(opts)
print("listening " .. node.location)
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

local function start_node(udp, flags, port)
  local path = support.write_temp(NODE)
  local c = ns.track(net.spawn(("%s %s %s %d %s %s"):format(q(support.bin), flags or "", q(path), udp,
    q(ns.secret), port and tostring(port) or "")))
  return c, c:expect("^listening (127%.0%.0%.1:%d+)$")
end

local function free_udp_port()
  local port
  acoro.run(function() port = HW.free_udp_port() end)
  return port
end

describe("mesh: discovery converges", function()
  after_each(ns.stop_all)

  it("a discovered node whose first handshake is refused is dialled again and joins, "
    .. "without anyone restarting", function()
    local udp = free_udp_port()
    local e, eloc = start_node(udp)
    local port, said
    -- This process takes a port and announces it; the first node dials it, gets a
    -- valid HELLO naming that location, proves itself, and is refused as a node past
    -- its handshake bounds would refuse it. Then the port is closed.
    acoro.run(function()
      local lst = assert(acoro.tcp.listen("127.0.0.1", 0))
      port = select(2, lst:getsockname())
      local me = "127.0.0.1:" .. port
      local version = HW.target_version(tonumber(eloc:match(":(%d+)$")))
      local u = assert(acoro.udp.bind("127.0.0.1", 0))
      u:sendto(HW.ping(version, 4242, me), "127.0.0.1", udp)
      local s = assert(lst:accept(15))
      local t = HW.read_frame(s, 10)
      assert(t == HW.F_HELLO, "no HELLO from the first node")
      s:send(HW.frame(HW.F_HELLO, HW.hello(version, 4242, ("c"):rep(HW.CHAL_LEN), me, "busy")))
      t = HW.read_frame(s, 10)
      assert(t == HW.F_PROOF, "no PROOF from the first node")
      s:send(HW.frame(HW.F_REFUSE, "\0too many connections in handshake"))
      said = HW.read_frame(s, 10) -- nil: it closed
      s:close()
      lst:close()
      u:close()
    end)
    assert.is_nil(said)
    -- The real node at that port, with discovery on another port: only the first
    -- node's retries can bring them together.
    local other = free_udp_port()
    local l, lloc = start_node(other, nil, port)
    assert.equal("127.0.0.1:" .. port, lloc)
    assert.equal(lloc, e:expect("^online (%S+)$"))
    assert.equal(eloc, l:expect("^online (%S+)$"))
  end)

  it("a late starter whose start ping was lost joins by the others' later pings", function()
    local udp = free_udp_port()
    -- the first node loses the first ping it hears (the late starter's)
    local e, eloc = start_node(udp, "-e " .. q('require("acoro.core").net.test_drop_pings(1)'))
    local l, lloc = start_node(udp)
    assert.equal(lloc, e:expect("^online (%S+)$"))
    assert.equal(eloc, l:expect("^online (%S+)$"))
  end)

  it("announce= takes seconds or false; heartbeat= and missed= positive numbers", function()
    local function bad(opts, pattern)
      local ok, err = pcall(acoro.node, opts)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    bad({ host = "127.0.0.1", announce = 0 }, "announce must be a positive number of seconds or false")
    bad({ host = "127.0.0.1", announce = "often" }, "announce must be")
    bad({ host = "127.0.0.1", heartbeat = -1 }, "heartbeat must be a positive number")
    bad({ host = "127.0.0.1", missed = 2.5 }, "missed must be a positive integer")
    assert.is_nil(acoro.node())
  end)
end)

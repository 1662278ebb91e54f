-- acoro.peer_status across a mesh made by discovery: every link that comes up, whichever
-- way it came (a dial at once, a held dial made later, two simultaneous dials arbitrated
-- to one), reaches each subscriber as one "online" message, whether it subscribed before
-- or after its node started. Eight `acoro` processes on 127.0.0.1 with discovery on a
-- UDP port free at the start, started together (no node waits for another), so that
-- pairs hear each other at about the same time.

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"
local ns = require "node_support"
local HW = require "handshake_wire"

local q = support.shell_quote

local NODES = 8

-- arg: UDP port, secret file, "before" | "after" (when it subscribes), peers wanted.
-- Counts the distinct locations announced online (one gone offline is taken off),
-- then prints them and acoro.peers() (at most 50 s: the safety net, under the child's
-- 60). It then stays a peer: a status message that comes later (another node stopping)
-- must not end it, so it receives in a loop.
local NODE = [[
local acoro = require "acoro"
local f = assert(io.open(arg[2], "rb"))
local secret = f:read("*a"):gsub("\r?\n$", "")
f:close()
local early = arg[3] == "before"
if early then acoro.peer_status(acoro.self()) end
local node = acoro.node { host = "127.0.0.1", secret = secret, udp_port = tonumber(arg[1]) }
if not early then acoro.peer_status(acoro.self()) end
print("listening " .. node.location)
io.stdout:flush()
local want, online, count, t0 = tonumber(arg[4]), {}, 0, acoro.now()
while count < want and acoro.now() - t0 < 50 do
  local m = acoro.receive(1)
  if m and acoro.is_peer_status(m) then
    if m.status == "online" and not online[m.location] then
      online[m.location], count = true, count + 1
    elseif m.status == "offline" and online[m.location] then
      online[m.location], count = nil, count - 1
    end
  end
end
local locs = {}
for loc in pairs(online) do locs[#locs + 1] = loc end
table.sort(locs)
print("online " .. table.concat(locs, " "))
locs = {}
for i, p in ipairs(acoro.peers()) do locs[i] = p.location end
print("peers " .. table.concat(locs, " "))
io.stdout:flush()
while true do acoro.receive() end
]]

describe("acoro.peer_status in a mesh made by discovery", function()
  after_each(ns.stop_all)

  it("eight nodes started together each get one online message per peer, "
    .. "subscribed before or after their node started", function()
    local udp
    acoro.run(function() udp = HW.free_udp_port() end)
    local path = support.write_temp(NODE)
    local nodes = {}
    for i = 1, NODES do
      nodes[i] = ns.track(net.spawn(("%s %s %d %s %s %d"):format(q(support.bin), q(path), udp,
        q(ns.secret), i % 2 == 0 and "before" or "after", NODES - 1)))
    end
    for i = 1, NODES do nodes[i].loc = nodes[i]:expect("^listening (127%.0%.0%.1:%d+)$") end
    for i = 1, NODES do
      local others = {}
      for j = 1, NODES do
        if j ~= i then others[#others + 1] = nodes[j].loc end
      end
      table.sort(others)
      others = table.concat(others, " ")
      assert.equal("online " .. others, nodes[i]:expect("^(online .*)$"))
      assert.equal("peers " .. others, nodes[i]:expect("^(peers .*)$"))
    end
  end)
end)

-- Discovery on a virtual LAN: eight network namespaces, each with one
-- veth whose other end is a port of a bridge in a ninth namespace (the hub), addresses
-- in 198.18.0.0/24 (the benchmarking range); an acoro node in each with discovery on and
-- no peers named must find the other seven by broadcast pings alone (198.18.0.255): the
-- nodes' own pings at start and their re-announcements, nothing called by the script.
-- Everything lives in namespaces this spec makes (the host's own network is not touched)
-- and is removed in after_each, failed or not. Where namespaces cannot be made (not
-- root, no `ip`, EPERM in a container) the test is pending, with the reason printed, and
-- tools/test counts it as skipped.

local support = require "support"
local net = require "net_support"

local q = support.shell_quote

-- Names unique to this run (the PID of this busted process): namespaces of other runs
-- on the host are never touched.
local pid
do
  local f = assert(io.open("/proc/self/stat"))
  pid = f:read("*l"):match("^(%d+)")
  f:close()
end
local HUB = "acoro-hub-" .. pid
local function ns_name(i) return ("acoro-n%d-%s"):format(i, pid) end
local function addr(i) return ("198.18.0.%d"):format(10 + i) end

-- Runs a shell command; returns true on success and its output (stdout and stderr).
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, (out:gsub("rc=%d+%s*$", ""))
end

-- `ip netns add` mounts /run/netns on itself the first time (to share namespaces' mounts)
-- and leaves it: when it was not mounted before this spec, it is unmounted again once no
-- namespace is left in it (a chroot with it still mounted cannot be removed). A namespace
-- of another run in it makes umount fail (busy): it then stays, as ip would leave it.
local function netns_mounted()
  local f = io.open("/proc/self/mountinfo")
  if not f then return false end
  local s = f:read("*a")
  f:close()
  return s:find(" /run/netns ", 1, true) ~= nil
end
local had_netns_mount = netns_mounted()

local function release_netns_mount()
  if had_netns_mount or not netns_mounted() then return end
  local _, names = sh("ls -A /run/netns")
  if names:match("%S") == nil then sh("umount /run/netns") end
end

-- Why this machine cannot run the test, or nil: a namespace with a bridge and a veth
-- pair in it is made and removed (a container may allow one and not the others).
local function cannot()
  if not sh("command -v ip") then return "no `ip` command (Debian package iproute2)" end
  local probe = "acoro-probe-" .. pid
  local ok, out = sh("ip netns add " .. probe)
  if not ok then return "cannot create a network namespace: " .. out:gsub("%s+$", "") end
  local why
  for _, what in ipairs({ "br0 type bridge", "v0 type veth peer name v1" }) do
    ok, out = sh(("ip -n %s link add %s"):format(probe, what))
    if not ok then
      why = "cannot create a " .. what:match("type (%a+)") .. " link: " .. out:gsub("%s+$", "")
      break
    end
  end
  sh("ip netns del " .. probe)
  release_netns_mount()
  return why
end

local made = {}     -- namespaces to remove
local children = {}

local function teardown()
  for _, c in ipairs(children) do
    c:kill()
    c:close()
  end
  children = {}
  -- a namespace's veths and bridge go with it
  for i = #made, 1, -1 do sh("ip netns del " .. made[i]) end
  made = {}
  release_netns_mount()
end

local HOSTS = 8

-- The hub (a bridge) and HOSTS namespaces, each linked to it by a veth pair.
local function make_lan()
  local function must(cmd)
    local ok, out = sh(cmd)
    if not ok then error(("setting up the virtual LAN: %s: %s"):format(cmd, out), 2) end
  end
  must("ip netns add " .. HUB)
  made[#made + 1] = HUB
  must(("ip -n %s link add br0 type bridge"):format(HUB))
  must(("ip -n %s link set br0 up"):format(HUB))
  for i = 1, HOSTS do
    local ns = ns_name(i)
    must("ip netns add " .. ns)
    made[#made + 1] = ns
    must(("ip -n %s link add port%d type veth peer name eth0 netns %s"):format(HUB, i, ns))
    must(("ip -n %s link set port%d master br0"):format(HUB, i))
    must(("ip -n %s link set port%d up"):format(HUB, i))
    must(("ip -n %s addr add %s/24 brd + dev eth0"):format(ns, addr(i)))
    must(("ip -n %s link set eth0 up"):format(ns))
    must(("ip -n %s link set lo up"):format(ns))
  end
end

-- Each node: discovery on (default UDP port, alone in its namespace), no peers, nothing
-- called to ping again: a ping sent before a later node's socket was bound reaches nobody,
-- and the node's re-announcements make up for it. It waits for the others as
-- acoro.peer_status messages (subscribed before the node starts: every link that comes up
-- is one "online"), then prints the locations announced and acoro.peers() (at most 50 s:
-- the safety net, under the child's 60). It then stays a peer until the spec stops it,
-- receiving in a loop: the status messages that come later (a node stopping at the
-- teardown) must not end it, nor one still queued when the count was reached.
local NODE = [[
local acoro = require "acoro"
acoro.peer_status(acoro.self())
local n = acoro.node { host = arg[1], port = 0, secret = "lan secret", name = arg[2] }
print("listening " .. n.location)
io.stdout:flush()
local want, online, count, t0 = tonumber(arg[3]), {}, 0, acoro.now()
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

describe("discovery on a virtual LAN (network namespaces)", function()
  local why = cannot()
  if why then
    print("\nskipped: discovery on a virtual LAN: " .. why)
    pending("discovery on a virtual LAN: skipped: " .. why)
    return
  end

  after_each(teardown)

  it("eight nodes in namespaces joined by a bridge find each other by broadcast alone", function()
    make_lan()
    local path = support.write_temp(NODE)
    local nodes = {}
    for i = 1, HOSTS do
      local c = net.spawn(("ip netns exec %s %s %s %s node%d %d"):format(
        q(ns_name(i)), q(support.bin), q(path), addr(i), i, HOSTS - 1))
      children[#children + 1] = c
      nodes[i] = { c = c, loc = c:expect("^listening (%S+)$") }
      assert.matches("^" .. addr(i):gsub("%.", "%%.") .. ":%d+$", nodes[i].loc)
    end
    for i = 1, HOSTS do
      local others = {}
      for j = 1, HOSTS do
        if j ~= i then others[#others + 1] = nodes[j].loc end
      end
      table.sort(others)
      others = table.concat(others, " ")
      assert.equal("online " .. others, nodes[i].c:expect("^(online .*)$"))
      assert.equal("peers " .. others, nodes[i].c:expect("^(peers .*)$"))
    end
  end)
end)

-- A virtual LAN of network namespaces for the specs that need broadcast
-- (spec/discoro_netns_spec.lua): a hub namespace with a bridge, and N
-- namespaces each linked to it by a veth pair, addresses in 198.18.0.0/24
-- (the benchmarking range). The host's own network is never touched; names
-- carry this busted process's PID and a prefix of the caller's, and
-- teardown() removes what was made. As spec/node_netns_spec.lua does it.
local M = {}

-- sh(cmd) -> true on success, and its output (stdout and stderr)
function M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, (out:gsub("rc=%d+%s*$", ""))
end
local sh = M.sh

local pid
do
  local f = assert(io.open("/proc/self/stat"))
  pid = f:read("*l"):match("^(%d+)")
  f:close()
end

-- `ip netns add` mounts /run/netns the first time and leaves it: unmounted
-- again when this run mounted it and no namespace is left in it.
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

-- cannot() -> why this machine cannot make the LAN, or nil: a namespace
-- with a bridge and a veth pair in it is made and removed.
function M.cannot()
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

-- lan(prefix, n) -> a LAN: lan.ns(i) the name of namespace i, lan.addr(i)
-- its address, lan:teardown() removes everything made (failed or not).
function M.lan(prefix, n)
  local made = {}
  local lan = {}
  function lan.ns(i) return ("acoro-%s%d-%s"):format(prefix, i, pid) end
  function lan.addr(i) return ("198.18.0.%d"):format(10 + i) end
  function lan.teardown()
    for i = #made, 1, -1 do sh("ip netns del " .. made[i]) end
    made = {}
    release_netns_mount()
  end
  local function must(cmd)
    local ok, out = sh(cmd)
    if not ok then error(("setting up the virtual LAN: %s: %s"):format(cmd, out), 3) end
  end
  local hub = ("acoro-%shub-%s"):format(prefix, pid)
  must("ip netns add " .. hub)
  made[#made + 1] = hub
  must(("ip -n %s link add br0 type bridge"):format(hub))
  must(("ip -n %s link set br0 up"):format(hub))
  for i = 1, n do
    local ns = lan.ns(i)
    must("ip netns add " .. ns)
    made[#made + 1] = ns
    must(("ip -n %s link add port%d type veth peer name eth0 netns %s"):format(hub, i, ns))
    must(("ip -n %s link set port%d master br0"):format(hub, i))
    must(("ip -n %s link set port%d up"):format(hub, i))
    must(("ip -n %s addr add %s/24 brd + dev eth0"):format(ns, lan.addr(i)))
    must(("ip -n %s link set eth0 up"):format(ns))
    must(("ip -n %s link set lo up"):format(ns))
  end
  return lan
end

return M

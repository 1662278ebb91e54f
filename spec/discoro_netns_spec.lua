-- acoro.discoro on a virtual LAN (spec/netns_support.lua): three acoro-node
-- daemons and a client, each in a network namespace of its own on one
-- bridge, find each other by UDP broadcast alone (no --peer, no peers=);
-- jobs land on all three nodes, and a node killed (kill -9) mid-run loses
-- no job. Where namespaces cannot be made (not root, no `ip`, EPERM in a
-- container) the test is pending, with the reason printed.

local support = require "support"
local net = require "net_support"
local ns = require "node_support"
local netns = require "netns_support"

local q = support.shell_quote
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")
local UDP = 42251 -- the discovery port, alone on this LAN

-- The client: waits (bounded) until the 3 servers are up, pinging again each
-- second (a ping sent before a node's socket was bound reaches nobody); then
-- 12 jobs held by a gate until all run (4 per server); it says which node to
-- kill and, once a loss is seen, lets go of every job that runs elsewhere.
local CLIENT = ns.SAY .. [[
local discoro = require "acoro.discoro"
local secret = io.open(arg[2]):read("*a"):gsub("\n$", "")
local target = tonumber(arg[3])
local main = acoro.self()
local gate = acoro.spawn(function()
  local lost, held, n, up = false, {}, 0, 0
  while true do
    local m = acoro.receive()
    if m.status == "ServerInitialized" then
      up = up + 1
      if up == 3 then main:send("up") end
    elseif m.status == "JobRequeued" then
      say("requeued", m.job)
    elseif m.status == "NodeClosed" or m.status == "ServerClosed" then
      if not lost then say("lost") end
      lost = true
      for _, j in ipairs(held) do if j.node ~= target then j.co:send("go") end end
    elseif m.start then
      n = n + 1
      if lost then
        if m.node ~= target then m.co:send("go") end
      else
        held[#held + 1] = m
        say("ran on", m.co.location:match("^(.*):%d+$"), m.node == target)
        if n == 12 then say("kill", target) end
      end
    end
  end
end)
gate:set_daemon()
local comp = discoro.Computation({ node = { host = arg[1], udp_port = ]] .. UDP .. [[, secret = secret },
  status = gate, timeout = 60, code = [=[
local ffi = require "ffi"
pcall(ffi.cdef, "int getppid(void);")
function hold(i, gate)
  gate:send({ start = i, node = ffi.C.getppid(), co = acoro.self() })
  acoro.receive()
  return i * i
end
]=] })
say("schedule", comp:schedule({ timeout = 30 }))
local up
for _ = 1, 30 do
  up = acoro.receive_match(function(m) return m == "up" end, 1)
  if up then break end
  acoro.discover()
end
say("up", up)
local list = {}
for i = 1, 12 do list[i] = { i, gate } end
local r, e = comp:run_results("hold", list)
local got = {}
for i = 1, 12 do got[i] = e[i] or tostring(r[i]) end
say("results", table.concat(got, " "))
comp:close()
]]

describe("discoro on a virtual LAN (network namespaces)", function()
  local why = netns.cannot()
  if why then
    print("\nskipped: discoro on a virtual LAN: " .. why)
    pending("discoro on a virtual LAN: skipped: " .. why)
    return
  end

  local lan, dirs = nil, {}
  after_each(function()
    ns.stop_all()
    if lan then lan.teardown() end
    lan = nil
    for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
    dirs = {}
  end)

  it("3 acoro-nodes and a client find each other by broadcast; jobs on all three; one killed loses none",
    function()
      lan = netns.lan("d", 4)
      local pids = {}
      for i = 1, 3 do
        local d = os.tmpname()
        os.remove(d)
        dirs[#dirs + 1] = d
        local c = ns.track(net.spawn(("ip netns exec %s %s --cpus 1 --listen %s:0 --udp-port %d --secret-file %s"
          .. " --dest-path %s --name node%d"):format(q(lan.ns(i)), q(NODE_BIN), lan.addr(i), UDP, q(ns.secret),
          q(d), i)))
        local loc
        loc, pids[i] = ns.expect_all(c, { "^acoro%-node listening (%S+)$", "ready %(pid (%d+)%)" })
        assert.matches("^" .. lan.addr(i):gsub("%.", "%%.") .. ":%d+$", loc)
      end
      local cli = ns.track(net.spawn(("ip netns exec %s %s %s %s %s %s"):format(q(lan.ns(4)), q(support.bin),
        q(support.write_temp(CLIENT)), lan.addr(4), q(ns.secret), pids[2])))
      assert.equal("true", cli:expect("^schedule (%S+)$"))
      assert.equal("up", cli:expect("^up (%S+)$"))
      assert.equal(pids[2], cli:expect("^kill (%d+)$"))
      -- the 12 jobs ran on all three nodes, 4 on each server, before the kill
      local hosts, on_target = {}, 0
      for _, l in ipairs(cli.seen) do
        local host, t = l:match("^ran on (%S+) (%a+)$")
        if host then
          hosts[host] = (hosts[host] or 0) + 1
          if t == "true" then on_target = on_target + 1 end
        end
      end
      assert.same({ [lan.addr(1)] = 4, [lan.addr(2)] = 4, [lan.addr(3)] = 4 }, hosts)
      assert.equal(4, on_target)
      assert.equal(0, os.execute("kill -9 " .. pids[2]))
      local want = {}
      for i = 1, 12 do want[i] = tostring(i * i) end
      assert.equal(table.concat(want, " "), cli:expect("^results (.*)$"))
      local requeued = 0
      for _, l in ipairs(cli.seen) do
        if l:match("^requeued %d+$") then requeued = requeued + 1 end
      end
      assert.equal(4, requeued)
    end)
end)

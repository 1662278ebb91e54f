-- acoro.discoro with real processes on 127.0.0.1: an acoro-node daemon with
-- 2 compute servers (discovery off, the client names it in peers=), clients
-- as acoro node processes. Jobs come back in order, a server killed mid-job
-- loses none, a wrong secret gets nothing, the daemon keeps its pid file and
-- refuses to run without a secret.

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)) == 0)
  return d
end

-- Starts acoro-node with 2 servers on loopback; returns the child and its
-- location.
local function start_node(dest, extra)
  local c = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
    .. " --dest-path %s %s"):format(q(NODE_BIN), q(ns.secret), q(dest), extra or "")))
  return c, c:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$")
end

local function entries(dir)
  local p = io.popen("ls -A " .. q(dir))
  local t = {}
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  table.sort(t)
  return table.concat(t, " ")
end

local CLIENT = ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, name = "squares", code = [=[
function sq(x) return x * x end
function boom(x) error("boom " .. x) end
]=] })
say("schedule", comp:schedule())
say("one", comp:run_result("sq", 7))
say("fails", comp:run_result("boom", 3))
say("unknown", comp:run_result("nope", 1))
local list = {}
for i = 1, 100 do list[i] = i end
local r, e = comp:run_results("sq", list)
local ok = #r == 100 and next(e) == nil
for i = 1, 100 do ok = ok and r[i] == i * i end
say("results", #r, ok)
comp:close()
say("closed")
]]

describe("discoro", function()
  after_each(ns.stop_all)

  it("runs jobs on an acoro-node's 2 servers: values in input order, errors per job", function()
    local dest = tmpdir()
    local node, loc = start_node(dest)
    local cli = ns.start(CLIENT, nil, nil, q(loc))
    assert.equal("true", cli:expect("^schedule (%S+)$"))
    assert.equal("49", cli:expect("^one (%S+)$"))
    assert.matches('^nil squares:2: boom 3', cli:expect("^fails (.*)$"))
    assert.equal('nil no function "nope" in the computation', cli:expect("^unknown (.*)$"))
    assert.equal("100 true", cli:expect("^results (.*)$"))
    cli:expect("^closed$")
    -- the node closes the computation: its directory goes
    node:expect("computation c1 .*: closed$")
    assert.equal("acoro-node.pid", entries(dest))
    os.execute("rm -rf " .. q(dest))
  end)

  it("a server killed (kill -9) mid-job: its jobs are re-queued and every value comes back", function()
    local dest = tmpdir()
    local node, loc = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
-- Each job tells the gate where it runs and waits to be let go.
local main = acoro.self()
local gate = acoro.spawn(function()
  local killed, held = nil, {}
  local n, servers = 0, 0
  while true do
    local m = acoro.receive()
    if m.status == "ServerInitialized" then
      servers = servers + 1
      if servers == 2 then main:send("two servers") end
      if servers == 3 then main:send("three servers") end
    elseif m.status == "ServerClosed" then
      killed = killed or m.location
      for _, h in ipairs(held) do if h.location ~= killed then h:send("go") end end
    elseif m.status == "JobRequeued" then
      say("requeued", m.job)
    elseif m.start then
      n = n + 1
      if killed then
        if m.co.location ~= killed then m.co:send("go") end
      else
        held[#held + 1] = m.co
        if n == 10 then say("kill", m.pid) end
      end
    end
  end
end)
gate:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = gate, code = [=[
local ffi = require "ffi"
pcall(ffi.cdef, "int getpid(void);")
function hold(i, gate)
  gate:send({ start = i, pid = ffi.C.getpid(), co = acoro.self() })
  acoro.receive()
  return i * i
end
]=] })
assert(comp:schedule())
assert(acoro.receive(30) == "two servers")
local list = {}
for i = 1, 10 do list[i] = { i, gate } end
local r, e = comp:run_results("hold", list)
local got = {}
for i = 1, 10 do got[i] = tostring(r[i]) .. (e[i] and ("/" .. e[i]) or "") end
say("results", table.concat(got, " "))
-- the node started a server in place of the one killed
say("replaced", acoro.receive_match(function(m) return m == "three servers" end, 30))
comp:close()
]], nil, nil, q(loc))
    local pid = cli:expect("^kill (%d+)$")
    -- waits for the 10 starts: 5 jobs in flight on each of the 2 servers
    assert.equal(0, os.execute("kill -9 " .. pid))
    assert.equal("1 4 9 16 25 36 49 64 81 100", cli:expect("^results (.*)$"))
    assert.equal("three servers", cli:expect("^replaced (.*)$"))
    local requeued = 0
    for _, l in ipairs(cli.seen) do
      if l:match("^requeued %d+$") then requeued = requeued + 1 end
    end
    assert.equal(5, requeued)
    node:expect("server %d ended %(status %S+, signal 9%): restarting it")
    os.execute("rm -rf " .. q(dest))
  end)

  it("a client with another secret gets nothing: schedule fails, the node runs nothing", function()
    local dest = tmpdir()
    local node, loc = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = "function f() return 1 end" })
say("schedule", comp:schedule({ timeout = 5 }))
]], nil, ns.other_secret, q(loc))
    local line = cli:expect("^schedule (.*)$")
    assert.matches("^nil no node accepted the computation: 127%.0%.0%.1:%d+: refused", line)
    node:expect("proof mismatch") -- the node says why
    node:kill()
    local out = node:close()
    ns.forget(node)
    assert.not_matches("accepted", node:output() .. out)
    assert.equal("", entries(dest)) -- SIGTERM: no computation was made, the pid file went
    os.execute("rm -rf " .. q(dest))
  end)

  it("files= go to the computation's directory before the servers start, relative directories kept", function()
    local dest = tmpdir()
    local node, loc = start_node(dest)
    local data = support.write_temp("first line of the data\nsecond\n", ".txt")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, files = { arg[2], "examples/discoro_client1.lua" }, code = [=[
function head(name)
  local f = assert(io.open(name))
  local l = f:read("*l")
  f:close()
  return l
end
]=] })
assert(comp:schedule())
say("abs", comp:run_result("head", arg[2]:match("[^/]+$")))
say("rel", comp:run_result("head", "examples/discoro_client1.lua"))
say("up", comp:run_result("head", "../acoro-node.pid") ~= nil)
comp:close()
say("closed")
]], nil, nil, q(loc) .. " " .. q(data))
    assert.equal("first line of the data", cli:expect("^abs (.*)$"))
    assert.equal("-- discoro_client1.lua: asyncoro's discoro_client1 on acoro.discoro. The client",
      cli:expect("^rel (.*)$"))
    cli:expect("^up true$") -- the servers run in the computation's directory
    cli:expect("^closed$")
    node:expect("computation c1 .*: closed$")
    assert.equal("acoro-node.pid", entries(dest))
    os.execute("rm -rf " .. q(dest))
  end)

  it("the node refuses bytecode sent around the client's own checks", function()
    local dest = tmpdir()
    local _, loc = start_node(dest)
    local cli = ns.start_peer(loc, [[
local node = assert(acoro.locate("discoro.node", { location = arg[1], timeout = 10 }))
node:send({ "setup", acoro.self(), string.dump(function() return 1 end), "x" })
local m = acoro.receive(10)
say("answer", m[1], m[3])
]])
    assert.equal("refused bytecode is refused", cli:expect("^answer (.*)$"))
    assert.equal("acoro-node.pid", entries(dest))
    os.execute("rm -rf " .. q(dest))
  end)

  it("acoro-node refuses to start without a secret, and a second node on one dest path", function()
    local dest = tmpdir()
    local c = ns.track(net.spawn(("env -u ACORO_SECRET %s --listen 127.0.0.1:0 --no-discover --dest-path %s")
      :format(q(NODE_BIN), q(dest))))
    local out = c:close()
    assert.matches("refusing to start without a secret", out)
    ns.forget(c)
    local _, _ = start_node(dest)
    local second = ns.track(net.spawn(("%s --listen 127.0.0.1:0 --no-discover --secret-file %s --dest-path %s")
      :format(q(NODE_BIN), q(ns.secret), q(dest))))
    out = second:close()
    assert.matches("another acoro%-node %(pid %d+%) runs with dest path", out)
    ns.forget(second)
    os.execute("rm -rf " .. q(dest))
  end)

  it("--serve 1: the node exits once its one computation is closed, leaving no server and no file", function()
    local dest = tmpdir()
    local node, loc = start_node(dest, "--serve 1")
    local cli = ns.start(CLIENT, nil, nil, q(loc))
    assert.equal("100 true", cli:expect("^results (.*)$"))
    cli:expect("^closed$")
    local out = node:close()
    ns.forget(node)
    assert.matches("closed", out)
    assert.equal("", entries(dest))
    os.execute("rm -rf " .. q(dest))
  end)
end)

-- What a job's server's pid says once the node is gone: true while the
-- process runs (a zombie counts as gone).
local function running(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local st = f:read("*a")
  f:close()
  return st:match("^%d+ %b() (%a)") ~= "Z"
end

local PID_CODE = [=[
local ffi = require "ffi"
pcall(ffi.cdef, "int getpid(void);")
function pid() return ffi.C.getpid() end
function sq(x) return x * x end
function spin() while true do end end
function later(x) acoro.receive() return x end
]=]

describe("discoro failures", function()
  after_each(ns.stop_all)

  it("run_async gives the job's handle on its server; its Exit carries the value", function()
    local dest = tmpdir()
    local _, loc = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = ]] .. ("%q"):format(PID_CODE) .. [[ })
assert(comp:schedule())
local h = assert(comp:run_async("later", 42))
say("remote", acoro.is_remote(h), h.location ~= acoro.node().location)
h:monitor()
h:send("go")
local m = acoro.receive(30)
say("exit", m.reason, m.value)
comp:close()
]], nil, nil, q(loc))
    assert.equal("true true", cli:expect("^remote (.*)$"))
    assert.equal("normal 42", cli:expect("^exit (.*)$"))
    os.execute("rm -rf " .. q(dest))
  end)

  it("a job past its timeout that never yields fails with timeout; its server is replaced; others go on", function()
    local dest = tmpdir()
    local node, loc = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local status = acoro.spawn(function()
  local servers = 0
  while true do
    if acoro.receive().status == "ServerInitialized" then
      servers = servers + 1
      if servers == 3 then main:send("three servers") end
    end
  end
end)
status:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, window = 1, status = status,
  code = ]] .. ("%q"):format(PID_CODE) .. [[ })
assert(comp:schedule())
say("spin", comp:submit({ timeout = 2 }, "spin"))
local list = {}
for i = 1, 20 do list[i] = i end
local r, e = comp:run_results("sq", list)
say("results", #r, r[20], next(e))
say("replaced", acoro.receive(30))
comp:close()
]], nil, nil, q(loc))
    assert.equal("nil timeout", cli:expect("^spin (.*)$"))
    assert.equal("20 400 nil", cli:expect("^results (.*)$"))
    assert.equal("three servers", cli:expect("^replaced (.*)$"))
    node:expect("server %d ended %(status %S+, signal 9%): restarting it")
    os.execute("rm -rf " .. q(dest))
  end)

  it("a client killed (kill -9): the node closes its computation, servers and directory gone", function()
    local dest = tmpdir()
    local node, loc = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = ]] .. ("%q"):format(PID_CODE) .. [[ })
assert(comp:schedule())
say("server", comp:run_result("pid"))
acoro.sleep(60)
]], nil, nil, q(loc))
    local cpid = cli:expect("^pid (%d+)$")
    local spid = cli:expect("^server (%d+)$")
    assert.equal(0, os.execute("kill -9 " .. cpid))
    node:expect("computation c1 .*: closing %(its client is gone: unreachable%)$")
    node:expect("computation c1 .*: closed$")
    assert.is_false(running(spid))
    assert.equal("acoro-node.pid", entries(dest))
    os.execute("rm -rf " .. q(dest))
  end)

  for _, sig in ipairs({ { "INT", "130" }, { "TERM", "143" } }) do
    it("SIG" .. sig[1] .. ": the node closes its computations (servers killed, directories and pid file removed),"
      .. " exits " .. sig[2], function()
      local dest = tmpdir()
      local node = ns.track(net.spawn(("sh -c %s"):format(q(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover"
        .. " --secret-file %s --dest-path %s; echo status $?"):format(q(NODE_BIN), q(ns.secret), q(dest))))))
      local loc, npid = ns.expect_all(node, { "^acoro%-node listening (127%.0%.0%.1:%d+)$", "ready %(pid (%d+)%)" })
      local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = ]] .. ("%q"):format(PID_CODE) .. [[ })
assert(comp:schedule())
say("server", comp:run_result("pid"))
acoro.sleep(60)
]], nil, nil, q(loc))
      local spid = cli:expect("^server (%d+)$")
      assert.equal(0, os.execute("kill -" .. sig[1] .. " " .. npid))
      node:expect("computation c1 .*: closing %(the node quits%)$")
      assert.equal(sig[2], node:expect("^status (%d+)$"))
      assert.is_false(running(spid))
      assert.equal("", entries(dest))
      os.execute("rm -rf " .. q(dest))
    end)
  end
end)

describe("discoro: a node lost", function()
  after_each(ns.stop_all)

  -- Starts acoro-node with 2 servers; returns the child, its location and pid.
  local function start_node_pid(dest)
    local c = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
      .. " --dest-path %s"):format(q(NODE_BIN), q(ns.secret), q(dest))))
    local loc, pid = ns.expect_all(c, { "^acoro%-node listening (127%.0%.0%.1:%d+)$", "ready %(pid (%d+)%)" })
    return c, loc, pid
  end

  -- The client: 20 jobs held by a gate until `servers` are up and every job
  -- started; then it prints the pid of the node to kill and, once a loss is
  -- seen, lets go of every job that runs on another node.
  local function client(locs, servers)
    return ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local target = tonumber(arg[#arg])
local gate = acoro.spawn(function()
  local lost, held, n, up = false, {}, 0, 0
  while true do
    local m = acoro.receive()
    if m.status == "ServerInitialized" then
      up = up + 1
      if up == ]] .. servers .. [[ then main:send("up") end
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
        if n == 20 then say("kill", target) end
      end
    end
  end
end)
gate:set_daemon()
local peers = {}
for i = 1, #arg - 1 do peers[i] = arg[i] end
local comp = discoro.Computation({ peers = peers, status = gate, code = [=[
local ffi = require "ffi"
pcall(ffi.cdef, "int getppid(void);")
function hold(i, gate)
  gate:send({ start = i, node = ffi.C.getppid(), co = acoro.self() })
  acoro.receive()
  return i * i
end
]=] })
assert(comp:schedule())
assert(acoro.receive(30) == "up")
local list = {}
for i = 1, 20 do list[i] = { i, gate } end
local r, e = comp:run_results("hold", list)
local got = {}
for i = 1, 20 do got[i] = e[i] or tostring(r[i]) end
say("results", table.concat(got, " "))
comp:close()
]], nil, nil, table.concat(locs, " "))
  end

  it("a node killed (kill -9) mid-run: its jobs run on the other node and every value comes back", function()
    local da, db = tmpdir(), tmpdir()
    local _, la, pa = start_node_pid(da)
    local _, lb = start_node_pid(db)
    local cli = client({ q(la), q(lb), pa }, 4)
    assert.equal(pa, cli:expect("^kill (%d+)$"))
    assert.equal(0, os.execute("kill -9 " .. pa))
    local want = {}
    for i = 1, 20 do want[i] = tostring(i * i) end
    assert.equal(table.concat(want, " "), cli:expect("^results (.*)$"))
    os.execute("rm -rf " .. q(da) .. " " .. q(db))
  end)

  it("the only node killed: every job not done fails with unreachable, nothing hangs", function()
    local da = tmpdir()
    local _, la, pa = start_node_pid(da)
    local cli = client({ q(la), pa }, 2)
    assert.equal(pa, cli:expect("^kill (%d+)$"))
    assert.equal(0, os.execute("kill -9 " .. pa))
    local want = {}
    for i = 1, 20 do want[i] = "unreachable" end
    assert.equal(table.concat(want, " "), cli:expect("^results (.*)$"))
    os.execute("rm -rf " .. q(da))
  end)
end)

describe("acoro-node's commands on stdin", function()
  after_each(ns.stop_all)

  it("status lists the computations, quit closes them and ends the node", function()
    local dest = tmpdir()
    local fifo = net.fifo()
    local node = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
      .. " --dest-path %s"):format(q(NODE_BIN), q(ns.secret), q(dest)), fifo))
    local input = assert(io.open(fifo, "w"))
    local loc = node:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, name = "mine", code = "function f() return 1 end" })
assert(comp:schedule())
say("one", comp:run_result("f"))
acoro.sleep(60)
]], nil, nil, q(loc))
    assert.equal("1", cli:expect("^one (%S+)$"))
    input:write("status\n")
    input:flush()
    assert.matches('^computation c1 "mine" from 127%.0%.0%.1:%d+: 2 servers$', node:expect("^(computation c1 .*)$"))
    assert.equal("1 computations, 0 served", node:expect("^127%.0%.0%.1:%d+: (.*)$"))
    input:write("quit\n")
    input:close()
    node:expect("computation c1 .*: closing %(the node quits%)$")
    node:close()
    ns.forget(node)
    assert.equal("", entries(dest))
    os.remove(fifo)
    os.execute("rm -rf " .. q(dest))
  end)
end)

describe("discoro with discovery", function()
  after_each(ns.stop_all)

  it("a client with no peers= finds the acoro-node by UDP pings alone and runs its jobs", function()
    -- a discovery port of our own (not 51350/51351), so that other nodes on this host stay out
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "7", 16) % 1000003)
    local udp = 42000 + math.random(0, 9999)
    local dest = tmpdir()
    local node = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --udp-port %d --secret-file %s"
      .. " --dest-path %s --daemon"):format(q(NODE_BIN), udp, q(ns.secret), q(dest))))
    node:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$")
    local cli = ns.track(net.spawn_acoro(q(support.write_temp(ns.SAY .. [[
local discoro = require "acoro.discoro"
local secret = io.open(arg[2]):read("*a"):gsub("\n$", "")
local comp = discoro.Computation({ node = { host = "127.0.0.1", udp_port = tonumber(arg[1]), secret = secret },
  code = "function sq(x) return x * x end" })
say("schedule", comp:schedule({ timeout = 30 }))
local r, e = comp:run_results("sq", { 1, 2, 3, 4, 5 })
say("results", table.concat(r, " "), next(e))
comp:close()
]])) .. (" %d %s"):format(udp, q(ns.secret))))
    assert.equal("true", cli:expect("^schedule (%S+)$"))
    assert.equal("1 4 9 16 25 nil", cli:expect("^results (.*)$"))
    os.execute("rm -rf " .. q(dest))
  end)
end)

describe("discoro server_setup", function()
  after_each(ns.stop_all)

  local function run(setup_code)
    local dest = tmpdir()
    local node, loc = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local status = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if m.status == "ServerClosed" and m.error then say("dropped", m.error) end
  end
end)
status:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = status, server_setup = "setup",
  setup_args = { 40, 2 }, code = ]] .. ("%q"):format(setup_code .. "\nfunction get() return READY end\n") .. [[ })
assert(comp:schedule())
say("get", comp:run_result("get"))
comp:close()
]], nil, nil, q(loc))
    return node, cli, dest
  end

  it("runs once on each server before any job, with its arguments", function()
    local _, cli, dest = run("function setup(a, b) READY = a + b return true end")
    assert.equal("42", cli:expect("^get (.*)$"))
    os.execute("rm -rf " .. q(dest))
  end)

  it("a setup that fails drops its servers, says why, and the job fails instead of waiting", function()
    local node, cli, dest = run("function setup() error('no GPU here') end")
    assert.matches("^server_setup failed: [^\n]*no GPU here$", cli:expect("^dropped (.*)$"))
    assert.equal("nil unreachable", cli:expect("^get (.*)$"))
    node:expect("server %d dropped: server_setup failed")
    os.execute("rm -rf " .. q(dest))
  end)
end)

describe("acoro-node --peer", function()
  after_each(ns.stop_all)

  it("a node given the client's location dials it; the client, with no peers= and no discovery, gets it", function()
    local cli, cloc = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ code = "function sq(x) return x * x end" })
say("schedule", comp:schedule({ timeout = 30 }))
say("one", comp:run_result("sq", 12))
comp:close()
]])
    local dest = tmpdir()
    start_node(dest, "--peer " .. q(cloc))
    assert.equal("true", cli:expect("^schedule (%S+)$"))
    assert.equal("144", cli:expect("^one (%S+)$"))
    os.execute("rm -rf " .. q(dest))
  end)
end)

-- acoro-scheduler with real processes on 127.0.0.1: one acoro-node (2
-- servers per computation), one shared scheduler that peers with it, clients
-- as acoro node processes giving comp:schedule{scheduler = ...}. Two
-- computations at once, the second not starved by the first's long queue
-- (checked by the order of the jobs' starts); a client killed mid-run closes
-- its computation on the scheduler and the node while the other goes on; a
-- client with another secret gets nothing.

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")
local SCHED_BIN = support.bin:gsub("acoro$", "acoro-scheduler")

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)) == 0)
  return d
end

-- An acoro-node with 2 servers per computation, and a scheduler that peers
-- with it; returns both children, the scheduler's location and the node's.
local function start_pair(dest)
  local node = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --daemon --secret-file %s"
    .. " --dest-path %s"):format(q(NODE_BIN), q(ns.secret), q(dest))))
  local nloc = node:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$")
  local sched = ns.track(net.spawn(("%s --listen 127.0.0.1:0 --no-discover --daemon --secret-file %s --peer %s")
    :format(q(SCHED_BIN), q(ns.secret), q(nloc))))
  return node, sched, sched:expect("^acoro%-scheduler listening (127%.0%.0%.1:%d+)$"), nloc
end

-- Client A: N jobs that each report their start to A's coroutine "order"
-- and wait there; "order" holds them until it gets "open" (from client B),
-- then lets each go at once. B's jobs report to the same coroutine, so its
-- list is the order in which the jobs of both computations started.
local CLIENT_A = ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local n = tonumber(arg[2])
local order = acoro.spawn(function()
  local seen, held, open = {}, {}, false
  while true do
    local m = acoro.receive()
    if m == "open" then
      open = true
      for _, co in ipairs(held) do co:send("go") end
      held = {}
    elseif m == "report" then
      local lastb, abefore = 0, 0
      for i, who in ipairs(seen) do if who == "B" then lastb = i end end
      for i = 1, lastb do if seen[i] == "A" then abefore = abefore + 1 end end
      say("order", #seen, lastb, abefore)
    elseif type(m) == "table" then
      seen[#seen + 1] = m[1]
      if m[1] == "A" then
        if open then m[2]:send("go") else
          held[#held + 1] = m[2]
          if #held == 32 then say("held", #held) end
        end
      end
    end
  end
end)
order:set_daemon()
assert(order:register("order"))
local comp = discoro.Computation({ name = "first", code = [=[
function held(i, order)
  assert(acoro.peer(order.location, 10))
  order:send({ "A", acoro.self() })
  acoro.receive(60)
  return i * i
end
]=] })
say("schedule", comp:schedule({ scheduler = arg[1] }))
local list = {}
for i = 1, n do list[i] = { i, order } end
local r, e = comp:run_results("held", list)
local ok = #r == n and next(e) == nil
for i = 1, n do ok = ok and r[i] == i * i end
say("results", #r, ok, next(e) and e[next(e)])
order:send("report")
acoro.sleep(60)
]]

-- Client B: 20 jobs, queued on the scheduler behind A's; once its 2 servers
-- are up and the jobs are there (comp:servers() is a round trip after them:
-- the scheduler takes a client's messages in order), it lets A's jobs go.
local CLIENT_B = ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
assert(acoro.peer(arg[2], 10))
local order = acoro.locate("order", { location = arg[2], timeout = 10 })
local main = acoro.self()
local watch = acoro.spawn(function()
  local up = 0
  while true do
    local m = acoro.receive()
    if m.status == "ServerInitialized" then
      up = up + 1
      if up == 2 then main:send("servers up") end
    end
  end
end)
watch:set_daemon()
local comp = discoro.Computation({ name = "second", status = watch, code = [=[
function sq(j, order)
  if order then
    assert(acoro.peer(order.location, 10))
    order:send({ "B" })
  end
  return j * j
end
]=] })
say("schedule", comp:schedule({ scheduler = arg[1] }))
local list = {}
for j = 1, 20 do list[j] = { j, arg[3] == "gate" and order or nil } end
local done = false
acoro.spawn(function()
  local r, e = comp:run_results("sq", list)
  local ok = #r == 20 and next(e) == nil
  for j = 1, 20 do ok = ok and r[j] == j * j end
  say("results", #r, ok, next(e) and e[next(e)])
  done = true
end)
local deadline = acoro.now() + 30
while comp.next_id < 20 and acoro.now() < deadline do acoro.suspend(0.01) end
-- B's own servers are up (they take B's jobs as places free)
local up = acoro.receive_match(function(m) return m == "servers up" end, 30) ~= nil
say("queued", comp.next_id, up, #comp:servers())
if arg[3] == "gate" then order:send("open") end
while not done and acoro.now() < deadline do acoro.suspend(0.05) end
say("nodes", #comp:nodes())
comp:close()
say("closed")
]]

describe("acoro-scheduler", function()
  after_each(ns.stop_all)

  it("runs two clients' computations at once: the second's jobs start before the first's queue drains", function()
    local dest = tmpdir()
    local node, sched, sloc = start_pair(dest)
    local a, aloc = ns.start(CLIENT_A, nil, nil, q(sloc) .. " 2000")
    assert.equal("true", a:expect("^schedule (%S+)$"))
    -- A's jobs fill the node: 2 servers x 16 in flight, the rest queued
    assert.equal("32", a:expect("^held (%d+)$"))
    local b = ns.start(CLIENT_B, nil, nil, q(sloc) .. " " .. q(aloc) .. " gate")
    assert.equal("true", b:expect("^schedule (%S+)$"))
    assert.equal("20", b:expect("^queued (%d+) true 2$"))
    assert.equal("20 true nil", b:expect("^results (.*)$"))
    assert.equal("1", b:expect("^nodes (%d+)$"))
    b:expect("^closed$")
    assert.equal("2000 true nil", a:expect("^results (.*)$"))
    local seen, lastb, abefore = a:expect("^order (.*)$"):match("^(%d+) (%d+) (%d+)$")
    assert.equal("2020", seen)
    -- first come, first served would start all 2,000 of A's before B's
    -- first; in turn, B's 20 start among A's first few dozen
    assert.is_true(tonumber(abefore) < 1000, "A's jobs started before B's last: " .. abefore)
    assert.is_true(tonumber(lastb) > 20)
    -- the second computation was closed by its client on the scheduler
    sched:expect('computation 2 closed %(closed by its client%)$')
    node:expect("computation c2 .*: closed$")
    os.execute("rm -rf " .. q(dest))
  end)

  it("the client API through it: values, files, handles, monitors, run_at, timeouts, status, close", function()
    local dest = tmpdir()
    local _, _, sloc, nloc = start_pair(dest)
    local data = support.write_temp("first line of the data\nsecond\n", ".txt")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local kinds, exits = {}, 0
local main = acoro.self()
local st = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then exits = exits + 1 elseif m.status then kinds[m.status] = (kinds[m.status] or 0) + 1 end
    if m.status == "ServerInitialized" and kinds.ServerInitialized == 2 then main:send("servers up") end
    if m == "report" then
      local k = {}
      for n, c in pairs(kinds) do if n ~= "NodeAvailInfo" then k[#k + 1] = n .. "=" .. c end end
      table.sort(k)
      say("kinds", table.concat(k, " "), "exits", exits)
    end
  end
end)
st:set_daemon()
local comp = discoro.Computation({ name = "api", status = st, files = { arg[3] }, code = [=[
function head(name)
  local f = assert(io.open(name))
  local l = f:read("*l")
  f:close()
  return l
end
function two(x) return x, x + 1 end
function sq(x) return x * x end
function boom(x) error("boom " .. x) end
function slow(x) acoro.suspend(30) return x end
function where() return acoro.node().location end
]=] })
say("schedule", comp:schedule({ scheduler = arg[1] }))
say("two", comp:run_result("two", 3))
say("file", comp:run_result("head", (arg[3]:gsub("^.*/", ""))))
say("fails", comp:run_result("boom", 3))
say("unknown", comp:run_result("nope", 1))
local me = acoro.self()
local h = comp:submit({ async = true, monitor = me }, "sq", 6)
local ex = acoro.receive_match(acoro.is_exit, 10)
say("monitor", ex.reason, ex.value, acoro.is_remote(h))
local h2 = comp:run_async("two", 2)
say("join", h2:join(10))
local node = comp:nodes()[1]
say("nodes", #comp:nodes(), node.location == arg[2], node.cpus)
acoro.receive_match(function(m) return m == "servers up" end, 30)
local servers = comp:servers()
say("servers", #servers)
say("at server", comp:run_result_at(servers[2], "where") == servers[2])
say("at node", comp:run_result_at(arg[2], "sq", 5))
comp.timeout = 0.5
say("at nowhere", comp:run_result_at("nowhere", "sq", 1))
say("timeout", comp:run_result("slow", 1))
comp.timeout = nil
local r = comp:run_results("sq", { 1, 2, 3 }, { progress = false })
say("results", table.concat(r, " "))
comp:run_async("two", 7)
say("close", comp:close({ await_async = true, timeout = 10 }))
st:send("report")
]], nil, nil, q(sloc) .. " " .. q(nloc) .. " " .. q(data))
    assert.equal("true", cli:expect("^schedule (%S+)$"))
    assert.equal("3 4", cli:expect("^two (.*)$"))
    assert.equal("first line of the data", cli:expect("^file (.*)$"))
    assert.matches("^nil api:9: boom 3", cli:expect("^fails (.*)$"))
    assert.equal('nil no function "nope" in the computation', cli:expect("^unknown (.*)$"))
    assert.equal("normal 36 true", cli:expect("^monitor (.*)$"))
    assert.equal("true 2 3", cli:expect("^join (.*)$"))
    assert.equal("1 true 2", cli:expect("^nodes (.*)$"))
    assert.equal("2", cli:expect("^servers (.*)$"))
    assert.equal("true", cli:expect("^at server (.*)$"))
    assert.equal("25", cli:expect("^at node (.*)$"))
    assert.matches("^nil no server matches the job sq%(%d+%) in 0.5 s: no server at nowhere$",
      cli:expect("^at nowhere (.*)$"))
    assert.equal("nil timeout", cli:expect("^timeout (.*)$"))
    assert.equal("1 4 9", cli:expect("^results (.*)$"))
    assert.equal("true", cli:expect("^close (.*)$"))
    -- an Exit per job (14), a CoroCreated per async job; the server killed at
    -- the timeout makes the rest vary (jobs re-queued, a server restarted)
    local kinds = cli:expect("^kinds (.*)$")
    assert.matches("exits 14$", kinds)
    for _, k in ipairs({ "ComputationClosed=1", "CoroCreated=3", "NodeDiscovered=1", "NodeInitialized=1",
      "ServerInitialized=%d", "JobCreated=%d", "ServerClosed=1" }) do
      assert.matches(k, kinds)
    end
    os.execute("rm -rf " .. q(dest))
  end)

  it("a client killed mid-run: its computation closes on the scheduler and the node, the other goes on", function()
    local dest = tmpdir()
    local node, sched, sloc = start_pair(dest)
    local a, aloc = ns.start(CLIENT_A, nil, nil, q(sloc) .. " 2000")
    local apid = a:expect("^pid (%d+)$")
    assert.equal("true", a:expect("^schedule (%S+)$"))
    assert.equal("32", a:expect("^held (%d+)$"))
    -- B's jobs wait behind A's 32 held ones, which only A would let go
    local b = ns.start(CLIENT_B, nil, nil, q(sloc) .. " " .. q(aloc))
    assert.equal("true", b:expect("^schedule (%S+)$"))
    assert.equal("20", b:expect("^queued (%d+) true 2$"))
    assert.equal(0, os.execute("kill -9 " .. apid))
    sched:expect("computation 1 closed %(its client is gone: .*%)$")
    node:expect("computation c1 .*: closed$") -- its servers killed, waited for; its directory gone
    assert.equal("20 true nil", b:expect("^results (.*)$"))
    b:expect("^closed$")
    node:expect("computation c2 .*: closed$")
    os.execute("rm -rf " .. q(dest))
  end)

  it("--http: one web monitor of every computation, behind its token; terminate reaches the right one", function()
    local cjson = require "cjson"
    local dest = tmpdir()
    local node = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --daemon --secret-file %s"
      .. " --dest-path %s"):format(q(NODE_BIN), q(ns.secret), q(dest))))
    local nloc = node:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$")
    local sched = ns.track(net.spawn(("env ACORO_MONITOR_TOKEN=sched-token %s --listen 127.0.0.1:0 --no-discover"
      .. " --daemon --secret-file %s --peer %s --http 0"):format(q(SCHED_BIN), q(ns.secret), q(nloc))))
    local url = sched:expect("^acoro%-scheduler monitor (http://127%.0%.0%.1:%d+/)$")
    local sloc = sched:expect("^acoro%-scheduler listening (127%.0%.0%.1:%d+)$")
    -- curl without this process's sanitizer preloads (tools/test --asan)
    local function curl(args)
      local p = assert(io.popen("env -i PATH=\"$PATH\" curl -sS --max-time 30 " .. args))
      local out = p:read("*a")
      p:close()
      return out
    end
    local a = ns.start(CLIENT_A, nil, nil, q(sloc) .. " 100")
    assert.equal("true", a:expect("^schedule (%S+)$"))
    assert.equal("32", a:expect("^held (%d+)$"))
    assert.equal("401", curl("-o /dev/null -w '%{http_code}' " .. q(url .. "api/status")))
    local bearer = "-H 'Authorization: Bearer sched-token' "
    local st = cjson.decode(curl(bearer .. q(url .. "api/status")))
    assert.equal(32, st.jobs.running)
    assert.equal(1, #st.computations)
    assert.equal("first", st.computations[1].name)
    assert.equal(nloc, st.nodes[1].location)
    assert.equal("up", st.nodes[1].status)
    local id = st.servers[1].jobs[1].id
    assert.is_true(id >= 2 ^ 32, "the page's job id carries its computation")
    local ok = curl(bearer .. "-H " .. q("X-CSRF-Token: " .. st.csrf) .. " -H 'Content-Type: application/json'"
      .. " --data " .. q(cjson.encode({ job = id })) .. " " .. q(url .. "api/terminate"))
    assert.same({ ok = true }, cjson.decode(ok))
    -- the job is gone from the running ones, counted failed
    st = cjson.decode(curl(bearer .. q(url .. "api/status")))
    assert.equal(1, st.jobs.failed)
    os.execute("rm -rf " .. q(dest))
  end)

  it("disable_nodes, enable_node with node_setup's arguments, a NodeAllocate: as embedded", function()
    local dest = tmpdir()
    local _, _, sloc, nloc = start_pair(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local st = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if m.status == "NodeDiscovered" or m.status == "ServerInitialized" then main:send(m) end
  end
end)
st:set_daemon()
local comp = discoro.Computation({ status = st, disable_nodes = true, node_setup = "check", node_args = { 1 },
  allocations = { discoro.NodeAllocate({ cpus = 1 }) }, code = [=[
function check(x) return x == 5, "wants 5" end
function sq(x) return x * x end
]=] })
say("schedule", comp:schedule({ scheduler = arg[1] }))
local m = acoro.receive_match(function(x) return type(x) == "table" and x.status == "NodeDiscovered" end, 10)
say("discovered", m.location == arg[2])
say("enabled", comp:enable_node(m.location, 5))
say("sq", comp:run_result("sq", 4))
acoro.receive_match(function(x) return type(x) == "table" and x.status == "ServerInitialized" end, 10)
say("servers", #comp:servers())
comp:close()
]], nil, nil, q(sloc) .. " " .. q(nloc))
    assert.equal("true", cli:expect("^schedule (%S+)$"))
    assert.equal("true", cli:expect("^discovered (%S+)$"))
    assert.equal("1", cli:expect("^enabled (%S+)$"))
    assert.equal("16", cli:expect("^sq (%S+)$"))
    assert.equal("1", cli:expect("^servers (%S+)$")) -- the NodeAllocate's 1 CPU of 2
    os.execute("rm -rf " .. q(dest))
  end)

  it("the scheduler killed (kill -9): its clients' jobs fail unreachable, its nodes close its computations",
    function()
      local dest = tmpdir()
      local node, sched, sloc = start_pair(dest)
      local spid = sched:output():match("acoro%-scheduler: %S+ ready %(pid (%d+)%)")
      local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ code = "function held() acoro.receive() end" })
say("schedule", comp:schedule({ scheduler = arg[1] }))
local h = comp:run_async("held")
say("started", acoro.is_remote(h))
say("held", comp:run_result("held"))
say("after", comp:run_result("held"))
]], nil, nil, q(sloc))
      assert.equal("true", cli:expect("^schedule (%S+)$"))
      assert.equal("true", cli:expect("^started (%S+)$"))
      assert.equal(0, os.execute("kill -9 " .. spid))
      assert.equal("nil unreachable", cli:expect("^held (.*)$"))
      assert.equal("nil unreachable", cli:expect("^after (.*)$"))
      node:expect("computation c1 .*: closed$")
      os.execute("rm -rf " .. q(dest))
    end)

  it("a client with another secret gets nothing: no computation on the scheduler or the node", function()
    local dest = tmpdir()
    local node, sched, sloc = start_pair(dest)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ code = "function f() return 1 end" })
say("schedule", comp:schedule({ scheduler = arg[1], timeout = 5 }))
]], nil, ns.other_secret, q(sloc))
    assert.matches("^nil no scheduler took the computation: 127%.0%.0%.1:%d+: refused", cli:expect("^schedule (.*)$"))
    sched:expect("proof mismatch") -- the scheduler says why
    sched:kill()
    local out = sched:close()
    ns.forget(sched)
    assert.not_matches("computation %d", sched:output() .. (out or ""))
    node:kill()
    out = node:close()
    ns.forget(node)
    assert.not_matches("accepted", node:output() .. (out or ""))
    os.execute("rm -rf " .. q(dest))
  end)

  it("refuses to start without a secret; --help", function()
    local c = net.spawn(q(SCHED_BIN) .. " --listen 127.0.0.1:0 --no-discover")
    assert.matches("refusing to start without a secret", c:rest())
    c:close()
    local h = net.spawn(q(SCHED_BIN) .. " --help")
    assert.matches("comp:schedule{scheduler", h:rest())
    h:close()
  end)
end)

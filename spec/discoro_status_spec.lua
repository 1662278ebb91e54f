-- acoro.discoro's status messages with real processes on 127.0.0.1: an
-- acoro-node with 2 servers (discovery off, peers=), a client whose status
-- coroutine prints what it gets: each kind, the node's availability with its
-- pulses, an acoro.Exit per job, to a subscribed monitor too; a node that stops pulsing is dropped.

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

local function start_node(dest)
  local c = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
    .. " --dest-path %s"):format(q(NODE_BIN), q(ns.secret), q(dest))))
  local loc, pid = ns.expect_all(c, { "^acoro%-node listening (127%.0%.0%.1:%d+)$", "ready %(pid (%d+)%)" })
  return c, loc, pid
end

-- The status coroutine: says each kind the first time, the availability of
-- the second pulse, each job's Exit; tells main when both servers are up,
-- when a second pulse came and when the computation closed.
local STATUS = [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local status = acoro.spawn(function()
  local seen, up, pulses = {}, 0, 0
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      say("exit", m.job, m.fn, m.reason, tostring(m.value), tostring(m.error), m.coro ~= nil)
    else
      if not seen[m.status] then
        seen[m.status] = true
        say("kind", m.status)
      end
      if m.status == "ServerInitialized" then
        up = up + 1
        if up == 2 then main:send("up") end
      elseif m.status == "NodeAvailInfo" then
        pulses = pulses + 1
        if pulses == 2 then
          say("avail", type(m.cpu), m.cpu >= 0 and m.cpu <= 100, m.memory > 0, m.disk > 0, type(m.swap))
          main:send("pulsed")
        end
      elseif m.status == "NodeInitialized" then
        say("node", m.cpus, type(m.memory), type(m.disk))
      elseif m.status == "ServerDisconnected" or m.status == "NodeClosed" then
        say(m.status, m.reason)
        if m.status == "NodeClosed" then main:send("node closed") end
      elseif m.status == "ComputationClosed" then
        main:send("closed")
      end
    end
  end
end)
status:set_daemon()
local function await(what) return acoro.receive_match(function(m) return m == what end, 30) end
]]

describe("discoro status messages", function()
  after_each(ns.stop_all)

  it("kinds, availability with each pulse, an Exit per job, a lost server, the close", function()
    local dest = tmpdir()
    local _, loc = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. STATUS .. [[
local comp = discoro.Computation({ peers = { arg[1] }, status = status, pulse_interval = 0.2, retries = 0,
  code = [=[
function sq(x) return x * x end
function boom() error("boom") end
function die()
  local ffi = require "ffi"
  pcall(ffi.cdef, "int getpid(void); int kill(int pid, int sig);")
  ffi.C.kill(ffi.C.getpid(), 9)
end
]=] })
-- a monitor subscribed besides the status coroutine: the same stream
local mon = acoro.spawn(function()
  local exits = 0
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then exits = exits + 1 end
    if m.status == "ComputationClosed" then
      say("monitor exits", exits)
      main:send("monitor closed")
    end
  end
end)
mon:set_daemon()
comp:subscribe(mon)
assert(comp:schedule())
await("up")
await("pulsed")
say("sq", comp:run_result("sq", 3))
say("boom", comp:run_result("boom"))
local h = comp:run_async("sq", 4)
say("async", h ~= nil)
say("die", comp:run_result("die"))
comp:close()
await("closed")
await("monitor closed")
say("done")
]], nil, nil, q(loc))
    cli:expect("^done$")
    local function saw(p)
      for _, l in ipairs(cli.seen) do
        if l:match(p) then return true end
      end
      return false
    end
    local kinds, exits = {}, {}
    for _, l in ipairs(cli.seen) do
      local k = l:match("^kind (%S+)$")
      if k then kinds[#kinds + 1] = k end
      local e = l:match("^exit (.*)$")
      if e then exits[#exits + 1] = e end
    end
    table.sort(kinds)
    assert.equal(table.concat({ "ComputationClosed", "CoroCreated", "JobCreated", "NodeAvailInfo", "NodeDiscovered",
      "NodeInitialized", "ServerClosed", "ServerDisconnected", "ServerDiscovered", "ServerInitialized" }, " "),
      table.concat(kinds, " "))
    assert.truthy(saw("^node 2 number number$"))
    assert.truthy(saw("^avail number true true true number$"))
    assert.truthy(saw("^ServerDisconnected unreachable$"))
    assert.truthy(saw("^die nil unreachable$"))
    assert.truthy(saw("^monitor exits 4$"))
    -- jobs finish in order here (each waited for); the async one has its coroutine
    assert.same({ "1 sq normal 9 nil false", "2 boom error nil computation:2: boom false",
      "3 sq normal 16 nil true", "4 die error nil unreachable false" }, exits)
    os.execute("rm -rf " .. q(dest))
  end)

  it("a node that stops pulsing (SIGSTOP) past zombie_period is dropped with its servers", function()
    local dest = tmpdir()
    local node, loc, pid = start_node(dest)
    local cli = ns.start(ns.PRELUDE .. STATUS .. [[
local comp = discoro.Computation({ peers = { arg[1] }, status = status, pulse_interval = 0.2,
  zombie_period = 1, code = "function sq(x) return x * x end" })
assert(comp:schedule())
await("up")
say("stop me")
await("node closed")
say("after", comp:run_result("sq", 2))
comp:close()
say("done")
]], nil, nil, q(loc))
    cli:expect("^stop me$")
    assert.equal(0, os.execute("kill -STOP " .. pid))
    assert.equal("zombie: no pulse for 1 s", cli:expect("^NodeClosed (.*)$"))
    assert.equal("nil unreachable", cli:expect("^after (.*)$"))
    assert.equal(0, os.execute("kill -CONT " .. pid))
    -- awake again, the node finds the client's close and ends the computation
    node:expect("computation c1 .*: closed$")
    os.execute("rm -rf " .. q(dest))
  end)
end)

-- Distribution details (lua/acoro/node.lua): Exit and PeerStatus messages
-- travel between nodes with their types, and a monitor set up on the
-- target's node (co:monitor(remote watcher)) reports "unreachable" when that
-- node goes away. Real acoro processes on 127.0.0.1 (spec/node_support.lua).

local ns = require "node_support"

local start, start_peer, PRELUDE = ns.start, ns.start_peer, ns.PRELUDE

-- Registers "sink", which prints what it receives.
local SINK = PRELUDE .. [[
local sink = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      say("exit", acoro.is_remote(m.coro), m.coro.name, m.reason, m.value, m.error)
    elseif acoro.is_peer_status(m) then
      say("status", m.status, m.location, m.name)
    else
      say("other", tostring(m))
    end
  end
end)
sink:register("sink")
acoro.receive()
]]

describe("messages with acoro's types between nodes", function()
  after_each(ns.stop_all)

  it("an Exit and a PeerStatus forwarded to another node keep their types and fields", function()
    local srv, sloc = start(SINK, "--name srv")
    local cli = start_peer(sloc, [[
local sink = assert(acoro.locate("sink", { timeout = 10 }))
local job = acoro.spawn(function() return 7 end)
job:register("job")
local fwd = acoro.spawn(function()
  for _ = 1, 2 do sink:send(acoro.receive()) end
end)
job:monitor(fwd)
acoro.peer_status(fwd)
say("sent", fwd:join(10))
]], "--name cli")
    assert.equal("true", cli:expect("^sent (.*)$"))
    local exit, status = ns.expect_all(srv, { "^exit (.*)$", "^status (.*)$" })
    assert.equal("true job normal 7 nil", exit)
    assert.equal("online " .. sloc .. " srv", status)
  end)
end)

describe("co:monitor(remote watcher)", function()
  after_each(ns.stop_all)

  it("gives the watcher one Exit \"unreachable\" when the target's node is killed", function()
    local srv, sloc = start(SINK, "--name srv")
    local cli = start_peer(sloc, [[
local sink = assert(acoro.locate("sink", { timeout = 10 }))
local job = acoro.spawn(function() acoro.receive() end)
job:register("job")
say("monitor", job:monitor(sink))
sink:send("after monitor") -- one link keeps its order: srv has MONITORED once it prints this
acoro.receive()
]], "--name cli")
    local pid = cli:expect("^pid (%d+)$")
    assert.equal("true", cli:expect("^monitor (.*)$"))
    assert.equal("after monitor", srv:expect("^other (.*)$")) -- not killed before it arrived
    os.execute("kill -9 " .. pid)
    assert.equal("true job unreachable nil unreachable", srv:expect("^exit (.*)$"))
    -- exactly once: a later marker comes next, not a second Exit
    start_peer(sloc, [[
assert(acoro.locate("sink", { timeout = 10 })):send("marker")
acoro.sleep(0.2)
]])
    assert.equal("marker", srv:expect("^other (.*)$"))
  end)
end)

describe("a locate waiting on one node", function()
  after_each(ns.stop_all)

  it("returns nil, \"unreachable\" at once when that node goes down (coroutines, channels, RCIs)", function()
    local srv, sloc = start(SINK, "--name srv")
    local spid = srv:expect("^pid (%d+)$")
    local cli = start_peer(sloc, [[
local function try(what, fn)
  acoro.spawn(function()
    local t0 = acoro.now()
    local v, why = fn("nothere", { location = arg[1], timeout = 120 })
    say(what, v, why, acoro.now() - t0 < 60)
  end)
end
try("coro", acoro.locate)
try("channel", acoro.locate_channel)
try("rci", acoro.rci.locate)
acoro.yield() -- the three run up to their waits: each question has gone
say("asked")
]], "--name cli")
    cli:expect("^asked$")
    os.execute("kill -9 " .. spid)
    local a, b, c = ns.expect_all(cli, { "^coro (.*)$", "^channel (.*)$", "^rci (.*)$" })
    assert.equal("nil unreachable true", a)
    assert.equal("nil unreachable true", b)
    assert.equal("nil unreachable true", c)
  end)
end)

-- Remote channels (lua/acoro/rchannel.lua over lua/acoro/channel.lua): real
-- acoro processes on 127.0.0.1 (spec/node_support.lua), checked by what they
-- print. Every wait is for a line of output (or a bounded acoro timeout in
-- the child); every child is stopped after each test.

local ns = require "node_support"

local q, start, start_peer, PRELUDE = ns.q, ns.start, ns.start_peer, ns.PRELUDE

describe("remote channels", function()
  after_each(ns.stop_all)

  it("locate_channel finds a registered channel on a peer; subscribe, send, unsubscribe "
    .. "from another node; sends reach local and remote subscribers; the transform runs "
    .. "on the owner", function()
    local owner, oloc = start(PRELUDE .. [[
local ch = acoro.channel("news", function(_, m)
  if m:upper() == m then return nil end -- all-uppercase lines are dropped
  return m .. " via " .. acoro.node().location
end)
assert(ch:register())
local worker = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    say("owner got", m)
    if m:match("^three") then ch:send("bye") end -- a send on the owner's side
  end
end)
assert(ch:subscribe(worker))
acoro.receive()
]])
    local cli = start_peer(oloc, [[
local ch = assert(acoro.locate_channel("news", { timeout = 10 }))
say("located", tostring(ch), acoro.is_channel(ch), acoro.is_remote_channel(ch), ch.location == arg[1])
say("same", acoro.locate_channel("news", { timeout = 10 }) == ch)
local me = acoro.self()
local mw = acoro.spawn(function() while true do say("mirror got", acoro.receive()) end end)
mw:set_daemon(true) -- the client ends after its last line
say("sub", ch:subscribe(me, 10))
local function subscribe_mirror() -- a channel here, on the remote one, referenced by nothing else
  local mirror = acoro.channel("mirror")
  mirror:subscribe(mw)
  return ch:subscribe(mirror, 10)
end
say("sub mirror", subscribe_mirror())
for _ = 1, 3 do collectgarbage("collect") end
say("send", ch:send("one"))
say("client got", acoro.receive(30))
ch:send("LOUD")
say("unsub", ch:unsubscribe(me, 10))
say("unsub again", ch:unsubscribe(me))
ch:send("two") -- reaches the owner's worker only
assert(ch:subscribe(me))
ch:send("three")
say("client got", acoro.receive(30))
say("client got", acoro.receive(30))
]])
    assert.equal("channel:news@" .. oloc .. " true true true", cli:expect("^located (.*)$"))
    assert.equal("true", cli:expect("^same (.*)$"))
    assert.equal("true", cli:expect("^sub (.*)$"))
    assert.equal("true", cli:expect("^sub mirror (.*)$"))
    assert.equal("true", cli:expect("^send (.*)$"))
    assert.equal("one via " .. oloc, cli:expect("^client got (.*)$"))
    assert.equal("true", cli:expect("^unsub (.*)$"))
    assert.equal("nil not subscribed ENOENT", cli:expect("^unsub again (.*)$"))
    assert.equal("three via " .. oloc, cli:expect("^client got (.*)$"))
    assert.equal("bye via " .. oloc, cli:expect("^client got (.*)$"))
    for _, m in ipairs({ "one", "two", "three", "bye" }) do
      assert.equal(m .. " via " .. oloc, owner:expect("^owner got (.*)$"))
    end
    cli:rest() -- the client ends after "bye"
    local mirrored = {}
    for _, l in ipairs(cli.seen) do mirrored[#mirrored + 1] = l:match("^mirror got (.*)$") end
    assert.same({ "one via " .. oloc, "two via " .. oloc, "three via " .. oloc, "bye via " .. oloc }, mirrored)
  end)

  it("deliver waits for n subscribers and counts end points across nodes and a remote "
    .. "sub-channel; a remote deliverer is not counted", function()
    local owner, oloc = start(PRELUDE .. [[
local ch = acoro.channel("jobs")
assert(ch:register())
ch:subscribe(acoro.spawn(function() while true do say("owner-worker", acoro.receive()) end end))
say("delivered", ch:deliver("work", 30, 3))
acoro.receive()
]])
    -- a node whose channel "sub" (with two workers and its own transform) subscribes
    local c2 = start_peer(oloc, [[
local ch = assert(acoro.locate_channel("jobs", { timeout = 10 }))
local sub = acoro.channel("sub", function(_, m) return m .. "+sub" end)
for i = 1, 2 do
  sub:subscribe(acoro.spawn(function() while true do say("w" .. i, acoro.receive()) end end))
end
say("sub", ch:subscribe(sub, 10))
acoro.receive()
]])
    assert.equal("true", c2:expect("^sub (.*)$"))
    -- a node whose coroutine subscribes, then delivers itself
    local c1 = start_peer(oloc, [[
local ch = assert(acoro.locate_channel("jobs", { timeout = 10 }))
say("sub", ch:subscribe(acoro.self(), 10))
say("c1 got", acoro.receive(30))
say("c1 delivered", ch:deliver("again", 30))
]])
    assert.equal("work", c1:expect("^c1 got (.*)$"))
    assert.equal("3", c1:expect("^c1 delivered (.*)$"))
    local got = {}
    for _ = 1, 4 do got[#got + 1] = c2:expect("^(w%d .*)$") end
    table.sort(got)
    assert.same({ "w1 again+sub", "w1 work+sub", "w2 again+sub", "w2 work+sub" }, got)
    assert.same({ "4", "work", "again" }, { ns.expect_all(owner,
      { "^delivered (.*)$", "^owner%-worker (work)$", "^owner%-worker (again)$" }) })
  end)

  it("a deliver with a timeout ends in time when a remote sub-channel's subscriber never "
    .. "takes the message", function()
    -- the sub-channel's deliver on its node must get the timeout that is left: without
    -- it, the owner would wait for that node's answer for ever
    local owner, oloc = start(PRELUDE .. [[
local ch = acoro.channel("slow")
assert(ch:register())
local main = acoro.self()
ch:subscribe(acoro.spawn(function()
  while true do
    local m = acoro.receive()
    say("taker got", m)
    if m == "ready" then main:send("go") end
  end
end))
assert(acoro.receive(30) == "go") -- the other node's sub-channel is subscribed
local d = acoro.spawn(function() return ch:deliver("m", 1) end)
local ok, n = d:join(20)
say("delivered", ok and n or "not within 20 s")
acoro.receive()
]])
    local s = start_peer(oloc, [[
local ch = assert(acoro.locate_channel("slow", { timeout = 10 }))
local sub = acoro.channel("sub")
sub:subscribe(acoro.spawn(function() acoro.sleep(60) end)) -- never takes a message
say("sub", ch:subscribe(sub, 10))
ch:send("ready")
acoro.receive()
]])
    assert.equal("true", s:expect("^sub (.*)$"))
    assert.same({ "ready", "m", "1" }, { ns.expect_all(owner,
      { "^taker got (ready)$", "^taker got (m)$", "^delivered (.*)$" }) })
  end)

  it("a locate started before the owner's node is known is answered when it appears "
    .. "and registers the name", function()
    local cli, cloc = start(PRELUDE .. [[
local ch = assert(acoro.locate_channel("late", { timeout = 30 }))
say("sub", ch:subscribe(acoro.self(), 10))
say("got", acoro.receive(30))
]])
    local owner = start(PRELUDE .. [[
local w = acoro.spawn(function()
  local m = acoro.receive()
  say("peer", m.status)
end)
acoro.peer_status(w)
w:join(30)
local ch = acoro.channel("late")
assert(ch:register()) -- after the peer is up: the held LOCATE is answered now
say("count", ch:deliver("hello", 30, 1))
]], "--peer " .. q(cloc))
    assert.equal("online", owner:expect("^peer (.*)$"))
    assert.equal("true", cli:expect("^sub (.*)$"))
    assert.equal("1", owner:expect("^count (.*)$"))
    assert.equal("hello", cli:expect("^got (.*)$"))
  end)

  it("the subscribers of a node killed with SIGKILL leave the owner's channel", function()
    local owner, oloc = start(PRELUDE .. [[
local ch = acoro.channel("k")
assert(ch:register())
local w = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_peer_status(m) and m.status == "offline" then say("offline subs", ch:subscribers()) end
  end
end)
acoro.peer_status(w)
say("count", ch:deliver("hi", 30, 2))
acoro.receive()
]])
    local cli = start_peer(oloc, [[
local ch = assert(acoro.locate_channel("k", { timeout = 10 }))
local sub = acoro.channel("csub")
sub:subscribe(acoro.spawn(function() while true do acoro.receive() end end))
assert(ch:subscribe(acoro.self(), 10))
assert(ch:subscribe(sub, 10))
say("ready")
while true do acoro.receive() end
]])
    local pid = cli:expect("^pid (%d+)$")
    cli:expect("^ready$")
    assert.equal("2", owner:expect("^count (.*)$"))
    os.execute("kill -9 " .. pid)
    assert.equal("0", owner:expect("^offline subs (.*)$"))
  end)

  it("errors: closed channel, unknown channel, not found, unreachable; a remote "
    .. "subscriber that ends leaves the channel", function()
    local owner, oloc = start(PRELUDE .. [[
local ch = acoro.channel("e")
assert(ch:register())
local ctl = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if m[1] == "count" then
      m[2]:send(ch:subscribers())
    elseif m[1] == "close" then
      ch:close()
      m[2]:send("closed")
    elseif m[1] == "tmp" then -- a channel that leaves, then is collected here
      m[2]:send(acoro.channel("tmp"))
      for _ = 1, 3 do collectgarbage("collect") end
      m[2]:send("collected")
    elseif m[1] == "exit" then
      return
    end
  end
end)
ctl:register("ctl")
ctl:join()
]])
    local cli = start_peer(oloc, [[
local me = acoro.self()
local ch = assert(acoro.locate_channel("e", { timeout = 10 }))
local ctl = assert(acoro.locate("ctl", { timeout = 10 }))
say("nf", acoro.locate_channel("nope"))
say("nf at", acoro.locate_channel("e", { location = "127.0.0.1:1", timeout = 0.2 }))
-- a subscriber that ends is dropped by the owner
local short = acoro.spawn(function() acoro.receive() end)
assert(ch:subscribe(short, 10))
assert(ch:subscribe(me, 10))
ch:send("x") -- short takes it and ends; me gets it too
assert(acoro.receive(30) == "x")
local function count_until(want) -- the owner's subscriber count, polled (bounded)
  local n
  for _ = 1, 100 do
    ctl:send({ "count", me })
    n = acoro.receive_match(function(m) return type(m) == "number" end, 30)
    if n == want then break end
    acoro.sleep(0.05)
  end
  return n
end
say("after end", count_until(1)) -- the owner hears of short's end soon after
-- a channel here, subscribed there, then closed here: it leaves at the next send
local cs = acoro.channel("cs")
assert(ch:subscribe(cs, 10))
say("with cs", count_until(2))
cs:close()
ch:send("y")
say("after close", count_until(1))
assert(acoro.receive(30) == "y")
ctl:send({ "tmp", me })
local tmp = acoro.receive(30)
say("tmp", acoro.receive(30), acoro.is_remote_channel(tmp))
say("unknown", tmp:subscribe(me, 10))
ctl:send({ "close", me })
say("close", acoro.receive(30))
say("closed sub", ch:subscribe(me, 10))
say("closed deliver", ch:deliver("x", 10))
acoro.peer_status(me) -- "online" first, then "offline" once the owner's node ends
ctl:send({ "exit" })
local m
repeat m = acoro.receive(30) until m == nil or (acoro.is_peer_status(m) and m.status == "offline")
say("unreachable", ch:subscribe(me, 10))
say("unreachable send", ch:send("x"))
say("unreachable deliver", ch:deliver("x", 10))
say("raises", pcall(ch.close, ch))
say("raises", pcall(ch.send, ch, function() end))
]])
    assert.equal("nil not found ENOENT", cli:expect("^nf (.*)$"))
    assert.equal("nil not found ENOENT", cli:expect("^nf at (.*)$"))
    assert.equal("1", cli:expect("^after end (.*)$"))
    assert.equal("2", cli:expect("^with cs (.*)$"))
    assert.equal("1", cli:expect("^after close (.*)$"))
    assert.equal("collected true", cli:expect("^tmp (.*)$"))
    assert.equal("nil unknown channel ENOENT", cli:expect("^unknown (.*)$"))
    assert.equal("closed", cli:expect("^close (.*)$"))
    assert.equal("nil closed ECLOSED", cli:expect("^closed sub (.*)$"))
    assert.equal("nil closed ECLOSED", cli:expect("^closed deliver (.*)$"))
    assert.equal("nil unreachable ENOPEER", cli:expect("^unreachable (.*)$"))
    assert.equal("nil unreachable ENOPEER", cli:expect("^unreachable send (.*)$"))
    assert.equal("nil unreachable ENOPEER", cli:expect("^unreachable deliver (.*)$"))
    assert.matches("^false .*close: not supported on a remote channel", cli:expect("^raises (.*)$"))
    assert.matches("^false .*send: .*function", cli:expect("^raises (.*)$"))
    -- the owner's node ended when ctl returned, and nothing failed there
    local rest = owner:rest()
    assert.is_nil(rest:find("acoro:", 1, true), owner:output())
  end)

  it("a cycle across two nodes is cut after 16 forwards, with a line on stderr", function()
    local a, aloc = start(PRELUDE .. [[
local ch = acoro.channel("ring_a")
assert(ch:register())
ch:subscribe(acoro.spawn(function() while true do say("a got", acoro.receive()) end end))
local echo = acoro.spawn(function() acoro.receive():send("marker") end)
echo:register("echo")
acoro.receive()
]])
    local b = start_peer(aloc, [[
local main = acoro.self()
local ra = assert(acoro.locate_channel("ring_a", { timeout = 10 }))
local rb = acoro.channel("ring_b")
local n = 0
local w = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if m == "marker" then
      say("total", n)
    else
      n = n + 1
      say("b got", m)
      if n == 9 then main:send("nine") end
    end
  end
end)
rb:subscribe(w)
assert(ra:subscribe(rb, 10)) -- ring_a -> ring_b
assert(rb:subscribe(ra))     -- ring_b -> ring_a: a cycle no node can see alone
rb:send("loop")
acoro.receive()
-- the marker comes to w through a after anything the loop still had in flight
assert(acoro.locate("echo", { timeout = 10 })):send(w)
acoro.receive()
]])
    -- b's worker gets its own send, then hops 2, 4, ..., 16; a's gets hops 1, 3, ..., 15
    assert.equal("9", b:expect("^total (%d+)$"))
    for _ = 1, 8 do assert.equal("loop", a:expect("^a got (.*)$")) end
    local cut = 0
    for _, l in ipairs(b.seen) do
      if l:match("^acoro: channel ring_a: message dropped after 16 nodes") then cut = cut + 1 end
    end
    assert.equal(1, cut, b:output())
  end)
end)

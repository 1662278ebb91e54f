-- acoro.rci (lua/acoro/rci.lua): registering, locating and calling remote
-- coroutine interfaces between real acoro processes on 127.0.0.1
-- (spec/node_support.lua), and the same API within one process.

local acoro = require "acoro"
local ns = require "node_support"

local q, start, start_peer, PRELUDE = ns.q, ns.start, ns.start_peer, ns.PRELUDE

-- The owner: "adder" starts a coroutine that waits for a message and ends
-- with a + b (or raises for a negative a); "echo" starts one that answers
-- each message ({reply_to, value}) with value and ends on "stop";
-- "blocker" (a coroutine) spins without yielding for 30 s when sent a
-- coroutine handle, which it tells "spinning" first.
local OWNER = PRELUDE .. [[
acoro.rci.register("adder", function(a, b)
  local m = acoro.receive()
  if a < 0 then error("negative: " .. a, 0) end
  say("adder got", m)
  return a + b
end)
acoro.rci.register("echo", function(greeting, peer_co, gap, last)
  peer_co:send(greeting)
  if gap ~= nil or last ~= nil then peer_co:send({ tostring(gap), last }) end
  while true do
    local m = acoro.receive()
    if m == "stop" then return "stopped" end
    m[1]:send(m[2])
  end
end)
acoro.rci.register("quick", function(v)
  collectgarbage() -- ends at once, its handle unreferenced here
  if v < 0 then error("quick: " .. v, 0) end
  return v * 2
end)
say("dup", pcall(acoro.rci.register, "adder", print))
local blocker = acoro.spawn(function()
  acoro.receive():send("spinning") -- goes out at once (the network thread writes it)
  local t = os.clock()
  while os.clock() - t < 30 do end
end)
blocker:register("blocker")
local ctl = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if m == "unregister" then say("unregistered", acoro.rci.unregister("adder"), acoro.rci.unregister("adder"))
    elseif m == "register" then say("registered", acoro.rci.register("late", function() return 1 end)) end
  end
end)
ctl:register("ctl")
say("ready")
acoro.receive()
]]

describe("acoro.rci between nodes", function()
  after_each(ns.stop_all)

  it("locates an RCI, calls it, and the started coroutine's handle works "
    .. "(send, monitor gets its Exit, join returns its result)", function()
    local srv, sloc = start(OWNER, "--name owner")
    assert.equal("true nil name taken EEXIST", srv:expect("^dup (.*)$"))
    local cli = start_peer(sloc, [[
local adder = assert(acoro.rci.locate("adder", { timeout = 10 }))
local again = assert(acoro.rci.locate("adder", { location = arg[1] }))
say("rci", tostring(adder), adder.name, adder.location == arg[1], adder == again, acoro.rci.is_rci(adder))
local h = adder(2, 3)
say("handle", acoro.is_remote(h), h.location == arg[1])
h:monitor()
h:send("hello")
local m = acoro.receive(10)
say("exit", acoro.is_exit(m), m.coro == h, m.reason, m.value)
local h2 = adder:call({ timeout = 10 }, 40, 2)
h2:send("x")
say("join", h2:join(10))
-- an rci inside a message arrives as the same value
local me = acoro.self()
acoro.spawn(function() me:send({ r = adder }) end)
say("same", acoro.receive(10).r == adder)
]], "--name caller")
    assert.equal("rci:adder@" .. sloc .. " adder true true true", cli:expect("^rci (.*)$"))
    assert.equal("true true", cli:expect("^handle (.*)$"))
    assert.equal("true true normal 5", cli:expect("^exit (.*)$"))
    assert.equal("true 42", cli:expect("^join (.*)$"))
    assert.equal("true", cli:expect("^same (.*)$"))
    assert.equal("hello", srv:expect("^adder got (.*)$"))
    assert.equal("x", srv:expect("^adder got (.*)$"))
  end)

  it("monitor= gets the Exit of a coroutine that ends at once (monitored there first)", function()
    local _, sloc = start(OWNER, "--name owner")
    local cli = start_peer(sloc, [[
local quick = assert(acoro.rci.locate("quick", { timeout = 10 }))
local me = acoro.self()
local started = {}
for i = 1, 10 do started[quick:call({ monitor = me }, i - 2)] = i - 2 end
local normal, failed = 0, 0
for _ = 1, 10 do
  local m = acoro.receive(10)
  assert(acoro.is_exit(m) and started[m.coro], tostring(m))
  local v = started[m.coro]
  if m.reason == "normal" and m.value == v * 2 then normal = normal + 1 end
  if m.reason == "error" and m.error == "quick: " .. v then failed = failed + 1 end
end
say("exits", normal, failed)
say("misuse", pcall(quick.call, quick, { monitor = "x" }, 1))
]])
    assert.equal("9 1", cli:expect("^exits (.*)$"))
    assert.matches("^false .*acoro%.rci: call: monitor must be a local coroutine, got string$",
      cli:expect("^misuse (.*)$"))
  end)

  it("passes arguments, handles among them, and an rci value travels back and forth", function()
    local _, sloc = start(OWNER, "--name owner")
    local cli = start_peer(sloc, [[
local echo = assert(acoro.rci.locate("echo", { timeout = 10 }))
local me = acoro.self()
local h = echo({ text = "hi", list = { 1, 2, 3 } }, me, nil, "last")
local g = acoro.receive(10)
say("greeting", g.text, #g.list, g.list[3])
local nils = acoro.receive(10)
say("nils", nils[1], nils[2])
h:send({ me, { rci = echo, nested = { me } } })
local back = acoro.receive(10)
say("back", back.rci == echo, back.nested[1] == me)
h:send("stop")
say("join", h:join(10))
]])
    assert.equal("hi 3 3", cli:expect("^greeting (.*)$"))
    assert.equal("nil last", cli:expect("^nils (.*)$"))
    assert.equal("true true", cli:expect("^back (.*)$"))
    assert.equal("true stopped", cli:expect("^join (.*)$"))
  end)

  it("raises in the caller: arguments that cannot travel (with their path), a function "
    .. "that fails gives its Exit, an unknown or unregistered name, and locate's not found", function()
    local srv, sloc = start(OWNER, "--name owner")
    local cli = start_peer(sloc, [[
local ctl = assert(acoro.locate("ctl", { timeout = 10 }))
local adder = assert(acoro.rci.locate("adder", { timeout = 10 }))
local ok, err = pcall(adder, 1, { cb = print })
say("encode", ok, err)
ok, err = pcall(adder, unpack({}, 1, 251))
say("many", ok, err)
local h = adder(-1, 0)
h:monitor()
h:send("go")
local m = acoro.receive(10)
say("failed", m.reason, m.error)
say("missing", acoro.rci.locate("nothing", { location = arg[1] }))
say("missing2", acoro.rci.locate("nothing", { timeout = 0.2 }))
ctl:send("unregister")
acoro.sleep(0.5)
ok, err = pcall(adder, 1, 2)
say("unregistered", ok, err)
say("gone", acoro.rci.locate("adder"))
]])
    local encode = cli:expect("^encode (.*)$")
    assert.matches("^false .*acoro%.rci: rci:adder@" .. sloc:gsub("%.", "%%.")
      .. ": cannot send args%[2%]%.cb: a function$", encode)
    assert.matches("^false .*acoro%.rci: rci:adder@.*: more than 250 arguments$", cli:expect("^many (.*)$"))
    assert.equal("error negative: -1", cli:expect("^failed (.*)$"))
    assert.equal("nil not found ENOENT", cli:expect("^missing (.*)$"))
    assert.equal("nil not found ENOENT", cli:expect("^missing2 (.*)$"))
    assert.equal("true false", srv:expect("^unregistered (.*)$"))
    assert.equal("false acoro.rci: no RCI \"adder\" is registered at " .. sloc,
      cli:expect("^unregistered (.*)$"))
    assert.equal("nil not found ENOENT", cli:expect("^gone (.*)$"))
  end)

  it("a locate that starts before the owner (or before the name is registered) "
    .. "is answered when it appears", function()
    local cli, cloc = start(PRELUDE .. [[
say("waiting")
local r, err = acoro.rci.locate("late", { timeout = 30 })
say("found", tostring(r), err)
local h = r()
say("joined", h:join(10))
]], "--name early")
    cli:expect("^waiting$")
    local srv, sloc = start(OWNER, "--name owner --peer " .. q(cloc))
    srv:expect("^ready$")
    -- the owner is up but has no "late" yet: registering it answers
    start_peer(sloc, [[
assert(acoro.locate("ctl", { timeout = 10 })):send("register")
acoro.sleep(0.2)
]])
    assert.equal("true", srv:expect("^registered (.*)$"))
    assert.equal("rci:late@" .. sloc .. " nil", cli:expect("^found (.*)$"))
    assert.equal("true 1", cli:expect("^joined (.*)$"))
  end)

  it("a call whose owner does not answer in its timeout raises \"timeout\"; one waiting "
    .. "for an owner that is killed raises \"unreachable\" at once", function()
    local srv, sloc = start(OWNER, "--name owner")
    local pid = srv:expect("^pid (%d+)$")
    local cli = start_peer(sloc, [[
local adder = assert(acoro.rci.locate("adder", { timeout = 10 }))
local blocker = assert(acoro.locate("blocker", { timeout = 10 }))
blocker:send(acoro.self())
assert(acoro.receive(10) == "spinning")
say("bounded", pcall(adder.call, adder, { timeout = 0.5 }, 1, 2))
say("calling")
local ok, err = pcall(adder, 1, 2)
say("call", ok, err)
ok, err = pcall(adder, 1, 2)
say("again", ok, err)
]])
    assert.equal("false acoro.rci: rci:adder@" .. sloc .. ": timeout", cli:expect("^bounded (.*)$"))
    cli:expect("^calling$")
    -- the owner's engine spins without yielding: the call waits for its answer
    os.execute("kill -9 " .. pid)
    assert.equal("false acoro.rci: rci:adder@" .. sloc .. ": unreachable", cli:expect("^call (.*)$"))
    assert.equal("false acoro.rci: rci:adder@" .. sloc .. ": unreachable", cli:expect("^again (.*)$"))
  end)
end)

describe("acoro.rci within one process", function()
  it("registers, locates and calls here; misuse raises", function()
    acoro.run(function()
      assert.has_error(function() acoro.rci.register("", print) end,
        "acoro.rci.register: name must be a non-empty string, got \"\"")
      assert.has_error(function() acoro.rci.register("x", 1) end,
        "acoro.rci.register: fn must be a function, got number")
      assert.is_true(acoro.rci.register("twice", function(a) return a * 2 end))
      assert.same({ nil, "name taken", "EEXIST" }, { acoro.rci.register("twice", print) })
      local r = assert(acoro.rci.locate("twice"))
      assert.equal(r, acoro.rci.locate("twice", { timeout = 1 }))
      assert.equal("rci:twice", tostring(r)) -- no node: no location, as tostring(co)
      assert.is_nil(r.location)
      assert.same({ true, 42 }, { r(21):join(5) }) -- the first function stays
      assert.same({ true, 8 }, { r:call({ timeout = 5 }, 4):join(5) })
      local h = r:call({ monitor = acoro.self() }, 5)
      local m = acoro.receive(5)
      assert.is_true(acoro.is_exit(m))
      assert.same({ h, "normal", 10 }, { m.coro, m.reason, m.value })
      assert.has_error(function() r:call({ timeout = "x" }) end,
        "acoro.rci: call: timeout must be a positive number or nil")
      assert.same({ nil, "not found", "ENOENT" }, { acoro.rci.locate("none") })
      assert.same({ nil, "not found", "ENOENT" }, { acoro.rci.locate("none", { timeout = 0.05 }) })
      -- a wait for a name is answered when it is registered here
      acoro.spawn(function()
        acoro.sleep(0.05)
        acoro.rci.register("soon", function() end)
      end)
      assert.equal("rci:soon", tostring(acoro.rci.locate("soon", { timeout = 10 })))
      assert.is_true(acoro.rci.unregister("twice"))
      assert.is_false(acoro.rci.unregister("twice"))
      local ok, err = pcall(r, 1)
      assert.is_false(ok)
      assert.equal("acoro.rci: no RCI \"twice\" is registered at this node", err)
      assert.is_true(acoro.rci.unregister("soon"))
    end)
  end)

  it("tostring(r) of one of ours shows the node's location once a node runs, as tostring(co)", function()
    local r
    acoro.run(function()
      assert.is_true(acoro.rci.register("named", function() end))
      r = assert(acoro.rci.locate("named"))
      assert.equal("rci:named", tostring(r))
      local n = acoro.node { host = "127.0.0.1", discover = false }
      assert.equal("rci:named@" .. n.location, tostring(r))
      assert.matches("@" .. n.location:gsub("%p", "%%%0") .. "$", tostring(acoro.self()))
      local now = assert(acoro.rci.locate("named")) -- bound to the node
      assert.equal("rci:named@" .. n.location, tostring(now))
      assert.equal(n.location, now.location)
      assert.is_true(acoro.rci.unregister("named"))
    end)
    assert.equal("rci:named", tostring(r)) -- the node stopped with the run
  end)
end)

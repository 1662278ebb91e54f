-- Distribution (acoro.node, lua/acoro/node.lua over bindings/lnet.c): real `acoro`
-- processes on 127.0.0.1, started with the CLI's node flags, checked by what they
-- print. No discovery (--no-discover): peers are explicit. Every wait is for a line
-- of output; every child runs under `timeout` and is stopped in a `finally`.

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote
local secret, other_secret = ns.secret, ns.other_secret
local start, expect_all, stop_all, PRELUDE = ns.start, ns.expect_all, ns.stop_all, ns.PRELUDE

-- Prints every peer status it is told of, forever.
local WATCHER = PRELUDE .. [[
acoro.peer_status(acoro.self())
while true do
  local m = acoro.receive()
  say("status", acoro.is_peer_status(m), m.status, m.location, m.name)
end
]]

-- Peers with arg[1], prints acoro.peers(), then waits for a line on stdin
-- (none: /dev/null ends it at once) or for ever with arg[2] == "stay".
local PEERER = PRELUDE .. [[
say("peer", acoro.peer(arg[1], 10))
for _, p in ipairs(acoro.peers()) do say("peers", p.location, p.name) end
if arg[2] == "stay" then acoro.receive() end
]]

describe("acoro.node between processes", function()
  after_each(stop_all)

  it("two nodes peer explicitly, see each other in acoro.peers(), and peer_status "
    .. "says online, then offline when the other exits or is killed", function()
    local w, wloc = start(WATCHER, "--name watcher")
    -- a peer that ends normally
    local b, bloc = start(PEERER, "--name second", nil, q(wloc))
    assert.equal("true", b:expect("^peer (%S+)"))
    assert.same({ wloc, "watcher" }, { b:expect("^peers (%S+) (%S+)$") })
    assert.same({ "online", bloc, "second" }, { w:expect("^status true (%S+) (%S+) (%S+)$") })
    assert.same({ "offline", bloc, "second" }, { w:expect("^status true (%S+) (%S+) (%S+)$") })
    -- a peer killed with SIGKILL
    local c, cloc = start(PEERER, "--name third", nil, q(wloc) .. " stay")
    local pid = c:expect("^pid (%d+)$")
    assert.equal("true", c:expect("^peer (%S+)"))
    assert.same({ "online", cloc, "third" }, { w:expect("^status true (%S+) (%S+) (%S+)$") })
    os.execute("kill -9 " .. pid)
    assert.same({ "offline", cloc, "third" }, { w:expect("^status true (%S+) (%S+) (%S+)$") })
  end)

  it("a node with another secret is refused: acoro.peer returns nil and the reason", function()
    local w, wloc = start(WATCHER, "--name watcher")
    local b = start(PEERER, "", other_secret, q(wloc))
    local reason = b:expect("^peer nil (.*)$")
    assert.matches("wrong secret", reason)
    -- both sides log one line saying why (stderr is in the output)
    assert.truthy(w:expect("^acoro: node: (.*wrong secret.*)$"))
    assert.truthy(b:output():match("acoro: node: [^\n]*wrong secret"))
  end)

  it("a node without a secret and a node with one refuse each other, both saying why", function()
    local w, wloc = start(WATCHER, "--name watcher")
    local path = support.write_temp(PEERER)
    local c = net.spawn(("env -u ACORO_SECRET %s --listen 127.0.0.1:0 --no-discover %s %s")
      :format(q(support.bin), q(path), q(wloc)))
    ns.track(c)
    assert.equal("refused: the peer has a secret and this node has none ECONNREFUSED", c:expect("^peer nil (.*)$"))
    assert.truthy(w:expect("^acoro: node: (.*the peer has no secret and this node has one.*)$"))
  end)

  it("remote send and locate both ways; a handle that comes back is the same value; "
    .. "a function in a message is refused with its path", function()
    local srv, sloc = start(PRELUDE .. [[
local echo = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    say("server got", m.text, m.from.location == m.from_loc)
    m.from:send({ text = "re:" .. m.text, me = acoro.self() })
  end
end)
echo:register("echo")
-- the other way: find the client's coroutine and send it a message
local h, err = acoro.locate("client", { timeout = 20 })
say("server located", tostring(h), err)
h:send({ text = "from the server" })
acoro.receive()
]], "--name server")
    local cli = start(PRELUDE .. [[
acoro.self():register("client")
assert(acoro.peer(arg[1], 10))
local h, err = acoro.locate("echo", { timeout = 10, location = arg[1] })
say("client located", tostring(h), err, h and h.location, h and h.name)
local me = acoro.self()
assert(h:send({ text = "hello", from = me, from_loc = me.location }))
local got = {}
for _ = 1, 2 do
  local m = acoro.receive(10)
  got[#got + 1] = m.text
  if m.me then
    say("same handle", m.me == h, ({ [h] = "key works" })[m.me])
  end
end
table.sort(got)
say("client got", table.concat(got, ","))
local ok, e = pcall(h.send, h, { text = "x", handler = print })
say("refused", ok, e)
ok, e = pcall(h.suspend, h)
say("suspend", ok, e)
]], "", nil, q(sloc))
    local loc, name = cli:expect("^client located coro:echo/%d+@%S+ nil (%S+) (%S+)$")
    assert.equal(sloc, loc)
    assert.equal("echo", name)
    local same_loc, located = expect_all(srv, { "^server got hello (%S+)$", "^server located (.*)$" })
    assert.equal("true", same_loc)
    assert.matches("^coro:client/%d+@127%.0%.0%.1:%d+ nil$", located)
    assert.same({ "true", "key works" }, { cli:expect("^same handle (%S+) (.*)$") })
    assert.equal("from the server,re:hello", cli:expect("^client got (.*)$"))
    assert.equal("false acoro: send: cannot send msg.handler: a function", cli:expect("^refused (.*)$"))
    assert.matches("suspend: not supported on a remote coroutine", cli:expect("^suspend (.*)$"))
  end)

  it("a handle sent in message after message (its encoding and decoding cached) is the "
    .. "same value each time, and replies to it arrive", function()
    local srv, sloc = start(PRELUDE .. [[
local first
local s = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    first = first or m.from
    say("same", m.i, m.from == first, acoro.is_remote(m.from))
    m.from:send(m.i)
  end
end)
s:register("s")
acoro.receive()
]])
    local cli = ns.start_peer(sloc, [[
local h = assert(acoro.locate("s", { timeout = 10, location = arg[1] }))
local me = acoro.self()
for i = 1, 3 do
  if i == 3 then me:register("renamed") end
  assert(h:send({ i = i, from = me }))
  say("reply", acoro.receive(10))
end
]])
    for i = 1, 3 do
      assert.equal(("%d true true"):format(i), srv:expect("^same (.*)$"))
      assert.equal(tostring(i), cli:expect("^reply (.*)$"))
    end
  end)

  it("a message 64 tables deep crosses (the SEND envelope is not one of its levels), 65 "
    .. "are refused with the path; our own handle comes back as itself, message after message",
    function()
    local srv, sloc = start(PRELUDE .. [[
local s = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    m.from:send(m)
  end
end)
s:register("s")
acoro.receive()
]])
    local cli = ns.start_peer(sloc, [[
local h = assert(acoro.locate("s", { timeout = 10, location = arg[1] }))
local me = acoro.self()
local function nest(n) local t = "leaf" for _ = 1, n do t = { t } end return t end
assert(h:send({ from = me, deep = nest(63) })) -- the message itself is the 64th table
local m = acoro.receive(10)
local d, n = m and m.deep, 0
while type(d) == "table" do d, n = d[1], n + 1 end
say("deep", n, d, m and m.from == me)
local ok, e = pcall(h.send, h, { from = me, deep = nest(64) })
say("refused", ok, e)
for i = 1, 3 do
  assert(h:send({ from = me, i = i }))
  m = acoro.receive(10)
  say("back", m and m.i, m and m.from == me, m and rawequal(m.from, me))
end
]])
    assert.equal("63 leaf true", cli:expect("^deep (.*)$"))
    assert.equal("false acoro: send: cannot send msg.deep" .. string.rep("[1]", 63)
      .. ": nesting deeper than 64", cli:expect("^refused (.*)$"))
    for i = 1, 3 do assert.equal(i .. " true true", cli:expect("^back (.*)$")) end
    assert.is_nil(srv:output():match("dropped"))
  end)

  it("a malformed frame from a peer is dropped with a log line saying why; the link "
    .. "goes on", function()
    local srv, sloc = start(PRELUDE .. [[
local s = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    m.from:send(m.i)
  end
end)
s:register("s")
acoro.receive()
]])
    local cli = start(PRELUDE .. [[
local net, wire = require("acoro.core").net, require("acoro.core").wire
assert(acoro.peer(arg[1], 10))
local h = assert(acoro.locate("s", { timeout = 10, location = arg[1] }))
local peer = require("acoro.internal").dist.peer_at(arg[1])
local big = {}
for i = 1, 33 do big[i] = i end
for _, frame in ipairs({ wire.encode({ op = 1 }), wire.encode(7), wire.encode(big),
                         wire.encode({ 1, h.id, "m", "extra" }), wire.encode({ 1, "x", "m" }),
                         "\x93\x01" }) do
  assert(net.send(peer, frame))
end
assert(h:send({ i = 1, from = acoro.self() }))
say("reply", acoro.receive(10))
]], "", nil, q(sloc))
    assert.equal("1", cli:expect("^reply (.*)$"))
    local whys = {}
    for i = 1, 6 do whys[i] = srv:expect("^acoro: node: dropped a message from 127%.0%.0%.1:%d+: (.*)$") end
    for i, why in ipairs({ "an envelope that is not an array", "an envelope that is not an array",
                           "an envelope of 33 elements %(at most 32%)", "bad SEND", "bad SEND",
                           "array of 3 elements in 1 bytes left" }) do
      assert.matches(why, whys[i])
    end
  end)

  it("a locate started before the server's node is known is answered when it appears", function()
    local cli, cloc = start(PRELUDE .. [[
local h, err = acoro.locate("echo", { timeout = 30 })
say("located", tostring(h), err)
h:send({ text = "late hello", from = acoro.self() })
say("reply", acoro.receive(10).text)
]], "--name early")
    -- the client waits in locate; the server starts now and peers with it
    local _ = start(PRELUDE .. [[
local echo = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    m.from:send({ text = "re:" .. m.text })
  end
end)
echo:register("echo")
]], "--name late --peer " .. q(cloc))
    assert.matches("^coro:echo/%d+@127%.0%.0%.1:%d+ nil$", cli:expect("^located (.*)$"))
    assert.equal("re:late hello", cli:expect("^reply (.*)$"))
  end)
end)

describe("the CLI's node flags", function()
  after_each(stop_all)

  it("ACORO_SECRET in the environment is the secret when no --secret-file is given", function()
    local _, wloc = start(WATCHER, "--name watcher")
    local path = support.write_temp(PEERER)
    local c = net.spawn(("env ACORO_SECRET=%s %s --listen 127.0.0.1:0 --no-discover %s %s")
      :format(q("the shared secret"), q(support.bin), q(path), q(wloc)))
    ns.track(c)
    assert.equal("true", c:expect("^peer (%S+)"))
  end)

  it("refuses an empty secret wherever it comes from: secret = \"\", ACORO_SECRET=\"\", an empty file", function()
    assert.has_error(function() acoro.node { secret = "" } end, "acoro.node: secret is empty")
    assert.is_nil(acoro.node()) -- nothing started
    local path = support.write_temp("print('ran')\n")
    local c = net.spawn(("env ACORO_SECRET= %s --listen 127.0.0.1:0 --no-discover %s"):format(q(support.bin), q(path)))
    ns.track(c)
    local out = c:rest()
    assert.matches("ACORO_SECRET is set but empty %(unset it to run a node without a secret%)", out)
    assert.is_nil(out:find("ran", 1, true))
    local empty = support.write_temp("\n")
    local _, err, code = support.run_cli(("--listen 127.0.0.1:0 --no-discover --secret-file %s %s")
      :format(q(empty), q(path)))
    assert.equal(1, code)
    assert.matches("%-%-secret%-file: .* is empty", err)
    -- unset, it is no secret: the node starts
    c = net.spawn(("env -u ACORO_SECRET %s --listen 127.0.0.1:0 --no-discover %s"):format(q(support.bin), q(path)))
    ns.track(c)
    assert.equal("ran", c:expect("^(ran)$"))
  end)

  it("refuses a bad --listen, a missing --secret-file and a missing argument", function()
    local _, err, code = support.run_cli("--listen nowhere -e 'print(1)' x.lua")
    assert.equal(1, code)
    assert.matches("%-%-listen needs HOST:PORT, got nowhere", err)
    _, err, code = support.run_cli("--secret-file /nonexistent/key x.lua")
    assert.equal(1, code)
    assert.matches("%-%-secret%-file: /nonexistent/key", err)
    _, err, code = support.run_cli("--peer")
    assert.equal(1, code)
    assert.matches("%-%-peer needs an argument", err)
  end)
end)

describe("remote deliver and monitor", function()
  after_each(stop_all)

  it("deliver waits for the remote receive; monitor gets the remote Exit, and "
    .. "\"unreachable\" when the node is killed", function()
    local srv, sloc = start(PRELUDE .. [[
local target = acoro.spawn(function()
  local m = acoro.receive()
  acoro.sleep(0.05)
  error("boom after " .. m, 0)
end)
target:register("target")
local idle = acoro.spawn(function() acoro.receive() end)
idle:register("idle")
acoro.receive()
]], "--name srv")
    local cli = ns.start_peer(sloc, [[
local t = assert(acoro.locate("target", { timeout = 10 }))
local idle = assert(acoro.locate("idle", { timeout = 10 }))
t:monitor()
say("deliver", t:deliver("one", 10))
local e = acoro.receive(10)
say("exit", acoro.is_exit(e), e.coro == t, e.reason, e.error)
say("deliver dead", t:deliver("two", 1))
t:monitor()
e = acoro.receive(10)
say("late monitor", e.reason)
idle:monitor()
say("monitoring idle")
e = acoro.receive(20)
say("idle exit", e.coro == idle, e.reason)
say("deliver unreachable", idle:deliver("x", 1))
]])
    local pid = srv:expect("^pid (%d+)$")
    assert.equal("true", cli:expect("^deliver (.*)$"))
    assert.equal("true true error boom after one", cli:expect("^exit (.*)$"))
    assert.equal("nil dead EDEAD", cli:expect("^deliver dead (.*)$"))
    -- its result if its handle is still here, else "dead" (the handle was collected)
    local late = cli:expect("^late monitor (.*)$")
    assert.is_true(late == "error" or late == "dead", late)
    cli:expect("^monitoring idle$")
    os.execute("kill -9 " .. pid)
    assert.equal("true unreachable", cli:expect("^idle exit (.*)$"))
    assert.equal("nil unreachable ENOPEER", cli:expect("^deliver unreachable (.*)$"))
  end)

  it("a local coroutine can be monitored by a watcher on another node", function()
    local srv, sloc = start(PRELUDE .. [[
local watcher = acoro.spawn(function()
  local e = acoro.receive()
  say("watcher got", acoro.is_exit(e), e.reason, e.value, acoro.is_remote(e.coro), e.coro.name)
end)
watcher:register("watcher")
acoro.receive()
]], "--name srv")
    local cli = ns.start_peer(sloc, [[
local w = assert(acoro.locate("watcher", { timeout = 10 }))
local job = acoro.spawn(function() acoro.receive() return 42 end)
job:register("job")
say("monitor", job:monitor(w))
job:send("go")
acoro.receive(30)
]])
    assert.equal("true", cli:expect("^monitor (.*)$"))
    assert.equal("true normal 42 true job", srv:expect("^watcher got (.*)$"))
  end)
end)

describe("remote join", function()
  after_each(stop_all)

  it("returns what join returns on the target's node; timeout; a result that cannot travel", function()
    local _, sloc = start(PRELUDE .. [[
local w = acoro.spawn(function()
  acoro.receive()
  return 1, nil, "three"
end)
w:register("worker")
acoro.spawn(function() acoro.receive() return print end):register("bad")
acoro.receive()
]], "--name srv")
    local cli = ns.start_peer(sloc, [[
local w = assert(acoro.locate("worker", { timeout = 10 }))
local b = assert(acoro.locate("bad", { timeout = 10 }))
say("early", w:join(0.05))
w:send("go")
local r = { w:join(10) }
say("joined", r[1], r[2], r[3], r[4])
b:send("go")
say("bad", b:join(10))
]])
    assert.equal("nil timeout ETIMEDOUT", cli:expect("^early (.*)$")) -- as join there
    assert.equal("true 1 nil three", cli:expect("^joined (.*)$"))
    assert.matches("^false result cannot be sent: .*a function", cli:expect("^bad (.*)$"))
  end)
end)

describe("remote throw and terminate", function()
  after_each(stop_all)

  it("run on the target's node and say whether it was alive", function()
    local srv, sloc = start(PRELUDE .. [[
local v = acoro.spawn(function()
  local ok, e = pcall(acoro.receive)
  say("victim caught", ok, e)
  acoro.receive()
end)
v:register("victim")
acoro.receive()
]], "--name srv")
    local cli = ns.start_peer(sloc, [[
local v = assert(acoro.locate("victim", { timeout = 10 }))
say("throw", v:throw("stop it"))
acoro.receive(10) -- stays until the spec stops it
]])
    cli:expect("^throw true$")
    assert.equal("false stop it", srv:expect("^victim caught (.*)$"))
    local cli2 = ns.start_peer(sloc, [[
local v = assert(acoro.locate("victim", { timeout = 10 }))
say("terminate", v:terminate(), v:terminate())
say("join", v:join(5))
]])
    assert.equal("true false", cli2:expect("^terminate (.*)$"))
    -- "dead" if the ended coroutine's handle was already collected there
    local joined = cli2:expect("^join (.*)$")
    assert.is_true(joined == "false terminated" or joined == "false dead", joined)
  end)
end)

describe("peers= (--peer)", function()
  after_each(stop_all)

  it("is retried until it answers", function()
    -- a port that was free a moment ago: a node took it, and is gone
    local tmp, loc = start(WATCHER, "--name tmp")
    ns.forget(tmp) -- stopped here
    tmp:kill()
    tmp:close()
    local w = start(WATCHER, "--name waiting --peer " .. q(loc))
    local _, again = start(WATCHER, "--name late --listen " .. q(loc))
    assert.equal(loc, again)
    assert.same({ "online", loc, "late" }, { w:expect("^status true (%S+) (%S+) (%S+)$") })
  end)
end)

describe("a sender that ends at once", function()
  after_each(stop_all)

  it("loses none of its messages, and they arrive in order", function()
    local srv, sloc = start(PRELUDE .. [[
local c = acoro.spawn(function()
  local n, ordered = 0, true
  while n < 3000 do
    local m = acoro.receive()
    n = n + 1
    if m.i ~= n then ordered = false end
  end
  say("got", n, ordered)
end)
c:register("counter")
]], "--name srv")
    local cli = ns.start_peer(sloc, [[
local c = assert(acoro.locate("counter", { timeout = 10 }))
local pad = ("x"):rep(1000)
for i = 1, 3000 do assert(c:send({ i = i, pad = pad })) end
say("sent")
]])
    cli:expect("^sent$")
    assert.equal("3000 true", srv:expect("^got (.*)$"))
  end)
end)

describe("a node restarted on the same location", function()
  after_each(stop_all)

  it("is a new node: handles of the old one do not reach the new one", function()
    local SERVER = PRELUDE .. [[
acoro.spawn(function() acoro.receive() end):register("echo")
acoro.receive()
]]
    local srv, sloc = start(SERVER, "--name srv")
    local pid = srv:expect("^pid (%d+)$")
    local cli, cloc = start(PRELUDE .. [[
acoro.peer_status(acoro.self())
assert(acoro.peer(arg[1], 10))
local h1 = assert(acoro.locate("echo", { timeout = 10 }))
say("located first")
acoro.receive_match(function(m) return acoro.is_peer_status(m) and m.status == "offline" end, 20)
say("offline")
acoro.receive_match(function(m) return acoro.is_peer_status(m) and m.status == "online" end, 20)
local h2 = assert(acoro.locate("echo", { timeout = 10 }))
say("restarted", h1 == h2, h1.location == h2.location, h1:send("old"), h2:send("new"))
]], "--name cli", nil, q(sloc))
    cli:expect("^located first$")
    os.execute("kill -9 " .. pid)
    cli:expect("^offline$")
    local _, again = start(SERVER, "--name srv --listen " .. q(sloc) .. " --peer " .. q(cloc))
    assert.equal(sloc, again)
    -- not the same handle though at the same location; the old one is unreachable (send
    -- would say true for a message queued to the new node's link)
    assert.equal("false true false true", cli:expect("^restarted (.*)$"))
  end)
end)

describe("discovery on loopback", function()
  after_each(stop_all)

  it("two nodes with discovery on one UDP port find each other by pings alone", function()
    -- a port of our own, so that other nodes on this host (other specs) stay out; one that
    -- happens to share it only costs a refused handshake (another secret)
    math.randomseed(os.time())
    local udp = 42000 + math.random(0, 9999)
    local SCRIPT = [[
local acoro = require "acoro"
local n = acoro.node { host = "127.0.0.1", udp_port = tonumber(arg[1]), secret = "disc", name = arg[2] }
print("listening " .. n.location)
io.stdout:flush()
acoro.peer_status(acoro.self())
while true do
  local m = acoro.receive()
  print("status " .. m.status .. " " .. m.name)
  io.stdout:flush()
end
]]
    local path = support.write_temp(SCRIPT)
    local function node(name)
      local c = net.spawn_acoro(("%s %d %s"):format(q(path), udp, name))
      ns.track(c)
      c:expect("^listening")
      return c
    end
    local a = node("alpha")
    local b = node("beta") -- its start ping reaches alpha, which connects
    assert.equal("beta", a:expect("^status online (%S+)$"))
    assert.equal("alpha", b:expect("^status online (%S+)$"))
  end)
end)

describe("examples/tut_server.lua + tut_client.lua", function()
  after_each(stop_all)

  local function spawn(flags, script, args)
    local c = net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s")
      :format(q(secret), flags, q("examples/" .. script), args))
    ns.track(c)
    return c
  end

  local function check(srv, cli)
    assert.equal("sent 3 messages", cli:expect("^(sent 3 messages)$"))
    local got = {}
    for _ = 1, 3 do got[#got + 1] = srv:expect("^received: (.*)$") end
    assert.same({ "client 7: message 1", "client 7: message 2", "client 7: message 3" }, got)
  end

  it("the server prints the client's 3 messages (server first)", function()
    local srv = spawn("", "tut_server.lua", "3")
    local sloc = srv:expect("^server at (%S+)$")
    local cli = spawn("--peer " .. q(sloc), "tut_client.lua", "7")
    check(srv, cli)
  end)

  it("the server prints the client's 3 messages (client first, waiting in locate)", function()
    local cli = spawn("", "tut_client.lua", "7")
    local cloc = cli:expect("^client at (%S+)$")
    local srv = spawn("--peer " .. q(cloc), "tut_server.lua", "3")
    check(srv, cli)
  end)
end)

describe("acoro.node in this process", function()
  it("runs for one acoro.run: a second call raises, co.location is the node's, "
    .. "and the node stops when the run returns", function()
    local loc
    local lines = {} -- the short secret's warning and the failed dial: expected, kept
    local prev_writer = acoro.log.set_writer(function(level, msg) lines[#lines + 1] = level .. ": " .. msg end)
    finally(function() acoro.log.set_writer(prev_writer) end)
    acoro.run(function()
      assert.is_nil(acoro.node())
      assert.is_nil(acoro.self().location)
      local n = acoro.node { host = "127.0.0.1", discover = false, secret = "s" }
      loc = n.location
      assert.matches("^127%.0%.0%.1:%d+$", loc)
      assert.equal(loc, n.name)
      assert.equal(n, acoro.node())
      assert.equal(loc, acoro.self().location)
      assert.has_error(function() acoro.node { host = "127.0.0.1" } end,
        "acoro.node: a node is already running (" .. loc .. ")")
      assert.same({}, acoro.peers())
      assert.is_false(acoro.close_peer("127.0.0.1:1"))
      assert.same({ nil, "discovery is off for this node", "ENOTSUP" }, { acoro.discover() })
      local ok, why = acoro.peer("127.0.0.1:1", 5)
      assert.is_nil(ok)
      assert.is_string(why)
      assert.matches("^warn: node: the secret is shorter than 16 characters", lines[1])
      local h, err = acoro.locate("nothing", { timeout = 0 })
      assert.is_nil(h)
      assert.equal("not found", err)
    end)
    assert.is_nil(acoro.node())
    acoro.run(function() -- a new run may start a new node
      local n = acoro.node { host = "127.0.0.1", discover = false, name = "again" }
      assert.equal("again", n.name)
    end)
    assert.is_nil(acoro.node())
    assert.has_error(function() acoro.peer("127.0.0.1:1") end,
      "acoro.peer: no node is running (call acoro.node first)")
  end)
end)

describe("a node started outside acoro.run in stock LuaJIT", function()
  it("is stopped before the engine is freed when the Lua state closes", function()
    local script = support.write_temp([[
local acoro = require "acoro"
local n = acoro.node { host = "127.0.0.1", discover = false }
print("node " .. n.location)
os.exit(0, true) -- closes the Lua state: the binding's __gc stops the net first
]])
    local cmd = ("cd %s && LUA_PATH=%s LUA_CPATH=%s timeout -k 5 60 luajit %s 2>&1; echo status $?")
      :format(q(support.root), q(package.path), q(package.cpath), q(script))
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    assert.matches("^node 127%.0%.0%.1:%d+\nstatus 0\n$", out)
  end)
end)

describe("a connection that has not authenticated", function()
  after_each(stop_all)

  it("is closed at its first frame over 4 KB, with the reason in the log", function()
    local srv, loc = start(PRELUDE .. "acoro.receive()\n")
    local host, port = loc:match("^(.*):(%d+)$")
    acoro.run(function()
      local c = assert(acoro.tcp.connect(host, tonumber(port), { timeout = 10 }))
      -- a frame header announcing 5000 bytes (type 1), and the start of its payload
      assert(c:send("\0\0\19\136\1" .. string.rep("x", 100)))
      repeat local d = c:recv(4096, 10) until d == nil -- the node's HELLO, then the close
      c:close()
    end)
    assert.matches("^malformed: frame length 5000 %(limit 4096",
      srv:expect("peer 127%.0%.0%.1:%d+: (.*)$"))
  end)
end)

-- acoro-node's host options with real processes on loopback: --ext-addr
-- (and the CLI's and acoro.node's ext_addr) through a TCP relay standing
-- for a NAT's port forward, --max-memory (a job past it fails, its server
-- is started again), --service-start/stop/end on a clock the spec moves
-- (ACORO_NODE_CLOCK_FILE, the test hook), --user (as root: servers run as
-- nobody).

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")

local dirs = {}
local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)) == 0)
  dirs[#dirs + 1] = d
  return d
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- Starts acoro-node with 2 servers on loopback (`env`: "NAME=value ..."
-- for its environment); returns the child, its location, where it listens
-- and its dest path.
local function start_node(extra, env)
  local dest = tmpdir()
  local c = ns.track(net.spawn(("%s%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
    .. " --dest-path %s %s"):format(env and ("env " .. env .. " ") or "", q(NODE_BIN), q(ns.secret),
    q(dest), extra or "")))
  local loc, rest = c:expect("^acoro%-node listening (%S+)(.*)$")
  return c, loc, rest:match("^ %(at (%S+)%)$") or loc, dest
end

-- A TCP relay on 127.0.0.2 (any port), as a NAT's port forward: each
-- connection it accepts goes to the "host:port" in the file target (read
-- then: the spec writes it once the node behind says where it listens).
-- Says "relay HOST:PORT" once listening and "relayed" per connection.
local RELAY = ns.SAY .. [[
local srv = assert(acoro.tcp.listen("127.0.0.2", 0))
local _, port = srv:getsockname()
say("relay 127.0.0.2:" .. port)
local function pump(a, b)
  while true do
    local d = a:recv()
    if not d or d == "" or not b:send(d) then break end
  end
  a:close()
  b:close()
end
while true do
  local c = srv:accept()
  local f = assert(io.open(arg[1]))
  local host, p = f:read("*l"):match("^(.*):(%d+)$")
  f:close()
  local u = assert(acoro.tcp.connect(host, tonumber(p)))
  say("relayed")
  acoro.spawn(pump, c, u)
  acoro.spawn(pump, u, c)
end
]]

local function start_relay()
  local target = support.write_temp("", ".target")
  local r = ns.track(net.spawn_acoro(q(support.write_temp(RELAY)) .. " " .. q(target)))
  return r, r:expect("^relay (127%.0%.0%.2:%d+)$"), target
end

local function running_as_root()
  local p = io.popen("id -u")
  local uid = p:read("*l")
  p:close()
  return uid == "0"
end

local AS_NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups "

-- Whether nobody can run this build's acoro and load its modules (a tree
-- under a directory of root's alone, as tools/mutate's scratch copy, is not).
local function nobody_can_run()
  local p = io.popen(AS_NOBODY .. q(support.bin) .. [[ -e 'require "acoro.discoro.server" print("ok")' 2>&1]])
  local out = p:read("*a")
  p:close()
  return out == "ok\n"
end

-- ASan (tools/test --asan preloads it) and TSan (tools/tsan's build-tsan)
-- map their shadow memory at start: no address-space limit fits them.
local function under_sanitizer()
  return (os.getenv("LD_PRELOAD") or ""):find("san", 1, true) ~= nil
    or (os.getenv("ACORO_BUILD") or ""):find("san", 1, true) ~= nil
end

describe("acoro-node options", function()
  after_each(function()
    ns.stop_all()
    for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
    dirs = {}
  end)

  it("acoro --ext-addr: peers reach the node through the forward; it knows itself by either location", function()
    local relay, ext, target = start_relay()
    local a = ns.track(net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s --ext-addr %s %s")
      :format(q(ns.secret), ext, q(support.write_temp(ns.PRELUDE .. [[
local node = acoro.node()
say("listen", node.listen)
assert(acoro.self():register("a"))
say("by location", acoro.locate("a", { location = node.location }) == acoro.self())
say("by listen", acoro.locate("a", { location = node.listen }) == acoro.self())
local m = acoro.receive(30)
-- its own handle, back from the peer: this coroutine, not a remote one
say("own handle", m.me == acoro.self(), acoro.is_remote(m.me))
m.from:send("pong")
acoro.receive(1)
]])))))
    assert.equal(ext, a:expect("^listening (%S+)$"))
    local listen = a:expect("^listen (127%.0%.0%.1:%d+)$")
    assert.are_not.equal(ext, listen)
    write(target, listen .. "\n")
    assert.equal("true", a:expect("^by location (%S+)$"))
    assert.equal("true", a:expect("^by listen (%S+)$"))
    local b = ns.start_peer(ext, [[
local h = assert(acoro.locate("a", { location = arg[1], timeout = 10 }))
say("handle", h.location)
h:send({ from = acoro.self(), me = h })
say("reply", acoro.receive(10))
local locs = {}
for _, p in ipairs(acoro.peers()) do locs[#locs + 1] = p.location end
say("peers", table.concat(locs, " "))
]])
    relay:expect("^relayed$")
    assert.equal(ext, b:expect("^handle (%S+)$"))
    assert.equal("true false", a:expect("^own handle (.*)$"))
    assert.equal("pong", b:expect("^reply (%S+)$"))
    assert.equal(ext, b:expect("^peers (.*)$")) -- the node as its peers know it, never its listener
  end)

  it("acoro.node{ext_addr=} takes host:port only, and on loopback only without a secret", function()
    local c = net.spawn_acoro("-e " .. q([[
local acoro = require "acoro"
print(pcall(acoro.node, { host = "127.0.0.1", secret = "s", ext_addr = "127.0.0.2" }))
print(pcall(acoro.node, { host = "127.0.0.1", secret = "s", ext_addr = "127.0.0.2:70000" }))
print(pcall(acoro.node, { host = "127.0.0.1", ext_addr = "10.1.2.3:5000" }))
]]))
    local out = c:close()
    assert.matches('ext_addr must be "host:port" %(a port from 1 to 65535%), got 127%.0%.0%.2\n', out)
    assert.matches("got 127%.0%.0%.2:70000\n", out)
    assert.matches("ext_addr 10%.1%.2%.3:5000 without a secret", out)
  end)

  it("acoro-node --ext-addr: a client reaches it through the forward only, and its servers find it", function()
    local relay, ext, target = start_relay()
    local node, loc, listen = start_node("--ext-addr " .. ext)
    assert.equal(ext, loc)
    assert.matches("^127%.0%.0%.1:%d+$", listen)
    write(target, listen .. "\n")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local st = acoro.spawn(function()
  local up = 0
  while true do
    local m = acoro.receive()
    if m.status == "NodeInitialized" then say("initialized", m.location) end
    if m.status == "ServerInitialized" then
      up = up + 1
      if up == 2 then main:send("two servers") end
    end
  end
end)
st:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = st, code = "function sq(x) return x * x end" })
say("schedule", comp:schedule())
assert(acoro.receive(30) == "two servers")
say("sq", comp:run_result("sq", 7))
local r = comp:run_results("sq", { 1, 2, 3, 4, 5, 6, 7, 8 })
say("sqs", table.concat(r, " "))
local nodes = comp:nodes()
say("nodes", #nodes, nodes[1].location)
say("servers", #comp:servers())
comp:close()
]], nil, nil, q(ext))
    local initialized, scheduled = ns.expect_all(cli, { "^initialized (%S+)$", "^schedule (%S+)$" })
    assert.equal(ext, initialized)
    assert.equal("true", scheduled)
    relay:expect("^relayed$")
    assert.equal("49", cli:expect("^sq (%S+)$"))
    assert.equal("1 4 9 16 25 36 49 64", cli:expect("^sqs (.*)$"))
    assert.equal("1 " .. ext, cli:expect("^nodes (.*)$"))
    assert.equal("2", cli:expect("^servers (%S+)$")) -- both found their node by its ext location
    node:expect("computation c1 .*: closed$")
  end)

  it("--max-memory: a job past it fails with a memory error, its server starts again, other jobs go on", function()
    if under_sanitizer() then return pending("a sanitizer reserves more address space than the limit") end
    local node, loc = start_node("--max-memory 734003200") -- 700 MB; a server starts at about 250 MB
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local st = acoro.spawn(function()
  local up = 0
  while true do
    local m = acoro.receive()
    if m.status == "ServerInitialized" then
      up = up + 1
      if up == 3 then main:send("replaced") end
    elseif m.status == "ServerClosed" then
      say("server closed", m.reason)
    end
  end
end)
st:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = st, retries = 2, code = [=[
function hog()
  local t = {}
  for i = 1, 4096 do t[i] = ("x"):rep(8 * 1024 * 1024 - 8) .. ("%08d"):format(i) end
  return #t
end
function sq(x) return x * x end
]=] })
assert(comp:schedule())
say("hog", comp:run_result("hog"))
say("replaced", acoro.receive(30))
local r = comp:run_results("sq", { 1, 2, 3, 4, 5, 6, 7, 8 })
say("sqs", table.concat(r, " "))
comp:close()
]], nil, nil, q(loc))
    assert.equal("nil not enough memory (the server's memory limit)", cli:expect("^hog (.*)$"))
    assert.equal("unreachable", cli:expect("^server closed (.*)$"))
    node:expect("server %d ended %(status 3, signal 0%): restarting it$")
    assert.equal("replaced", cli:expect("^replaced (.*)$"))
    assert.equal("1 4 9 16 25 36 49 64", cli:expect("^sqs (.*)$"))
  end)

  it("acoro --max-memory limits the process itself (RLIMIT_AS)", function()
    if under_sanitizer() then return pending("a sanitizer reserves more address space than the limit") end
    local c = net.spawn_acoro("--max-memory 268435456 -e " .. q([[
local lim = io.open("/proc/self/limits"):read("*a"):match("Max address space%s+(%d+)")
print("limit", lim)
local t = {}
for i = 1, 4096 do t[i] = ("x"):rep(8 * 1024 * 1024 - 8) .. ("%08d"):format(i) end
]]))
    local out = c:close()
    assert.matches("limit%s268435456\n", out)
    assert.matches("acoro: not enough memory", out, 1, true)
    local bad = net.spawn_acoro("--max-memory 12x -e 'print(1)'"):close()
    assert.matches("--max-memory needs a number of bytes, got 12x", bad, 1, true)
  end)
end)

-- --service-start/stop/end on the node's clock, which the spec sets: the
-- file ACORO_NODE_CLOCK_FILE names (the test hook), read each 0.1 s.
describe("acoro-node hours of service", function()
  after_each(function()
    ns.stop_all()
    for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
    dirs = {}
  end)

  local SCHEDULE = ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = "function sq(x) return x * x end" })
say("schedule", comp:schedule({ timeout = 10 }))
if arg[2] then -- tells the client that runs on
  assert(acoro.peer(arg[2], 10))
  assert(acoro.locate("running", { location = arg[2], timeout = 10 })):send("go")
end
]]

  it("takes none before start, new ones until stop (running ones go on), closes them at end", function()
    local clock = support.write_temp("07:59\n", ".clock")
    local node, loc, _, dest = start_node("--service-start 08:00 --service-stop 17:00 --service-end 18:00",
      "ACORO_NODE_CLOCK_FILE=" .. q(clock))
    assert.matches("acoro-node: takes computations from 08:00 to 17:00, closes them at 18:00; its time is 07:59\n",
      node:output(), 1, true) -- logged before it listens
    local early = ns.start(SCHEDULE, nil, nil, q(loc))
    assert.equal("nil no node accepted the computation: " .. loc .. ": out of service: it takes"
      .. " computations from 08:00 to 17:00 (its time is 07:59) ENOPEER", early:expect("^schedule (.*)$"))
    write(clock, "08:00\n")
    node:expect("in service at 08:00: taking computations$")
    local running, rloc = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
assert(main:register("running"))
local st = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if m.status == "NodeClosed" then
      say("node closed", m.reason)
      main:send("closed")
    end
  end
end)
st:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = st, code = "function sq(x) return x * x end" })
say("schedule", comp:schedule())
say("sq", comp:run_result("sq", 6))
say("go", acoro.receive(30))
say("sq", comp:run_result("sq", 7))
acoro.receive_match(function(m) return m == "closed" end, 30)
]], nil, nil, q(loc))
    assert.equal("true", running:expect("^schedule (.*)$"))
    assert.equal("36", running:expect("^sq (.*)$"))
    write(clock, "17:00\n")
    node:expect("out of service: it takes computations from 08:00 to 17:00 %(its time is 17:00%); running ones go on$")
    local late = ns.start(SCHEDULE, nil, nil, q(loc) .. " " .. q(rloc))
    assert.equal("nil no node accepted the computation: " .. loc .. ": out of service: it takes"
      .. " computations from 08:00 to 17:00 (its time is 17:00) ENOPEER", late:expect("^schedule (.*)$"))
    assert.equal("go", running:expect("^go (.*)$"))
    assert.equal("49", running:expect("^sq (.*)$")) -- after stop, the running computation goes on
    write(clock, "18:00\n")
    node:expect("end of service %(18:00%): closing every computation$")
    assert.equal("end of service (18:00)", running:expect("^node closed (.*)$"))
    node:expect("computation c1 .*: closing %(end of service %(18:00%)%)$")
    node:expect("computation c1 .*: closed$")
    local p = io.popen("ls -A " .. q(dest))
    assert.equal("acoro-node.pid", (p:read("*a"):gsub("\n$", ""))) -- its directory went
    p:close()
  end)

  it("refuses times that are not HH:MM and a stop after the end", function()
    local function run(opts)
      local c = net.spawn(("%s --listen 127.0.0.1:0 --no-discover --secret-file %s --dest-path %s %s")
        :format(q(NODE_BIN), q(ns.secret), q(tmpdir()), opts))
      return c:close()
    end
    assert.matches("--service-start needs a time of day HH:MM, got 25:00", run("--service-start 25:00"), 1, true)
    assert.matches("--service-end needs a time of day HH:MM, got 8h", run("--service-end 8h"), 1, true)
    assert.matches("--service-stop 19:00 comes after --service-end 18:00 (from --service-start 08:00)",
      run("--service-start 08:00 --service-stop 19:00 --service-end 18:00"), 1, true)
  end)
end)

describe("acoro-node --user", function()
  after_each(function()
    ns.stop_all()
    for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
    dirs = {}
  end)

  it("as root: servers run as nobody (uid, gid, groups), in a directory given to nobody", function()
    if not running_as_root() then return pending("needs root (the node gives its servers to nobody)") end
    if not nobody_can_run() then return pending("nobody cannot run this build (a directory on its path is closed)") end
    local closed = tmpdir() -- root's alone
    assert(os.execute("chmod 700 " .. q(closed)) == 0)
    local node, loc, _, dest = start_node("--user nobody")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = [=[
local ffi = require "ffi"
pcall(ffi.cdef, "int getpid(void);")
function pid() return ffi.C.getpid() end
function write(path)
  local f, err = io.open(path, "w")
  if not f then return false, err end
  f:write("x")
  f:close()
  return true
end
]=] })
assert(comp:schedule())
say("server pid", comp:run_result("pid"))
say("own dir", comp:run_result("write", "mine.txt"))
say("root's dir", comp:run_result("write", arg[2] .. "/theirs.txt"))
acoro.receive(60) -- the spec looks at the server meanwhile, then ends this client
]], nil, nil, q(loc) .. " " .. q(closed))
    local pid = cli:expect("^server pid (%d+)$")
    local f = assert(io.open("/proc/" .. pid .. "/status"))
    local st = f:read("*a")
    f:close()
    local function field(name) return (st:match("\n" .. name .. ":\t([^\n]*)"):gsub("%s+", " "):gsub(" $", "")) end
    assert.equal("65534 65534 65534 65534", field("Uid"))
    local gid = io.popen("id -g nobody"):read("*l")
    assert.equal(("%s %s %s %s"):format(gid, gid, gid, gid), field("Gid"))
    assert.equal(io.popen("id -G nobody"):read("*l"), field("Groups"))
    assert.equal("true", cli:expect("^own dir (.*)$"))
    assert.matches("^false .*Permission denied$", cli:expect("^root's dir (.*)$"))
    local p = io.popen("stat -c %U " .. q(dest .. "/c1") .. " " .. q(dest .. "/c1/mine.txt"))
    assert.equal("nobody nobody", (p:read("*a"):gsub("\n", " "):gsub(" $", "")))
    p:close()
    assert.is_nil(io.open(closed .. "/theirs.txt"))
    node:kill()
  end)

  it("refuses --user when the node (or acoro) does not run as root", function()
    if not running_as_root() then
      local out = net.spawn(("env ACORO_SECRET=s %s --listen 127.0.0.1:0 --no-discover --user nobody --dest-path %s")
        :format(q(NODE_BIN), q(tmpdir()))):close()
      assert.matches("--user needs the node to run as root", out, 1, true)
      return
    end
    if not nobody_can_run() then return pending("nobody cannot run this build (a directory on its path is closed)") end
    local as_nobody = AS_NOBODY
    local out = net.spawn(("%senv ACORO_SECRET=s %s --listen 127.0.0.1:0 --no-discover --user nobody"
      .. " --dest-path /tmp/acoro-node-opts-%d"):format(as_nobody, q(NODE_BIN), math.random(1e9))):close()
    assert.matches("--user needs the node to run as root (it runs as uid 65534)", out, 1, true)
    out = net.spawn(as_nobody .. q(support.bin) .. " --user nobody -e 'print(1)'"):close()
    assert.matches("--user needs root: this process runs as uid 65534", out, 1, true)
    out = net.spawn(q(support.bin) .. " --user no-such-user-here -e 'print(1)'"):close()
    assert.matches("--user: ENOENT: no user no-such-user-here", out, 1, true)
  end)
end)

describe("acoro.discoro.service (the hours, without a node)", function()
  local service = require "acoro.discoro.service"
  local function at(s)
    local h, m = s:match("^(%d+):(%d+)$")
    return tonumber(h) * 3600 + tonumber(m) * 60
  end
  local function taking(sv, list)
    local t = {}
    for _, s in ipairs(list) do t[#t + 1] = sv:taking(at(s)) and "y" or "n" end
    return table.concat(t)
  end

  it("windows: start to stop, start to midnight, midnight to end, past midnight", function()
    assert.is_nil(service.new({}))
    local times = { "00:00", "05:59", "06:00", "07:59", "08:00", "16:59", "17:00", "21:59", "22:00", "23:59" }
    assert.equal("nnnnyynnnn", taking(assert(service.new({ start = "08:00", stop = "17:00" })), times))
    assert.equal("nnnnyyyyyy", taking(assert(service.new({ start = "08:00" })), times))
    assert.equal("yyyyyyynnn", taking(assert(service.new({ ["end"] = "18:00" })), times))
    assert.equal("yynnnnnnyy", taking(assert(service.new({ start = "22:00", stop = "06:00" })), times))
    assert.equal("yynnnnnnyy", taking(assert(service.new({ start = "22:00", ["end"] = "06:00" })), times))
    local _, why = assert(service.new({ start = "08:00", stop = "17:00" })):taking(at("07:30"))
    assert.equal("out of service: it takes computations from 08:00 to 17:00 (its time is 07:30)", why)
    _, why = assert(service.new({ start = "08:00" })):taking(at("07:30"))
    assert.equal("out of service: it takes computations from 08:00 to 24:00 (its time is 07:30)", why)
  end)

  it("refuses a stop past the end, equal start and stop, and malformed times", function()
    local function why(o) return select(2, service.new(o)) end
    assert.equal("--service-stop 07:00 comes after --service-end 06:00 (from --service-start 22:00)",
      why({ start = "22:00", stop = "07:00", ["end"] = "06:00" }))
    assert.equal("--service-stop is --service-start: the node would never take one",
      why({ start = "08:00", stop = "08:00" }))
    assert.equal("--service-start needs a time of day HH:MM, got 8:00:00", why({ start = "8:00:00" }))
    assert.equal("--service-stop needs a time of day HH:MM, got 12:60", why({ stop = "12:60" }))
    assert.truthy(service.new({ start = "22:00", stop = "02:00", ["end"] = "06:00" }))
  end)
end)

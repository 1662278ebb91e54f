-- Liveness, ordering and trust of acoro nodes as whole OS processes:
-- a peer frozen with SIGSTOP or killed with SIGKILL, a coroutine busy for 8 s without
-- yielding, 16 concurrent senders to one receiver, a peer of another protocol version,
-- the pre-auth garbage set against a running node, and peers= reconnecting after a
-- restart. Real `acoro` processes on 127.0.0.1 (as spec/node_spec.lua), each under
-- `timeout`, all stopped in after_each (a frozen one is continued first). Waits are for
-- lines of output; times are bounded only generously (bench/liveness.lua measures the
-- detection times: bench/run lv).

local support = require "support"
local ns = require "node_support"

local q = support.shell_quote

-- Nodes start with ns.start (its PRELUDE prints the location and pid first; env:
-- "NAME=value ..." or nil); frozen: the pids stopped with SIGSTOP, continued before
-- they are killed.
local frozen = {}
local function start(source, extra, args, env) return ns.start(source, extra, nil, args, env) end

local function stop_all()
  for pid in pairs(frozen) do os.execute("kill -CONT " .. pid .. " 2>/dev/null") end
  frozen = {}
  ns.stop_all()
end

local function rss_kb(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local PRELUDE = ns.PRELUDE

describe("a peer that is frozen (SIGSTOP) or killed (SIGKILL)", function()
  after_each(stop_all)

  -- a and b end when told; idle never receives (a deliver to it waits for ever);
  -- flush answers delivers (a round trip that orders what the server sent before).
  local SERVER = PRELUDE .. [[
for _, name in ipairs({ "a", "b" }) do
  acoro.spawn(function() acoro.receive() end):register(name)
end
acoro.spawn(function() acoro.sleep(1e6) end):register("idle")
acoro.spawn(function() while true do acoro.receive() end end):register("flush")
acoro.receive()
]]

  -- arg[1]: the server; arg[2]: "STOP" or "KILL". Monitors a (twice: from this
  -- coroutine and from `other`) and b, waits in a deliver to idle, then reports each
  -- Exit, the deliver's end and "offline" with the seconds since "monitoring". With
  -- STOP it then reconnects (the spec continues the server), ends a and b, and counts
  -- the Exits that came after the first ones: none may.
  local CLIENT = PRELUDE .. [[
local server, mode = arg[1], arg[2]
acoro.peer_status(acoro.self())
assert(acoro.peer(server, 10))
local function find(name) return assert(acoro.locate(name, { timeout = 10, location = server })) end
local a, b, idle, flush = find("a"), find("b"), find("idle"), find("flush")
local other_exits = 0
local other = acoro.spawn(function()
  while true do
    local e = acoro.receive()
    if acoro.is_exit(e) then
      other_exits = other_exits + 1
      say("other exit", e.coro == a, e.reason)
    end
  end
end)
other:set_daemon(true)
a:monitor()
b:monitor()
a:monitor(other)
local t0
acoro.spawn(function()
  local ok, why, code = idle:deliver("never taken")
  say("waiting deliver", ok, why, code, ("%.2f"):format(acoro.now() - t0))
end)
acoro.sleep(0.2) -- the deliver is on its way before the spec stops the server
t0 = acoro.now()
say("monitoring")
local exits, offline = 0, false
local deadline = t0 + 40
while (exits < 2 or not offline) and acoro.now() < deadline do
  local m = acoro.receive(deadline - acoro.now())
  if acoro.is_exit(m) then
    exits = exits + 1
    say("exit", m.coro == a and "a" or m.coro == b and "b" or "?", m.reason, ("%.2f"):format(acoro.now() - t0))
  elseif acoro.is_peer_status(m) and m.status == "offline" then
    offline = true
    say("offline", m.location == server, ("%.2f"):format(acoro.now() - t0))
  end
end
-- (at once: "unreachable", not the 5 s "timeout")
say("deliver after down", a:deliver("x", 5))
if mode == "STOP" then
  -- the spec continues the server now; its old link is gone, a new one comes up
  local ok, why
  for _ = 1, 6 do
    ok, why = acoro.peer(server, 10)
    if ok then break end
    acoro.sleep(1)
  end
  say("reconnected", ok, why)
  -- same incarnation: the old handles work again; a and b end normally now
  a:send("end")
  b:send("end")
  say("joined", a:join(10), b:join(10))
  say("flushed", flush:deliver("x", 10))
else
  acoro.sleep(1) -- nothing more can come from a killed node; give a stray Exit time
end
local extra = 0
while acoro.receive_match(function(m) return acoro.is_exit(m) end, 0) do extra = extra + 1 end
say("extra exits", extra, other_exits)
]]

  local function run(mode)
    local srv, sloc = start(SERVER, "--name frozen")
    local pid = srv:expect("^pid (%d+)$")
    local cli = start(CLIENT, "--name watcher", q(sloc) .. " " .. mode)
    cli:expect("^monitoring$")
    os.execute("kill -" .. mode .. " " .. pid)
    if mode == "STOP" then frozen[pid] = true end
    -- every line below comes once, in an order that is not fixed (`other` runs apart)
    local keys = { "exit a", "exit b", "other exit", "offline", "waiting deliver",
      "deliver after down" }
    local seen, got = {}, 0
    while got < #keys do
      local l = cli:line()
      if l == nil then error("client ended; output:\n" .. cli:output()) end
      for _, key in ipairs(keys) do
        if l:sub(1, #key + 1) == key .. " " then
          assert.is_nil(seen[key], "twice: " .. l)
          seen[key] = l:sub(#key + 2)
          got = got + 1
          break
        end
      end
    end
    assert.matches("^unreachable ", seen["exit a"])
    assert.matches("^unreachable ", seen["exit b"])
    assert.equal("true unreachable", seen["other exit"])
    assert.matches("^true ", seen["offline"])
    assert.matches("^nil unreachable ENOPEER ", seen["waiting deliver"])
    -- detected within heartbeat * missed (4 s) plus a tick; the bound is generous
    for _, key in ipairs({ "exit a", "exit b", "offline" }) do
      assert.is_true(tonumber(seen[key]:match("(%S+)$")) < 20, key .. " " .. seen[key])
    end
    assert.equal("nil unreachable ENOPEER", seen["deliver after down"])
    if mode == "STOP" then
      os.execute("kill -CONT " .. pid)
      frozen[pid] = nil
      assert.equal("true nil", cli:expect("^reconnected (.*)$"))
      assert.equal("true true", cli:expect("^joined (.*)$"))
      assert.equal("true", cli:expect("^flushed (.*)$"))
    end
    -- each monitor fired exactly once: nothing after the first Exits
    assert.equal("0 1", cli:expect("^extra exits (.*)$"))
  end

  it("SIGSTOP: each monitor of its coroutines fires once with \"unreachable\" within the "
    .. "heartbeat bound, a waiting deliver returns \"unreachable\", peer_status says "
    .. "offline; continued, it is a peer again and no second Exit comes", function()
    run("STOP")
  end)

  it("SIGKILL: each monitor fires once with \"unreachable\", a waiting deliver returns "
    .. "\"unreachable\", peer_status says offline", function()
    run("KILL")
  end)
end)

describe("a coroutine busy for 8 s without yielding", function()
  after_each(stop_all)

  it("does not take its node offline, and messages sent meanwhile all arrive after it, "
    .. "in order", function()
    local busy, bloc = start(PRELUDE .. [[
ffi.cdef [=[
typedef struct { long tv_sec; long tv_nsec; } lv_timespec;
int clock_gettime(int clk, lv_timespec *ts);
]=]
acoro.peer_status(acoro.self())
local busy_done = false
local recv = acoro.spawn(function()
  local got, after, ordered = 0, 0, true
  while got < 10 do
    local m = acoro.receive()
    got = got + 1
    if m.i ~= got then ordered = false end
    if busy_done then after = after + 1 end
    if got == 10 then m.from:send({ got = got, after = after, ordered = ordered }) end
  end
end)
recv:register("recv")
local spinner = acoro.spawn(function()
  acoro.receive() -- "go"
  say("busy start")
  local ts = ffi.new("lv_timespec")
  local function now() -- CLOCK_MONOTONIC (1): wall time, however the CPU is shared
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
  local t0, spins = now(), 0
  while now() - t0 < 8 do spins = spins + 1 end -- never yields
  busy_done = true
  say("busy done", spins > 0)
end)
spinner:register("spinner")
spinner:join()
recv:join(60)
-- the events of the busy time were all handled before recv's last message
local off = acoro.receive_match(function(m) return acoro.is_peer_status(m) and m.status == "offline" end, 0)
say("busy side offline seen", off ~= nil)
-- stays up until the spec stops it (its exit would take the link down); the peer
-- statuses that come to this coroutine meanwhile are not the end
while true do acoro.receive() end
]], "--name busy")
    local cli = start(PRELUDE .. [[
acoro.peer_status(acoro.self())
assert(acoro.peer(arg[1], 10))
local spinner = assert(acoro.locate("spinner", { timeout = 10, location = arg[1] }))
local recv = assert(acoro.locate("recv", { timeout = 10, location = arg[1] }))
local me = acoro.self()
assert(spinner:send("go"))
-- 10 messages over 1 s, all while the other side spins (8 s: slack for a loaded machine)
for i = 1, 10 do
  acoro.sleep(0.1)
  assert(recv:send({ i = i, from = me }))
end
say("sent all")
local r = acoro.receive_match(function(m) return type(m) == "table" and m.got ~= nil end, 40)
say("reply", r and r.got, r and r.after, r and r.ordered)
local off = acoro.receive_match(function(m) return acoro.is_peer_status(m) and m.status == "offline" end, 0)
say("offline seen", off ~= nil)
]], "--name patient", q(bloc))
    busy:expect("^busy start$")
    cli:expect("^sent all$")
    assert.equal("true", busy:expect("^busy done (.*)$"))
    local busy_off = busy:expect("^busy side offline seen (.*)$")
    local reply, off = cli:expect("^reply (.*)$"), cli:expect("^offline seen (.*)$")
    for _, c in ipairs({ busy, cli }) do -- all they said, for the messages below
      c:kill()
      c:rest()
    end
    local outputs = "this side:\n" .. cli:output() .. "\nbusy side:\n" .. busy:output()
    assert.equal("10 10 true", reply, outputs)
    assert.equal("false", off, outputs)
    assert.equal("false", busy_off, outputs)
  end)
end)

describe("per-pair ordering", function()
  after_each(stop_all)

  it("16 concurrent senders to one remote receiver: each sender's messages arrive in "
    .. "order, none lost or duplicated (small, direct, coalesced and split messages)", function()
    local srv, sloc = start(PRELUDE .. [[
local counts, bad, done = {}, {}, 0
local sink = acoro.spawn(function()
  while done < 16 do
    local m = acoro.receive()
    local c = counts[m.s] or 0
    if m.done then
      done = done + 1
      if c ~= m.n then bad[#bad + 1] = ("sender %d: %d of %d"):format(m.s, c, m.n) end
    else
      if m.i ~= c + 1 then bad[#bad + 1] = ("sender %d: %d after %d"):format(m.s, m.i, c) end
      counts[m.s] = m.i
    end
  end
  local total = 0
  for _, v in pairs(counts) do total = total + v end
  say("received", total, #bad == 0 and "ok" or table.concat(bad, "; ", 1, math.min(#bad, 5)))
end)
sink:register("sink")
sink:join()
]], "--name sink")
    start(PRELUDE .. [[
assert(acoro.peer(arg[1], 10))
local sink = assert(acoro.locate("sink", { timeout = 10, location = arg[1] }))
local N = 300
local senders = {}
for s = 1, 16 do
  senders[s] = acoro.spawn(function()
    local small = ("x"):rep(s * 37)
    local big = ("y"):rep(150 * 1024) -- over 64 KB: goes in pieces
    for i = 1, N do
      local pad = (s == 1 and i % 60 == 0) and big or small
      assert(sink:send({ s = s, i = i, pad = pad }))
      if i % (s % 5 + 3) == 0 then acoro.yield() end
    end
    assert(sink:send({ s = s, done = true, n = N }))
  end)
end
for s = 1, 16 do assert(senders[s]:join(60)) end
say("sent")
]], "--name senders", q(sloc))
    assert.equal("4800 ok", srv:expect("^received (.*)$"))
  end)
end)

describe("a peer of another protocol version", function()
  after_each(stop_all)

  it("is refused: acoro.peer returns the reason, both sides log one line, and a peer of "
    .. "this version still connects", function()
    local w, wloc = start(PRELUDE .. "acoro.receive()\n", "--name here")
    local v = start(PRELUDE .. [[
say("peer", acoro.peer(arg[1], 10))
]], "--name old -e " .. q('require("acoro.core").net.test_version(9, 0)'), q(wloc))
    assert.equal("nil refused: protocol version 3.0, this node speaks 9.0 ECONNREFUSED", v:expect("^peer (.*)$"))
    local ok = start(PRELUDE .. [[
say("peer", acoro.peer(arg[1], 10))
]], "--name fine", q(wloc))
    assert.equal("true", ok:expect("^peer (.*)$"))
    stop_all() -- every output is read to its end: count the lines about the version
    local function count(c)
      local n = 0
      for l in c:output():gmatch("[^\n]+") do
        if l:match("^acoro: node: .*protocol version") then n = n + 1 end
      end
      return n
    end
    assert.equal(1, count(v), v:output())
    assert.equal(1, count(w), w:output())
    assert.matches("refused: protocol version 9%.0, this node speaks 3%.0", w:output())
    assert.equal(0, count(ok), ok:output())
  end)

  it("the version is a test call only: no environment variable changes it, and the call "
    .. "checks its arguments", function()
    local _, loc = start(PRELUDE .. "acoro.receive()\n", "--name env", nil,
      "ACORO_TEST_NET_VERSION=9.0")
    local ok = start(PRELUDE .. [[
say("peer", acoro.peer(arg[1], 10))
]], "--name fine", q(loc))
    assert.equal("true", ok:expect("^peer (.*)$"))
    local core = require("acoro.core")
    assert.has_error(function() core.net.test_version("nine") end)
    assert.has_error(function() core.net.test_version(70000, 0) end)
  end)
end)

describe("the pre-auth garbage set against a running node", function()
  after_each(stop_all)

  -- arg[1]: the node under attack. A node itself (so that it can be the authenticated
  -- peer that keeps exchanging messages with the echo there: `pinger`), it opens raw TCP
  -- connections to the node's port and sends each garbage case, ROUNDS times one after
  -- another (the slow case twice at once), and reports for each case the longest time
  -- the node took to close such a connection.
  local ATTACKER = PRELUDE .. [[
local host, port = arg[1]:match("^(.*):(%d+)$")
assert(acoro.peer(arg[1], 10))
local echo = assert(acoro.locate("echo", { timeout = 10, location = arg[1] }))
local me = acoro.self()
local pings, fails, worst = 0, 0, 0
local function ping()
  local t = acoro.now()
  echo:send({ from = me, i = pings })
  local r = acoro.receive(5)
  if r ~= pings then fails = fails + 1 end
  worst = math.max(worst, acoro.now() - t)
  pings = pings + 1
end
for _ = 1, 20 do ping() end
say("ready")
acoro.sleep(0.5) -- the spec reads the node's RSS now

local function be32(n)
  return string.char(math.floor(n / 2^24) % 256, math.floor(n / 2^16) % 256, math.floor(n / 2^8) % 256, n % 256)
end
math.randomseed(7)
local random = {}
for i = 1, 4096 do random[i] = string.char(math.random(0, 255)) end
local nested = ("\145"):rep(100000) -- 0x91: an array of one element, 100,000 deep
local CASES = {
  random = table.concat(random),
  frame_4gb = "\255\255\255\255\6" .. ("z"):rep(1000),
  array_2p32 = "\221\255\255\255\255" .. ("z"):rep(100),                -- raw: as a length
  framed_array_2p32 = be32(6) .. "\6\221\255\255\255\255",              -- a MSG frame pre-auth
  nested = nested,                                                      -- raw
  framed_nested = be32(4000) .. "\6" .. nested:sub(1, 3999),            -- under 4 KB, pre-auth
}
local ROUNDS = 15

-- Sends `data` (or, slow, one byte a second) on a new connection; returns the seconds
-- until the node closed it (nil and why if it did not within 20 s).
local function attack(data, slow)
  local s, err = acoro.tcp.connect(host, tonumber(port), { timeout = 5 })
  if not s then return nil, err end
  local t0 = acoro.now()
  local writer = acoro.spawn(function()
    if slow then
      for i = 1, 20 do
        if not s:send(data:sub(i, i), 2) then return end
        acoro.sleep(1)
      end
    else
      s:send(data, 5)
    end
  end)
  writer:set_daemon(true)
  local closed
  while acoro.now() - t0 < 20 do
    local d, why = s:recv(65536, 20 - (acoro.now() - t0))
    if not d then
      if why ~= "timeout" then closed = acoro.now() - t0 end
      break
    end
  end
  writer:terminate()
  s:close()
  if not closed then return nil, "still open after 20 s" end
  return closed
end

local results, running = {}, 0
local function case(name, data, slow)
  running = running + 1
  acoro.spawn(function()
    local worst_close = 0
    for _ = 1, slow and 1 or ROUNDS do
      local secs, why = attack(data, slow)
      if not secs then
        worst_close = why
        break
      end
      worst_close = math.max(worst_close, secs)
    end
    results[#results + 1] = { name, worst_close }
    running = running - 1
  end)
end
for name, data in pairs(CASES) do case(name, data) end
local slow_bytes = be32(256) .. ("\1"):rep(40) -- a frame that never completes
case("slow_1", slow_bytes, true)
case("slow_2", slow_bytes, true)
while running > 0 do -- a round trip every 10 ms or so: steady, not a flood
  ping()
  acoro.sleep(0.01)
end
for _ = 1, 20 do ping() end -- and after
table.sort(results, function(a, b) return a[1] < b[1] end)
for _, r in ipairs(results) do
  say("closed", r[1], type(r[2]) == "number" and ("%.2f"):format(r[2]) or r[2])
end
say("pings", pings, fails, ("%.3f"):format(worst))
say("done")
acoro.receive() -- until the spec stops it (the node's RSS is read first)
]]

  it("closes each such connection within the handshake deadline, while an authenticated "
    .. "peer keeps exchanging messages, and the node's RSS grows less than 10 MB", function()
    local srv, sloc = start(PRELUDE .. [[
acoro.spawn(function()
  while true do
    local m = acoro.receive()
    m.from:send(m.i)
  end
end):register("echo")
acoro.receive()
]], "--name target")
    local pid = srv:expect("^pid (%d+)$")
    local att = start(ATTACKER, "--name attacker", q(sloc))
    att:expect("^ready$")
    local before = assert(rss_kb(pid))
    local closes = {}
    while true do
      local l = att:line()
      if l == nil then error("attacker ended; output:\n" .. att:output()) end
      local name, secs = l:match("^closed (%S+) (.*)$")
      if name then closes[name] = secs end
      if l == "done" then break end
    end
    local after = assert(rss_kb(pid))
    local pings = att:output():match("\npings (.-)\n")
    for _, name in ipairs({ "random", "frame_4gb", "array_2p32", "framed_array_2p32", "nested",
      "framed_nested", "slow_1", "slow_2" }) do
      -- the handshake deadline is 5 s; the bound is generous for a shared machine
      local secs = tonumber(closes[name])
      assert.is_true(secs ~= nil and secs < 15, name .. ": " .. tostring(closes[name]))
    end
    local n, failed, worst = pings:match("^(%d+) (%d+) (%S+)$")
    assert.is_true(tonumber(n) > 40, pings)
    assert.equal("0", failed)
    assert.is_true(tonumber(worst) < 5, pings)
    assert.is_true(after - before < 10 * 1024, ("RSS grew from %d to %d KB"):format(before, after))
  end)
end)

describe("peers= (--peer) after a lost link", function()
  after_each(stop_all)

  it("reconnects by itself to a peer killed and restarted on the same port, and "
    .. "messages flow again", function()
    local SERVER = PRELUDE .. [[
acoro.spawn(function()
  while true do
    local m = acoro.receive()
    m.from:send("re:" .. m.text)
  end
end):register("echo")
acoro.receive()
]]
    local srv, sloc = start(SERVER, "--name srv")
    local pid = srv:expect("^pid (%d+)$")
    local cli = start(PRELUDE .. [[
acoro.peer_status(acoro.self())
local function status(s)
  return function(m) return acoro.is_peer_status(m) and m.status == s end
end
for round = 1, 2 do
  local up = acoro.receive_match(status("online"), 40)
  if not up then say("never online") return end
  local echo = assert(acoro.locate("echo", { timeout = 10, location = up.location }))
  echo:send({ from = acoro.self(), text = "round " .. round })
  say("reply", acoro.receive_match(function(m) return type(m) == "string" end, 10))
  if round == 1 then
    acoro.receive_match(status("offline"), 40)
    say("offline")
  end
end
]], "--name cli --peer " .. q(sloc))
    assert.equal("re:round 1", cli:expect("^reply (.*)$"))
    os.execute("kill -9 " .. pid)
    cli:expect("^offline$")
    local _, again = start(SERVER, "--name srv --listen " .. q(sloc)) -- no --peer back
    assert.equal(sloc, again)
    assert.equal("re:round 2", cli:expect("^reply (.*)$"))
  end)
end)

describe("peers= given by another spelling of the peer's location", function()
  after_each(stop_all)

  it("(localhost:N for a node that says 127.0.0.1:N) keeps its one link, without "
    .. "connecting again each second", function()
    local _, sloc = start(PRELUDE .. "acoro.receive()\n", "--name srv")
    local port = sloc:match(":(%d+)$")
    -- every TCP socket on this port, in any state (a closed duplicate leaves TIME-WAIT)
    local function sockets()
      local p = assert(io.popen(("ss -Htan '( sport = :%s or dport = :%s )'"):format(port, port)))
      local set, lines = {}, {}
      for l in p:lines() do
        local key = l:gsub("%s+", " ")
        set[key] = true
        lines[#lines + 1] = key
      end
      p:close()
      return set, lines
    end
    -- a connection of an earlier process that had this port number may still be in
    -- TIME-WAIT: only sockets that were not there before the client started count
    local before = sockets()
    local cli = start(PRELUDE .. [[
acoro.peer_status(acoro.self())
local up = acoro.receive_match(function(m) return acoro.is_peer_status(m) and m.status == "online" end, 20)
say("online", up and up.location)
acoro.sleep(3.5) -- a daemon that reconnected each second would have done so 3 times
say("waited")
acoro.receive()
]], "--name cli --peer localhost:" .. port)
    assert.equal(sloc, cli:expect("^online (%S+)$"))
    cli:expect("^waited$")
    local _, now = sockets()
    local lines = {}
    for _, l in ipairs(now) do
      if not before[l] or l:match("^LISTEN") then lines[#lines + 1] = l end
    end
    -- the listener and the two ends of the one link
    assert.equal(3, #lines, table.concat(now, "\n"))
  end)
end)

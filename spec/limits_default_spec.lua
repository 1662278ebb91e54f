-- The documented defaults that take seconds to see, each once at its real
-- value (tagged #slow; tools/test runs them): the peers= back-off (0.25 s
-- doubling to 8 s, acoro.limits.PEER_RETRY_*) and the cap on how long a
-- stopping node writes out what it sent (5 s, acoro.limits.STOP_LINGER).
-- The quick limits are tested where their subject is: the per-peer queue
-- (spec/node_busy_spec.lua), the inbound pause (the C test
-- net_inbound_limit_default_pauses_past_16mb), recv_msg's 64 MB
-- (spec/tcp_spec.lua), the UDP queue (spec/udp_spec.lua).
--
-- A schedule is about time, so these bound times, and only as the
-- project allows: never earlier than the default (a sleep does not end
-- early), and before the next larger value the schedule would give.

local acoro = require "acoro"
local limits = require "acoro.limits"
local ns = require "node_support"

local function clock()
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

describe("#slow peers= at its default back-off", function()
  it("tries again after 0.25, 0.5, 1, 2, 4 and 8 s, then every 8 s", function()
    assert.equal(0.25, limits.PEER_RETRY_FIRST)
    assert.equal(8, limits.PEER_RETRY_MAX)
    local times, logged = {}, {}
    -- the node's lines (the short secret, each failed link) are kept, not shown
    local prev = acoro.log.set_writer(function(_, msg) logged[#logged + 1] = msg end)
    finally(function() acoro.log.set_writer(prev) end)
    acoro.run(function()
      -- the peer: a TCP server that drops every connection (the handshake fails)
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      acoro.node({ host = "127.0.0.1", port = 0, discover = false, secret = "s",
        peers = { "127.0.0.1:" .. port } })
      for i = 1, 8 do
        local c = srv:accept(30)
        if not c then break end
        times[i] = acoro.now()
        c:close()
      end
      srv:close()
    end)
    assert.equal(8, #times)
    for _, msg in ipairs(logged) do
      assert.truthy(msg:find("secret is shorter", 1, true) or msg:find("connection lost", 1, true), msg)
    end
    local want = { 0.25, 0.5, 1, 2, 4, 8, 8 }
    for i = 1, 7 do
      local gap = times[i + 1] - times[i]
      assert.is_true(gap >= want[i] - 0.02, ("attempt %d came %.3f s after the one before, not %g")
        :format(i + 1, gap, want[i]))
      -- (below the value after it, and 1 s of slack for the short ones on a busy machine)
      assert.is_true(gap < math.min(math.max(want[i] * 2, want[i] + 1), 12),
        ("attempt %d came %.3f s after the one before, not %g")
        :format(i + 1, gap, want[i]))
    end
  end)
end)

describe("#slow a node stopping with messages its peer does not read", function()
  after_each(ns.stop_all)

  it("writes them out for at most the default 5 s, then ends", function()
    assert.equal(5, limits.STOP_LINGER)
    -- the peer: its engine blocks (os.execute) once told, so it reads no more
    local _, loc = ns.start(ns.PRELUDE .. [[
local sink = acoro.spawn(function()
  assert(acoro.receive() == "block")
  say("blocking")
  os.execute("sleep 50")
end)
sink:register("sink")
sink:join()
]])
    local s = ns.start_peer(loc, [[
local sink = assert(acoro.locate("sink", { timeout = 10, location = arg[1] }))
sink:send("block")
local n, data = 0, string.rep("x", 2^20)
local flooder = acoro.spawn(function()
  while true do
    sink:send(data) -- waits while the link is busy
    n = n + 1
  end
end)
flooder:set_daemon(true)
-- until the flooder waits with the peer's 16 MB read and 4 MB queued
-- here: 20 MB sent or more, and no send for 2 checks in a row (at most 60)
local last, still = -1, 0
for _ = 1, 60 do
  acoro.sleep(0.5)
  if n == last then still = still + 1 else still = 0 end
  if still >= 2 and n >= 20 then break end
  last = n
end
say("ending", n, still)
]])
    local n, still = s:expect("^ending (%d+) (%d+)$")
    local t0 = clock()
    assert.is_true(still == "2" and tonumber(n) >= 20, "the flooder never waited: " .. n .. " MB sent")
    s:close() -- its output ends when the process does
    ns.forget(s)
    local took = clock() - t0
    assert.is_true(took >= limits.STOP_LINGER - 0.5, ("ended %.2f s after its last coroutine"):format(took))
    assert.is_true(took < 2 * limits.STOP_LINGER, ("ended %.2f s after its last coroutine"):format(took))
  end)
end)

-- Attacks on the peer transport (core/net*.c), each played by an adversary
-- speaking the wire from this process (spec/handshake_wire.lua: acoro.tcp
-- and acoro.udp on 127.0.0.1) against a real `acoro` node process: a
-- reflected handshake, a relay, the offline guessing oracle, the lock-out of
-- new peers by idle connections and the discovery storm. What the target
-- does is asserted here, on counts and outcomes; what each costs (time to
-- refuse, the target's RSS) is measured by bench/handshake_attacks.lua
-- (bench/run hs).

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"
local ns = require "node_support"
local HW = require "handshake_wire"

local q = support.shell_quote

local function start_target(udp_port)
  local path = support.write_temp(HW.TARGET)
  local c = ns.track(net.spawn(("%s %s %d %s"):format(q(support.bin), q(path), udp_port or 0,
    q(ns.secret))))
  local loc = c:expect("^listening (127%.0%.0%.1:%d+)$")
  local pid = tonumber(c:expect("^pid (%d+)$"))
  return c, loc, pid, tonumber(loc:match(":(%d+)$"))
end

local function free_udp_port()
  local port
  acoro.run(function() port = HW.free_udp_port() end)
  return port
end

-- Stops the target c and returns its log lines ("acoro: node: ..."), which
-- the spec checks instead of letting them reach the terminal.
local function target_log(c)
  ns.forget(c)
  c:kill()
  c:close()
  local lines = {}
  for l in c:output():gmatch("[^\n]+") do
    if l:find("^acoro: node:") then lines[#lines + 1] = l end
  end
  return lines
end

describe("transport security: attacks from a peer that speaks the wire", function()
  after_each(ns.stop_all)

  it("a reflected handshake (the target as its own oracle, through a forged discovery "
    .. "ping) is refused: no proof made on one link opens another", function()
    local udp = free_udp_port()
    local c, _, _, port = start_target(udp)
    local result, why
    acoro.run(function() result, why = HW.reflection(port, udp) end)
    assert.equal("refused", result)
    assert.equal("eof", why)
    assert.matches("a reflected handshake", c:expect("refused: ([^\n]*)"))
  end)

  it("a relay through a discovered link (another node with the secret as the oracle) "
    .. "is refused: the node dialled on a ping must be where the ping said", function()
    local udp = free_udp_port()
    local t_c, _, _, t_port = start_target(0) -- the target: no discovery
    local x_c = start_target(udp)             -- the oracle: discovery on
    local result
    acoro.run(function() result = HW.relay(t_port, udp) end)
    assert.equal("refused", result)
    assert.matches("a relay%?", x_c:expect("refused: ([^\n]*)"))
    assert.matches("wrong secret", t_c:expect("refused: ([^\n]*)"))
  end)

  it("the acceptor proves nothing before the initiator has proved: a client without the "
    .. "secret gets no proof to test guesses against", function()
    local c, _, _, port = start_target(0)
    local frames
    acoro.run(function() frames = HW.guess(port) end)
    local line = c:expect("refused: ([^\n]*)")
    for _, ft in ipairs(frames) do assert.are_not.equal(HW.F_PROOF, ft) end
    assert.equal(HW.F_REFUSE, frames[1])
    assert.matches("wrong secret", line)
  end)

  it("a client holding 100 idle connections does not lock out a new peer: the idlest "
    .. "unauthenticated ones are closed to make room", function()
    local c, tloc, _, port = start_target(0)
    local socks, opened
    acoro.run(function() socks, opened = HW.idle_connections(port, 100) end)
    -- the sockets stay open (idle) while a real node peers with the target
    local peer = ns.start(ns.PRELUDE .. [[
say("peer", acoro.peer(arg[1], 10))
]], nil, nil, q(tloc))
    local verdict = peer:expect("^peer (.*)$")
    local ok = verdict == "true"
    local online = ok and c:expect("^online (.*)$")
    local closed
    acoro.run(function() closed = HW.closed_by_target(socks, 100) end)
    assert(ok, verdict)
    assert.truthy(online)
    assert.equal(100, opened)
    assert.is_true(closed >= 100 - 32)
  end)

  it("a discovery storm (2,000 forged pings announcing 50 ports) opens a bounded number "
    .. "of connections and logs a few lines", function()
    local udp = free_udp_port()
    local c, _, _, port = start_target(udp)
    local accepted, took
    acoro.run(function() _, accepted, took = HW.storm(port, udp) end)
    local lines = target_log(c)
    -- 32 connects at once, then 8 a second (the storm's own time, plus slack), and one
    -- per forged location at most: a link that failed without a HELLO is not retried
    assert.is_true(accepted <= 32 + 8 * (took + 2), "connects: " .. accepted)
    assert.is_true(accepted <= 50, "connects: " .. accepted)
    assert.is_true(#lines <= 3, "log lines: " .. table.concat(lines, "\n"))
  end)
end)

describe("transport security: the secret", function()
  it("acoro --gen-secret prints a new random secret (64 hex digits) each time", function()
    local a, err, code = support.run_cli("--gen-secret")
    assert.equal(0, code, err)
    local b = support.run_cli("--gen-secret")
    assert.matches("^%x+\n$", a)
    assert.equal(65, #a)
    assert.are_not.equal(a, b)
  end)

  -- The start log line comes through the net's event queue; a failed peer
  -- (a round trip through the same queue) comes after it.
  local NODE = [[
local acoro = require "acoro"
acoro.node({ host = "127.0.0.1", secret = arg[1], discover = false })
print(acoro.peer("127.0.0.1:1", 5))
]]

  it("a secret shorter than 16 characters gets a warning at start; a longer one none",
    function()
      local out, err = support.run_script(NODE, q("short"))
      assert.matches("^nil", out)
      assert.matches("the secret is shorter than 16 characters", err)
      assert.matches("acoro %-%-gen%-secret", err)
      out, err = support.run_script(NODE, q("sixteen chars ok"))
      assert.matches("^nil", out)
      assert.is_nil(err:find("shorter than", 1, true))
    end)
end)

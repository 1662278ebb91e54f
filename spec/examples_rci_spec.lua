-- The RCI examples (examples/remote_coro_*.lua, examples/rci_monitor_*.lua)
-- as real acoro processes on 127.0.0.1, started in either order; the specs
-- check what they print.

local net = require "net_support"
local ns = require "node_support"

local q = ns.q

-- Runs an example as a node on 127.0.0.1 (any port, no discovery) with the
-- shared secret (or `key`); stopped by ns.stop_all.
local function spawn(flags, script, args, key)
  local c = net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s")
    :format(q(key or ns.secret), flags, q("examples/" .. script), args or ""))
  return ns.track(c)
end

describe("examples/remote_coro_server.lua + remote_coro_client.lua", function()
  after_each(ns.stop_all)

  local function check(srv, cli)
    for i = 1, 3 do
      assert.equal(("got client 7: message %d"):format(i), cli:expect("^reply " .. i .. ": (.*)$"))
    end
    assert.equal("bye", cli:expect("^done: (.*)$"))
    local started_for = srv:expect("^%d+ started for (%S+)$")
    assert.matches("^coro:main/%d+@127%.0%.0%.1:%d+$", started_for)
    for i = 1, 3 do
      assert.equal(("client 7: message %d"):format(i), srv:expect("^server %d+ received: (.*)$"))
    end
  end

  it("the client starts a coroutine on the server and exchanges 3 messages (server first)", function()
    local srv = spawn("", "remote_coro_server.lua")
    local sloc = srv:expect("^server at (%S+)$")
    local cli = spawn("--peer " .. q(sloc), "remote_coro_client.lua", "7")
    check(srv, cli)
  end)

  it("the same with the client first, waiting in rci.locate", function()
    local cli = spawn("", "remote_coro_client.lua", "7")
    local cloc = cli:expect("^client at (%S+)$")
    local srv = spawn("--peer " .. q(cloc), "remote_coro_server.lua")
    check(srv, cli)
  end)
end)

describe("examples/rci_monitor_server.lua + rci_monitor_client.lua", function()
  after_each(ns.stop_all)

  -- The client's 5 Exit lines: even b finish with a + b, odd b fail there.
  local function check(cli)
    local finished, failed = {}, {}
    for _ = 1, 5 do
      local l = cli:expect("^(coro:%-/%d+@%S+ .*)$")
      local v = l:match(" finished with: (%d+)$")
      if v then
        finished[#finished + 1] = tonumber(v)
      else
        failed[#failed + 1] = assert(l:match(" failed with: (.*)$"), l)
      end
    end
    table.sort(finished)
    table.sort(failed)
    assert.same({ 0, 4, 8 }, finished)
    assert.same({ "invalid invocation: 1 (error)", "invalid invocation: 3 (error)" }, failed)
    assert.equal("all 5 ended", cli:expect("^(all 5 ended)$"))
  end

  it("the client monitors the coroutines it started there and prints each Exit; a node "
    .. "with another secret is refused (one line on the server) and its locate fails", function()
    local srv = spawn("", "rci_monitor_server.lua")
    local sloc = srv:expect("^server at (%S+)$")
    -- another secret: its one acoro.peer is refused, then its locate ends
    local bad = spawn("", "rci_monitor_client.lua", "5 " .. q(sloc) .. " 1", ns.other_secret)
    assert.matches("^refused: wrong secret", bad:expect("^cannot peer with " .. sloc:gsub("%.", "%%.") .. ": (.*)$"))
    bad:rest()
    assert.matches("rci_monitor_client: rci_1: not found", bad:output())
    local cli = spawn("", "rci_monitor_client.lua", "5 " .. q(sloc))
    check(cli)
    -- the server: one refusal (before the good client's 5 coroutines ran)
    local refusals, running = 0, 0
    while running < 5 do
      local l = srv:line()
      if l == nil then error("server ended; output:\n" .. srv:output()) end
      if l:match("refused") then
        refusals = refusals + 1
        assert.matches("^acoro: node: peer 127%.0%.0%.1:%d+: refused.*wrong secret", l)
      end
      if l:match("^running %d+ with %d, %d$") then running = running + 1 end
    end
    assert.equal(1, refusals)
  end)

  it("the same with the client first, waiting in rci.locate", function()
    local cli = spawn("", "rci_monitor_client.lua", "5")
    local cloc = cli:expect("^client at (%S+)$")
    spawn("--peer " .. q(cloc), "rci_monitor_server.lua")
    check(cli)
  end)
end)

-- A node without a secret authenticates nobody, so it stays on this host: loopback only,
-- unless insecure = true (CLI --insecure) says otherwise (docs/security.md).
local acoro = require "acoro"
local support = require "support"

-- Runs fn in acoro.run with the log captured; returns the lines ("level: msg").
local function logged(fn)
  local lines = {}
  local prev = acoro.log.set_writer(function(level, msg) lines[#lines + 1] = level .. ": " .. msg end)
  local ok, err = pcall(acoro.run, fn)
  acoro.log.set_writer(prev)
  assert(ok, err)
  return lines
end

describe("a node without a secret", function()
  after_each(support.cleanup)

  it("listens on 127.0.0.1 by default and says so in one line", function()
    local location
    local lines = logged(function()
      location = acoro.node({ port = 0, discover = false }).location
    end)
    assert.matches("^127%.0%.0%.1:%d+$", location)
    assert.are.same({ "info: node: listening on 127.0.0.1 only: no secret "
      .. "(secret= for a network; insecure = true opens it)" }, lines)
  end)

  it("raises on a host or a peer that is not on this host", function()
    acoro.run(function()
      assert.has_error(function() acoro.node({ host = "0.0.0.0", port = 0, discover = false }) end,
        "acoro.node: host 0.0.0.0 without a secret: a node without one listens and peers on loopback only "
        .. "(secret= for a network; insecure = true to open it to any host anyway)")
      assert.has_error(function()
        acoro.node({ host = "127.0.0.1", port = 0, discover = false, peers = { "192.0.2.1:9" } })
      end, "acoro.node: peer 192.0.2.1:9 without a secret: a node without one listens and peers on loopback "
        .. "only (secret= for a network; insecure = true to open it to any host anyway)")
      assert.is_nil(acoro.node())
    end)
  end)

  it("listens on ::1 or localhost when told: both are this host", function()
    for _, host in ipairs({ "::1", "localhost" }) do
      acoro.run(function()
        local ok, err = pcall(acoro.node, { host = host, port = 0, discover = false })
        -- a machine without IPv6 may fail to listen there, but not refuse it as another host
        assert(ok or not tostring(err):find("without a secret", 1, true), err)
      end)
    end
  end)

  it("refuses to dial another host, and dials this one", function()
    logged(function()
      local node = acoro.node({ port = 0, discover = false })
      local ok, why, code = acoro.peer("192.0.2.1:9", 5)
      assert.is_nil(ok)
      assert.are.equal("refused: 192.0.2.1:9 is not on this host (a node without a secret peers over "
        .. "loopback only: give it secret=, or insecure = true)", why)
      assert.are.equal("ECONNREFUSED", code)
      ok, why = acoro.peer("127.0.0.1:9", 5) -- dialled: nothing listens there
      assert.is_nil(ok)
      assert.is_nil(why:find("not on this host", 1, true))
      assert.matches("^127%.0%.0%.1:%d+$", node.location)
    end)
  end)

  it("with insecure = true listens where told, and warns once", function()
    local location
    local lines = logged(function()
      location = acoro.node({ host = "0.0.0.0", port = 0, discover = false, insecure = true }).location
    end)
    assert.matches("^0%.0%.0%.0:%d+$", location)
    assert.are.equal(1, #lines)
    assert.matches("^warn: node: listening on 0%.0%.0%.0:%d+ without a secret %(insecure = true%): any node "
      .. "that can reach it may peer with it and run its registered functions$", lines[1])
  end)

  it("with a secret is not limited to loopback", function()
    local lines = logged(function()
      acoro.node({ host = "0.0.0.0", port = 0, discover = false, secret = string.rep("k", 32) })
    end)
    assert.are.same({}, lines)
  end)

  it("the CLI: --listen on all addresses needs --secret-file or --insecure", function()
    local script = support.write_temp("print(require('acoro').node().location)")
    local out, err, rc = support.run_cli("--listen 0.0.0.0:0 --no-discover " .. support.shell_quote(script))
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.matches("acoro.node: host 0.0.0.0 without a secret", err, 1, true)
    out, err, rc = support.run_cli("--listen 0.0.0.0:0 --no-discover --insecure " .. support.shell_quote(script))
    assert.are.equal(0, rc, err)
    assert.matches("^0%.0%.0%.0:%d+\n$", out)
    assert.matches("without a secret (insecure = true): any node that can reach it may peer", err, 1, true)
  end)
end)

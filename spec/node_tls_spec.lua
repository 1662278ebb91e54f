-- TLS on peer links (acoro.node{tls=}, the CLI's --tls-* flags; core/net_tls.c): real
-- `acoro` processes on 127.0.0.1 with certificates made by net_support (openssl CLI).
-- Every wait is for a line of output; every child runs under `timeout` and is stopped
-- in an after_each.

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote

-- Starts `source` (ns.start) with the TLS flags of cert/key/ca (names in net_support's
-- certificate folder; cert nil: no TLS). Returns the child and its location.
local function start(source, cert, key, ca, args)
  local certs = net.certs()
  local tls = ""
  if cert then
    tls = ("--tls-cert %s --tls-key %s"):format(q(certs[cert]), q(certs[key]))
    if ca then tls = tls .. " --tls-ca " .. q(certs[ca]) end
  end
  return ns.start(source, tls, nil, args)
end

local PRELUDE = ns.PRELUDE

-- Echoes every message back to m.from, with its sequence number and size.
local SERVER = PRELUDE .. [[
local echo = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    m.from:send({ seq = m.seq, size = #m.text })
  end
end)
echo:register("echo")
acoro.receive()
]]

-- Peers with arg[1], then sends 200 numbered messages (every 50th one 300 KB: split
-- on the wire) to its echo and checks the answers come back in order.
local CLIENT = PRELUDE .. [[
local ok, why = acoro.peer(arg[1], 10)
say("peer", ok, why)
if not ok then return end
local h = assert(acoro.locate("echo", { timeout = 10, location = arg[1] }))
local me, big = acoro.self(), string.rep("0123456789", 30000)
for i = 1, 200 do
  assert(h:send({ seq = i, text = i % 50 == 0 and big or "small", from = me }))
end
local order, bigs = true, 0
for i = 1, 200 do
  local m = acoro.receive(20)
  if m == nil or m.seq ~= i then order = false break end
  if m.size == #big then bigs = bigs + 1 end
end
say("echoed", order, bigs)
]]

describe("acoro.node with tls", function()
  after_each(ns.stop_all)
  teardown(net.cleanup_certs)

  it("two TLS nodes exchange remote messages in order, large ones split", function()
    local _, sloc = start(SERVER, "server.pem", "server.key", "ca.pem")
    local cli = start(CLIENT, "server.pem", "server.key", "ca.pem", q(sloc))
    assert.equal("true nil", cli:expect("^peer (.*)$"))
    assert.equal("true 4", cli:expect("^echoed (.*)$"))
  end)

  it("a node with a certificate the other cannot verify, or without TLS, is refused: "
    .. "acoro.peer says why, both nodes log it, a good node still peers", function()
    local srv, sloc = start(SERVER, "server.pem", "server.key", "ca.pem")
    -- this client trusts another CA: it refuses the server's certificate
    local c1 = start(CLIENT, "server.pem", "server.key", "other_ca.pem", q(sloc))
    assert.matches("^nil refused: TLS handshake failed: certificate verify failed",
      c1:expect("^peer (.*)$"))
    assert.truthy(srv:expect("peer 127%.0%.0%.1:%d+: (refused: TLS handshake failed: .*)$"))
    -- a self-signed client certificate: the server refuses it
    local c2 = start(CLIENT, "self.pem", "self.key", "ca.pem", q(sloc))
    assert.matches("^nil refused: TLS handshake failed: the peer refused this node %(.*%)$",
      c2:expect("^peer (.*)$"))
    assert.matches("certificate verify failed",
      srv:expect("peer 127%.0%.0%.1:%d+: (refused: TLS handshake failed: .*)$"))
    -- a node without TLS
    local c3 = start(CLIENT, nil, nil, nil, q(sloc))
    assert.equal("nil refused by the peer: this node requires TLS", c3:expect("^peer (.*)$"))
    assert.truthy(srv:expect("refused: the peer does not use TLS"))
    -- nothing else is harmed
    local c4 = start(CLIENT, "server.pem", "server.key", "ca.pem", q(sloc))
    assert.equal("true nil", c4:expect("^peer (.*)$"))
    assert.equal("true 4", c4:expect("^echoed (.*)$"))
  end)

  it("a bad certificate file or --tls-cert without --tls-key is an error at start", function()
    local certs = net.certs()
    local _, err, code = support.run_cli(("--listen 127.0.0.1:0 --no-discover --tls-cert %s "
      .. "-e 'print(1)'"):format(q(certs["server.pem"])))
    assert.equal(1, code)
    assert.matches("%-%-tls%-cert and %-%-tls%-key go together", err)
    _, err, code = support.run_cli(("--listen 127.0.0.1:0 --no-discover --tls-cert %s "
      .. "--tls-key %s -e 'print(1)' %s"):format(q(certs["server.pem"]), q(certs["client.key"]),
      q(support.write_temp("print(2)"))))
    assert.equal(1, code)
    assert.matches("acoro.node: tls: cannot load key '.*client%.key'", err)
  end)
end)

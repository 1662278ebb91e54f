-- The distribution's extension points and its Lua protocol version: an
-- extension in a file of its own (spec/ext_echo.lua) adds an operation, and
-- a peer speaking another Lua protocol is taken down with the reason logged.
-- Real `acoro` processes on 127.0.0.1, as in node_spec.lua.

local support = require "support"
local ns = require "node_support"

local EXT = support.root .. "/spec/ext_echo.lua"

describe("distribution extensions", function()
  after_each(ns.stop_all)

  it("an extension in its own file adds an operation both nodes understand", function()
    local _, sloc = ns.start(ns.PRELUDE .. ("dofile(%q)\nacoro.receive()\n"):format(EXT))
    local cli = ns.start_peer(sloc, ("local echo = dofile(%q)\nsay('echo', echo.echo(arg[1], 'hi'))\n")
      :format(EXT))
    assert.equal("hi!", cli:expect("^echo (%S+)$"))
  end)

  it("a peer with another Lua protocol version is taken down on HELLO, the reason logged", function()
    local srv, sloc = ns.start(ns.PRELUDE .. [[
acoro.peer_status(acoro.self())
while true do say("status", acoro.receive().status) end
]])
    local cli = ns.start(ns.PRELUDE .. [[
require("acoro.dist.protocol").VERSION = 99
say("peer", acoro.peer(arg[1], 10))
acoro.sleep(30)
]], nil, nil, support.shell_quote(sloc))
    assert.equal("true", cli:expect("^peer (%S+)"))
    assert.equal("online", srv:expect("^status (%S+)$"))
    assert.equal("offline", srv:expect("^status (%S+)$"))
    local logged = (srv:output() .. cli:output()):match("acoro: node: closing the link to [^\n]*")
    assert.truthy(logged, srv:output() .. cli:output())
    assert.matches("Lua protocol %d+, this node %d+", logged)
  end)
end)

-- Value types by name (acoro.register_type) through acoro.discoro with real
-- processes on 127.0.0.1: a Point registered by the client and by the
-- shipped code travels both ways and arrives with the receiver's metatable;
-- a type the server does not know is refused there, the log naming it.

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")

describe("discoro value types by name", function()
  local dest
  after_each(function()
    ns.stop_all()
    if dest then os.execute("rm -rf " .. q(dest)) end
  end)

  it("a Point goes as a Point and comes back with the client's metatable; an unknown type is named", function()
    dest = os.tmpname()
    os.remove(dest)
    local node = ns.track(net.spawn(("%s --cpus 1 --listen 127.0.0.1:0 --no-discover --secret-file %s"
      .. " --dest-path %s"):format(q(NODE_BIN), q(ns.secret), q(dest))))
    local loc = node:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
-- the client's Point: its own methods
local Point = { __index = { where = function(p) return "client " .. p.x .. "," .. p.y end } }
assert(acoro.register_type("Point", Point))
local Vec = {}
acoro.register_type("Vec", Vec)
local comp = discoro.Computation({ peers = { arg[1] }, code = [=[
-- the server's Point: other methods, same name
Point = { __index = { len2 = function(p) return p.x * p.x + p.y * p.y end } }
acoro.register_type("Point", Point)
function len2(p) return getmetatable(p) == Point and p:len2() end
function make(x, y) return setmetatable({ x = x, y = y }, Point) end
function id(v) return v end
]=] })
assert(comp:schedule())
say("len2", comp:run_result("len2", setmetatable({ x = 3, y = 4 }, Point)))
local p = comp:run_result("make", 5, 6)
say("made", getmetatable(p) == Point, p:where())
say("vec", comp:submit({ timeout = 1 }, "id", setmetatable({ 1 }, Vec)))
comp:close()
]], nil, nil, q(loc))
    assert.equal("25", cli:expect("^len2 (.*)$"))
    assert.equal("true client 5,6", cli:expect("^made (.*)$"))
    assert.equal("nil timeout", cli:expect("^vec (.*)$"))
    node:expect('a value of type "Vec" arrived, which is not registered here')
  end)
end)

-- acoro.discoro's node_setup, allocations, disable_nodes/enable_node and
-- disable_servers/enable_server with real processes on 127.0.0.1: acoro-node
-- daemons named alpha and beta with 2 servers each (discovery off, peers=).

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

local function start_node(name)
  local c = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
    .. " --dest-path %s --name %s"):format(q(NODE_BIN), q(ns.secret), q(tmpdir()), name)))
  return c, c:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$")
end

-- A status coroutine that says the kinds a spec looks at.
local STATUS = [[
local ENABLE_SERVERS = ENABLE
local discoro = require "acoro.discoro"
local main = acoro.self()
local comp
local status = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if not acoro.is_exit(m) then
      if m.status == "NodeIgnore" then say("ignored", m.location, m.error)
      elseif m.status == "NodeClosed" then say("node closed", m.reason)
      elseif m.status == "NodeInitialized" then say("initialized", m.name, m.cpus)
      elseif m.status == "ServerDiscovered" and ENABLE_SERVERS then comp:enable_server(m.location, m.slot * 10)
      end
    end
  end
end)
status:set_daemon()
]]

local function cleanup()
  ns.stop_all()
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
  dirs = {}
end

describe("discoro node_setup", function()
  after_each(cleanup)

  it("runs once per node, in its directory with the files, before its servers start", function()
    local _, loc = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. STATUS:gsub("ENABLE\n", "false\n") .. [[
comp = discoro.Computation({ peers = { arg[1] }, status = status, node_setup = "nsetup", node_args = { "hello" },
  code = [=[
function nsetup(word)
  local f = assert(io.open("setup.txt", "a"))
  f:write(word, "\n")
  f:close()
  return true
end
function lines()
  local n = 0
  for _ in io.lines("setup.txt") do n = n + 1 end
  return n
end
]=] })
assert(comp:schedule())
local r = comp:run_results("lines", { 1, 2, 3, 4 })
say("lines", table.concat(r, " "))
comp:close()
]], nil, nil, q(loc))
    -- one line: node_setup ran once for the node's 2 servers, before them
    assert.equal("1 1 1 1", cli:expect("^lines (.*)$"))
  end)

  it("a node_setup that fails drops the node with the reason; jobs fail instead of waiting", function()
    local _, loc = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. STATUS:gsub("ENABLE\n", "false\n") .. [[
comp = discoro.Computation({ peers = { arg[1] }, status = status, node_setup = "nsetup",
  code = "function nsetup() return false, 'no data here' end\nfunction one() return 1 end" })
assert(comp:schedule())
say("one", comp:run_result("one"))
comp:close()
]], nil, nil, q(loc))
    local closed, one = ns.expect_all(cli, { "^node closed (.*)$", "^one (.*)$" })
    assert.equal("node_setup failed: no data here", closed)
    assert.equal("nil unreachable", one)
  end)
end)

describe("discoro allocations", function()
  after_each(cleanup)

  it("the first rule that matches decides: a function's refusal, a NodeAllocate's cpus", function()
    local _, la = start_node("alpha")
    local _, lb = start_node("beta")
    local cli = ns.start(ns.PRELUDE .. STATUS:gsub("ENABLE\n", "false\n") .. [[
comp = discoro.Computation({ peers = { arg[1], arg[2] }, status = status, code = "function one() return 1 end",
  allocations = {
    function(info) if info.name == "beta" then return 0, "not beta" end end,
    discoro.NodeAllocate({ host = "127.0.0.*", name = "al*", cpus = 1 }),
  } })
assert(comp:schedule())
say("one", comp:run_result("one"))
comp:close()
]], nil, nil, q(la) .. " " .. q(lb))
    local ignored, initialized, one = ns.expect_all(cli, { "^ignored (.*)$", "^initialized (.*)$", "^one (.*)$" })
    assert.equal(lb .. " not beta", ignored)
    assert.equal("alpha 1", initialized)
    assert.equal("1", one)
  end)

  it("a node without the memory a rule wants is ignored; with none left schedule says why", function()
    local _, la = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = "function one() return 1 end",
  allocations = { discoro.NodeAllocate({ memory = 2 ^ 60 }) } })
say("schedule", comp:schedule())
]], nil, nil, q(la))
    assert.matches("^nil no node accepted the computation: 127%.0%.0%.1:%d+: allocations%[1%]: memory %d+ bytes"
      .. " available, %d+ wanted ENOPEER$", cli:expect("^schedule (.*)$"))
  end)
end)

describe("discoro disable_nodes and disable_servers", function()
  after_each(cleanup)

  it("a disabled node takes nothing (a job fails at its timeout, alone) until enable_node, with node_setup's args",
    function()
    local _, la = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. STATUS:gsub("ENABLE\n", "false\n") .. [[
comp = discoro.Computation({ peers = { arg[1] }, status = status, disable_nodes = true, node_setup = "nsetup",
  code = "function nsetup(x) local f = io.open('x', 'w') f:write(x) f:close() return true end\n"
    .. "function get() return io.open('x'):read('*a') end" })
say("schedule", comp:schedule())
say("early", comp:submit({ timeout = 0.2 }, "get"))
say("enabled", comp:enable_node("alpha", "seven"))
say("get", comp:run_result("get"))
comp:close()
]], nil, nil, q(la))
    assert.equal("true", cli:expect("^schedule (.*)$"))
    assert.matches("^nil no server matches the job get%(1%) in 0%.2 s: no server is up, 1 node%(s%) not enabled$",
      cli:expect("^early (.*)$"))
    assert.equal("1", cli:expect("^enabled (.*)$"))
    assert.equal("seven", cli:expect("^get (.*)$"))
  end)

  it("disabled servers run server_setup with enable_server's arguments before their jobs", function()
    local _, la = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. STATUS:gsub("ENABLE\n", "true\n") .. [[
comp = discoro.Computation({ peers = { arg[1] }, status = status, disable_servers = true, server_setup = "ssetup",
  code = "function ssetup(x) X = x return true end\nfunction get() return X end" })
assert(comp:schedule())
local r = comp:run_results("get", { 1, 2, 3, 4, 5, 6 })
local ok = #r == 6
for i = 1, 6 do ok = ok and (r[i] == 10 or r[i] == 20) end
say("got", ok)
comp:close()
]], nil, nil, q(la))
    assert.equal("true", cli:expect("^got (.*)$"))
  end)
end)

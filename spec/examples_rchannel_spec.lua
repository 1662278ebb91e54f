-- The remote channel examples (examples/remote_channel_*.lua, chat_chan_*.lua)
-- as real acoro nodes on 127.0.0.1, server first or clients first, checked by
-- what they print. Every wait is for a line of output; every child runs under
-- `timeout` and is stopped after each test.

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote

-- Starts examples/<script> as a node with the CLI's node flags.
local function spawn(flags, script, args, stdin_path)
  local c = net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s")
    :format(q(ns.secret), flags, q("examples/" .. script), args or ""), stdin_path)
  return ns.track(c)
end

describe("examples/remote_channel_server.lua + remote_channel_client.lua", function()
  after_each(ns.stop_all)

  local function check(srv, clients)
    assert.equal("2", srv:expect("^delivered start to (%d+) subscribers$"))
    for id, c in pairs(clients) do
      local got = {}
      for _ = 1, 5 do got[#got + 1] = c:expect("^client " .. id .. " received: (.*)$") end
      assert.same({ "start", "message 1", "message 2", "message 3", "quit" }, got)
    end
  end

  it("the server delivers to 2 subscribers on other nodes (server first)", function()
    local srv = spawn("", "remote_channel_server.lua")
    local sloc = srv:expect("^server at (%S+)$")
    local clients = {}
    for id = 1, 2 do
      clients[id] = spawn("--peer " .. q(sloc), "remote_channel_client.lua", tostring(id))
      assert.equal("channel:2clients@" .. sloc, clients[id]:expect("^client " .. id .. " subscribed to (%S+)$"))
    end
    check(srv, clients)
  end)

  it("the server delivers to 2 subscribers on other nodes (clients first, waiting in "
    .. "locate_channel)", function()
    local clients, peers = {}, {}
    for id = 1, 2 do
      clients[id] = spawn("", "remote_channel_client.lua", tostring(id))
      peers[id] = "--peer " .. q(clients[id]:expect("^client " .. id .. " at (%S+)$"))
    end
    local srv = spawn(table.concat(peers, " "), "remote_channel_server.lua")
    check(srv, clients)
  end)
end)

describe("examples/chat_chan_server.lua + chat_chan_client.lua", function()
  after_each(ns.stop_all)

  -- A client whose standard input the spec feeds through a FIFO.
  local function client(sflags, name)
    local fifo = net.fifo()
    local c = spawn(sflags, "chat_chan_client.lua", name, fifo)
    local w = assert(io.open(fifo, "w")) -- opens once the child's shell opened it
    w:setvbuf("line")
    return { child = c, w = w, fifo = fifo }
  end

  local function chat(srv, a, b)
    a.child:expect("^joined as alice")
    b.child:expect("^joined as bob")
    a.w:write("hello from alice\n")
    assert.equal("alice: hello from alice", b.child:expect("^(alice: .*)$"))
    a.w:write("STOP SHOUTING\n") -- dropped by the transform on the server
    assert.equal("STOP SHOUTING", srv:expect("^dropped: (.*)$"))
    b.w:write("hi alice, bob here\n")
    assert.equal("bob: hi alice, bob here", a.child:expect("^(bob: .*)$"))
    a.w:write("second line\n")
    assert.equal("alice: second line", b.child:expect("^(alice: .*)$"))
    for _, c in ipairs({ a, b }) do
      c.w:write("quit\n")
      assert.equal("bye", c.child:expect("^(bye)$"))
      c.child:rest()
      c.w:close()
      os.remove(c.fifo)
    end
    -- neither saw its own lines, nor the dropped one
    for _, l in ipairs(a.child.seen) do assert.is_nil(l:match("^alice:"), a.child:output()) end
    for _, l in ipairs(b.child.seen) do
      assert.is_nil(l:match("^bob:"), b.child:output())
      assert.is_nil(l:match("SHOUTING"), b.child:output())
    end
  end

  it("two clients see each other's lines, never their own; shouting is dropped "
    .. "(server first)", function()
    local srv = spawn("", "chat_chan_server.lua")
    local sloc = srv:expect("^chat server at (%S+)$")
    chat(srv, client("--peer " .. q(sloc), "alice"), client("--peer " .. q(sloc), "bob"))
  end)

  it("clients started before the server find it when it appears", function()
    local a, b = client("", "alice"), client("", "bob")
    local aloc = a.child:expect("^chat client alice at (%S+)$")
    local bloc = b.child:expect("^chat client bob at (%S+)$")
    local srv = spawn("--peer " .. q(aloc) .. " --peer " .. q(bloc), "chat_chan_server.lua")
    chat(srv, a, b)
  end)
end)

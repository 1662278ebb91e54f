-- The default bound on what a node queues for one peer (4 MB, ACORO_EPEERBUSY past it):
-- real nodes on 127.0.0.1 (spec/node_support.lua). The receiving node's engine is kept
-- busy without yielding, so that its network thread stops reading once its own inbound
-- bound is reached; the sender's sends must then wait, long before memory runs out.

local ns = require "node_support"
local support = require "support"

local q, start, start_peer, PRELUDE = ns.q, ns.start, ns.start_peer, ns.PRELUDE

describe("a node sending to a peer that does not read", function()
  after_each(function()
    ns.stop_all()
    support.cleanup()
  end)

  it("waits once about its default queue of 4 MB is full, not after 96 MB", function()
    local flag = os.tmpname()
    os.remove(flag)
    local _, rloc = start(PRELUDE .. [[
local flag = arg[2]
local sink = acoro.spawn(function()
  local m = acoro.receive()
  m.spin:send("spinning")
  -- the engine thread does not yield until the spec creates the flag file
  local deadline = os.time() + 60
  while os.time() < deadline do
    local f = io.open(flag)
    if f then f:close() break end
  end
  say("spun")
  while true do acoro.receive() end
end)
assert(sink:register("sink"))
acoro.receive()
]], nil, nil, "x " .. q(flag))
    local s = start_peer(rloc, [[
local h = assert(acoro.locate("sink", { timeout = 10, location = arg[1] }))
h:send({ spin = acoro.self() })
assert(acoro.receive(10) == "spinning")
local chunk = string.rep("x", 65536)
local sent, done = 0, false
local sender = acoro.spawn(function()
  while sent < 96 * 2 ^ 20 do
    assert(h:send(chunk))
    sent = sent + #chunk
  end
  done = true
end)
repeat acoro.yield() until done or sender:status() ~= "ready" -- it runs until a send waits
say("sent", sent, done, sender:status())
sender:terminate()
]])
    local sent, done = s:expect("^sent (%d+) (%a+) ")
    local f = assert(io.open(flag, "w"))
    f:close()
    os.remove(flag)
    assert.equal("false", done)
    sent = tonumber(sent)
    assert.is_true(sent >= 4 * 2 ^ 20, sent .. " bytes sent")
    -- at most the 4 MB queued, what the peer's net thread read before it
    -- paused (its inbound limit, 16 MB) and the loopback socket buffers
    -- (10 MB at most with Linux's defaults): a queue of 40 MB fails here
    assert.is_true(sent < 36 * 2 ^ 20, sent .. " bytes sent")
  end)
end)

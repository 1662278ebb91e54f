-- The default bound on what a node queues for one peer (4 MB, ACORO_EPEERBUSY past it):
-- real nodes on 127.0.0.1 (spec/node_support.lua). The receiving node's engine is kept
-- busy without yielding, so that its network thread stops reading once its own inbound
-- bound is reached; the sender's sends must then wait, long before memory runs out.

local ns = require "node_support"
local net = require "net_support"
local support = require "support"

local q, start, start_peer, PRELUDE = ns.q, ns.start, ns.start_peer, ns.PRELUDE

describe("a node sending to a peer that does not read", function()
  after_each(ns.stop_all)
  teardown(support.cleanup) -- not after each: ns.secret is one of the temporary files

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

  -- Lua outside any coroutine while a node runs: a host stepping the engine
  -- (core.run_once from a stock LuaJIT's main chunk, as acoro_lua_run_once
  -- from C) calls h:send between steps. It cannot wait: the send past the
  -- queue is dropped and returns false, and the node goes on.
  it("returns false outside a coroutine (a host stepping the engine), dropping that message", function()
    local flag = os.tmpname()
    os.remove(flag)
    local r, rloc = start(PRELUDE .. [[
local flag = arg[2]
local sink = acoro.spawn(function()
  local m = acoro.receive()
  m.spin:send("spinning")
  local deadline = os.time() + 60 -- the engine spins until the flag file exists
  while os.time() < deadline do
    local f = io.open(flag)
    if f then f:close() break end
  end
  local got = 0
  while true do
    local x = acoro.receive()
    if type(x) == "table" then x.fin:send(got) break end
    got = got + #x
  end
  say("got", got)
  acoro.sleep(30) -- until stopped: the answer is written meanwhile
end)
assert(sink:register("sink"))
sink:join()
]], nil, nil, "x " .. q(flag))
    local build = os.getenv("ACORO_BUILD") or "build"
    if build:sub(1, 1) ~= "/" then build = support.root .. "/" .. build end
    local host = support.write_temp([[
local acoro = require "acoro"
local core = require "acoro.core"
local f = assert(io.open(arg[2]))
local secret = f:read("*a"):gsub("\r?\n$", "")
f:close()
local h, ready, finish
local main = acoro.spawn(function()
  acoro.node({ host = "127.0.0.1", secret = secret, discover = false })
  assert(acoro.peer(arg[1], 10))
  h = assert(acoro.locate("sink", { timeout = 10, location = arg[1] }))
  h:send({ spin = acoro.self() })
  ready = acoro.receive(10) == "spinning"
  assert(acoro.receive(30) == "finish") -- from the main chunk, once it has sent
  h:send({ fin = acoro.self() }) -- a coroutine: waits for the queue to drain
  finish = acoro.receive(30) or false -- the bytes the sink received
end)
local deadline = os.time() + 30
local function step_until(cond)
  while not cond() and os.time() < deadline do core.run_once(2) end -- NOWAIT
  return cond()
end
assert(step_until(function() return ready ~= nil end) and ready, "the sink never spun")
local chunk = string.rep("x", 65536)
local sent, refused = 0, false
while sent < 96 * 2 ^ 20 do -- outside any coroutine: nothing here can wait
  if h:send(chunk) then sent = sent + #chunk else refused = true break end
end
print("outside", sent, refused)
io.stdout:flush()
main:send("finish")
assert(step_until(function() return finish ~= nil end), "the final send never went")
print("finish", finish)
]])
    local env = ("env LUA_PATH=%s LUA_CPATH=%s"):format(
      q(build .. "/share/lua/5.1/?.lua;" .. build .. "/share/lua/5.1/?/init.lua;;"),
      q(build .. "/lib/lua/5.1/?.so;;"))
    local c = ns.track(net.spawn(("%s luajit %s %s %s"):format(env, q(host), q(rloc), q(ns.secret))))
    local sent, refused = c:expect("^outside%s+(%d+)%s+(%a+)$")
    local fl = assert(io.open(flag, "w"))
    fl:close()
    finally(function() os.remove(flag) end) -- once the sink has seen it
    assert.equal("true", refused, c:output())
    sent = tonumber(sent)
    assert.is_true(sent > 0 and sent < 36 * 2 ^ 20, sent .. " bytes sent")
    -- every send that said true arrived; the refused one did not
    assert.equal(tostring(sent), c:expect("^finish%s+(%S+)$"))
    assert.equal(tostring(sent), r:expect("^got (%d+)$"))
  end)
end)

-- Every incoming operation a receiving node handles, from the shared lying
-- peer (spec/lying_peer.lua: authenticated, skipping every check a sender
-- makes), against real acoro processes on 127.0.0.1:
--   * the distribution layer (node.lua, rchannel.lua, rci.lua, files.lua):
--     each operation with missing fields, fields of the wrong type, NaN and
--     huge numbers, unknown operations and frames that are no operation at
--     all: each is answered or dropped (and logged), none ends the node, and
--     the node serves the lying peer and a good peer afterwards;
--   * file transfer (files.lua): each check of what a sender announces and
--     sends (paths, names, links, sizes, hashes, stream lengths, announced
--     timeouts), and each failure the docs promise leaves no partial file:
--     the sender gone quiet (timeout), a hash mismatch, a write error (the
--     receiver's file size limit), the sender aborting or going down, and
--     the receiving node stopping mid-transfer.

local ns = require "node_support"
local support = require "support"

local q, start, PRELUDE = ns.q, ns.start, ns.PRELUDE

local function sh(cmd) return os.execute(cmd) == 0 end

local function read(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local dirs = {}
local function tmpdir()
  local d = read("mktemp -d")
  assert(d:match("^/"), "mktemp -d failed")
  dirs[#dirs + 1] = d
  return d
end

local function cleanup()
  ns.stop_all()
  for _, d in ipairs(dirs) do sh("chmod -R u+w " .. q(d) .. " 2>/dev/null; rm -rf " .. q(d)) end
  dirs = {}
end

-- Every name under dir (recursive, hidden ones too), sorted, one a line.
local function tree(dir)
  return read("cd " .. q(dir) .. " && find . -mindepth 1 | sort")
end

-- The target: a node with dest_path `dest`, a coroutine registered as
-- "echo" (answers {from=, n=} with n), a channel "news" and an RCI "add";
-- it ends (the node stops) when "stop" comes to the echo.
local TARGET = PRELUDE .. [[
local echo = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if m == "stop" then return end
    if type(m) == "table" and m.from then m.from:send(m.n) end
  end
end)
echo:register("echo")
assert(acoro.channel("news"):register())
acoro.rci.register("add", function(a, b) return a + b end)
say("ready")
echo:join()
say("stopping")
]]

local function target(dest)
  local c, loc = start(TARGET, "--dest-path " .. q(dest))
  c:expect("^ready$")
  return c, loc
end

describe("a node given malformed operations by an authenticated peer", function()
  after_each(cleanup)

  it("answers or drops each, keeps running, and serves the liar and a good peer afterwards", function()
    local t, loc = target(tmpdir())
    local liar = ns.liar([[
local wire = require("acoro.core").wire
local O, X = LP.OP, LP.ext
local id = p:locate("echo")
local H, NaN, BIG, INF = p.handle, 0 / 0, 2 ^ 63, 1 / 0
local x = wire.encode("x")
local cases = {
  -- node.lua
  { O.send }, { O.send, "x", "m" }, { O.send, NaN, "m" }, { O.send, BIG, "m" }, { O.send, id },
  { O.locate }, { O.locate, 1, 5, 1, "coro" }, { O.locate, 2, "echo", "soon", "coro" },
  { O.locate, 3, "nobody", NaN, "coro" }, { O.locate, 4, "nobody", INF, "nokind" },
  { O.locate, NaN, "nobody", 0, "coro" }, { O.locate, 5, string.rep("n", 100000), 0, "coro" },
  { O.locate, BIG, "echo", -1, "channel" },
  { O.found }, { O.found, NaN, true }, { O.found, 1, X(1, "junk") },
  { O.monitor }, { O.monitor, id, "not a handle" }, { O.monitor, NaN, H }, { O.monitor, BIG, H },
  { O.monitor, id, X(1, "junk") }, { O.monitor, id, X(1, wire.encode({ 1, 2 })) },
  { O.exit }, { O.exit, id, H, 5 }, { O.exit, id, H, "\xc1" }, { O.exit, NaN, H, wire.encode({ reason = 5 }) },
  { O.exit, BIG, H, wire.encode({ reason = "x" }) }, { O.exit, id, H, wire.encode({ reason = "x" }) },
  { O.deliver }, { O.deliver, 6, id, "body" }, { O.deliver, 7, id, 5, 1 }, { O.deliver, 8, id, "\xc1", 1 },
  { O.deliver, NaN, id, x, NaN }, { O.deliver, 9, id, x, 1e300 }, { O.deliver, 10, BIG, x, 1 },
  { O.deliver, 11, id, x, -INF },
  { O.join }, { O.join, 12, id }, { O.join, 13, BIG, 1 }, { O.join, 14, NaN, NaN }, { O.join, 15, "x", 1 },
  { O.control }, { O.control, 16, id, "explode" }, { O.control, 17, id, "throw", 5 },
  { O.control, 18, id, "throw", "\xc1" }, { O.control, NaN, BIG, "terminate" }, { O.control, 19, BIG, "throw", x },
  { O.delivered }, { O.delivered, NaN, true }, { O.joined, 1, 5 }, { O.joined, NaN, "\xc1" },
  { O.answer }, { O.answer, {}, 1 }, { O.monitored }, { O.monitored, id, "x" }, { O.monitored, NaN, H },
  { O.monitored, BIG, H },
  -- rchannel.lua
  { O.channel }, { O.channel + 1 }, { O.channel + 2 }, { O.channel + 2, 20, "cid", "b" },
  { O.channel + 2, 21, NaN, "b" }, { O.channel + 2, 22, BIG, "\xc1", true },
  { O.channel + 3, NaN, "x", 1 }, { O.channel + 3, 1, 5, 1 }, { O.channel + 3, BIG, x, NaN },
  { O.channel + 4 }, { O.channel + 4, 23, 1, "b", NaN, NaN, 5, NaN }, { O.channel + 4, 24, BIG, x, 1, 1e300, false, 1e300 },
  { O.channel + 5 }, { O.channel + 5, NaN }, { O.channel + 5, 1e300 }, { O.channel + 9, 1 },
  -- rci.lua
  { O.rci }, { O.rci + 1 }, { O.rci + 2 }, { O.rci + 2, 25, "add", 5 }, { O.rci + 2, 26, 5, "x" },
  { O.rci + 2, 27, "add", wire.encode({ n = 1e300 }) }, { O.rci + 2, 28, "nosuch", wire.encode({ n = 0 }) },
  { O.rci + 2, 29, "add", wire.encode({ n = 1, w = "x" }) }, { O.rci + 2, 30, "add", "\xc1" },
  { O.rci + 2, 31, "add", p:encode({ n = 3, 1, 2, X(1, "junk") }) },
  -- files.lua
  { O.file }, { O.file, NaN }, { O.file, 32, "x" }, { O.file, 33, 1, 5, 6, 7 },
  { O.file + 1 }, { O.file + 1, NaN, "x" }, { O.file + 1, 1e300, 5 }, { O.file + 2 }, { O.file + 2, 1, "x" },
  { O.file + 2, NaN, 5 }, { O.file + 3 }, { O.file + 3, 34, "x" }, { O.file + 3, 35, 1e300 },
  { O.file + 4 }, { O.file + 4, "x" }, { O.file + 5 }, { O.file + 5, 36, 5, 6 },
  { O.file + 5, 37, "../..", "etc" }, { O.file + 5, 38, "", "\0" }, { O.file + 9 },
  -- no operation
  { 99 }, { 1e300 }, { -1 }, { NaN }, { "op" }, { true }, {}, { {} },
}
for _, c in ipairs(cases) do assert(p:send(c)) end
for _, raw in ipairs({ wire.encode(5), wire.encode({ a = 1 }), "\xc1", wire.encode("str"), "\x93\x01",
                       wire.encode({ O.send, id, "m", "extra" }) }) do
  assert(p:raw(raw))
end
say("sent", #cases + 6)
-- the node still serves this peer (a link keeps order: the echo comes
-- after every answer the cases got)
local again = p:locate("echo")
assert(p:send({ O.send, again, { from = p.handle, n = 42 } }))
local r = p:next(function(m) return m[1] == O.send end, 10)
say("echo", r and r[3])
local answers = {}
while true do
  local m = p:next(function(a) return a[1] ~= O.send end, 0)
  if not m then break end
  local v = m[3]
  if type(v) == "string" and v:find("[^%w %p]") then v = "<" .. #v .. " bytes>" end
  if type(v) == "table" then v = "{" .. tostring(v[1]) .. "," .. tostring(v[2]) .. "}" end
  answers[#answers + 1] = ("%s:%s=%s"):format(tostring(m[1]), tostring(m[2]), tostring(v))
end
say("answers", table.concat(answers, " "))
]], loc)
    local sent = tonumber(liar:expect("^sent (%d+)$"))
    assert.equal("42", liar:expect("^echo (.*)$"))
    -- a good peer, a real node, uses the target afterwards
    local good = ns.start_peer(loc, [[
local h = assert(acoro.locate("echo", { timeout = 10, location = arg[1] }))
h:send({ from = acoro.self(), n = 7 })
say("echo", acoro.receive(10))
local add = assert(acoro.rci.locate("add", { timeout = 10, location = arg[1] }))
say("add", pcall(add, 2, 3))
local ch = assert(acoro.locate_channel("news", { timeout = 10, location = arg[1] }))
say("sub", ch:subscribe(acoro.self()))
]])
    assert.equal("7", good:expect("^echo (.*)$"))
    good:expect("^add true")
    assert.equal("true", good:expect("^sub (.*)$"))
    -- the requests among the cases that could be answered were
    local answers = " " .. liar:expect("^answers (.*)$") .. " "
    for _, want in ipairs({ "3:3=false", "3:5=false", "3:nan=false", "7:10=dead", "7:19=dead", "7:9=true",
      "7:11=true", "9:13=", "9:14=", "11:21=unknown channel", "11:27={false,acoro.rci: the arguments of add",
      "11:28={false,acoro.rci: no RCI \"nosuch\"", "11:31={false,acoro.rci: the arguments of add",
      "11:32=bad BEGIN: transfer key string", "11:33=bad BEGIN: dir and name must be strings" }) do
      assert.truthy(answers:find(" " .. want, 1, true), want .. " not in" .. answers)
    end
    -- and the target ran on, every other case dropped with a line in its log
    assert.is_true(sh("kill -0 " .. t.pid), "the target ended")
    t:kill()
    local out = t:output() .. "\n" .. t:close()
    ns.forget(t)
    assert.is_nil(out:find("acoro: coroutine [^\n]* failed"), out)
    local dropped = select(2, out:gsub("acoro: node: dropped a message from", ""))
    assert.is_true(dropped >= 60, out)
  end)
end)

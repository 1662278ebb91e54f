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

local ds = require "dir_support"
local sh, tmpdir, cleanup, tree = ds.sh, ds.tmpdir, ds.cleanup, ds.tree

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
-- The extensions' blocks of operation numbers by their first (the unused
-- ones among them included: a peer may send any number).
local O = setmetatable({ channel = LP.OP.channel_sub - 2, rci = LP.OP.rci_call - 2,
  file = LP.OP.file_begin }, { __index = LP.OP })
local X = LP.ext
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
  { O.channel + 4 }, { O.channel + 4, 23, 1, "b", NaN, NaN, 5, NaN },
  { O.channel + 4, 24, BIG, x, 1, 1e300, false, 1e300 },
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
    liar:expect("^sent %d+$")
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

-- Runs `body` as the lying peer against loc, with, in scope: F (the files
-- operations' base), ACK (the operation of an acknowledgement) and
-- gave_up(wait) (the reason of the next ACK false from the receiver, or
-- "none").
local LIAR_FILES = [[
local F, ACK = LP.OP.file_begin, LP.OP.file_ack
local function gave_up(wait)
  local m = p:next(function(a) return a[1] == ACK and a[3] == false end, wait or 10)
  return m and m[4] or "none"
end
]]
local function liar(body, loc) return ns.liar(LIAR_FILES .. body, loc) end

-- A .acoro-part file under dir, or nil.
local function partial(dir)
  return tree(dir):match("[^\n]*%.acoro%-part")
end

describe("a node receiving files from a lying peer", function()
  after_each(cleanup)

  it("refuses every path, name and link out of bounds, with its reason, creating nothing", function()
    local dest, outside = tmpdir(), tmpdir()
    assert(sh(("ln -s %s %s/out && ln -s %s/v %s/name && mkdir %s/isdir")
      :format(q(outside), q(dest), q(outside), q(dest), q(dest))))
    local _, loc = target(dest)
    local s = liar([[
local cases = {
  { "dotdot_dir", { dir = "../x" } }, { "dotdot_deep", { dir = "a/../../x" } },
  { "absolute_dir", { dir = "/tmp" } }, { "slash_name", { name = "a/b" } },
  { "dotdot_name", { name = ".." } }, { "dot_name", { name = "." } }, { "empty_name", { name = "" } },
  { "part_name", { name = "x.acoro-part" } }, { "nul_name", { name = "a\0b" } }, { "nul_dir", { dir = "a\0" } },
  { "long_component", { dir = string.rep("c", 256) } },
  { "link_dir", { dir = "out" } }, { "link_under", { dir = "out/sub" } }, { "link_name", { name = "name" } },
  { "dir_name", { name = "isdir", overwrite = true } },
}
for _, c in ipairs(cases) do
  local ok, ans = p:file_begin(c[2])
  say("case", c[1], ok, type(ans) == "table" and "accepted" or ans)
end
local del = {
  { "del_dotdot", "..", "x" }, { "del_link_dir", "out", "v" }, { "del_link", "", "name" },
  { "del_dir", "", "isdir" }, { "del_absolute", "/tmp", "x" },
}
for _, c in ipairs(del) do say("case", c[1], p:ask(F + 5, c[2], c[3])) end
say("done")
]], loc)
    local want = {
      dotdot_dir = "path escapes dest_path", dotdot_deep = "path escapes dest_path",
      absolute_dir = "path escapes dest_path", slash_name = "bad file name: a/b",
      dotdot_name = "bad file name: ..", dot_name = "bad file name: .", empty_name = "bad file name: ",
      part_name = "bad file name: x.acoro-part", nul_name = "bad path (NUL byte)", nul_dir = "bad path (NUL byte)",
      long_component = "bad path (a component longer than 255 bytes)",
      link_dir = "path escapes dest_path (symbolic link out)",
      link_under = "path escapes dest_path (symbolic link out)",
      link_name = "path escapes dest_path (symbolic link name)", dir_name = "exists (not a regular file)",
      del_dotdot = "path escapes dest_path", del_link_dir = "path escapes dest_path (symbolic link out)",
      del_link = "path escapes dest_path (symbolic link name)", del_dir = "not a regular file",
      del_absolute = "path escapes dest_path",
    }
    local seen = 0
    while true do
      local l = s:line()
      assert(l, "the liar ended:\n" .. s:output())
      if l == "done" then break end
      local name, ok, ans = l:match("^case (%S+) (%S+) (.*)$")
      if name then
        assert.equal("true " .. assert(want[name], name), ok .. " " .. ans, name)
        seen = seen + 1
      end
    end
    assert.equal(20, seen)
    assert.equal("", tree(outside))
    assert.equal("./isdir\n./name\n./out", tree(dest))
  end)

  it("gives up a transfer whose sender goes quiet past its announced timeout, leaving no file", function()
    local dest = tmpdir()
    local _, loc = target(dest)
    -- (an announced timeout of 0.1 s: the receiver waits that plus 10 s)
    local s = liar([[
local ok, ans = p:file_begin({ name = "quiet", size = 10, timeout = 0.1 })
say("begin", ok, type(ans) == "table" and ans[1])
say("part")
say("gave_up", gave_up(40))
say("end", p:file_end(ans[2]))
]], loc)
    assert.equal("true true", s:expect("^begin (.*)$"))
    s:expect("^part$")
    assert.truthy(partial(dest), "no temporary file while the transfer runs")
    assert.equal("timeout (nothing from the sender)", s:expect("^gave_up (.*)$"))
    assert.equal("true timeout (nothing from the sender)", s:expect("^end (.*)$"))
    assert.equal("", tree(dest))
  end)

  it("ends a transfer on bad DATA, on ABORT and when its sender goes, leaving no file", function()
    local dest = tmpdir()
    local _, loc = target(dest)
    local s = liar([[
local ok, a = p:file_begin({ name = "a", size = 10 })
assert(ok and type(a) == "table", tostring(a))
assert(p:send({ F + 1, a[2], 12345 })) -- DATA that is no string
say("bad_data", gave_up())
local ok2, b = p:file_begin({ name = "b", size = 10 })
assert(ok2 and type(b) == "table", tostring(b))
assert(p:file_data(b[2], "01234"))
assert(p:file_data(b[2] + 1000, "56789")) -- DATA of no transfer: ignored
assert(p:file_abort(b[2]))
say("abort_end", p:file_end(b[2]))
local ok3, c = p:file_begin({ name = "c", size = 10 })
assert(ok3 and type(c) == "table", tostring(c))
assert(p:file_data(c[2], "01234"))
say("third")
acoro.suspend() -- the spec kills this peer
]], loc)
    assert.equal("bad DATA", s:expect("^bad_data (.*)$"))
    assert.equal("true aborted by the sender", s:expect("^abort_end (.*)$"))
    s:expect("^third$")
    assert.equal("c", partial(dest):match("^%./%.(%w)%."))
    s:kill()
    for _ = 1, 400 do -- the receiver sees the link go down (bounded: 20 s)
      if tree(dest) == "" then break end
      sh("sleep 0.05")
    end
    assert.equal("", tree(dest))
  end)

  it("removes the temporary file of a transfer whose write fails (the receiver's file size limit)", function()
    local dest = tmpdir()
    -- the receiver may write 64 kB a file (ulimit -f; SIGXFSZ ignored, so
    -- that a write past it fails with EFBIG instead of ending the process)
    local path = support.write_temp(TARGET)
    local c = ns.track(require("net_support").spawn("bash -c " .. q(("trap '' XFSZ; ulimit -f 64; exec %s "
      .. "--listen 127.0.0.1:0 --no-discover --secret-file %s --dest-path %s %s")
      :format(q(support.bin), q(ns.secret), q(dest), q(path)))))
    local loc = c:expect("^listening (127%.0%.0%.1:%d+)$")
    c:expect("^ready$")
    local s = liar([[
local data = string.rep("w", 200000)
local ok, ans = p:file_begin({ name = "big", size = #data, hash = LP.sha256(data) })
assert(ok and type(ans) == "table", tostring(ans))
for i = 1, #data, 50000 do assert(p:file_data(ans[2], data:sub(i, i + 49999))) end
say("gave_up", gave_up())
say("end", p:file_end(ans[2]))
]], loc)
    assert.matches("^write failed: ", s:expect("^gave_up (.*)$"))
    assert.matches("^true write failed: ", s:expect("^end (.*)$"))
    assert.equal("", tree(dest))
    assert.is_true(sh("kill -0 " .. c.pid), "the receiver ended")
  end)

  it("removes the temporary file when the receiving node stops mid-transfer", function()
    local dest = tmpdir()
    local t, loc = target(dest)
    local s = liar([[
local ok, ans = p:file_begin({ name = "half", size = 10 })
assert(ok and type(ans) == "table", tostring(ans))
assert(p:file_data(ans[2], "01234"))
local ack = p:next(function(m) return m[1] == F + 2 end, 10)
say("written", ack and ack[3])
acoro.receive_match(function(m) return m == "stop" end) -- (never comes)
]], loc)
    assert.equal("5", s:expect("^written (.*)$"))
    assert.truthy(partial(dest), "no temporary file while the transfer runs")
    -- the target's node stops: "stop" to its echo, from a good peer
    local g = ns.start_peer(loc, [[
local h = assert(acoro.locate("echo", { timeout = 10, location = arg[1] }))
h:send("stop")
say("sent")
]])
    g:expect("^sent$")
    t:expect("^stopping$")
    t:close() -- it ends (its node stopped first)
    ns.forget(t)
    assert.equal("", tree(dest))
  end)
end)

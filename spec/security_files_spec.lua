-- Attacks on a node receiving files (lua/acoro/files.lua), between real
-- acoro processes on 127.0.0.1:
--   * a local user who can write dest_path plants symbolic links where the
--     receiver will write (the temporary names, the final name) or swaps
--     the temporary file for one while the transfer runs: nothing may be
--     written, chmod'ed or touched outside dest_path, and no link may end
--     up in the file's place;
--   * an authenticated but hostile peer skips send_file's own checks and
--     speaks the protocol itself (the shared lying peer, spec/lying_peer.lua):
--     sizes, timeouts, modes, times and names out of range
--     must be refused at once, with the reason, and leave no file behind.
-- What the refusals cost the receiver (time, VmRSS) is measured by
-- bench/file_refusals.lua (bench/run rf), not here.

local ns = require "node_support"

local q, start, PRELUDE = ns.q, ns.start, ns.PRELUDE

local ds = require "dir_support"
local sh, read, tmpdir, cleanup, tree = ds.sh, ds.read, ds.tmpdir, ds.cleanup, ds.tree

local eventually = ds.eventually

-- A receiver node with dest_path `dest`: returns the child, its location
-- and its pid.
local RECEIVER = PRELUDE .. "acoro.receive()\n"
local function receiver(dest, extra)
  local c, loc = start(RECEIVER, "--dest-path " .. q(dest) .. " " .. (extra or ""))
  return c, loc, tonumber(c:expect("^pid (%d+)$"))
end

-- The shared lying peer (spec/lying_peer.lua) linked to loc, running body
-- with, in scope: p (the peer) and begin(fields) (p:file_begin).
local ADVERSARY = [[
local function begin(fields) return p:file_begin(fields) end
local sha256 = LP.sha256
]]

local function adversary(body, loc)
  return ns.liar(ADVERSARY .. body, loc)
end

describe("a local user who can write dest_path", function()
  after_each(cleanup)

  it("cannot make a transfer write outside dest_path through links at the temporary names", function()
    local src, dest, outside = tmpdir(), tmpdir(), tmpdir()
    assert(sh(("head -c 600000 /dev/urandom > %s/f"):format(src)))
    local r, loc, rpid = receiver(dest)
    -- the names the receiver used to choose (.NAME.PID-N.acoro-part, N
    -- counting from 1) and random-looking ones, each a link to a file of
    -- the victim's outside dest_path
    local planted = 0
    for i = 1, 64 do
      local victim = ("%s/v%d"):format(outside, i)
      assert(sh(("printf precious > %s && chmod 600 %s"):format(q(victim), q(victim))))
      local names = { ("%s/.f.%d-%d.acoro-part"):format(dest, rpid, i),
        ("%s/.f.%d-%032x.acoro-part"):format(dest, rpid, i) }
      for _, n in ipairs(names) do
        assert(sh(("ln -s %s %s"):format(q(victim), q(n))))
        planted = planted + 1
      end
    end
    local s = start(PRELUDE .. ([[
say("sent", acoro.send_file(arg[1], %q, { overwrite = true }))
]]):format(src .. "/f"), nil, nil, q(loc))
    assert.equal("true", s:expect("^sent (.*)$"))
    assert.equal(128, planted)
    -- the victims are untouched, the file arrived as a regular file
    for i = 1, 64 do
      local victim = ("%s/v%d"):format(outside, i)
      assert.equal("8 600", read("stat -c '%s %a' " .. q(victim)), victim) -- size and mode
      assert(sh(("printf precious | cmp -s - %s"):format(q(victim))), victim .. " was written")
    end
    assert.equal("regular file", read("stat -c %F " .. q(dest .. "/f")))
    assert(sh(("cmp -s %s/f %s/f"):format(src, dest)))
    -- and nothing but the links and the file is in dest_path
    local names = read("cd " .. q(dest) .. " && find . -mindepth 1 ! -type l | sort")
    assert.equal("./f", names)
    assert.is_true(sh("kill -0 " .. r.pid), "the receiver ended") -- and it serves on
  end)

  it("cannot get a link followed by swapping the temporary file for one mid-transfer", function()
    local dest, outside = tmpdir(), tmpdir()
    local victim = outside .. "/victim"
    assert(sh(("printf precious > %s && chmod 600 %s && touch -d '2001-01-01' %s")
      :format(q(victim), q(victim), q(victim))))
    local want = read("stat -c '%a %Y %s' " .. q(victim))
    local _, loc = receiver(dest)
    -- The peer is honest; the local attacker (its part done by the same
    -- script, between BEGIN and END, so that it always happens in time)
    -- moves the temporary file away and puts a link to the victim in its
    -- place, which a chmod or utime by name would follow, and a rename
    -- would move into the file's place.
    local s = adversary(([[
local dest, victim = %q, %q
local data = string.rep("x", 1000)
local ok, ans = begin({ name = "f", size = #data, hash = sha256(data), mode = 493 })
assert(ok and type(ans) == "table" and ans[1] == true, tostring(ans))
local tmp
for _, n in ipairs(acoro.fs.readdir(dest)) do
  if n:match("%%.acoro%%-part$") then tmp = dest .. "/" .. n end
end
assert(tmp, "no temporary file")
assert(os.rename(tmp, dest .. "/moved"))
assert(os.execute(("ln -s %%q %%q"):format(victim, tmp)) == 0)
assert(p:file_data(ans[2], data))
local done, why = p:file_end(ans[2])
say("end", done, why)
]]):format(dest, victim), loc)
    assert.equal("true the temporary file was replaced (by a local user of the receiver)",
      s:expect("^end (.*)$"))
    assert.equal(want, read("stat -c '%a %Y %s' " .. q(victim))) -- mode, mtime, size untouched
    assert.equal("precious", read("cat " .. q(victim)))
    -- the receiver removed its temporary name (the link itself, not its
    -- target); what the attacker moved away is the attacker's
    eventually(function() return tree(dest) == "./moved" end, "only ./moved left")
  end)

  it("cannot lead transfers out of dest_path by swapping a directory for a link without pause", function()
    local src, dest, outside = tmpdir(), tmpdir(), tmpdir()
    assert(sh(("printf 'from the peer' > %s/f"):format(src)))
    assert(sh(("mkdir %s/sub && ln -s %s %s/.link"):format(q(dest), q(outside), q(dest))))
    local _, loc = receiver(dest)
    -- The attacker exchanges dest/sub (a directory) and dest/.link (a
    -- link to `outside`) atomically, in a tight loop: at any moment sub is
    -- one or the other, and a receiver that checked a path then used it
    -- would create, rename or remove through the link. It stops when the
    -- spec creates dest/../stop-NAME, or after 30 s.
    local stop = dest .. ".stop"
    local swapper = ns.track(require("net_support").spawn_acoro(q(require("support").write_temp(([[
local ffi = require "ffi"
ffi.cdef [=[
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags);
int access(const char *path, int mode);
]=]
local sub, link, stop = %q, %q, %q
local n, t0 = 0, os.time()
print("swapping") io.stdout:flush()
while os.time() - t0 < 30 do
  for _ = 1, 10000 do
    if ffi.C.renameat2(-100, sub, -100, link, 2) == 0 then n = n + 1 end
  end
  if ffi.C.access(stop, 0) == 0 then break end
end
print("swaps", n) io.stdout:flush()
]]):format(dest .. "/sub", dest .. "/.link", stop)))))
    swapper:expect("^swapping$")
    local s = start(PRELUDE .. ([[
local ok, refused, reasons = 0, 0, {}
for i = 1, 40 do
  local r, why = acoro.send_file(arg[1], %q, { dir = "sub/d" .. i })
  if r then ok = ok + 1 else refused = refused + 1; reasons[why] = true end
end
local list = {}
for why in pairs(reasons) do list[#list + 1] = why end
table.sort(list)
say("sent", ok, refused)
say("reasons", table.concat(list, "; "))
]]):format(src .. "/f"), nil, nil, q(loc))
    local ok, refused = s:expect("^sent (%d+) (%d+)$")
    local reasons = s:expect("^reasons (.*)$")
    assert(sh("touch " .. q(stop)))
    local swaps = swapper:expect("^swaps%s+(%d+)$")
    sh("rm -f " .. q(stop))
    -- (every transfer either arrived or was refused with a reason)
    assert.equal(40, tonumber(ok) + tonumber(refused), reasons)
    assert.truthy(tonumber(swaps))
    assert.equal("", tree(outside)) -- nothing created, left or renamed there
    -- every file that arrived is in the real directory (sub or .link now),
    -- and nothing else is: no temporary file left
    local files = read("cd " .. q(dest) .. " && find . -type f | sort")
    local n = 0
    for line in files:gmatch("[^\n]+") do
      assert.matches("^%./[^/]+/d%d+/f$", line)
      n = n + 1
    end
    assert.equal(tonumber(ok), n)
  end)

  it("cannot have the file put in place of a link planted at its final name mid-transfer", function()
    local dest, outside = tmpdir(), tmpdir()
    local victim = outside .. "/victim"
    assert(sh(("printf precious > %s"):format(q(victim))))
    local _, loc = receiver(dest)
    local s = adversary(([[
local dest, victim = %q, %q
local data = string.rep("y", 1000)
local ok, ans = begin({ name = "g", size = #data, hash = sha256(data), overwrite = true })
assert(ok and type(ans) == "table" and ans[1] == true, tostring(ans))
assert(os.execute(("ln -s %%q %%q"):format(victim, dest .. "/g")) == 0)
assert(p:file_data(ans[2], data))
local done, why = p:file_end(ans[2])
say("end", done, why)
]]):format(dest, victim), loc)
    assert.equal("true path escapes dest_path (symbolic link g)", s:expect("^end (.*)$"))
    assert.equal("precious", read("cat " .. q(victim)))
    assert.equal("symbolic link", read("stat -c %F " .. q(dest .. "/g"))) -- left as it was
    eventually(function() return tree(dest) == "./g" end, "no temporary file left")
  end)
end)

describe("an authenticated peer that breaks the protocol on purpose", function()
  after_each(cleanup)

  it("is refused at BEGIN with the reason for every field out of range, leaving no file", function()
    local dest = tmpdir()
    local r, loc = receiver(dest)
    local s = adversary([[
local cases = {
  { "size_2^53", { size = 2 ^ 53 } },
  { "size_1TiB", { size = 2 ^ 40 } },
  { "size_negative", { size = -1 } },
  { "size_fraction", { size = 1.5 } },
  { "size_nan", { size = 0 / 0 } },
  { "timeout_nan", { timeout = 0 / 0 } },
  { "timeout_huge", { timeout = 1e300 } },
  { "timeout_zero", { timeout = 0 } },
  { "mode_setuid", { mode = tonumber("4755", 8) } },
  { "mode_all_bits", { mode = 2 ^ 32 - 1 } },
  { "mode_world_writable", { mode = tonumber("666", 8) } },
  { "mtime_nan", { mtime = 0 / 0 } },
  { "mtime_inf", { mtime = 1 / 0 } },
  { "name_newline", { name = "a\nacoro: forged log line" } },
  { "name_long", { name = string.rep("n", 300) } },
  { "dir_long", { dir = string.rep("d/", 600) } },
  { "hash_not_hex", { hash = string.rep("z", 64) } },
  { "skey_nan", { skey = 0 / 0 } },
}
for _, c in ipairs(cases) do
  local ok, ans = begin(c[2])
  say("case", c[1], ok, type(ans) == "table" and "accepted" or ans)
end
-- a flood: 2000 BEGINs of 2^53 bytes, one after the other
local refused = 0
for _ = 1, 2000 do
  local ok, ans = begin({ size = 2 ^ 53 })
  if ok and type(ans) == "string" and ans:find("^bad size") then refused = refused + 1 end
end
say("flood", refused)
]], loc)
    local want = {
      ["size_2^53"] = "bad size 9007199254740992 (a whole number of bytes in 0..4398046511104)",
      size_1TiB = "^too large: 1099511627776 bytes > %d+ bytes free in dest_path$",
      size_negative = "bad size -1 (a whole number of bytes in 0..4398046511104)",
      size_fraction = "bad size 1.5 (a whole number of bytes in 0..4398046511104)",
      size_nan = "bad size nan (a whole number of bytes in 0..4398046511104)",
      timeout_nan = "bad timeout nan (seconds, in (0, 3600])",
      timeout_huge = "bad timeout 1.0000000000000001e+300 (seconds, in (0, 3600])",
      timeout_zero = "bad timeout 0 (seconds, in (0, 3600])",
      mode_setuid = "bad mode 04755 (permission bits within 0755)",
      mode_all_bits = "bad mode 037777777777 (permission bits within 0755)",
      mode_world_writable = "bad mode 0666 (permission bits within 0755)",
      mtime_nan = "bad mtime nan (seconds since the epoch, finite, within +-1e+11)",
      mtime_inf = "bad mtime inf (seconds since the epoch, finite, within +-1e+11)",
      name_newline = "bad path (control character)",
      name_long = "bad file name (longer than 255 bytes)",
      dir_long = "bad path (dir longer than 1024 bytes)",
      hash_not_hex = "bad BEGIN: hash must be 64 lowercase hex digits",
      skey_nan = "bad BEGIN: transfer key nan",
    }
    for _ = 1, 18 do
      local name, ok, ans = s:expect("^case (%S+) (%S+) (.*)$")
      local w = assert(want[name], name)
      assert.equal("true", ok, name)
      if w:sub(1, 1) == "^" then
        assert.matches(w, ans, nil, false, name)
      else
        assert.equal(w, ans, name)
      end
    end
    local refused = s:expect("^flood (%d+)$")
    assert.equal("2000", refused)
    -- each refusal is logged by the receiver, with the reason
    assert.truthy(r:expect("^acoro: files: refused a file from 127%.0%.0%.1:%d+: (bad size 9007199254740992.*)$"))
    assert.equal("", tree(dest))
  end)

  it("cannot hold more than 64 transfers open at once; aborted ones leave nothing", function()
    local dest = tmpdir()
    local _, loc = receiver(dest)
    local s = adversary([[
local accepted, tids, busy = 0, {}, nil
for i = 1, 80 do
  local ok, ans = begin({ name = "f" .. i, size = 100 })
  if ok and type(ans) == "table" then
    accepted = accepted + 1
    tids[#tids + 1] = ans[2]
  elseif busy == nil then
    busy = ans
  end
end
say("accepted", accepted, busy)
acoro.suspend() -- the spec reads the receiver's RSS, then stops us
]], loc)
    assert.equal("64 busy: 64 transfers from this peer under way", s:expect("^accepted (.*)$"))
    eventually(function() return select(2, tree(dest):gsub("\n", "")) == 63 end, "64 temporary files")
    s:kill() -- the peer goes: its transfers end, their files go
    eventually(function() return tree(dest) == "" end, "every temporary file removed")
  end)
end)

describe("timeouts of acoro.send_file, acoro.del_file and acoro.fs", function()
  after_each(cleanup)

  it("NaN and out-of-range timeouts raise a clear error", function()
    local dest = tmpdir()
    local _, loc = receiver(dest)
    local s = start(PRELUDE .. [[
local loc = arg[1]
local function try(f, ...)
  local ok, err = pcall(f, ...)
  say("raised", not ok, (tostring(err):gsub("^[^ ]*:%d+: ", "")))
end
try(acoro.send_file, loc, "/etc/hostname", { timeout = 0 / 0 })
try(acoro.send_file, loc, "/etc/hostname", { timeout = 1e9 })
try(acoro.del_file, loc, "x", { timeout = 0 / 0 })
try(acoro.fs.stat, "/", 0 / 0)
try(acoro.fs.open, "/etc/hostname", "r", 0 / 0)
local f = acoro.fs.open("/etc/hostname")
try(f.read, f, 0 / 0)
try(f.seek, f, "set", 0 / 0)
try(f.utime, f, 0 / 0, 0)
say("done")
]], nil, nil, q(loc))
    local want = {
      "acoro.send_file: timeout must be a number of seconds in (0, 3600], got nan",
      "acoro.send_file: timeout must be a number of seconds in (0, 3600], got 1000000000",
      "acoro.del_file: timeout must be a number of seconds in (0, 3600], got nan",
      "acoro: fs.stat: timeout must be a number, got nan",
      "acoro: fs.open: timeout must be a number, got nan",
      "acoro: read: expected a byte count, \"a\", \"l\" or \"L\", got nan",
      "acoro: seek: offset must be a number, got nan",
      "acoro: utime: atime must be a finite number of seconds, got nan",
    }
    for _, w in ipairs(want) do
      assert.equal("true " .. w, s:expect("^raised (.*)$"))
    end
    s:expect("^done$")
  end)
end)

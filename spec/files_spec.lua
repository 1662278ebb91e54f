-- Files between nodes (lua/acoro/files.lua): acoro.send_file and
-- acoro.del_file between real acoro processes on 127.0.0.1
-- (spec/node_support.lua), each receiver with its own dest_path in a fresh
-- temporary directory, removed after each test.

local ns = require "node_support"
local net = require "net_support"
local support = require "support"

local q, start, PRELUDE = ns.q, ns.start, ns.PRELUDE

local ds = require "dir_support"
local sh, read, tmpdir, cleanup, exists, tree = ds.sh, ds.read, ds.tmpdir, ds.cleanup, ds.exists, ds.tree

-- A receiver node: prints "offline LOCATION" when a peer goes away.
local RECEIVER = PRELUDE .. [[
local w = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_peer_status(m) then say(m.status, m.location) end
  end
end)
w:set_daemon(true)
acoro.peer_status(w)
acoro.receive()
]]

local function receiver(dest, extra)
  return start(RECEIVER, "--dest-path " .. q(dest) .. " " .. (extra or ""))
end

-- Runs `body` (Lua, with `loc` the receiver's location and say()) as a
-- sender node; returns the child.
local function sender(body, loc, extra)
  return start(PRELUDE .. "local loc = arg[1]\n" .. body, extra, nil, q(loc))
end

local eventually = ds.eventually

describe("acoro.send_file", function()
  after_each(cleanup)

  it("delivers a small file with its modification time and at most its 0755 mode bits", function()
    local src, dest = tmpdir(), tmpdir()
    assert(sh(("printf 'hello\\n' > %s/a.txt && chmod 0777 %s/a.txt && touch -d '2020-01-02 03:04:05' %s/a.txt")
      :format(src, src, src)))
    assert(sh(("printf 'secret' > %s/b.txt && chmod 0600 %s/b.txt"):format(src, src)))
    local _, loc = receiver(dest)
    local s = sender(([[
say("a", acoro.send_file(loc, %q, { dir = "sub/deeper" }))
say("b", acoro.send_file(loc, %q))
]]):format(src .. "/a.txt", src .. "/b.txt"), loc)
    assert.equal("true", s:expect("^a (.*)$"))
    assert.equal("true", s:expect("^b (.*)$"))
    assert.equal("hello", read("cat " .. q(dest .. "/sub/deeper/a.txt")))
    assert.equal("755 " .. read("stat -c %Y " .. q(src .. "/a.txt")),
      read("stat -c '%a %Y' " .. q(dest .. "/sub/deeper/a.txt")))
    assert.equal("600", read("stat -c %a " .. q(dest .. "/b.txt")))
    assert.equal("secret", read("cat " .. q(dest .. "/b.txt")))
    assert.equal("./b.txt\n./sub\n./sub/deeper\n./sub/deeper/a.txt", tree(dest)) -- no temporary files
  end)

  it("does not send an identical file again; refuses a different one unless overwrite", function()
    local src, dest = tmpdir(), tmpdir()
    assert(sh(("printf 'one' > %s/f.txt"):format(src)))
    local _, loc = receiver(dest)
    local s = sender(([[
local path = %q
say("first", acoro.send_file(loc, path))
say("again", acoro.send_file(loc, path))
acoro.receive() -- the spec changes the file, then sends "go"
]]):format(src .. "/f.txt"), loc)
    assert.equal("true", s:expect("^first (.*)$"))
    local inode = read("stat -c %i " .. q(dest .. "/f.txt"))
    assert.equal("true", s:expect("^again (.*)$"))
    assert.equal(inode, read("stat -c %i " .. q(dest .. "/f.txt"))) -- not replaced
    s:kill()
    -- a different file (same size, another mtime and content)
    assert(sh(("printf 'two' > %s/f.txt && touch -d '2021-01-01' %s/f.txt"):format(src, src)))
    local s2 = sender(([[
local path = %q
say("plain", acoro.send_file(loc, path))
say("overwrite", acoro.send_file(loc, path, { overwrite = true }))
]]):format(src .. "/f.txt"), loc)
    assert.equal("nil exists EEXIST", s2:expect("^plain (.*)$"))
    assert.equal("true", s2:expect("^overwrite (.*)$"))
    assert.equal("two", read("cat " .. q(dest .. "/f.txt")))
    assert.equal("./f.txt", tree(dest))
  end)

  it("refuses a file over max_file_size before writing anything", function()
    local src, dest = tmpdir(), tmpdir()
    assert(sh(("head -c 5000 /dev/zero > %s/big && head -c 1000 /dev/zero > %s/ok"):format(src, src)))
    local _, loc = receiver(dest, "--max-file-size 1000")
    local s = sender(([[
say("big", acoro.send_file(loc, %q, { dir = "d" }))
say("ok", acoro.send_file(loc, %q))
]]):format(src .. "/big", src .. "/ok"), loc)
    assert.equal("nil too large: 5000 > max_file_size 1000 EFBIG", s:expect("^big (.*)$"))
    assert.equal("true", s:expect("^ok (.*)$"))
    assert.equal("./ok", tree(dest))
  end)

  it("refuses paths that escape dest_path: .., absolute, symbolic links out of it", function()
    local src, dest, outside = tmpdir(), tmpdir(), tmpdir()
    assert(sh(("printf x > %s/f && printf x > %s/.f.1-1.acoro-part"):format(src, src)))
    assert(sh(("ln -s %s %s/out"):format(q(outside), q(dest))))
    assert(sh(("mkdir %s/in && ln -s %s/victim %s/in/f"):format(q(dest), q(outside), q(dest))))
    local _, loc = receiver(dest)
    local s = sender(([[
local f = %q
say("dotdot", acoro.send_file(loc, f, { dir = "a/../../x" }))
say("absolute", acoro.send_file(loc, f, { dir = "/tmp" }))
say("link", acoro.send_file(loc, f, { dir = "out" }))
say("linkdeep", acoro.send_file(loc, f, { dir = "out/x" }))
say("linkfile", acoro.send_file(loc, f, { dir = "in", overwrite = true }))
say("del", acoro.del_file(loc, "f", { dir = "../" }))
say("dirfile", acoro.send_file(loc, f, { dir = "in/.." }))
say("notfile", acoro.send_file(loc, %q))
say("partname", acoro.send_file(loc, %q))
say("unreachable", acoro.send_file("127.0.0.1:1", f, { timeout = 5 }))
]]):format(src .. "/f", src, src .. "/.f.1-1.acoro-part"), loc)
    assert.equal("nil path escapes dest_path EACCES", s:expect("^dotdot (.*)$"))
    assert.equal("nil path escapes dest_path EACCES", s:expect("^absolute (.*)$"))
    assert.equal("nil path escapes dest_path (symbolic link out) EACCES", s:expect("^link (.*)$"))
    assert.equal("nil path escapes dest_path (symbolic link out) EACCES", s:expect("^linkdeep (.*)$"))
    assert.equal("nil path escapes dest_path (symbolic link f) EACCES", s:expect("^linkfile (.*)$"))
    assert.equal("nil path escapes dest_path EACCES", s:expect("^del (.*)$"))
    -- ".." anywhere is refused, even where it would stay inside
    assert.equal("nil path escapes dest_path EACCES", s:expect("^dirfile (.*)$"))
    assert.equal("nil not a regular file EINVAL", s:expect("^notfile (.*)$"))
    assert.equal("nil bad file name: .f.1-1.acoro-part EINVAL", s:expect("^partname (.*)$"))
    assert.equal("nil unreachable ENOPEER", s:expect("^unreachable (.*)$"))
    assert.equal("", tree(outside)) -- nothing written outside
    assert.equal("./in\n./in/f\n./out", tree(dest))
  end)

  it("many transfers to one peer at once all arrive intact", function()
    local src, dest = tmpdir(), tmpdir()
    for i = 1, 4 do assert(sh(("head -c %d /dev/urandom > %s/f%d"):format(300000 * i + i, src, i))) end
    local _, loc = receiver(dest)
    local s = sender(([[
local src = %q
local cos = {}
for i = 1, 4 do
  cos[i] = acoro.spawn(function() return acoro.send_file(loc, src .. "/f" .. i, { dir = "c" }) end)
end
for i = 1, 4 do say("sent", i, select(2, cos[i]:join(60))) end
]]):format(src), loc)
    for _ = 1, 4 do assert.match("^%d true$", s:expect("^sent (.*)$")) end
    for i = 1, 4 do
      assert(sh(("cmp -s %s/f%d %s/c/f%d"):format(src, i, dest, i)), "f" .. i .. " differs")
    end
    assert.equal("./c\n./c/f1\n./c/f2\n./c/f3\n./c/f4", tree(dest))
  end)

  it("a sender killed mid-transfer leaves no partial file", function()
    local src, dest = tmpdir(), tmpdir()
    assert(sh(("head -c 100000000 /dev/zero > %s/big"):format(src)))
    local _, loc = receiver(dest)
    -- The sender watches dest_path and kills itself with SIGKILL once the
    -- receiver's temporary file is there (the transfer has begun).
    local s = sender(([[
ffi.cdef "int kill(int pid, int sig);"
local dest = %q
acoro.spawn(function()
  for _ = 1, 200000 do
    for _, n in ipairs(acoro.fs.readdir(dest) or {}) do
      if n:match("%%.acoro%%-part$") then
        say("partial", n)
        ffi.C.kill(ffi.C.getpid(), 9)
      end
    end
    acoro.sleep(0.001)
  end
end)
say("sent", acoro.send_file(loc, %q))
]]):format(dest, src .. "/big"), loc)
    assert.truthy(s:expect("^partial (.*)$"))
    eventually(function() return tree(dest) == "" end, "the temporary file removed")
    assert.is_false(exists(dest .. "/big"))
  end)

  it("a receiver killed mid-transfer: the next transfer there removes its temporary file", function()
    local src, dest = tmpdir(), tmpdir()
    assert(sh(("head -c 100000000 /dev/zero > %s/big && printf x > %s/small"):format(src, src)))
    -- This receiver kills itself with SIGKILL once its temporary file is there.
    local _, loc = start(PRELUDE .. ([[
ffi.cdef "int kill(int pid, int sig);"
for _ = 1, 200000 do
  for _, n in ipairs(acoro.fs.readdir(%q) or {}) do
    if n:match("%%.acoro%%-part$") then
      say("partial", n)
      ffi.C.kill(ffi.C.getpid(), 9)
    end
  end
  acoro.sleep(0.001)
end
]]):format(dest), "--dest-path " .. q(dest))
    local s = sender(("say('sent', acoro.send_file(loc, %q))"):format(src .. "/big"), loc)
    assert.equal("nil unreachable ENOPEER", s:expect("^sent (.*)$"))
    assert.matches("^%./%.big%.%d+%-%x+%.acoro%-part$", tree(dest)) -- left behind
    local _, loc2 = receiver(dest)
    local s2 = sender(("say('sent', acoro.send_file(loc, %q))"):format(src .. "/small"), loc2)
    assert.equal("true", s2:expect("^sent (.*)$"))
    assert.equal("./small", tree(dest))
  end)

  it("a 100 MB file arrives intact (sha256sum on both sides)", function()
    local src, dest = tmpdir(), tmpdir()
    assert(sh(("head -c 100000000 /dev/urandom > %s/big"):format(src)))
    local _, loc = receiver(dest)
    local s = sender(("say('sent', acoro.send_file(loc, %q, { dir = 'x' }))"):format(src .. "/big"), loc)
    assert.equal("true", s:expect("^sent (.*)$"))
    local want = read("sha256sum < " .. q(src .. "/big"))
    assert.equal(want, read("sha256sum < " .. q(dest .. "/x/big")))
  end)
end)

describe("acoro.del_file", function()
  after_each(cleanup)

  it("removes the file and its empty parent folders, never dest_path", function()
    local src, dest = tmpdir(), tmpdir()
    assert(sh(("printf x > %s/f && printf y > %s/g"):format(src, src)))
    local _, loc = receiver(dest)
    local s = sender(([[
say("s1", acoro.send_file(loc, %q, { dir = "a/b/c" }))
say("s2", acoro.send_file(loc, %q, { dir = "a" }))
say("d1", acoro.del_file(loc, "f", { dir = "a/b/c" }))
say("d2", acoro.del_file(loc, "f", { dir = "a/b/c" }))
say("d3", acoro.del_file(loc, "a"))
say("d4", acoro.del_file(loc, "g", { dir = "a" }))
]]):format(src .. "/f", src .. "/g"), loc)
    assert.equal("true", s:expect("^s1 (.*)$"))
    assert.equal("true", s:expect("^s2 (.*)$"))
    assert.equal("true", s:expect("^d1 (.*)$"))
    assert.equal("nil no such file ENOENT", s:expect("^d2 (.*)$"))
    assert.equal("nil not a regular file EINVAL", s:expect("^d3 (.*)$"))
    assert.equal("true", s:expect("^d4 (.*)$"))
    assert.equal("", tree(dest))
    assert.is_true(exists(dest)) -- dest_path itself stays
  end)
end)

describe("dest_path and the receiver's checks", function()
  after_each(cleanup)

  -- A receiver whose environment has TMPDIR=tmp and no --dest-path.
  local function default_receiver(tmp)
    local c = ns.track(net.spawn(("env TMPDIR=%s %s --listen 127.0.0.1:0 --no-discover --secret-file %s %s")
      :format(q(tmp), q(support.bin), q(ns.secret), q(support.write_temp(RECEIVER)))))
    return c, c:expect("^listening (127%.0%.0%.1:%d+)$")
  end

  it("defaults to TMPDIR/acoro-UID, made 0700; refuses one that is not ours", function()
    local src, tmp = tmpdir(), tmpdir()
    assert(sh(("printf x > %s/f"):format(src)))
    local uid = read("id -u")
    local _, loc = default_receiver(tmp)
    local s = sender(("say('sent', acoro.send_file(loc, %q))"):format(src .. "/f"), loc)
    assert.equal("true", s:expect("^sent (.*)$"))
    assert.equal("700 x", read(("stat -c %%a %s/acoro-%s && cat %s/acoro-%s/f"):format(tmp, uid, tmp, uid))
      :gsub("\n", " "))
    -- a symbolic link in its place (someone else's trap) is refused
    local tmp2, elsewhere = tmpdir(), tmpdir()
    assert(sh(("ln -s %s %s/acoro-%s"):format(q(elsewhere), q(tmp2), uid)))
    local r2, loc2 = default_receiver(tmp2)
    local s2 = sender(("say('sent', acoro.send_file(loc, %q))"):format(src .. "/f"), loc2)
    assert.equal("nil dest_path " .. tmp2 .. "/acoro-" .. uid .. " is not a directory owned by this user EACCES",
      s2:expect("^sent (.*)$"))
    assert.is_true(sh("kill -0 " .. r2.pid), "the receiver ended after refusing") -- it serves on
    assert.equal("", tree(elsewhere))
  end)

  it("stops a stream that goes past its announced size and removes its temporary file", function()
    local dest = tmpdir()
    local _, loc = receiver(dest)
    -- The lying peer announces 10 bytes and sends 20.
    local s = ns.liar([[
local ok, ans = p:file_begin({ name = "liar", size = 10 })
say("begin", ok, type(ans) == "table" and ans[1])
assert(p:file_data(ans[2], string.rep("x", 20)))
say("end", p:file_end(ans[2]))
]], loc)
    assert.equal("true true", s:expect("^begin (.*)$"))
    assert.equal("true larger than announced: more than 10 bytes", s:expect("^end (.*)$"))
    eventually(function() return tree(dest) == "" end, "the temporary file removed")
  end)

  -- The lying peer: announces `size` bytes with the SHA-256 of `announced`,
  -- sends `data` and asks to END; returns the child ("begin" and "end" lines).
  local function lying_sender(loc, size, announced, data)
    return ns.liar(([[
local ok, ans = p:file_begin({ name = "liar", size = %d, hash = LP.sha256(%q) })
say("begin", ok, type(ans) == "table" and ans[1])
assert(p:file_data(ans[2], %q))
say("end", p:file_end(ans[2]))
]]):format(size, announced, data), loc)
  end

  it("refuses at END a file whose bytes do not have the announced SHA-256, leaving no file", function()
    local dest = tmpdir()
    local _, loc = receiver(dest)
    local s = lying_sender(loc, 10, "0123456789", "9876543210") -- the size is right
    assert.equal("true true", s:expect("^begin (.*)$"))
    assert.equal("true hash mismatch (did the file change while it was sent?)", s:expect("^end (.*)$"))
    eventually(function() return tree(dest) == "" end, "the temporary file removed")
  end)

  it("refuses at END a file shorter than announced, leaving no file", function()
    local dest = tmpdir()
    local _, loc = receiver(dest)
    local s = lying_sender(loc, 10, "0123456789", "01234")
    assert.equal("true true", s:expect("^begin (.*)$"))
    assert.equal("true size mismatch: 5 bytes of 10", s:expect("^end (.*)$"))
    eventually(function() return tree(dest) == "" end, "the temporary file removed")
  end)

  it("the CLI refuses a bad --max-file-size; acoro.node a bad dest_path or max_file_size", function()
    local c = net.spawn_acoro("--max-file-size lots -e 'print(1)'")
    assert.truthy(c:close():find("--max-file-size needs a number of bytes, got lots", 1, true))
    local c2 = (net.spawn_acoro([[-e 'print(pcall(require("acoro").node, { max_file_size = -1 }))']]))
    assert.truthy(c2:close():find("max_file_size must be a whole number of bytes >= 0, got -1", 1, true))
    local c3 = (net.spawn_acoro([[-e 'print(pcall(require("acoro").node, { dest_path = 5 }))']]))
    assert.truthy(c3:close():find("dest_path must be a non-empty string, got 5", 1, true))
  end)
end)

describe("the acoro.fs calls files.lua uses", function()
  after_each(cleanup)

  it("lstat, chmod, utime, uid, getuid and sha256", function()
    local acoro = require "acoro"
    local d = tmpdir()
    assert(sh(("printf abc > %s/f && ln -s f %s/l"):format(d, d)))
    local r = {}
    acoro.run(function()
      local fs = acoro.fs
      r.chmod = fs.chmod(d .. "/f", tonumber("640", 8))
      r.utime = fs.utime(d .. "/f", 1000, 1234567890.5)
      r.st = fs.stat(d .. "/l")
      r.lst = fs.lstat(d .. "/l")
      r.missing = { fs.lstat(d .. "/none") }
      r.uid = fs.getuid()
      local h = fs.sha256()
      local f = fs.open(d .. "/f")
      h:update(f:read("a"))
      f:close()
      r.hex = h:hex()
      r.again = { pcall(h.hex, h) }
      r.badmode = { pcall(fs.chmod, d .. "/f", -1) }
    end)
    assert.is_true(r.chmod)
    assert.is_true(r.utime)
    assert.equal("file", r.st.type)
    assert.equal(tonumber("640", 8), r.st.mode)
    assert.is_true(math.abs(r.st.mtime - 1234567890.5) < 1e-3)
    assert.equal("link", r.lst.type)
    assert.same({ nil, "ENOENT: no such file or directory", "ENOENT" }, r.missing)
    assert.equal(tonumber(read("id -u")), r.uid)
    assert.equal(r.uid, r.st.uid)
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", r.hex)
    assert.is_false(r.again[1])
    assert.truthy(r.again[2]:find("the digest is finished", 1, true))
    assert.is_false(r.badmode[1])
  end)

  it("opendir and the *at methods never follow a link; chmod, utime and stat on the open file", function()
    local acoro = require "acoro"
    local d, out = tmpdir(), tmpdir()
    assert(sh(("mkdir %s/sub && ln -s %s %s/lnk && ln -s %s/victim %s/sub/dangling")
      :format(d, q(out), d, q(out), d)))
    local r = {}
    acoro.run(function()
      local fs = acoro.fs
      local dir = assert(fs.opendir(d))
      r.lnk = { dir:openat("lnk", "d") }
      r.lnkstat = dir:lstatat("lnk").type
      local sub = assert(dir:openat("sub", "d"))
      r.dangling_w = { sub:openat("dangling", "w") }
      r.dangling_x = { sub:openat("dangling", "wx") }
      local f = assert(sub:openat("new", "wbx"))
      f:write("abc")
      r.chmod = f:chmod(tonumber("640", 8))
      r.utime = f:utime(1000, 1234567890.5)
      r.st = f:stat()
      f:close()
      r.again = { sub:openat("new", "wx") }
      r.rename = sub:renameat("new", "dangling") -- replaces the link itself
      r.renamed = sub:lstatat("dangling").type
      r.mkdir = sub:mkdirat("m", tonumber("700", 8))
      r.rmdir = sub:rmdirat("m")
      r.unlink = sub:unlinkat("dangling")
      r.dotdot = { pcall(dir.openat, dir, "..", "d") }
      r.slash = { pcall(dir.openat, dir, "sub/new") }
      r.space = fs.statfs(d)
      r.nan = { pcall(f.utime, f, 0 / 0, 0) }
      sub:close()
      dir:close()
    end)
    assert.is_nil(r.lnk[1])
    assert.truthy(r.lnk[3] == "ENOTDIR" or r.lnk[3] == "ELOOP", r.lnk[3]) -- as the kernel says
    assert.equal("link", r.lnkstat)
    assert.equal("ELOOP", r.dangling_w[3])
    assert.equal("EEXIST", r.dangling_x[3])
    assert.is_true(r.chmod and r.utime)
    assert.equal(tonumber("640", 8), r.st.mode)
    assert.is_true(math.abs(r.st.mtime - 1234567890.5) < 1e-3)
    assert.equal("EEXIST", r.again[3])
    assert.is_true(r.rename)
    assert.equal("file", r.renamed)
    assert.is_true(r.mkdir and r.rmdir and r.unlink)
    assert.is_false(r.dotdot[1])
    assert.truthy(r.slash[2]:find("must be one file name", 1, true))
    assert.is_true(r.space.total > 0 and r.space.avail <= r.space.total)
    assert.is_false(r.nan[1]) -- closed file: raises either way
    assert.equal("", tree(out)) -- nothing made through a link
    assert.equal("./lnk\n./sub", tree(d))
  end)
end)

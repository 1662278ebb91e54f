-- acoro.fs (lua/acoro/fs.lua, bindings/lfs.c, core/fs.c): every call, the
-- errors, timeouts (made certain with FIFOs, whose open and read block on
-- the pool until the other end acts), files over 10 MB read in chunks and
-- by lines against io.open's view, and acoro.stdin as a regular file.

local acoro = require "acoro"
local support = require "spec.support"

local tmpdir
local function path(name) return tmpdir .. "/" .. name end

local function write_plain(p, data)
  local f = assert(io.open(p, "wb"))
  f:write(data)
  f:close()
end

local function read_plain(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

setup(function()
  tmpdir = os.tmpname()
  os.remove(tmpdir)
  assert(os.execute("mkdir -p " .. support.shell_quote(tmpdir)) == 0)
end)

teardown(function()
  os.execute("rm -rf " .. support.shell_quote(tmpdir))
end)

describe("acoro.fs files", function()
  it("write, close, read back: read(n), read('l'), readline, read('a'), EOF", function()
    acoro.run(function()
      local f = assert(acoro.fs.open(path("a.txt"), "w"))
      assert.equal(f, f:write("hello\n"))
      assert.equal(f, f:write("world\nlast"))
      assert.equal(10, f:send("1234567890"))
      assert.is_true(f:close())
      assert.equal("hello\nworld\nlast1234567890", read_plain(path("a.txt")))
      f = assert(acoro.fs.open(path("a.txt")))
      assert.equal("hel", f:read(3))
      assert.equal("lo", f:read("l"))
      assert.equal("world\n", f:readline())
      assert.equal("last12", f:read(6))
      assert.equal("34567890", f:read("a"))
      assert.equal("", f:read("a"))
      assert.is_nil(f:read(1))
      assert.is_nil(f:read("l"))
      local line, why = f:readline()
      assert.is_nil(line)
      assert.equal("eof", why)
      assert.is_true(f:close())
    end)
  end)

  it("lines() iterates the lines without their newline; the last may lack it", function()
    write_plain(path("l.txt"), "one\n\nthree\nfour")
    acoro.run(function()
      local f = assert(acoro.fs.open(path("l.txt"), "rb"))
      local got = {}
      for l in f:lines() do got[#got + 1] = l end
      assert.same({ "one", "", "three", "four" }, got)
      f:close()
    end)
  end)

  it("a line over max is never cut: readline returns nil, the limit, EMSGSIZE; lines raises", function()
    write_plain(path("long.txt"), string.rep("x", 25) .. "\nend\n")
    acoro.run(function()
      local f = assert(acoro.fs.open(path("long.txt")))
      assert.same({ nil, "line over the 10-byte limit", "EMSGSIZE" }, { f:readline(10) })
      assert.equal(string.rep("x", 25) .. "\n", f:readline(26)) -- nothing was taken
      assert.equal("end\n", f:readline(4))
      f:close()
    end)
  end)

  it("lines() on a file over the 1 MB default with no newline raises naming the limit", function()
    write_plain(path("nonl.bin"), string.rep("y", 1024 * 1024 + 10))
    acoro.run(function()
      local f = assert(acoro.fs.open(path("nonl.bin")))
      local n = 0
      local ok, err = pcall(function()
        for _ in f:lines() do n = n + 1 end
      end)
      assert.is_false(ok)
      assert.equal(0, n)
      assert.matches("f:lines: line over the 1048576%-byte limit %(EMSGSIZE%)", err)
      assert.same({ nil, "line over the 1048576-byte limit", "EMSGSIZE" }, { f:read("l") })
      assert.equal(1024 * 1024 + 10, #f:read("a")) -- nothing was lost
      f:close()
    end)
  end)

  it("seek: set, cur, end, with reads and writes mixed (r+)", function()
    write_plain(path("s.txt"), "0123456789")
    acoro.run(function()
      local f = assert(acoro.fs.open(path("s.txt"), "r+"))
      assert.equal("012", f:read(3))
      assert.equal(3, f:seek())
      assert.equal(3, f:seek("cur"))
      assert.equal(5, f:seek("cur", 2))
      assert.equal("56", f:read(2))
      assert.equal(10, f:seek("end"))
      assert.is_nil(f:read(1))
      assert.equal(8, f:seek("end", -2))
      assert.equal("89", f:read("a"))
      assert.equal(1, f:seek("set", 1))
      assert.equal("1", f:read(1))
      -- a write goes at the position the reads reached, not where the buffer ends
      assert.equal(f, f:write("AB"))
      assert.equal(4, f:seek())
      assert.equal("45", f:read(2))
      assert.equal(0, f:seek("set"))
      assert.equal("01AB456789", f:read("a"))
      local pos, err, code = f:seek("set", -1)
      assert.is_nil(pos)
      assert.equal("EINVAL", code, err)
      f:close()
    end)
  end)

  it("modes: w truncates, a appends, a+ reads and appends, w+ reads back", function()
    write_plain(path("m.txt"), "old content")
    acoro.run(function()
      local f = assert(acoro.fs.open(path("m.txt"), "w"))
      f:write("new")
      f:close()
      assert.equal("new", read_plain(path("m.txt")))
      f = assert(acoro.fs.open(path("m.txt"), "a"))
      f:write("+1")
      f:write("+2")
      f:close()
      assert.equal("new+1+2", read_plain(path("m.txt")))
      f = assert(acoro.fs.open(path("m.txt"), "a+"))
      assert.equal("new", f:read(3))
      f:write("+3")
      assert.equal(9, f:seek())
      assert.equal(0, f:seek("set"))
      assert.equal("new+1+2+3", f:read("a"))
      f:close()
      f = assert(acoro.fs.open(path("m2.txt"), "w+b"))
      f:write("abc")
      assert.equal(0, f:seek("set"))
      assert.equal("abc", f:read("a"))
      f:close()
    end)
  end)

  it("errors: ENOENT, bad modes and bad arguments raise, a closed file raises", function()
    acoro.run(function()
      local f, err, code = acoro.fs.open(path("missing/x"), "r")
      assert.is_nil(f)
      assert.equal("ENOENT", code)
      assert.matches("^ENOENT: ", err)
      for _, mode in ipairs({ "x", "rw", "", "r++", "wa", 1 }) do
        assert.has_error(function() acoro.fs.open(path("a.txt"), mode) end)
      end
      assert.has_error(function() acoro.fs.open(nil) end)
      assert.has_error(function() acoro.fs.open(path("a.txt"), "r", "soon") end)
      f = assert(acoro.fs.open(path("a.txt"), "r"))
      assert.has_error(function() f:read(-1) end)
      assert.has_error(function() f:seek("middle") end)
      assert.is_true(f:close())
      assert.is_false(f:is_open())
      assert.error_matches(function() f:read(1) end, "acoro: read: the file is closed")
      assert.has_error(function() f:readline() end)
      assert.has_error(function() f:write("x") end)
      assert.has_error(function() f:seek("set") end)
      assert.has_error(function() f:close() end)
      -- writing a file opened for reading fails with the system's code
      f = assert(acoro.fs.open(path("a.txt"), "r"))
      local ok, _, c = f:write("x")
      assert.is_nil(ok)
      assert.equal("EBADF", c)
      f:close()
      assert.matches("acoro.file", tostring(f))
    end)
  end)

  it("outside a coroutine a call raises", function()
    assert.has_error(function() acoro.fs.stat("/") end)
  end)
end)

describe("acoro.fs paths", function()
  it("stat, mkdir, readdir, rename, unlink, rmdir and their failures", function()
    acoro.run(function()
      local d = path("dir")
      assert.is_true(acoro.fs.mkdir(d))
      local _, _, code = acoro.fs.mkdir(d)
      assert.equal("EEXIST", code)
      assert.is_true(acoro.fs.mkdir(d .. "/sub", tonumber("700", 8)))
      local st = assert(acoro.fs.stat(d .. "/sub"))
      assert.equal("directory", st.type)
      assert.equal(tonumber("700", 8), st.mode)
      write_plain(d .. "/f1", "12345")
      st = assert(acoro.fs.stat(d .. "/f1"))
      assert.equal("file", st.type)
      assert.equal(5, st.size)
      assert.is_true(math.abs(st.mtime - os.time()) < 60)
      assert.same({ "f1", "sub" }, acoro.fs.readdir(d))
      assert.is_true(acoro.fs.rename(d .. "/f1", d .. "/f2"))
      assert.same({ "f2", "sub" }, acoro.fs.readdir(d))
      _, _, code = acoro.fs.rmdir(d)
      assert.equal("ENOTEMPTY", code)
      assert.is_true(acoro.fs.unlink(d .. "/f2"))
      _, _, code = acoro.fs.unlink(d .. "/f2")
      assert.equal("ENOENT", code)
      _, _, code = acoro.fs.stat(d .. "/f2")
      assert.equal("ENOENT", code)
      _, _, code = acoro.fs.readdir(d .. "/nope")
      assert.equal("ENOENT", code)
      _, _, code = acoro.fs.rename(d .. "/nope", d .. "/x")
      assert.equal("ENOENT", code)
      assert.is_true(acoro.fs.rmdir(d .. "/sub"))
      assert.is_true(acoro.fs.rmdir(d))
      local names
      names, _, code = acoro.fs.readdir(d)
      assert.is_nil(names)
      assert.equal("ENOENT", code)
      assert.has_error(function() acoro.fs.rename(d) end)
      assert.has_error(function() acoro.fs.mkdir(d, "755") end)
    end)
  end)
end)

describe("acoro.fs timeouts", function()
  -- Waits (bounded) until co waits for I/O.
  local function until_waiting(co)
    for _ = 1, 1000 do
      if co:status() == "waiting_io" then return end
      acoro.sleep(0.005)
    end
    error("the coroutine never waited")
  end

  local function mkfifo(name)
    local p = path(name)
    assert(os.execute("mkfifo " .. support.shell_quote(p)) == 0)
    return p
  end

  it("open times out while a FIFO has no writer; the request ends later by itself", function()
    local fifo = mkfifo("fifo1")
    acoro.run(function()
      local t0 = acoro.now()
      local f, err, code = acoro.fs.open(fifo, "r", 0.1)
      assert.is_nil(f)
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      support.assert_took(acoro.now() - t0, 0.1)
      -- the open still waits on the pool: a writer lets it finish (and the
      -- file it opened is closed, nobody having taken it)
      local w = assert(io.open(fifo, "w"))
      w:close()
      -- the pool is free again: another call completes
      assert.equal("fifo", assert(acoro.fs.stat(fifo)).type)
    end)
  end)

  it("read times out on an empty FIFO; the data that comes later is not lost", function()
    local fifo = mkfifo("fifo2")
    acoro.run(function()
      local opener = acoro.spawn(function() return acoro.fs.open(fifo, "r", 10) end)
      until_waiting(opener)
      local w = assert(io.open(fifo, "w")) -- returns once the reader opened
      local _, f = opener:join(10)
      assert.truthy(f)
      local data, err, code = f:read(5, 0.1)
      assert.is_nil(data)
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      local line
      line, err = f:readline(nil, 0)
      assert.is_nil(line)
      assert.equal("timeout", err)
      w:write("late\nmore")
      w:flush()
      assert.equal("late\n", f:readline(nil, 10))
      w:close()
      assert.equal("more", f:read("a", 10))
      f:close()
    end)
  end)

  it("read('a') of a device without an end (/dev/zero) stops reading at its timeout", function()
    -- Before, one pool job read on after the timeout until memory ran out: in a child
    -- under a 1 GB address space, its peak memory then passed 500 MB.
    if (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) then
      return pending("ASan reserves more address space than the limit")
    end
    local script = support.write_temp([[
      local acoro = require "acoro"
      local f = assert(acoro.fs.open("/dev/zero", "r"))
      print(f:read("a", 0.01))
      print(#f:read(10)) -- after what was still being read, if anything
      local st = io.open("/proc/self/status"):read("*a")
      print(tonumber(st:match("VmHWM:%s*(%d+)")) < 200 * 1024) -- peak RSS in kB
      f:close()
    ]])
    local p = assert(io.popen(("ulimit -v 1048576; timeout -k 5 60 %s %s 2>&1; echo rc=$?")
      :format(support.shell_quote(support.bin), support.shell_quote(script))))
    local out = p:read("*a")
    p:close()
    assert.equal("nil\ttimeout\tETIMEDOUT\n10\ntrue\nrc=0\n", out)
  end)

  it("a coroutine terminated while it waits on a read does not upset the file", function()
    local fifo = mkfifo("fifo3")
    acoro.run(function()
      local opener = acoro.spawn(function() return acoro.fs.open(fifo, "r", 10) end)
      until_waiting(opener)
      local w = assert(io.open(fifo, "w"))
      local _, f = opener:join(10)
      local reader = acoro.spawn(function() return f:read(3) end)
      until_waiting(reader)
      reader:terminate()
      collectgarbage()
      w:write("abcdef")
      w:close()
      assert.equal("abcdef", f:read("a", 10))
      f:close()
    end)
  end)
end)

describe("acoro.fs one reader at a time", function()
  it("a second coroutine reading while one waits raises; after, it reads", function()
    local fifo = path("fifo4")
    assert(os.execute("mkfifo " .. support.shell_quote(fifo)) == 0)
    acoro.run(function()
      local opener = acoro.spawn(function() return acoro.fs.open(fifo, "r", 10) end)
      for _ = 1, 1000 do
        if opener:status() == "waiting_io" then break end
        acoro.sleep(0.005)
      end
      local w = assert(io.open(fifo, "w"))
      local _, f = opener:join(10)
      local first = acoro.spawn(function() return f:read(2, 10) end)
      for _ = 1, 1000 do
        if first:status() == "waiting_io" then break end
        acoro.sleep(0.005)
      end
      assert.error_matches(function() f:read(1, 10) end, "another coroutine is already reading")
      w:write("xyz")
      w:close()
      local ok, got = first:join(10)
      assert.is_true(ok)
      assert.equal("xy", got)
      assert.equal("z", f:read("a", 10))
      f:close()
    end)
  end)
end)

describe("acoro.fs large files", function()
  local big, content

  setup(function()
    big = path("big.txt")
    local parts, n, i = {}, 0, 0
    while n < 11 * 1024 * 1024 do
      i = i + 1
      local line = ("%d:"):format(i) .. string.rep(string.char(97 + i % 26), (i * 7919) % 300) .. "\n"
      parts[#parts + 1] = line
      n = n + #line
    end
    content = table.concat(parts) .. "no newline at the end"
    write_plain(big, content)
  end)

  it("reads a file over 10 MB in odd-sized chunks, equal to io.open's view", function()
    acoro.run(function()
      local f = assert(acoro.fs.open(big, "rb"))
      local chunks, sizes = {}, { 65537, 1, 300000, 4096, 1048577 }
      local k = 0
      while true do
        k = k + 1
        local c = f:read(sizes[k % #sizes + 1])
        if not c then break end
        chunks[#chunks + 1] = c
      end
      f:close()
      local got = table.concat(chunks)
      assert.equal(#content, #got)
      assert.is_true(got == content)
      f = assert(acoro.fs.open(big))
      got = f:read("a")
      f:close()
      assert.is_true(got == content)
    end)
  end)

  it("reads it line by line, equal to io.lines", function()
    acoro.run(function()
      local expected = {}
      for l in io.lines(big) do expected[#expected + 1] = l end
      local f = assert(acoro.fs.open(big))
      local i, mismatch = 0, nil
      for l in f:lines() do
        i = i + 1
        if l ~= expected[i] and not mismatch then mismatch = i end
      end
      f:close()
      assert.is_nil(mismatch)
      assert.equal(#expected, i)
    end)
  end)

  it("copies it with an async file while another coroutine keeps ticking", function()
    acoro.run(function()
      -- The ticker is always ready: if a read or a write held the engine thread
      -- until it was done, the ticker could not run during it.
      local ticks, done = 0, false
      local ticker = acoro.spawn(function()
        while not done do
          ticks = ticks + 1
          acoro.yield()
        end
      end)
      local ops, overlapped = 0, 0
      local function op(fn, ...)
        local before = ticks
        local r, err = fn(...)
        if r then -- the read at the end may know it without the thread pool
          ops = ops + 1
          if ticks > before then overlapped = overlapped + 1 end
        end
        return r, err
      end
      local src = assert(acoro.fs.open(big, "rb"))
      local dst = assert(acoro.fs.open(path("copy.txt"), "wb"))
      while true do
        local c = op(src.read, src, 256 * 1024)
        if not c then break end
        assert(op(dst.write, dst, c))
      end
      src:close()
      dst:close()
      done = true
      ticker:join(10)
      assert.is_true(read_plain(path("copy.txt")) == content)
      assert.is_true(ops > 2)
      assert.equal(ops, overlapped) -- the ticker ran during every read and write
    end)
  end)
end)

describe("acoro.stdin as a regular file (acoro x.lua < file)", function()
  it("readline, read(n), lines and read('a') through the CLI", function()
    local out, err, code = support.run_script([[
      local acoro = require "acoro"
      local s = acoro.stdin
      io.write("1:", s:readline())
      io.write("2:", s:read(3), "\n")
      io.write("3:", s:recv(4), "\n")
      local n = 0
      for l in s:lines() do
        n = n + 1
        if n == 1 then io.write("4:", l, "\n") end
        if n == 3 then break end
      end
      io.write("5:", #s:read("a"), "\n")
      io.write("6:", tostring(s:read(1)), "\n")
      local line, why = s:readline()
      io.write("7:", tostring(line), " ", why, "\n")
      io.stdout:flush()
      acoro.stdout:send("8:via stdout\n")
    ]], "", "first line\nabcdefg\nx1\nx2\nx3\n" .. string.rep("y", 100000) .. "\n")
    assert.equal(0, code, err)
    assert.equal("1:first line\n2:abc\n3:defg\n4:\n5:100004\n6:nil\n7:nil eof\n8:via stdout\n", out)
  end)
end)

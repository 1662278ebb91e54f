-- Byte streams over fds (acoro.stream(fd)) and acoro.stdin read asynchronously from a
-- pipe: while one coroutine waits for input, the others run. Every wait is bounded.

local acoro = require "acoro"
local support = require "support"
local net = require "net_support"
local ffi = require "ffi"

pcall(ffi.cdef, "int pipe(int fds[2]);")

local T = 10

local function os_pipe()
  local fds = ffi.new("int[2]")
  assert(ffi.C.pipe(fds) == 0)
  return fds[0], fds[1]
end

describe("acoro.stream(fd)", function()
  it("wraps both ends of a pipe: lines, blocks, EOF after the writer closes", function()
    acoro.run(function()
      local rfd, wfd = os_pipe()
      local r, w = assert(acoro.stream(rfd)), assert(acoro.stream(wfd))
      assert.equal(r, acoro.stream(r)) -- a stream passes through
      local reader = acoro.spawn(function()
        local got = {}
        got[#got + 1] = r:readline(nil, T)
        got[#got + 1] = r:recvall(5, T)
        got[#got + 1] = { r:recv(nil, T) }
        return got
      end)
      w:send("line one\n")
      w:send("12345")
      w:close()
      local ok, got = reader:join(T)
      assert.is_true(ok)
      assert.same({ "line one\n", "12345", { nil, "eof" } }, got)
      r:close()
    end)
  end)

  it("a read on a pipe times out and loses nothing", function()
    acoro.run(function()
      local rfd, wfd = os_pipe()
      local r, w = acoro.stream(rfd), acoro.stream(wfd)
      w:send("par")
      assert.same({ "par", "timeout", "ETIMEDOUT" }, { r:readline(nil, 0.05) })
      w:send("tial\n")
      assert.equal("tial\n", r:readline(nil, T))
      r:close()
      w:close()
    end)
  end)

  it("a regular file is not a stream; bad arguments raise", function()
    acoro.run(function()
      local path = support.write_temp("data", ".txt")
      pcall(ffi.cdef, "int open(const char *path, int flags); int close(int fd);")
      local rfd = ffi.C.open(path, 0)
      assert.is_true(rfd >= 0)
      local s, err, code = acoro.stream(rfd)
      assert.is_nil(s)
      assert.equal("EINVAL", code)
      assert.matches("not a stream", err)
      ffi.C.close(rfd)
      assert.has_error(function() acoro.stream("0") end)
      assert.has_error(function() acoro.stream({}) end)
    end)
  end)
end)

describe("acoro.stdin", function()
  it("is read asynchronously from a pipe while another coroutine keeps ticking", function()
    local script = support.write_temp([[
      local acoro = require "acoro"
      io.stdout:setvbuf("line")
      local ticker = acoro.spawn(function()
        for i = 1, 5000 do -- 50 s at most
          print("tick " .. i)
          acoro.sleep(0.01)
        end
      end)
      ticker:set_daemon()
      while true do
        local line, err = acoro.stdin:readline(nil, 30)
        if not line then print("stdin: " .. err) break end
        print("got: " .. line:gsub("\n$", ""))
      end
    ]])
    local fifo = net.fifo()
    local child = net.spawn_acoro(support.shell_quote(script), fifo)
    local w = assert(io.open(fifo, "w"))
    w:setvbuf("line")
    child:expect("^tick 1$")
    w:write("one\n")
    child:expect("^got: one$")
    -- stdin waits now; the ticker must go on printing while it does
    local n1 = tonumber(child:expect("^tick (%d+)$"))
    local n2 = tonumber(child:expect("^tick (%d+)$"))
    local n3 = tonumber(child:expect("^tick (%d+)$"))
    assert.is_true(n1 < n2 and n2 < n3)
    w:write("two\nthr")
    child:expect("^got: two$")
    w:write("ee\n")
    child:expect("^got: three$")
    w:close()
    child:expect("^stdin: eof$")
    child:close()
    os.remove(fifo)
  end)

  it("a regular file as stdin is read as a file", function()
    local out, err, code = support.run_script([[
      local acoro = require "acoro"
      print(acoro.stdin:readline())
      print(acoro.stdin:recv(100))
      print((acoro.stdin:readline()))
      local _, why = acoro.stdin:readline()
      print(why)
    ]], nil, "first\nrest\n")
    assert.equal(0, code, err)
    assert.equal("first\n\nrest\n\nnil\neof\n", out)
  end)
end)

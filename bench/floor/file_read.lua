-- FR whole-file and large reads, floor: plain Lua io (io.open, f:read) on the same file
-- as bench/file_read.lua, timed the same way (os.clock would count CPU only: the clock
-- here is the monotonic one, as acoro.now).
-- Usage: luajit bench/floor/file_read.lua PATH [REPS]
-- Prints: FR bytes=N all_secs=S chunk_secs=C
local ffi = require "ffi"
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } fr_timespec;
int clock_gettime(int clk, fr_timespec *ts);
]]
local ts = ffi.new("fr_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local path = assert(arg and arg[1], "usage: file_read.lua PATH [REPS]")
local REPS = tonumber(arg[2]) or 5
local CHUNK = 4 * 1024 * 1024

local function median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

local bytes
local function whole()
  local t0 = now()
  local f = assert(io.open(path, "rb"))
  local s = assert(f:read("a"))
  f:close()
  local secs = now() - t0
  assert(not bytes or #s == bytes, "a whole read came out short")
  bytes = #s
  return secs
end

local function chunked()
  local t0 = now()
  local f = assert(io.open(path, "rb"))
  local n = 0
  while true do
    local s = f:read(CHUNK)
    if not s then break end
    n = n + #s
  end
  f:close()
  local secs = now() - t0
  assert(n == bytes, "a chunked read came out short")
  return secs
end

local a, c = {}, {}
for i = 1, REPS do
  a[i] = whole()
  collectgarbage()
  c[i] = chunked()
  collectgarbage()
end
io.write(string.format("FR bytes=%d all_secs=%.6f chunk_secs=%.6f\n", bytes, median(a), median(c)))

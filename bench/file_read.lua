-- FR whole-file and large reads, acoro version (its floor: bench/floor/file_read.lua,
-- plain Lua io on the same file).
-- Usage: build/acoro bench/file_read.lua PATH [REPS]   (REPS default 5)
-- Prints: FR bytes=N all_secs=S chunk_secs=C
-- all_secs: the median time of open + f:read("a") + close over REPS runs; chunk_secs: the
-- same reading the file in 4 MB reads, f:read(4194304), to the end.
local acoro = require "acoro"
local now = acoro.now

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
  local f = assert(acoro.fs.open(path, "rb"))
  local s = assert(f:read("a"))
  f:close()
  local secs = now() - t0
  assert(not bytes or #s == bytes, "a whole read came out short")
  bytes = #s
  return secs
end

local function chunked()
  local t0 = now()
  local f = assert(acoro.fs.open(path, "rb"))
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

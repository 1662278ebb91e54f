-- discoro_client5_proc.lua: the external program of discoro_client5.lua, run
-- on the compute servers: it reads lines on stdin and writes each back
-- upper-cased with its number and this program's pid, until its stdin ends.
local ffi = require "ffi"
pcall(ffi.cdef, "int getpid(void);")
local n = 0
for line in io.stdin:lines() do
  n = n + 1
  io.stdout:write(("%d %s (pid %d)\n"):format(n, line:upper(), ffi.C.getpid()))
  io.stdout:flush()
end
io.stdout:write(("end after %d lines\n"):format(n))

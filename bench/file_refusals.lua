-- RF: what a lying peer's file transfers cost a receiving node (the figures
-- spec/security_files_spec.lua used to print; the spec asserts the
-- refusals, this measures them).
-- Usage: build/acoro bench/file_refusals.lua [N]   (default 2000)
-- Prints: RF begins=N ms_per_begin=M rss0_kb=A rss_kb=B open64_rss_kb=C
-- Starts a receiver node (build/acoro, or $ACORO) with a fresh dest_path,
-- then, as the shared lying peer (spec/lying_peer.lua: authenticated,
-- skipping the sender's checks), sends N BEGINs announcing 2^53 bytes one
-- after the other (each refused at once, with its reason) and 64 BEGINs
-- the receiver accepts (each an open temporary file). M: milliseconds per
-- refused BEGIN (its round trip); A, B: the receiver's VmRSS before and
-- after the refusals; C: with the 64 transfers open.
package.path = "spec/?.lua;" .. package.path
local acoro = require "acoro"
local LP = require "lying_peer"

local N = tonumber(arg and arg[1]) or 2000
local BIN = os.getenv("ACORO") or "build/acoro"

local function sh_read(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local tmp = sh_read("mktemp -d")
local key, script = tmp .. "/key", tmp .. "/receiver.lua"
local f = assert(io.open(key, "w"))
f:write(sh_read(q(BIN) .. " --gen-secret"), "\n")
f:close()
f = assert(io.open(script, "w"))
f:write([[
local acoro = require "acoro"
local ffi = require "ffi"
ffi.cdef "int getpid(void);"
print("listening " .. acoro.node().location)
print("pid " .. ffi.C.getpid())
io.stdout:flush()
acoro.receive()
]])
f:close()
assert(os.execute("mkdir " .. q(tmp .. "/dest")) == 0)
local rx = assert(io.popen(("exec %s --listen 127.0.0.1:0 --no-discover --secret-file %s --dest-path %s %s 2>/dev/null")
  :format(q(BIN), q(key), q(tmp .. "/dest"), q(script))))
local loc = assert(rx:read("*l"):match("^listening (%S+)$"), "no receiver")
local pid = assert(tonumber(rx:read("*l"):match("^pid (%d+)$")))

local function rss_kb()
  local s = assert(io.open("/proc/" .. pid .. "/status"))
  local kb = tonumber(s:read("*a"):match("VmRSS:%s*(%d+)"))
  s:close()
  return kb
end

local p = LP.connect(loc, key)
local rss0 = rss_kb()
local t0 = acoro.now()
for _ = 1, N do
  local ok, ans = p:file_begin({ size = 2 ^ 53 })
  assert(ok and type(ans) == "string" and ans:find("^bad size"), tostring(ans))
end
local ms = (acoro.now() - t0) * 1000 / N
local rss = rss_kb()
for i = 1, 64 do
  local ok, ans = p:file_begin({ name = "f" .. i, size = 100 })
  assert(ok and type(ans) == "table", tostring(ans))
end
local open64 = rss_kb()
print(("RF begins=%d ms_per_begin=%.4f rss0_kb=%d rss_kb=%d open64_rss_kb=%d"):format(N, ms, rss0, rss, open64))
LP.stop()
os.execute("kill " .. pid)
rx:close()
os.execute("rm -rf " .. q(tmp))

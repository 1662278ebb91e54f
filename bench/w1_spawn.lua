-- W1 spawn (defined in bench/README.md), acoro version.
-- Usage: build/acoro bench/w1_spawn.lua [N]       (N default 100000)
-- Prints: W1 n=N secs=S rss_kb=K   (secs: from before the first spawn until
-- every coroutine has exited, acoro.now(); rss_kb: peak RSS, VmHWM of
-- /proc/self/status). bench/run derives us/coroutine and bytes/coroutine
-- from a run at N and a run at N=0.
local acoro = require "acoro"
local spawn, receive, yield, now = acoro.spawn, acoro.receive, acoro.yield, acoro.now

local function peak_rss_kb()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

local N = tonumber(arg and arg[1]) or 100000

local done = 0
local procs = {}
local function child()
  receive()
  done = done + 1
end
local t0 = now()
for i = 1, N do procs[i] = spawn(child) end
yield() -- every child runs and blocks in receive
for i = 1, N do procs[i]:send(i) end
while done < N do yield() end
local secs = now() - t0
assert(done == N, "not all coroutines exited")
io.write(string.format("W1 n=%d secs=%.6f rss_kb=%d\n", N, secs, peak_rss_kb()))

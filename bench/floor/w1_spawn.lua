-- W1 spawn, bare-LuaJIT floor reference (defined in bench/README.md).
-- Usage: luajit bench/floor/w1_spawn.lua [N]      (N default 100000)
-- Prints: W1 n=N secs=S rss_kb=K   (secs: from before the first spawn until
-- every coroutine has exited; rss_kb: peak RSS, VmHWM of /proc/self/status)
-- The scheduler: bench/floor/sched.lua, next to this script.
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local sched = require "sched"
local now, spawn, send, receive, yield, run =
  sched.now, sched.spawn, sched.send, sched.receive, sched.yield, sched.run

local function peak_rss_kb()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

local N = tonumber(arg and arg[1]) or 100000

run(function()
  local done = 0
  local procs = {}
  local function child()
    receive()
    done = done + 1
  end
  local t0 = now()
  for i = 1, N do procs[i] = spawn(child) end
  yield() -- every child runs and blocks in receive
  for i = 1, N do send(procs[i], i) end
  while done < N do yield() end
  local secs = now() - t0
  assert(done == N, "not all coroutines exited")
  io.write(string.format("W1 n=%d secs=%.6f rss_kb=%d\n", N, secs, peak_rss_kb()))
end)

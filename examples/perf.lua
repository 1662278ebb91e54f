-- perf.lua: how fast coroutines are created and messaged.
--
-- Shows: spawning many coroutines that each block in receive, sending each one message,
-- and waiting for all of them with join. Prints three timing lines (not a benchmark
-- harness: see bench/ for the measured workloads).
--
-- Run: build/acoro examples/perf.lua [n=10000]

local acoro = require "acoro"

local n = tonumber(arg[1]) or 10000

local function worker()
  return acoro.receive()
end

local function report(what, seconds)
  print(string.format("%s %d coroutines in %.3f s (%.2f us each)",
    what, n, seconds, seconds * 1e6 / n))
end

local t0 = acoro.now()
local cos = {}
for i = 1, n do
  cos[i] = acoro.spawn(worker)
end
acoro.yield() -- let every worker start and block in receive
local t1 = acoro.now()
report("created", t1 - t0)

for i = 1, n do
  cos[i]:send(i)
end
local t2 = acoro.now()
report("messaged", t2 - t1)

for i = 1, n do
  local ok, got = cos[i]:join()
  assert(ok and got == i, "wrong result")
end
report("finished", acoro.now() - t2)

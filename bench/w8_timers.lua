-- W8 timers (defined in bench/README.md), acoro version.
-- Usage: build/acoro bench/w8_timers.lua [N [MAXD]]  (N=100000 sleepers, d in [0,MAXD), MAXD=1 s)
-- lateness = acoro.now() after waking - (acoro.now() at the sleep call + d);
-- a negative lateness is an early wake-up (a bug), counted as early=.
-- Prints: W8 n=N secs=S p50_ms=.. p99_ms=.. max_ms=.. early=E
local acoro = require "acoro"
local spawn, receive, sleep, now = acoro.spawn, acoro.receive, acoro.sleep, acoro.now

local N = tonumber(arg and arg[1]) or 100000
local MAXD = tonumber(arg and arg[2]) or 1.0
math.randomseed(8)
local random = math.random

local main = acoro.self()
local late = {}
local done = 0
local function sleeper(i)
  local d = random() * MAXD
  local t = now()
  sleep(d)
  late[i] = now() - (t + d)
  done = done + 1
  if done == N then main:send("done") end
end
local t0 = now()
for i = 1, N do spawn(sleeper, i) end
if N > 0 then assert(receive() == "done") end
local secs = now() - t0

local early = 0
for i = 1, N do
  if late[i] < 0 then early = early + 1 end
end
table.sort(late)
local function pct(p) -- nearest-rank percentile, ms
  if N == 0 then return 0 end
  return late[math.max(1, math.ceil(p * N))] * 1e3
end
io.write(string.format("W8 n=%d secs=%.6f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f early=%d\n",
  N, secs, pct(0.50), pct(0.99), pct(1.0), early))

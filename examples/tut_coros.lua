-- tut_coros.lua: many coroutines that each sleep a while (port of asyncoro's tut_coros.py).
--
-- Shows: acoro.spawn, acoro.sleep, and that the program ends by itself once every
-- (non-daemon) coroutine has finished: the main script does not wait for them.
-- Each coroutine sleeps a random 0..1 s and, on waking, prints how long it has been
-- since they all started, so the lines come out in wake-up order with growing times.
-- With more than 100 coroutines only a summary line is printed.
--
-- Run: build/acoro examples/tut_coros.lua [count=10]
--      build/acoro examples/tut_coros.lua 100000

local acoro = require "acoro"

local count = tonumber(arg[1]) or 10
local verbose = count <= 100
local max_sleep = 1.0 -- seconds
math.randomseed(os.time())

local start = acoro.now()
local done = 0

local function sleeper(i)
  acoro.sleep(math.random() * max_sleep)
  done = done + 1
  if verbose then
    print(string.format("%d: slept %.3f s", i, acoro.now() - start))
  elseif done == count then
    print(string.format("%d coroutines done", count))
  end
end

for i = 1, count do
  acoro.spawn(sleeper, i)
end
-- Nothing more to do here: acoro runs until all sleepers have woken up.

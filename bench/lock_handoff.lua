-- LK lock hand-off, acoro version.
-- Usage: build/acoro bench/lock_handoff.lua [M]    (M acquisitions in all, default 1000000)
-- Prints: LK handoffs=M secs=S handoffs_per_s=R
-- Two coroutines each do M/2 iterations of
--   lock:acquire(); count = count + 1; acoro.yield(); lock:release()
-- The yield inside the critical section lets the other coroutine run and block in acquire
-- while the lock is held, so every release hands the lock to the waiter through the wait
-- queue and the two strictly alternate (checked: the same coroutine never counts twice in
-- a row). Every acquisition but the first is such a hand-off; M counts acquisitions.
local acoro = require "acoro"
local spawn, receive, yield, now = acoro.spawn, acoro.receive, acoro.yield, acoro.now

local M = tonumber(arg and arg[1]) or 1000000
local ROUNDS = math.floor(M / 2)

local main = acoro.self()
local lock = acoro.Lock()
local count, last = 0, 0
local function worker(id)
  return function()
    for _ = 1, ROUNDS do
      lock:acquire()
      count = count + 1
      assert(last ~= id, "lock was not handed off")
      last = id
      yield()
      lock:release()
    end
    main:send("done")
  end
end
spawn(worker(1))
spawn(worker(2))
local t0 = now()
assert(receive() == "done" and receive() == "done")
local secs = now() - t0
assert(count == 2 * ROUNDS, "wrong acquisition count")
io.write(string.format("LK handoffs=%d secs=%.6f handoffs_per_s=%.0f\n", count, secs, count / secs))

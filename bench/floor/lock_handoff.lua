-- LK lock hand-off, bare-LuaJIT floor reference (see bench/lock_handoff.lua).
-- Usage: luajit bench/floor/lock_handoff.lua [M]   (M acquisitions in all, default 1000000)
-- Prints: LK handoffs=M secs=S handoffs_per_s=R
-- Same hand-off as the acoro script: two coroutines each do M/2 iterations of
-- acquire; count = count + 1; yield; release, so every release hands the lock to the
-- other coroutine, queued in the lock's FIFO waiter queue.
-- The scheduler: bench/floor/sched.lua, next to this script.
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local sched = require "sched"
local now, spawn, send, receive, self, yield, run =
  sched.now, sched.spawn, sched.send, sched.receive, sched.self, sched.yield, sched.run
local ready, suspend = sched.ready, sched.suspend
local function new_lock()
  return { owner = nil, q = {}, qh = 1, qt = 0 }
end
local function acquire(l)
  local p = self()
  if l.owner == nil and l.qh > l.qt then
    l.owner = p
    return true
  end
  local t = l.qt + 1
  l.qt = t
  l.q[t] = p
  repeat suspend() until l.owner == p
  return true
end
local function release(l)
  assert(l.owner == self(), "release of a lock not held by this coroutine")
  local h = l.qh
  if h > l.qt then
    l.owner = nil
    return
  end
  local q = l.q
  local p = q[h]
  q[h] = nil
  if h == l.qt then l.qh, l.qt = 1, 0 else l.qh = h + 1 end
  l.owner = p
  ready(p)
end

local M = tonumber(arg and arg[1]) or 1000000
local ROUNDS = math.floor(M / 2)

run(function()
  local main = self()
  local lock = new_lock()
  local count, last = 0, 0
  local function worker(id)
    return function()
      for _ = 1, ROUNDS do
        acquire(lock)
        count = count + 1
        assert(last ~= id, "lock was not handed off")
        last = id
        yield()
        release(lock)
      end
      send(main, "done")
    end
  end
  spawn(worker(1))
  spawn(worker(2))
  local t0 = now()
  assert(receive() == "done" and receive() == "done")
  local secs = now() - t0
  assert(count == 2 * ROUNDS, "wrong acquisition count")
  io.write(string.format("LK handoffs=%d secs=%.6f handoffs_per_s=%.0f\n", count, secs, count / secs))
end)

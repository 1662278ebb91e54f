-- pool_hash.lua: CPU work on the thread pool while the engine goes on.
--
-- Shows: acoro.pool.run runs a Lua function on a worker thread (in a Lua
-- state of its own: the function travels as bytecode, its arguments and
-- results are copied), suspending only the coroutine that called it. Here
-- each job hashes a generated block of data (a polynomial hash modulo
-- 2^32) many times,
-- while a ticker coroutine keeps running on the engine thread.
--
-- Run: build/acoro examples/pool_hash.lua [jobs [rounds]]
-- Prints "job <i>: <hash>" for each job in order, then a summary.

local acoro = require "acoro"

local jobs = tonumber(arg[1]) or 8
local rounds = tonumber(arg[2]) or 2000

-- Runs on a worker: no upvalues (it is copied as bytecode), so what it
-- needs it requires itself.
local function hash_job(seed, rounds_)
  local parts = {}
  for i = 1, 1000 do parts[i] = string.char((seed * 31 + i * 7) % 256) end
  local data = table.concat(parts)
  local h = 0
  for _ = 1, rounds_ do
    for i = 1, #data do
      h = (h * 31 + data:byte(i)) % 4294967296 -- exact: below 2^53
    end
  end
  return seed, string.format("%08x", h)
end

local ticks, done = 0, false
local ticker = acoro.spawn(function()
  while not done do
    ticks = ticks + 1
    acoro.sleep(0.001)
  end
end)

local workers = {}
for i = 1, jobs do
  workers[i] = acoro.spawn(function() return acoro.pool.run(hash_job, i, rounds) end)
end
for i = 1, jobs do
  local ok, seed, h = workers[i]:join()
  assert(ok and seed == i, "job " .. i .. " failed: " .. tostring(seed))
  print(("job %d: %s"):format(i, h))
end
done = true
ticker:join()
print(("%d jobs done on the pool; the engine ticked meanwhile: %s"):format(jobs, ticks > 0 and "yes" or "no"))

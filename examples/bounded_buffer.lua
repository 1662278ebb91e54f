-- bounded_buffer.lua: producer and consumers sharing a bounded buffer, with two
-- acoro.Condition on one acoro.Lock (Python threading's classic pattern).
--
-- Shows: the producer waits while the buffer is full, consumers wait while it is
-- empty; each side notifies the other. Items leave the buffer in the order they went
-- in, so the consumers, taken together, get 1..n in order.
--
-- Run: build/acoro examples/bounded_buffer.lua [n [capacity]]   (default 20 items, 4 slots)

local acoro = require "acoro"

local n = tonumber(arg and arg[1]) or 20
local capacity = tonumber(arg and arg[2]) or 4

local lock = acoro.Lock()
local not_full, not_empty = acoro.Condition(lock), acoro.Condition(lock)
local buffer, done = {}, false
local taken, peak = {}, 0 -- every item in the order taken; the fullest the buffer got

local function producer()
  for item = 1, n do
    lock:with(function()
      while #buffer == capacity do not_full:wait() end
      buffer[#buffer + 1] = item
      if #buffer > peak then peak = #buffer end
      not_empty:notify()
    end)
  end
  lock:with(function()
    done = true
    not_empty:notify_all()
  end)
end

local function consumer(id)
  local count = 0
  while true do
    local item = lock:with(function()
      while #buffer == 0 and not done do not_empty:wait() end
      local item = table.remove(buffer, 1)
      if item then
        taken[#taken + 1] = item
        not_full:notify()
      end
      return item
    end)
    if not item then return count end
    print(("consumer %d took %d"):format(id, item))
    count = count + 1
    acoro.yield() -- working on the item lets the others run
  end
end

local consumers = { acoro.spawn(consumer, 1), acoro.spawn(consumer, 2) }
acoro.spawn(producer)
local total = 0
for i, co in ipairs(consumers) do
  local _, count = co:join()
  total = total + count
  print(("consumer %d: %d items"):format(i, count))
end
local in_order, sum = #taken == n, 0
for i, item in ipairs(taken) do
  in_order = in_order and item == i
  sum = sum + item
end
print(("consumed %d items %s, sum %d, buffer peak %d of %d"):format(
  total, in_order and "in order" or "OUT OF ORDER", sum, peak, capacity))

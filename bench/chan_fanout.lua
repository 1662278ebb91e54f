-- CF channel fan-out, acoro version.
-- Usage: build/acoro bench/chan_fanout.lua [SUBS [MSGS [BATCH]]]
--   (defaults 100 subscribers, 10000 messages, a yield after every BATCH=1 message)
-- Prints: CF deliveries=D secs=S deliveries_per_s=R
-- One acoro.channel, SUBS subscriber coroutines; the main coroutine broadcasts MSGS
-- numbers with ch:send, yielding after every BATCH of them so that the subscribers keep
-- up (their mailboxes stay short); every subscriber receives all MSGS (checked by their
-- sum). D = SUBS * MSGS deliveries, timed from the first send until every subscriber has
-- reported.
local acoro = require "acoro"
local spawn, receive, yield, now = acoro.spawn, acoro.receive, acoro.yield, acoro.now

local SUBS = tonumber(arg and arg[1]) or 100
local MSGS = tonumber(arg and arg[2]) or 10000
local BATCH = tonumber(arg and arg[3]) or 1

local main = acoro.self()
local ch = acoro.channel("fanout")
local function subscriber()
  local sum = 0
  for _ = 1, MSGS do sum = sum + receive() end
  main:send(sum)
end
for _ = 1, SUBS do ch:subscribe(spawn(subscriber)) end
yield() -- the subscribers start and wait in receive

local t0 = now()
for i = 1, MSGS do
  ch:send(i)
  if i % BATCH == 0 then yield() end
end
local expect = MSGS * (MSGS + 1) / 2
for _ = 1, SUBS do assert(receive() == expect, "a subscriber missed a message") end
local secs = now() - t0
local d = SUBS * MSGS
io.write(string.format("CF deliveries=%d secs=%.6f deliveries_per_s=%.0f\n", d, secs, d / secs))

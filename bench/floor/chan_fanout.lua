-- CF channel fan-out, bare-LuaJIT floor reference (see bench/chan_fanout.lua).
-- Usage: luajit bench/floor/chan_fanout.lua [SUBS [MSGS [BATCH]]]
-- Prints: CF deliveries=D secs=S deliveries_per_s=R
-- The same broadcast over the floor's scheduler: the "channel" is an array of
-- subscriber processes, and a send puts the message in each one's mailbox.
-- The scheduler: bench/floor/sched.lua, next to this script.
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local sched = require "sched"
local now, spawn, send, receive, self, yield, run =
  sched.now, sched.spawn, sched.send, sched.receive, sched.self, sched.yield, sched.run

local SUBS = tonumber(arg and arg[1]) or 100
local MSGS = tonumber(arg and arg[2]) or 10000
local BATCH = tonumber(arg and arg[3]) or 1

local function new_channel() return { subs = {}, n = 0 } end
local function subscribe(ch, p)
  ch.n = ch.n + 1
  ch.subs[ch.n] = p
end
local function broadcast(ch, msg)
  local subs = ch.subs
  for i = 1, ch.n do send(subs[i], msg) end
end

run(function()
  local main = self()
  local ch = new_channel()
  local function subscriber()
    local sum = 0
    for _ = 1, MSGS do sum = sum + receive() end
    send(main, sum)
  end
  for _ = 1, SUBS do subscribe(ch, spawn(subscriber)) end
  yield() -- the subscribers start and wait in receive

  local t0 = now()
  for i = 1, MSGS do
    broadcast(ch, i)
    if i % BATCH == 0 then yield() end
  end
  local expect = MSGS * (MSGS + 1) / 2
  for _ = 1, SUBS do assert(receive() == expect, "a subscriber missed a message") end
  local secs = now() - t0
  local d = SUBS * MSGS
  io.write(string.format("CF deliveries=%d secs=%.6f deliveries_per_s=%.0f\n", d, secs, d / secs))
end)

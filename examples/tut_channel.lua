-- tut_channel.lua: broadcasting over a channel (asyncoro's tut_channel.py).
--
-- Shows: two coroutines subscribe to one channel; every number sent on the channel
-- reaches both; one computes the sum, the other the product, and each prints its
-- result when the end of the data comes.
--
-- Run: build/acoro examples/tut_channel.lua [count]   (count numbers, default 4)

local acoro = require "acoro"

local count = tonumber(arg and arg[1]) or 4

-- compute the sum of the numbers received (from the channel)
local function seqsum()
  local result = 0
  while true do
    local msg = acoro.receive()
    if msg == "end" then break end
    result = result + msg
  end
  print(("sum: %f"):format(result))
end

-- compute the product of the numbers received (from the channel)
local function seqprod()
  local result = 1
  while true do
    local msg = acoro.receive()
    if msg == "end" then break end
    result = result * msg
  end
  print(("prod: %f"):format(result))
end

local function client_proc()
  -- create the channel
  local channel = acoro.channel("sum_prod")
  -- create coroutines to compute the sum and the product of the numbers sent
  local sum_coro = acoro.spawn(seqsum)
  local prod_coro = acoro.spawn(seqprod)
  -- subscribe them to the channel so that they receive its messages
  assert(channel:subscribe(sum_coro))
  assert(channel:subscribe(prod_coro))
  -- send the numbers to the channel
  math.randomseed(os.time())
  for _ = 1, count do
    local r = 0.5 + 2.5 * math.random()
    channel:send(r)
    print(("sent %f"):format(r))
  end
  -- the end of the data (Lua messages cannot be nil: asyncoro sends None)
  channel:send("end")
  channel:unsubscribe(sum_coro)
  channel:unsubscribe(prod_coro)
end

acoro.spawn(client_proc)

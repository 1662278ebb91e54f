-- W3 ring (defined in bench/README.md), acoro version.
-- Usage: build/acoro bench/w3_ring.lua [R [K]]    (R=1000 coroutines, K=1000 laps)
-- Prints: W3 hops=R*K secs=S hops_per_s=H
local acoro = require "acoro"
local spawn, receive, now = acoro.spawn, acoro.receive, acoro.now

local R = tonumber(arg and arg[1]) or 1000
local K = tonumber(arg and arg[2]) or 1000
local HOPS = R * K

local main = acoro.self()
local hops = 0
local nodes = {}
-- The token is the number of hops made so far; -1 is the stop wave.
local function node(i)
  return function()
    local nxt = nodes[i % R + 1]
    while true do
      local t = receive()
      if t < 0 then nxt:send(t) return end
      if t == HOPS then
        main:send("done")
        nxt:send(-1)
        return
      end
      hops = hops + 1
      nxt:send(t + 1)
    end
  end
end
for i = 1, R do nodes[i] = spawn(node(i)) end
local t0 = now()
nodes[1]:send(0)
assert(receive() == "done")
local secs = now() - t0
assert(hops == HOPS, "wrong hop count")
io.write(string.format("W3 hops=%d secs=%.6f hops_per_s=%.0f\n", hops, secs, hops / secs))

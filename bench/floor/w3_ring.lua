-- W3 ring, bare-LuaJIT floor reference (defined in bench/README.md).
-- Usage: luajit bench/floor/w3_ring.lua [R [K]]   (R=1000 coroutines, K=1000 laps)
-- Prints: W3 hops=R*K secs=S hops_per_s=H
-- The scheduler: bench/floor/sched.lua, next to this script.
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local sched = require "sched"
local now, spawn, send, receive, self, run =
  sched.now, sched.spawn, sched.send, sched.receive, sched.self, sched.run

local R = tonumber(arg and arg[1]) or 1000
local K = tonumber(arg and arg[2]) or 1000
local HOPS = R * K

run(function()
  local main = self()
  local hops = 0
  local nodes = {}
  -- The token is the number of hops made so far; -1 is the stop wave.
  local function node(i)
    return function()
      local nxt = nodes[i % R + 1]
      while true do
        local t = receive()
        if t < 0 then send(nxt, t) return end
        if t == HOPS then
          send(main, "done")
          send(nxt, -1)
          return
        end
        hops = hops + 1
        send(nxt, t + 1)
      end
    end
  end
  for i = 1, R do nodes[i] = spawn(node(i)) end
  local t0 = now()
  send(nodes[1], 0)
  assert(receive() == "done")
  local secs = now() - t0
  assert(hops == HOPS, "wrong hop count")
  io.write(string.format("W3 hops=%d secs=%.6f hops_per_s=%.0f\n", hops, secs, hops / secs))
end)

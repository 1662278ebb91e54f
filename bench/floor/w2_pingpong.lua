-- W2 ping-pong, bare-LuaJIT floor reference (defined in bench/README.md).
-- Usage: luajit bench/floor/w2_pingpong.lua [M]   (M messages, default 1000000)
-- Prints: W2 msgs=M secs=S msgs_per_s=R
-- The scheduler: bench/floor/sched.lua, next to this script.
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local sched = require "sched"
local now, spawn, send, receive, self, run =
  sched.now, sched.spawn, sched.send, sched.receive, sched.self, sched.run

local M = tonumber(arg and arg[1]) or 1000000
local ROUNDS = math.floor(M / 2)

run(function()
  local main = self()
  local msgs = 0
  local ping, pong
  pong = spawn(function()
    for _ = 1, ROUNDS do
      local m = receive()
      msgs = msgs + 1
      send(ping, { m[1], "pong" })
    end
  end)
  ping = spawn(function()
    for i = 1, ROUNDS do
      send(pong, { i, "ping" })
      local m = receive()
      msgs = msgs + 1
      assert(m[1] == i and m[2] == "pong", "ping: bad reply")
    end
    send(main, "done")
  end)
  local t0 = now()
  assert(receive() == "done")
  local secs = now() - t0
  assert(msgs == 2 * ROUNDS, "wrong message count")
  io.write(string.format("W2 msgs=%d secs=%.6f msgs_per_s=%.0f\n", msgs, secs, msgs / secs))
end)

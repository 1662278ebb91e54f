-- W2 ping-pong (defined in bench/README.md), acoro version.
-- Usage: build/acoro bench/w2_pingpong.lua [M]    (M messages, default 1000000)
-- Prints: W2 msgs=M secs=S msgs_per_s=R
local acoro = require "acoro"
local spawn, receive, now = acoro.spawn, acoro.receive, acoro.now

local M = tonumber(arg and arg[1]) or 1000000
local ROUNDS = math.floor(M / 2)

local main = acoro.self()
local msgs = 0
local ping, pong
pong = spawn(function()
  for _ = 1, ROUNDS do
    local m = receive()
    msgs = msgs + 1
    ping:send({ m[1], "pong" })
  end
end)
ping = spawn(function()
  for i = 1, ROUNDS do
    pong:send({ i, "ping" })
    local m = receive()
    msgs = msgs + 1
    assert(m[1] == i and m[2] == "pong", "ping: bad reply")
  end
  main:send("done")
end)
local t0 = now()
assert(receive() == "done")
local secs = now() - t0
assert(msgs == 2 * ROUNDS, "wrong message count")
io.write(string.format("W2 msgs=%d secs=%.6f msgs_per_s=%.0f\n", msgs, secs, msgs / secs))

-- W2 ping-pong, bare-LuaJIT floor reference (see WORKLOADS.md).
-- Usage: luajit bench/floor/w2_pingpong.lua [M]   (M messages, default 1000000)
-- Prints: W2 msgs=M secs=S msgs_per_s=R
-- ---------------------------------------------------------------------------
-- Minimal scheduler (bare LuaJIT, no engine): one coroutine per process, a
-- mailbox per process (table queue, head/tail indices), a FIFO ready queue
-- (power-of-two array ring that doubles when full).
local ffi = require "ffi"
local bit = require "bit"
local band = bit.band
local co_create, co_resume, co_yield, co_status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } floor_timespec;
int clock_gettime(int clk, floor_timespec *ts);
]]
local ts = ffi.new("floor_timespec")
local function now() -- CLOCK_MONOTONIC, seconds
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local rq, rq_cap, rq_head, rq_n = {}, 1024, 0, 0
local function rq_push(p)
  if rq_n == rq_cap then
    local nq = {}
    for i = 0, rq_n - 1 do nq[i + 1] = rq[band(rq_head + i, rq_cap - 1) + 1] end
    rq, rq_head, rq_cap = nq, 0, rq_cap * 2
  end
  rq[band(rq_head + rq_n, rq_cap - 1) + 1] = p
  rq_n = rq_n + 1
end
local function rq_pop()
  local i = rq_head + 1
  local p = rq[i]
  rq[i] = nil
  rq_head = band(i, rq_cap - 1)
  rq_n = rq_n - 1
  return p
end

local current -- the running process
local function spawn(fn)
  local p = { co = co_create(fn), mb = {}, head = 1, tail = 0, waiting = false, dead = false }
  rq_push(p)
  return p
end
local function send(p, msg)
  if p.dead then return false end
  local t = p.tail + 1
  p.tail = t
  p.mb[t] = msg
  if p.waiting then
    p.waiting = false
    rq_push(p)
  end
  return true
end
local function receive()
  local p = current
  local h = p.head
  if h > p.tail then
    p.waiting = true
    co_yield()
    h = p.head
  end
  local mb = p.mb
  local msg = mb[h]
  mb[h] = nil
  if h == p.tail then p.head, p.tail = 1, 0 else p.head = h + 1 end
  return msg
end
local function self() return current end
local function run(main)
  spawn(main)
  while rq_n > 0 do
    local p = rq_pop()
    current = p
    local ok, err = co_resume(p.co)
    if not ok then error(err, 0) end
    if co_status(p.co) == "dead" then p.dead = true end
  end
  current = nil
end
-- ---------------------------------------------------------------------------

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

-- bench/floor/sched.lua: the floor's scheduler, shared by the bare-LuaJIT
-- reference scripts (no engine): one coroutine per process, a mailbox per
-- process (table queue, head/tail indices), a FIFO ready queue (power-of-two
-- array ring that doubles when full). What a competent Lua programmer writes
-- without acoro; the scripts take its functions into locals.
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
local function yield() -- let the others run, continue afterwards
  rq_push(current)
  co_yield()
end

return {
  now = now, spawn = spawn, send = send, receive = receive, self = self, yield = yield, run = run,
  ready = rq_push, -- make a process ready (for the lock floor)
  suspend = co_yield, -- give up the processor until made ready
}

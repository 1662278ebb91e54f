-- w7_discoro.lua: W7, distributed jobs: N (10,000) `x*x` jobs through
-- comp:run_results to one acoro-node with 2 compute servers on loopback, and
-- the cost of one trivial run_result at a time.
--   acoro --listen 127.0.0.1:0 --no-discover --secret-file KEY \
--     bench/w7_discoro.lua NODE_LOCATION [N [ONE [SCHEDULER | monitor | monitor-only]]]
-- prints "W7 jobs=N secs=S jobs_per_s=R one_median_us=M" (M over ONE, 1,000,
-- single jobs). bench/run starts the node (and the scheduler) and runs this.
-- With SCHEDULER (an acoro-scheduler's location) the jobs go through that
-- shared scheduler instead of the one embedded here. With "monitor", the
-- computation has a web monitor (acoro.discoro.httpd) and a browser-like
-- client (curl on /api/events) reads its events all along: its cost.
local acoro = require "acoro"
local discoro = require "acoro.discoro"
local ffi = require "ffi"

-- this process's CPU time (all its threads), less noisy than a rate on a
-- shared machine: what the client spends per job
ffi.cdef [[
typedef struct { long sec; long nsec; } w7_ts;
int clock_gettime(int clk, w7_ts *ts);
]]
local function cpu()
  local ts = ffi.new("w7_ts")
  assert(ffi.C.clock_gettime(2, ts) == 0) -- CLOCK_PROCESS_CPUTIME_ID
  return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
end

local loc, n, one, mode = arg[1], tonumber(arg[2]) or 10000, tonumber(arg[3]) or 1000, arg[4]
local with_monitor, with_viewer = mode == "monitor" or mode == "monitor-only", mode == "monitor"
local sched = mode and not with_monitor and mode or nil

local main = acoro.self()
local status = acoro.spawn(function()
  local servers = 0
  while true do
    if acoro.receive().status == "ServerInitialized" then
      servers = servers + 1
      if servers == 2 then main:send("ready") end
    end
  end
end)
status:set_daemon()

local comp = discoro.Computation({ peers = { loc }, status = status, code = "function sq(x) return x * x end" })
assert(comp:schedule(sched and { scheduler = sched } or nil))
assert(acoro.receive(30) == "ready", "the node's 2 servers did not come up")
-- through a shared scheduler, status messages read here cross the network
-- (one per job): none is read from now on, as none is used
if sched then comp:unsubscribe(status) end
assert(comp:run_result("sq", 3) == 9)

local mon, viewer
if with_monitor then
  mon = assert(discoro.httpd(comp, { port = 0 }))
end
if with_viewer then
  viewer = assert(acoro.process.spawn({ "curl", "-sS", "-N", "-o", "/dev/null", "--max-time", "120",
    mon.url .. "api/events", stdout = "inherit", stderr = "inherit" }))
  -- timing starts once the viewer's stream is open
  for _ = 1, 1000 do
    if next(mon.waiters) then break end
    acoro.sleep(0.01)
  end
  assert(next(mon.waiters), "W7: the monitor's viewer did not connect")
end

local list = {}
for i = 1, n do list[i] = i end
local busy0 = mon and mon.busy
local t0, c0 = acoro.now(), cpu()
local r, e = comp:run_results("sq", list)
local secs, csecs = acoro.now() - t0, cpu() - c0
local busy = mon and mon.busy - busy0
assert(next(e) == nil and #r == n and r[n] == n * n, "W7: a job failed")

local times = {}
for i = 1, one do
  local t = acoro.now()
  assert(comp:run_result("sq", i) == i * i)
  times[i] = acoro.now() - t
end
table.sort(times)
if viewer then
  viewer:kill()
  viewer:wait(5)
end
if mon then mon:close() end
comp:close()
local extra = mon and (" monitor_busy_pct=%.3f"):format(busy / secs * 100) or ""
print(("W7 jobs=%d secs=%.4f jobs_per_s=%.0f one_median_us=%.0f cpu_us_per_job=%.2f%s"):format(n, secs,
  n / secs, times[math.floor(one / 2) + 1] * 1e6, csecs / n * 1e6, extra))

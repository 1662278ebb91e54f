-- w7_discoro.lua: W7, distributed jobs: N (10,000) `x*x` jobs through
-- comp:run_results to one acoro-node with 2 compute servers on loopback, and
-- the cost of one trivial run_result at a time.
--   acoro --listen 127.0.0.1:0 --no-discover --secret-file KEY \
--     bench/w7_discoro.lua NODE_LOCATION [N [ONE [SCHEDULER]]]
-- prints "W7 jobs=N secs=S jobs_per_s=R one_median_us=M" (M over ONE, 1,000,
-- single jobs). With SCHEDULER (an acoro-scheduler's location) the jobs go
-- through that shared scheduler instead of the one embedded here. bench/run
-- starts the node (and the scheduler) and runs this.
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local loc, n, one, sched = arg[1], tonumber(arg[2]) or 10000, tonumber(arg[3]) or 1000, arg[4]

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

local list = {}
for i = 1, n do list[i] = i end
local t0 = acoro.now()
local r, e = comp:run_results("sq", list)
local secs = acoro.now() - t0
assert(next(e) == nil and #r == n and r[n] == n * n, "W7: a job failed")

local times = {}
for i = 1, one do
  local t = acoro.now()
  assert(comp:run_result("sq", i) == i * i)
  times[i] = acoro.now() - t
end
table.sort(times)
comp:close()
print(("W7 jobs=%d secs=%.4f jobs_per_s=%.0f one_median_us=%.0f"):format(n, secs, n / secs,
  times[math.floor(one / 2) + 1] * 1e6))

-- discoro_lost.lua: LOST, a node killed mid-run: 4 jobs of L seconds on two
-- acoro-nodes of 2 servers each (one job per server, a free slot on each:
-- window 2), node A killed (SIGKILL) once all 4 run; its 2 jobs are re-queued
-- on B. The figure: from the kill to the last re-queued job's result, minus
-- L (what detection and re-placing cost); the reference, in the same run: 4
-- jobs of L with no loss, from submission to the last result, minus L. MODE
-- "kill" (the default) kills A's daemon (its sockets close: its servers end
-- with it); "stop" freezes the daemon and its servers (SIGSTOP: a host gone
-- without a word, found by missed heartbeats), killed at the end.
--   acoro --listen 127.0.0.1:0 --no-discover --secret-file KEY \
--     bench/discoro_lost.lua LOC_A PID_A LOC_B [L [BOUND [MODE]]]
-- prints "LOST mode=M job_s=L ref_s=R detect_s=D last_s=T over_s=O requeued=2";
-- fails (a job's error) past BOUND seconds (30): the safety net of the spec
-- that runs it. bench/run starts the nodes and runs this.
local acoro = require "acoro"
local discoro = require "acoro.discoro"
local ffi = require "ffi"
pcall(ffi.cdef, "int kill(int pid, int sig);")

local la, pa, lb = arg[1], tonumber(arg[2]), arg[3]
local L, BOUND, MODE = tonumber(arg[4]) or 1, tonumber(arg[5]) or 30, arg[6] or "kill"
assert(la and pa and lb and (MODE == "kill" or MODE == "stop"),
  "usage: discoro_lost.lua LOC_A PID_A LOC_B [L [BOUND [kill|stop]]]")

local main = acoro.self()
local requeued, ended = {}, {}
local status = acoro.spawn(function()
  local up = 0
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      ended[m.job] = acoro.now()
    elseif m.status == "ServerInitialized" then
      up = up + 1
      if up == 4 then main:send("up") end
    elseif m.status == "JobRequeued" then
      requeued[#requeued + 1] = { job = m.job, t = acoro.now() }
    end
  end
end)
status:set_daemon()

local comp = discoro.Computation({ peers = { la, lb }, status = status, window = 2, timeout = BOUND, code = [[
function job(i, L, who)
  if who then who:send("started") end
  acoro.sleep(L)
  return i * i
end
]] })
assert(comp:schedule())
assert(acoro.receive(BOUND) == "up", "the 4 servers did not come up")

local function list(who)
  local t = {}
  for i = 1, 4 do t[i] = { i, L, who } end
  return t
end
local function check(r, e)
  for i = 1, 4 do assert(r[i] == i * i, ("job %d: %s"):format(i, tostring(e[i]))) end
end

-- the reference: no loss
local t0 = acoro.now()
check(comp:run_results("job", list(false)))
local ref = acoro.now() - t0 - L

-- the loss: A killed once all 4 run
local runner = acoro.spawn(function()
  check(comp:run_results("job", list(main)))
  main:send("done")
end)
for _ = 1, 4 do assert(acoro.receive(BOUND) == "started", "the jobs did not start") end
local frozen = {}
if MODE == "stop" then
  local f = assert(io.open(("/proc/%d/task/%d/children"):format(pa, pa)))
  for pid in f:read("*a"):gmatch("%d+") do frozen[#frozen + 1] = tonumber(pid) end
  f:close()
  frozen[#frozen + 1] = pa
end
local t_kill = acoro.now()
if MODE == "stop" then
  for _, pid in ipairs(frozen) do assert(ffi.C.kill(pid, 19) == 0, "cannot stop node A") end
else
  assert(ffi.C.kill(pa, 9) == 0, "cannot kill node A")
end
local ended_ok = acoro.receive_match(function(m) return m == "done" end, BOUND) == "done"
for _, pid in ipairs(frozen) do ffi.C.kill(pid, 9) end
assert(ended_ok, "the jobs did not end")
runner:join(BOUND)
comp:close()

assert(#requeued == 2, ("%d jobs re-queued, 2 expected"):format(#requeued))
local first, last = math.huge, 0
for _, q in ipairs(requeued) do
  first = math.min(first, q.t)
  last = math.max(last, (assert(ended[q.job], "a re-queued job has no end")))
end
print(("LOST mode=%s job_s=%g ref_s=%.4f detect_s=%.4f last_s=%.4f over_s=%.4f requeued=%d"):format(MODE, L, ref,
  first - t_kill, last - t_kill, last - t_kill - L, #requeued))

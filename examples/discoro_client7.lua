-- discoro_client7.lua: asyncoro's discoro_client7 on acoro.discoro: the jobs
-- are scheduled from the status messages. Each server that is initialized gets
-- a job at once (run_async_at its location), and each job's acoro.Exit, which
-- the status coroutine gets too, starts the next one on that server until N
-- have run.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client7.lua [NODE_HOST:PORT [N]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, n = arg[1], tonumber(arg[2]) or 6

local function compute(i, secs)
  acoro.sleep(secs)
  return ("job %d slept %.2f s"):format(i, secs)
end

local main = acoro.self()
local comp
local started, ended = 0, 0

-- Starts job i on the server at `where` (a coroutine of its own: submitting
-- waits for the job's handle).
local function start(where)
  if started >= n then return end
  started = started + 1
  local i = started
  acoro.spawn(function()
    local h, why = comp:run_async_at(where, compute, i, (i % 3) / 20)
    if not h then print(("job %d failed: %s"):format(i, why)) end
  end)
end

local status = acoro.spawn(function()
  local where = {} -- job id -> the server it ran on
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      ended = ended + 1
      print(m.reason == "normal" and ("result: " .. m.value) or ("job failed: " .. tostring(m.error)))
      if ended == n then main:send("all done") end
      start(where[m.job])
    elseif m.status == "ServerInitialized" then
      print("server up")
      start(m.location)
    elseif m.status == "JobCreated" then
      where[m.job] = m.location
    end
  end
end)
status:set_daemon()

comp = discoro.Computation({ code = { compute }, peers = { node_location }, status = status })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
acoro.receive_match(function(m) return m == "all done" end, 120)
comp:close()

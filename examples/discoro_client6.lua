-- discoro_client6.lua: asyncoro's discoro_client6 on acoro.discoro: data
-- streamed to jobs by message, analysed as it comes (live analytics). Each job
-- keeps a moving average over the last WINDOW values it gets and sends the
-- client an alert each time that average passes THRESHOLD; the client prints
-- the alerts as they come and each job's summary at its end.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client6.lua [NODE_HOST:PORT [JOBS [COUNT]]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, jobs, count = arg[1], tonumber(arg[2]) or 2, tonumber(arg[3]) or 200
local WINDOW, THRESHOLD = 10, 60

-- Runs on a server: values until "end", then its summary as its result.
local function analyze(client, name, window, threshold)
  local buf, sum, n, alerts = {}, 0, 0, 0
  while true do
    local x = acoro.receive()
    if x == "end" then return ("%s: %d values, %d alerts"):format(name, n, alerts) end
    n = n + 1
    buf[#buf + 1] = x
    sum = sum + x
    if #buf > window then sum = sum - table.remove(buf, 1) end
    if #buf == window and sum / window > threshold then
      alerts = alerts + 1
      client:send({ alert = name, at = n, avg = sum / window })
    end
  end
end

local comp = discoro.Computation({ code = { analyze }, peers = { node_location } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end

local me = acoro.self()
local handles = {}
for j = 1, jobs do
  handles[j] = assert(comp:submit({ async = true, monitor = me }, analyze, me, "job" .. j, WINDOW, THRESHOLD))
end
-- the data: a saw tooth with a burst every 50 values, the same for each job
-- but shifted by its number
for i = 1, count do
  for j = 1, jobs do
    local k = i + 7 * j
    handles[j]:send(k % 50 >= 40 and 95 or (k * 13) % 50)
  end
end
for j = 1, jobs do handles[j]:send("end") end
local ended = 0
while ended < jobs do
  local m = acoro.receive(60)
  if not m then error("nothing from the jobs in 60 s", 0) end
  if acoro.is_exit(m) then
    ended = ended + 1
    print("summary " .. tostring(m.value or m.error))
  elseif type(m) == "table" and m.alert then
    print(("alert %s at %d: average %.1f"):format(m.alert, m.at, m.avg))
  end
end
comp:close()

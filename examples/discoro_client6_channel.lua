-- discoro_client6_channel.lua: discoro_client6.lua with the data broadcast on
-- a channel: each job subscribes to the client's channel (a value that
-- travels as an argument) and analyses every value the client sends on it.
-- deliver() waits until every job subscribed before the first value goes.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client6_channel.lua [NODE_HOST:PORT [JOBS [COUNT]]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, jobs, count = arg[1], tonumber(arg[2]) or 2, tonumber(arg[3]) or 200
local WINDOW, THRESHOLD = 10, 60

-- Runs on a server: subscribes, then values until "end"; its summary is its
-- result.
local function analyze(ch, client, name, window, threshold)
  assert(ch:subscribe(acoro.self()))
  local buf, sum, n, alerts = {}, 0, 0, 0
  while true do
    local x = acoro.receive()
    if x == "end" then return ("%s: %d values, %d alerts"):format(name, n, alerts) end
    if type(x) == "number" then
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
end

local comp = discoro.Computation({ code = { analyze }, peers = { node_location } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end

local me = acoro.self()
local ch = acoro.channel("discoro_client6")
for j = 1, jobs do
  assert(comp:submit({ async = true, monitor = me }, analyze, ch, me, "job" .. j, WINDOW, THRESHOLD))
end
-- every job subscribed and took "start"
local n = ch:deliver("start", 60, jobs)
if n < jobs then error(("only %d of %d jobs subscribed"):format(n, jobs), 0) end
for i = 1, count do ch:send(i % 50 >= 40 and 95 or (i * 13) % 50) end
ch:send("end")
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

-- discoro_client2.lua: asyncoro's discoro_client2 on acoro.discoro: as
-- discoro_client1.lua (N jobs, each monitored, each result printed as it
-- ends), with the web monitor (discoro.httpd) serving the cluster, its nodes
-- and the jobs running, live. Once the jobs ended the monitor stays up until
-- a line (or the end) on stdin, so that the page can be looked at.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client2.lua [NODE_HOST:PORT [N [HTTP_PORT]]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, n, http_port = arg[1], tonumber(arg[2]) or 10, tonumber(arg[3]) or 8181

-- Runs on a compute server; the sleep stands for work that waits.
local function compute(i, secs)
  acoro.sleep(secs)
  return ("job %d slept %.1f s"):format(i, secs)
end

local comp = discoro.Computation({ code = { compute }, peers = { node_location } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
local monitor = assert(discoro.httpd(comp, { port = http_port }))
print("monitor at " .. monitor.url)

local me = acoro.self()
local running = 0
for i = 1, n do
  local job, why = comp:submit({ async = true, monitor = me }, compute, i, (i % 4) / 10 + 0.1)
  if job then
    running = running + 1
    print(("job %d runs at %s"):format(i, job.location))
  else
    print(("job %d failed: %s"):format(i, why))
  end
end
io.stdout:flush()
for _ = 1, running do
  local m = acoro.receive(120)
  if not m then break end
  if m.reason == "normal" then
    print("result: " .. m.value)
  else
    print(("%s ended: %s %s"):format(tostring(m.coro), m.reason, tostring(m.error)))
  end
  io.stdout:flush()
end
print("all jobs ended; the monitor stays up until a line on stdin")
io.stdout:flush()
acoro.stdin:readline()
monitor:close()
comp:close()

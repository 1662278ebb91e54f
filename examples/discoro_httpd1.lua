-- discoro_httpd1.lua: asyncoro's discoro_httpd1 on acoro.discoro: a
-- computation watched in a browser through its web monitor (discoro.httpd).
-- Each number typed on stdin starts a job that sleeps that many seconds; the
-- monitor's pages show the nodes, servers and jobs as they change. `quit` (or
-- the end of stdin) waits for the jobs started, then closes the monitor and
-- the computation.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_httpd1.lua [NODE_HOST:PORT [HTTP_PORT]]
-- then open the address it prints (HTTP_PORT 8181 by default, 0 for any; on
-- 127.0.0.1 only, so no token is needed).
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, http_port = arg[1], tonumber(arg[2]) or 8181

local function compute(i, secs)
  acoro.sleep(secs)
  return ("job %d slept %g s"):format(i, secs)
end

local comp = discoro.Computation({ code = { compute }, peers = { node_location } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
local monitor = assert(discoro.httpd(comp, { port = http_port }))
print("monitor at " .. monitor.url)
print('type a delay in seconds to start a job, "quit" to end')
io.stdout:flush()

-- Every job's acoro.Exit comes here, as it ends; `main` hears when the last
-- one ended after quit.
local main = acoro.self()
local started, ended, quitting = 0, 0, false
local watcher = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    ended = ended + 1
    if m.reason == "normal" then
      print("result: " .. tostring(m.value))
    else
      print(("job ended: %s %s"):format(m.reason, tostring(m.error)))
    end
    io.stdout:flush()
    if quitting and ended == started then main:send("all ended") end
  end
end)
watcher:set_daemon()

while true do
  local line = acoro.stdin:readline()
  if not line then break end
  line = line:match("^%s*(.-)%s*$"):lower()
  if line == "quit" or line == "exit" then break end
  local secs = tonumber(line)
  if secs and secs >= 0 then
    started = started + 1
    local job, why = comp:submit({ async = true, monitor = watcher }, compute, started, secs)
    if job then
      print(("job %d runs at %s"):format(started, job.location))
    else
      started = started - 1
      print("job not started: " .. tostring(why))
    end
  elseif line ~= "" then
    print("not a delay: " .. line)
  end
  io.stdout:flush()
end

quitting = true
if ended < started then acoro.receive_match(function(m) return m == "all ended" end) end
monitor:close()
comp:close()
print(("%d job(s) ended"):format(ended))

-- discoro_httpd2.lua: asyncoro's discoro_httpd2 on acoro.discoro: as
-- discoro_httpd1.lua, with a status coroutine of the client's own next to the
-- web monitor. The monitor (discoro.httpd) reads the scheduler's state by
-- itself, so the status coroutine keeps every status message and job Exit
-- (in asyncoro the HTTP server took the status coroutine's place and passed
-- the messages on to it); here it prints each server that comes up and each
-- job that ends.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_httpd2.lua [NODE_HOST:PORT [HTTP_PORT]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, http_port = arg[1], tonumber(arg[2]) or 8181

local function compute(i, secs)
  acoro.sleep(secs)
  return ("job %d slept %g s"):format(i, secs)
end

local main = acoro.self()
local started, ended, quitting = 0, 0, false

local status = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      ended = ended + 1
      print(("job %s finished: %s"):format(tostring(m.job),
        m.reason == "normal" and tostring(m.value) or (m.reason .. " " .. tostring(m.error))))
      if quitting and ended == started then main:send("all ended") end
    elseif m.status == "ServerInitialized" then
      print("server up at " .. m.location)
    end
    io.stdout:flush()
  end
end)
status:set_daemon()

local comp = discoro.Computation({ code = { compute }, peers = { node_location }, status = status })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
local monitor = assert(discoro.httpd(comp, { port = http_port }))
print("monitor at " .. monitor.url)
print('type a delay in seconds to start a job, "quit" to end')
io.stdout:flush()

-- Each job runs in a coroutine of its own here (run_result waits for it);
-- its end reaches the status coroutine as an acoro.Exit.
while true do
  local line = acoro.stdin:readline()
  if not line then break end
  line = line:match("^%s*(.-)%s*$"):lower()
  if line == "quit" or line == "exit" then break end
  local secs = tonumber(line)
  if secs and secs >= 0 then
    started = started + 1
    acoro.spawn(comp.run_result, comp, compute, started, secs)
    print(("job %d submitted"):format(started))
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

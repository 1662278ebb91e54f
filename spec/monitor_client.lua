-- The client of spec/monitor_browser_spec.lua: a computation on the node at
-- arg[1] watched by discoro.httpd (token arg[2], any port), driven by
-- commands on stdin, one a line; it prints what the spec waits for:
--   run N        N quick jobs (run_results): "ran N: SUM"
--   hold TEXT    a job that waits until it is terminated, TEXT its argument:
--                "hold ended: REASON" from its monitor's acoro.Exit
--   long N       N jobs that sleep 60 s: "long I: ERROR" as each fails
--   blip N       the monitor closes, N quick jobs run, it serves again on the
--                same port: "monitor PORT again"
--   quit         closes the monitor and the computation: "bye"
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local function say(...)
  print(...)
  io.stdout:flush()
end

local function sq(i) return i * i end

local function hold(_) acoro.receive() end

local function long(i)
  acoro.sleep(60)
  return i
end

local comp = discoro.Computation({ code = { sq, hold, long }, peers = { arg[1] }, progress = false,
  pulse_interval = 1 })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
local opts = { port = 0, auth = { token = arg[2] } }
local mon = assert(discoro.httpd(comp, opts))
say("monitor " .. mon.port)

local commands = {}

local function run(n)
  n = tonumber(n)
  local list = {}
  for i = 1, n do list[i] = i end
  local results, errors = comp:run_results(sq, list)
  local sum, bad = 0, 0
  for i = 1, n do
    if errors[i] then bad = bad + 1 else sum = sum + results[i] end
  end
  say(("ran %d: %d%s"):format(n, sum, bad > 0 and (" (" .. bad .. " failed)") or ""))
end
commands.run = run

function commands.blip(n)
  mon:close()
  run(n)
  opts.port = mon.port
  mon = assert(discoro.httpd(comp, opts))
  say("monitor " .. mon.port .. " again")
end

function commands.hold(text)
  local job, why = comp:submit({ async = true, monitor = acoro.self() }, hold, text)
  if not job then return say("hold failed: " .. tostring(why)) end
  local m = acoro.receive(120)
  say("hold ended: " .. (m and tostring(m.reason) or "no exit in 120 s"))
end

function commands.long(n)
  for i = 1, tonumber(n) do
    acoro.spawn(function()
      local v, why = comp:run_result(long, i)
      say(("long %d: %s"):format(i, v and "ok" or tostring(why)))
    end)
  end
end

while true do
  local line = acoro.stdin:readline(nil, 300)
  if not line or line == "" then break end
  local cmd, rest = line:gsub("\n$", ""):match("^(%S+)%s*(.*)$")
  if cmd == "quit" then break end
  if commands[cmd] then acoro.spawn(commands[cmd], rest) else say("unknown command " .. tostring(cmd)) end
end
mon:close()
comp:close()
say("bye")

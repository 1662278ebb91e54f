-- discoro_client8.lua: asyncoro's discoro_client8 on acoro.discoro: jobs that
-- compute for long without yielding. Such a job holds its server's coroutines
-- (none other runs there until it returns), but not the server's links: the
-- network thread keeps heartbeats and messages going, so neither side takes
-- the other for lost. window = 1 gives each server one job at a time.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client8.lua [NODE_HOST:PORT [N [SECONDS]]]
local discoro = require "acoro.discoro"

local node_location, n, secs = arg[1], tonumber(arg[2]) or 4, tonumber(arg[3]) or 1

-- Spins on the CPU for `secs` without a yield (it stands for a long
-- computation in a library call).
local function spin(i, s)
  local t0, x = os.clock(), 0
  while os.clock() - t0 < s do x = x + 1 end
  return ("job %d computed %.1f s (%d rounds)"):format(i, s, x)
end

local comp = discoro.Computation({ code = { spin }, peers = { node_location }, window = 1 })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
local list = {}
for i = 1, n do list[i] = { i, secs } end
local results, errors = comp:run_results(spin, list)
for i = 1, n do print(results[i] and ("result: " .. results[i]) or ("job " .. i .. " failed: " .. errors[i])) end
comp:close()

-- discoro_client1.lua: asyncoro's discoro_client1 on acoro.discoro. The client
-- ships `compute` to the compute servers of an acoro-node, starts N jobs there
-- as coroutines (run_async), monitors each and prints its result as it ends.
-- Start a node first, with the same secret as the client:
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client1.lua [NODE_HOST:PORT [N]]
-- Without NODE_HOST:PORT the node is found by UDP discovery on acoro-node's port
-- (51351): schedule() starts this process's node on it. (A node started by the
-- CLI's flags, e.g. --secret-file, discovers on acoro's 51350: give the location.)
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, n = arg[1], tonumber(arg[2]) or 5

-- Runs on a compute server, as a coroutine of its own there; `acoro` is a
-- loaded module, so the server requires it again. The sleep stands for work
-- that waits (I/O, messages), which lets other jobs of that server run.
local function compute(i, secs)
  acoro.sleep(secs)
  return ("job %d slept %.1f s"):format(i, secs)
end

local comp = discoro.Computation({ code = { compute }, peers = { node_location } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end

local me = acoro.self()
for i = 1, n do
  -- async: the job's coroutine handle comes back at once; `me` monitors it
  -- from before it runs, so even a job that ends at once reports
  local job, why = comp:submit({ async = true, monitor = me }, compute, i, (i % 3) / 10)
  if job then
    print(("job %d runs at %s"):format(i, job.location))
  else
    print(("job %d failed: %s"):format(i, why))
  end
end
for _ = 1, n do
  local m = acoro.receive(60)
  if not m then break end
  if m.reason == "normal" then
    print("result: " .. m.value)
  else
    print(("%s ended: %s %s"):format(tostring(m.coro), m.reason, tostring(m.error)))
  end
end
comp:close()

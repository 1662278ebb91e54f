-- discoro_ssh_ec2.lua: asyncoro's discoro_ssh_ec2 on acoro.discoro: a node
-- that discovery cannot reach (a cloud host behind SSH), used through explicit
-- locations with discovery off on both sides. With SSH tunnels both ways:
--   ssh -L 9705:127.0.0.1:9705 -R 9706:127.0.0.1:9706 user@cloud-host
--   (there)  acoro-node --listen 127.0.0.1:9705 --no-discover --secret-file KEY
--   (here)   ACORO_SECRET=$(cat KEY) acoro examples/discoro_ssh_ec2.lua 127.0.0.1:9705 9706
-- The client's node listens on 127.0.0.1:9706, which the remote end of the
-- tunnel forwards here: the node's compute servers connect to the client
-- there, and its jobs and results travel on those links. Port 0 (any free
-- port) works when node and client share a host, as the spec runs it.
local discoro = require "acoro.discoro"

local node_location, port, n = arg[1] or "127.0.0.1:9705", tonumber(arg[2]) or 9706, tonumber(arg[3]) or 4

local function where(i)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int gethostname(char *name, size_t len);")
  local buf = ffi.new("char[256]")
  ffi.C.gethostname(buf, 256)
  return ("job %d ran on %s"):format(i, ffi.string(buf))
end

local comp = discoro.Computation({ code = { where }, peers = { node_location },
  node = { host = "127.0.0.1", port = port, discover = false } })
local ok, err = comp:schedule({ timeout = 30 })
if not ok then error("schedule failed: " .. tostring(err), 0) end
local list = {}
for i = 1, n do list[i] = i end
local results, errors = comp:run_results(where, list)
for i = 1, n do print(results[i] or ("job " .. i .. " failed: " .. tostring(errors[i]))) end
comp:close()

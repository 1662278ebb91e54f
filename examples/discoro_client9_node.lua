-- discoro_client9_node.lua: asyncoro's discoro_client9_node on acoro.discoro:
-- data prepared once per node, then processed in memory. The data file goes
-- to every node with files=; nodes are held (disable_nodes) and, as each is
-- discovered, enabled with its part: its node_setup (once, before its servers
-- start) writes that part to node.dat in the computation's directory, and
-- each server's server_setup reads node.dat into memory (servers are
-- processes of their own: what node_setup prepares for them goes to files).
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client9_node.lua [NODE_HOST:PORT...]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local peers = { ... }
local PARTS = math.max(1, #peers)

local code = [[
-- once per node: its part of data.txt (lines whose number % parts == part)
function prepare(part, parts)
  local out = assert(io.open("node.dat", "w"))
  local i = 0
  for line in io.lines("data.txt") do
    if i % parts == part then out:write(line, "\n") end
    i = i + 1
  end
  out:close()
  return true
end

-- once per server: node.dat in memory
function load()
  DATA = {}
  for line in io.lines("node.dat") do DATA[#DATA + 1] = tonumber(line) end
  return true
end

function stats() local s = 0 for _, x in ipairs(DATA) do s = s + x end return #DATA .. " values, sum " .. s end
]]

-- the data: 1..100, one a line, in data.txt of a directory of its own
-- (files= sends an absolute name as its base name)
local dir = os.tmpname()
os.remove(dir)
assert(acoro.fs.mkdir(dir, tonumber("700", 8)))
local data = dir .. "/data.txt"
local f = assert(io.open(data, "w"))
for i = 1, 100 do f:write(i, "\n") end
f:close()

local comp
local part = -1
local status = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if not acoro.is_exit(m) and m.status == "NodeDiscovered" then
      part = part + 1
      print(("node %s gets part %d of %d"):format(m.name or m.location, part, PARTS))
      comp:enable_node(m.location, part % PARTS, PARTS)
    end
  end
end)
status:set_daemon()

comp = discoro.Computation({ code = code, peers = peers, status = status, disable_nodes = true,
  files = { data }, node_setup = "prepare", server_setup = "load" })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
for _, p in ipairs(peers) do
  print(("at %s: %s"):format(p, tostring(comp:run_result_at(p, "stats"))))
end
comp:close()
os.remove(data)
os.remove(dir)

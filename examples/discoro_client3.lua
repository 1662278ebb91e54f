-- discoro_client3.lua: asyncoro's discoro_client3 on acoro.discoro. The client
-- and a job on a compute server exchange objects of a class, C, by message:
-- both sides register C by name (acoro.register_type), so a C arrives as a C
-- with the receiver's methods; only its fields travel.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client3.lua [NODE_HOST:PORT [N]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, n = arg[1], tonumber(arg[2]) or 3

local C = { __index = {} }
function C.__index.describe(c) return ("C(i=%d, v=%s, at %s)"):format(c.i, tostring(c.v), tostring(c.at)) end
acoro.register_type("C", C)

-- The shipped code: the server's C (its own methods), and the job, which
-- answers each C it gets with another until it gets one with no i.
local code = [[
C = { __index = {} }
function C.__index.square(c) return c.v * c.v end
acoro.register_type("C", C)

function echo(client)
  while true do
    local c = acoro.receive()
    if getmetatable(c) ~= C or c.i == nil then return "done" end
    client:send(setmetatable({ i = c.i, v = c:square(), at = acoro.node().location }, C))
  end
end
]]

local comp = discoro.Computation({ code = code, peers = { node_location } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end

local me = acoro.self()
local job = assert(comp:submit({ async = true, monitor = me }, "echo", me))
for i = 1, n do
  job:send(setmetatable({ i = i, v = i + 1 }, C))
  local c = acoro.receive_match(function(m) return getmetatable(m) == C end, 30)
  print("got " .. c:describe())
end
job:send(setmetatable({}, C))
local exit = acoro.receive_match(acoro.is_exit, 30)
print("job ended: " .. tostring(exit and exit.value))
comp:close()

-- discoro_client9_server.lua: asyncoro's discoro_client9_server on
-- acoro.discoro: in-memory processing per server. Servers are held
-- (disable_servers); as each is discovered, the client makes a data file for
-- it, sends it to the computation's directory on that server's node
-- (acoro.send_file) and enables the server with the file's name: its
-- server_setup reads the file into memory, and the jobs run there
-- (run_result_at) compute on that memory.
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client9_server.lua [NODE_HOST:PORT [SERVERS]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, want = arg[1], tonumber(arg[2]) or 2

local code = [[
-- once per server, with the name of its file: the numbers, in memory
function load_data(name)
  DATA = {}
  for line in io.lines(name) do DATA[#DATA + 1] = tonumber(line) end
  os.remove(name)
  return #DATA > 0, "no data in " .. name
end

function total(scale) local t = 0 for _, x in ipairs(DATA) do t = t + x * scale end return #DATA, t end
]]

local main = acoro.self()
local comp
local dirs, n = {}, 0 -- node location -> the computation's directory there

local status = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if not acoro.is_exit(m) then
      if m.status == "NodeInitialized" then
        dirs[m.location] = m.dir
      elseif m.status == "ServerDiscovered" then
        -- server k's data: the numbers 1..10*k
        n = n + 1
        local tmp = os.tmpname()
        local f = assert(io.open(tmp, "w"))
        for i = 1, 10 * n do f:write(i, "\n") end
        f:close()
        local k, loc = n, m.location
        acoro.spawn(function()
          local ok, err = acoro.send_file(m.node, tmp, { dir = dirs[m.node], overwrite = true })
          os.remove(tmp)
          if not ok then print("cannot send data: " .. tostring(err)) end
          comp:enable_server(loc, ok and tmp:match("[^/]+$"))
          main:send({ server = loc, k = k })
        end)
      end
    end
  end
end)
status:set_daemon()

comp = discoro.Computation({ code = code, peers = { node_location }, status = status, disable_servers = true,
  server_setup = "load_data" })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
local servers = {}
for _ = 1, want do
  local m = acoro.receive_match(function(x) return type(x) == "table" and x.server end, 60)
  if not m then error("fewer servers than " .. want, 0) end
  servers[m.k] = m.server
end
for k = 1, want do
  local count, t = comp:run_result_at(servers[k], "total", 2)
  print(("server %d: %s numbers, twice their sum %s"):format(k, tostring(count), tostring(t)))
end
comp:close()

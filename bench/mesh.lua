-- MESH: one node of the mesh bench (bench/mesh.sh starts N of them at once).
-- Usage: build/acoro bench/mesh.lua N UDP_PORT   (the secret in MESH_SECRET;
-- MESH_HEARTBEAT: the heartbeat option, seconds)
-- A node on 127.0.0.1 with discovery on the given port and no peers named;
-- it prints "start 0 T" once listening, then "peers K T" each time its count of peers up changes (T: the
-- wall clock, so that the driver can compare nodes) and stays up, idle,
-- until it is sent SIGTERM.
local acoro = require "acoro"
local ffi = require "ffi"
ffi.cdef [[
struct mesh_timespec { long sec, nsec; };
int clock_gettime(int clock, struct mesh_timespec *ts);
]]

local function wall()
  local ts = ffi.new("struct mesh_timespec")
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: comparable across processes
  return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
end

local n, udp = tonumber(arg[1]), tonumber(arg[2])
assert(n and udp, "usage: acoro bench/mesh.lua N UDP_PORT")
acoro.node { host = "127.0.0.1", udp_port = udp, secret = os.getenv("MESH_SECRET"),
  heartbeat = tonumber(os.getenv("MESH_HEARTBEAT") or "") }
io.stdout:write(("start 0 %.3f\n"):format(wall()))
acoro.peer_status(acoro.self())
local up = 0
while true do
  local m = acoro.receive()
  if acoro.is_peer_status(m) then
    up = up + (m.status == "online" and 1 or -1)
    io.stdout:write(("peers %d %.3f\n"):format(up, wall()))
    io.stdout:flush()
  end
end

-- LV: how long a node takes to see that a peer is gone (the figures
-- spec/node_liveness_spec.lua used to print; the spec asserts the order of
-- the events and a generous bound, this measures them).
-- Usage: build/acoro bench/liveness.lua
-- Prints: LV stop_exit_s=A stop_offline_s=B kill_exit_s=C kill_offline_s=D
-- Two nodes on 127.0.0.1 (build/acoro, or $ACORO): a server with a
-- coroutine that never ends, and a watcher that monitors it and asks for
-- peer_status. The server is then frozen (SIGSTOP: found by missed
-- heartbeats) or killed (SIGKILL: the socket closes). A, C: seconds from
-- the signal (the watcher's clock, from its "monitoring" line) until its
-- Exit came; B, D: until its "offline".
local BIN = os.getenv("ACORO") or "build/acoro"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function sh_read(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local tmp = sh_read("mktemp -d")
local key = tmp .. "/key"
local function write(path, s)
  local f = assert(io.open(path, "w"))
  f:write(s)
  f:close()
end
write(key, sh_read(q(BIN) .. " --gen-secret") .. "\n")
local PRELUDE = [[
local acoro = require "acoro"
local ffi = require "ffi"
ffi.cdef "int getpid(void);"
local function say(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  print(table.concat(t, " "))
  io.stdout:flush()
end
say("listening", acoro.node().location)
say("pid", ffi.C.getpid())
]]
write(tmp .. "/server.lua", PRELUDE .. [[
acoro.spawn(function() acoro.receive() end):register("a")
acoro.receive()
]])
-- the watcher reports the times on its own clock, from its "monitoring"
-- line (the bench sends the signal as it reads it)
write(tmp .. "/watcher.lua", PRELUDE .. [[
acoro.peer_status(acoro.self())
assert(acoro.peer(arg[1], 10))
local a = assert(acoro.locate("a", { timeout = 10, location = arg[1] }))
a:monitor()
say("monitoring")
local t0 = acoro.now()
local exit, offline
while not (exit and offline) and acoro.now() - t0 < 60 do
  local m = acoro.receive(1)
  if acoro.is_exit(m) then exit = acoro.now() - t0 end
  if acoro.is_peer_status(m) and m.status == "offline" then offline = acoro.now() - t0 end
end
say("seen", exit, offline)
]])

local function node(script, args)
  local p = assert(io.popen(("exec timeout 90 %s --listen 127.0.0.1:0 --no-discover --secret-file %s %s %s 2>/dev/null")
    :format(q(BIN), q(key), q(script), args or "")))
  local loc = assert(p:read("*l"):match("^listening (%S+)$"), "no node")
  local pid = assert(tonumber(p:read("*l"):match("^pid (%d+)$")))
  return p, loc, pid
end

local function expect(p, pattern)
  while true do
    local l = p:read("*l")
    if l == nil then error("bench/liveness: ended before " .. pattern) end
    local a, b = l:match(pattern)
    if a then return a, b end
  end
end

local out = {}
for _, mode in ipairs({ "STOP", "KILL" }) do
  local srv, loc, pid = node(tmp .. "/server.lua")
  local w = node(tmp .. "/watcher.lua", q(loc))
  expect(w, "^monitoring$")
  os.execute("kill -" .. mode .. " " .. pid)
  local exit, offline = expect(w, "^seen (%S+) (%S+)$")
  w:close()
  os.execute("kill -CONT " .. pid .. " 2>/dev/null; kill -KILL " .. pid .. " 2>/dev/null")
  srv:close()
  assert(tonumber(exit) and tonumber(offline), mode .. ": not seen within 60 s")
  out[#out + 1] = ("%s_exit_s=%.3f %s_offline_s=%.3f"):format(mode:lower(), exit, mode:lower(), offline)
end
print("LV " .. table.concat(out, " "))
os.execute("rm -rf " .. q(tmp))

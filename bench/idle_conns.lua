-- idle_conns.lua: memory held per idle TCP connection (the figure asked for:
-- 10,000 idle connections with RSS growth <= 20 KB each).
--   acoro bench/idle_conns.lua server N   listens on 127.0.0.1:0, prints
--        "port P", then "rss0 KB" before the first connection and "rss KB" once N
--        connections are accepted, each held by a coroutine waiting in readline;
--        then waits for stdin to close and exits.
--   acoro bench/idle_conns.lua client PORT N   opens N connections, sends one
--        line on each (so every server coroutine has read once), prints
--        "connected", then holds them until stdin closes.
-- bench/run runs both (workload "idle").
local acoro = require "acoro"

local role, a, b = arg[1], tonumber(arg[2]), tonumber(arg[3])

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = tonumber(f:read("*a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end

if role == "server" then
  local n = a or 10000
  local srv = assert(acoro.tcp.listen("127.0.0.1", 0, { backlog = 1024 }))
  local _, port = srv:getsockname()
  collectgarbage()
  collectgarbage()
  print("port " .. port)
  print("rss0 " .. rss_kb())
  io.stdout:flush()
  local held = 0
  local all = acoro.Event()
  acoro.spawn(function()
    acoro.self():set_daemon()
    while true do
      local s = srv:accept()
      if not s then break end
      held = held + 1
      acoro.spawn(function()
        acoro.self():set_daemon()
        assert(s:readline())
        if held == n then all:set() end
        s:readline() -- idle until the client goes
        s:close()
      end)
    end
  end)
  all:wait()
  acoro.sleep(0.2)
  collectgarbage()
  collectgarbage()
  print("rss " .. rss_kb())
  io.stdout:flush()
  acoro.stdin:read("a")
elseif role == "client" then
  local port, n = assert(a, "port"), b or 10000
  local conns = {}
  local done = acoro.Event()
  local left = n
  for i = 1, n do
    acoro.spawn(function()
      local s = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 60 }))
      conns[i] = s
      assert(s:send("hello\n"))
      left = left - 1
      if left == 0 then done:set() end
    end)
    if i % 500 == 0 then acoro.sleep(0.01) end -- stay under the listen backlog
  end
  done:wait()
  print("connected")
  io.stdout:flush()
  acoro.stdin:read("a")
  for _, s in pairs(conns) do s:close() end
else
  io.stderr:write("usage: acoro bench/idle_conns.lua server N | client PORT N\n")
  os.exit(2)
end

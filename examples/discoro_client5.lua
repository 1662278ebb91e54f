-- discoro_client5.lua: asyncoro's discoro_client5 on acoro.discoro: an
-- external program (discoro_client5_proc.lua, sent with files=) runs on the
-- compute servers; a job starts it with pipes (acoro.process), writes to its
-- stdin what the client sends it by message and sends the client each line
-- the program writes. The program is run by the server's own executable
-- (/proc/self/exe: an acoro, which runs Lua scripts).
--   acoro-node --secret-file KEY
--   ACORO_SECRET=$(cat KEY) acoro examples/discoro_client5.lua [NODE_HOST:PORT [N]]
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, n = arg[1], tonumber(arg[2]) or 3
local here = (arg[0] or ""):match("^(.*)/[^/]*$") or "."

-- Runs on a server: the program reads what the client sends; a coroutine
-- reads its output and sends each line to the client.
-- `path` is the program's name in files=: a relative one keeps its
-- directories in the computation's directory, an absolute one its base name.
local function run_proc(client, path)
  if path:sub(1, 1) == "/" then path = path:match("[^/]+$") end
  local p = assert(acoro.process.spawn({ "/proc/self/exe", path, stdin = "pipe", stdout = "pipe" }))
  local reader = acoro.spawn(function()
    while true do
      local line = p.stdout:readline(nil, 30)
      if not line then return end
      client:send({ output = (line:gsub("\n$", "")) })
    end
  end)
  while true do
    local m = acoro.receive()
    if m == "end" then break end
    assert(p.stdin:write(tostring(m) .. "\n"))
  end
  p.stdin:close()
  reader:join(30)
  return p:wait(30)
end

local proc = here .. "/discoro_client5_proc.lua"
local comp = discoro.Computation({ code = { run_proc }, peers = { node_location }, files = { proc } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end

local me = acoro.self()
local job = assert(comp:submit({ async = true, monitor = me }, run_proc, me, proc))
for i = 1, n do job:send("line " .. i) end
job:send("end")
while true do
  local m = acoro.receive(60)
  if not m then error("nothing from the job in 60 s", 0) end
  if acoro.is_exit(m) then
    print(("program exited: %s %s"):format(m.reason, tostring(m.value or m.error)))
    break
  end
  print("output: " .. m.output)
end
comp:close()

-- discoro_client4.lua: asyncoro's discoro_client4 on acoro.discoro: files both
-- ways. The client writes 3 data files and ships them with the computation
-- (files=); each job counts one file's lines, words and bytes on a compute
-- server, writes the counts to a result file and sends it back to the client
-- with acoro.send_file, which lands it in the client's dest path.
--   acoro-node --secret-file KEY
--   acoro --secret-file KEY --dest-path DIR examples/discoro_client4.lua [NODE_HOST:PORT] DIR
local acoro = require "acoro"
local discoro = require "acoro.discoro"

local node_location, results_dir = arg[1], arg[2]
if not results_dir then node_location, results_dir = nil, arg[1] end
assert(results_dir, "usage: discoro_client4.lua [NODE_HOST:PORT] DEST_PATH")

-- Runs on a server, in the computation's directory, where the files are.
local function wc(name, client)
  local f = assert(io.open(name, "rb"))
  local data = f:read("*a")
  f:close()
  local _, lines = data:gsub("\n", "")
  local words = 0
  for _ in data:gmatch("%S+") do words = words + 1 end
  local out = name .. ".wc"
  f = assert(io.open(out, "wb"))
  f:write(("%s: %d lines, %d words, %d bytes\n"):format(name, lines, words, #data))
  f:close()
  local ok, err = acoro.send_file(client, out, { overwrite = true })
  if not ok then error("cannot send " .. out .. ": " .. tostring(err)) end
  return out
end

-- the data: file i has i * 10 lines of i words
local dir = os.tmpname()
os.remove(dir)
assert(acoro.fs.mkdir(dir))
local files, jobs = {}, {}
for i = 1, 3 do
  local path = ("%s/data%d.txt"):format(dir, i)
  local f = assert(io.open(path, "wb"))
  for _ = 1, i * 10 do f:write(("word "):rep(i), "\n") end
  f:close()
  files[i] = path
  jobs[i] = { ("data%d.txt"):format(i), acoro.node().location }
end

local comp = discoro.Computation({ code = { wc }, files = files, peers = { node_location } })
local ok, err = comp:schedule()
if not ok then error("schedule failed: " .. tostring(err), 0) end
local results, errors = comp:run_results(wc, jobs)
comp:close()
for i = 1, 3 do
  if results[i] then
    local f = assert(io.open(results_dir .. "/" .. results[i], "rb"))
    io.write(f:read("*a"))
    f:close()
    os.remove(results_dir .. "/" .. results[i])
  else
    print(("job %d failed: %s"):format(i, errors[i]))
  end
  os.remove(files[i])
end
os.remove(dir)

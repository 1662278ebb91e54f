-- acoro.discoro.server: a compute server, one process per CPU that an
-- acoro-node daemon starts for one computation (acoro.discoro.daemon). It
-- loads the computation's source in an environment of its own, runs each job
-- it is sent as a coroutine and sends the results to the client's scheduler.
-- It ends with its daemon: its stdin is a pipe from it, closed when it goes.
local acoro = require "acoro"
local code = require "acoro.discoro.code"

local M = {}

local unpack, select, tostring, type, pcall, rawget = unpack, select, tostring, type, pcall, rawget

local function pack(...) return { n = select("#", ...), ... } end

-- One job: fn looked up among the computation's own globals only (a name
-- never reaches the standard library), its results or its error sent to the
-- scheduler; an async job's handle goes first, so its caller holds it while
-- it runs. Each answer names this server (`me`): the scheduler ignores one from
-- a server the job was taken from (re-queued elsewhere). The coroutine returns
-- fn's values, as a monitor of it expects. running[id] is its handle while it
-- runs (a terminate from the client).
local function job(running, env, sched, me, id, fname, args, async)
  if async then sched:send({ "started", id, acoro.self(), me }) end
  local f = type(fname) == "string" and rawget(env, fname)
  if type(f) ~= "function" then
    running[id] = nil
    sched:send({ "done", id, false, ("no function %q in the computation"):format(tostring(fname)), me })
    return
  end
  local r = pack(pcall(f, unpack(args, 1, args.n)))
  running[id] = nil
  if r[1] then
    local vals = { n = r.n - 1, unpack(r, 2, r.n) }
    local ok, err = pcall(sched.send, sched, { "done", id, true, vals, me })
    if not ok then sched:send({ "done", id, false, "result cannot be sent: " .. tostring(err), me }) end
    return unpack(vals, 1, vals.n)
  end
  if r[2] == "not enough memory" then
    -- past --max-memory (RLIMIT_AS): what failed to allocate may have left
    -- this process short anywhere; its node starts a fresh one, and the
    -- other jobs here are re-queued as for any server lost
    collectgarbage()
    sched:send({ "done", id, false, "not enough memory (the server's memory limit)", me })
    require("acoro.core").net.linger(5)
    os.exit(3)
  end
  sched:send({ "done", id, false, tostring(r[2]), me })
  -- an async job's monitors see its error; a plain job's is in its result
  if async then error(r[2], 0) end
end

-- A setup function {name, args} of the computation, as a coroutine (it may
-- wait): an error, or a false or nil first value (the second says why), fails.
local function run_setup(env, setup)
  local f = type(setup) == "table" and type(setup[1]) == "string" and rawget(env, setup[1])
  if type(f) ~= "function" then
    return false, ("no function %q in the computation"):format(tostring(type(setup) == "table" and setup[1]))
  end
  local args = type(setup[2]) == "table" and setup[2] or { n = 0 }
  local r = { pcall(f, unpack(args, 1, args.n or #args)) }
  if not r[1] then return false, r[2] end
  if not r[2] then return false, r[3] or "it returned " .. tostring(r[2]) end
  return true
end

-- main(node_location, computation id, slot[, dial]): inside the run of the
-- acoro CLI, whose node (--listen, the daemon's secret) is already up. dial:
-- where the node listens, when its location is another (--ext-addr).
function M.main(node_loc, comp_id, slot, dial)
  local stdin_watch = acoro.spawn(function()
    repeat until not acoro.stdin:recv()
    os.exit(0)
  end)
  stdin_watch:set_daemon()
  slot = tonumber(slot)
  local ok, err = acoro.peer(dial or node_loc, 10)
  if not ok then error("acoro-node server: cannot reach its node " .. node_loc .. ": " .. tostring(err)) end
  local daemon = acoro.locate("discoro.node", { location = node_loc, timeout = 10 })
  if not daemon then error("acoro-node server: no acoro-node at " .. node_loc) end
  local me = acoro.self()
  daemon:send({ "server_up", comp_id, slot, me })
  local m = acoro.receive(30)
  if type(m) ~= "table" or (m[1] ~= "code" and m[1] ~= "node_setup") then
    error("acoro-node server: no code from the node")
  end
  local src, name, sched, setup = m[2], m[3], m[4], m[5]
  local env, why = code.load_env(src, name)
  if m[1] == "node_setup" then
    -- slot 0: node_setup once for the node, then the node kills this process
    local ok2, why2 = false, why
    if env then ok2, why2 = run_setup(env, m[4]) end
    daemon:send({ "node_setup_done", comp_id, ok2, why2 and tostring(why2) })
    acoro.receive()
    return
  end
  if not env then
    daemon:send({ "server_failed", comp_id, slot, why })
    return
  end
  ok, err = acoro.peer(sched.location, 10)
  if not ok then error("acoro-node server: cannot reach the client " .. sched.location .. ": " .. tostring(err)) end
  if m[6] == true then
    -- disable_servers: the client enables it, with server_setup's arguments
    sched:send({ "server_waiting", me, daemon, slot })
    local e = acoro.receive_match(function(x) return type(x) == "table" and x[1] == "enable" end)
    if type(setup) == "table" and type(e[2]) == "table" then setup = { setup[1], e[2] } end
  end
  if type(setup) == "table" then
    local setup_ok, setup_why = run_setup(env, setup)
    if not setup_ok then
      daemon:send({ "setup_failed", comp_id, slot, tostring(setup_why) })
      acoro.receive() -- the node kills it as it drops it
      return
    end
  end
  sched:send({ "server", me, daemon, slot })
  local spawn, running = acoro.spawn, {}
  while true do
    m = acoro.receive()
    if type(m) == "table" and m[1] == "run" and type(m[4]) == "table" then
      local w = m[6] ~= nil and acoro.is_remote(m[6]) and m[6] or nil
      -- the watcher's node may be one this server has not met (the client
      -- of a shared scheduler): linked first, or its Exit could not go there
      if w then acoro.peer(w.location, 10) end
      local co = spawn(job, running, env, sched, me, m[2], m[3], m[4], m[5])
      running[m[2]] = co
      -- a watcher asked for: monitoring before the job runs, it gets the Exit
      -- even of a job that ends at once
      if w then co:monitor(w) end
    elseif type(m) == "table" and m[1] == "terminate" then
      -- the client ended the job (its web monitor): its monitors get
      -- reason "terminated", and no result is sent
      local co = running[m[2]]
      running[m[2]] = nil
      if co then co:terminate() end
    end
  end
end

return M

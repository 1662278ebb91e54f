-- acoro.discoro.scheduler: `acoro-scheduler`, a scheduler shared by several
-- clients. It is an acoro node (secret required) whose coroutine
-- "discoro.scheduler" takes computations (comp:schedule{scheduler = ...}).
-- Each runs here as the embedded scheduler's Computation (acoro.discoro):
-- it finds the nodes, sends them the computation, places its jobs, watches
-- nodes and servers and re-queues; a coroutine per computation relays jobs
-- from its client and results, handles and status messages back. The
-- computations share the nodes (acoro.discoro.share); one whose client is
-- gone is closed.
local acoro = require "acoro"
local share_mod = require "acoro.discoro.share"
local ffi = require "ffi"

local M = {}

local log = acoro.log
local type, tostring, tonumber, pairs, ipairs, pcall = type, tostring, tonumber, pairs, ipairs, pcall

pcall(ffi.cdef, "int getpid(void);")

local usage = [==[
usage: acoro-scheduler [options]
A scheduler shared by the clients that give its location to
comp:schedule{scheduler = "HOST:PORT"}: it finds acoro-nodes, runs several
computations at once and shares the nodes between them.
  --listen HOST:PORT    where the scheduler listens (default: the first
                        interface that is up, any free port)
  --name NAME           its name
  --secret-file FILE    the shared secret of the nodes and clients
                        (ACORO_SECRET in the environment works too); the
                        scheduler refuses to start without one ...
  --insecure            ... unless this is given
  --peer HOST:PORT      an acoro-node (or client) to stay connected to
                        (repeatable)
  --no-discover         no UDP discovery
  --udp-port N          the discovery port (default 51351, acoro-node's)
  --per-cpu N           jobs in flight per CPU of a node, all computations
                        together (default 16)
  --daemon              read no commands from stdin (else: status, quit)
  --http [HOST:]PORT    serve the web monitor of every computation here there
                        (HOST default 127.0.0.1; auth: ACORO_MONITOR_TOKEN, else
                        a token is made and logged when HOST is not loopback)
  --tls-cert FILE, --tls-key FILE, --tls-ca FILE   TLS on every link, as acoro's
  -h                    this help]==]

local function fail(msg)
  log.default_writer("error", "acoro-scheduler: " .. msg)
  return 1
end

local function parse(argv)
  local o = { peers = {}, discover = true, udp_port = 51351, per_cpu = 16 }
  local i = 1
  local function value(a)
    local v = argv[i + 1]
    if not v then error(a .. " needs an argument", 0) end
    i = i + 2
    return v
  end
  local function number(a)
    local v = value(a)
    local n = v:match("^%d+$") and tonumber(v)
    if not n then error(a .. " needs a whole number, got " .. v, 0) end
    return n
  end
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      o.help = true
      i = i + 1
    elseif a == "--listen" then
      local v = value(a)
      local host, port = v:match("^(.*):(%d+)$")
      if not host or host == "" then error("--listen needs HOST:PORT, got " .. v, 0) end
      o.host, o.port = host, tonumber(port)
    elseif a == "--name" then o.name = value(a)
    elseif a == "--secret-file" then o.secret_file = value(a)
    elseif a == "--insecure" then
      o.insecure = true
      i = i + 1
    elseif a == "--peer" then o.peers[#o.peers + 1] = value(a)
    elseif a == "--no-discover" then
      o.discover = false
      i = i + 1
    elseif a == "--udp-port" then o.udp_port = number(a)
    elseif a == "--per-cpu" then
      o.per_cpu = number(a)
      if o.per_cpu < 1 then error("--per-cpu needs at least 1", 0) end
    elseif a == "--daemon" then
      o.daemon = true
      i = i + 1
    elseif a == "--http" then
      local v = value(a)
      local host, port = v:match("^(.*):(%d+)$")
      o.http_host, o.http_port = host, tonumber(port or v:match("^%d+$"))
      if not o.http_port then error("--http needs [HOST:]PORT, got " .. v, 0) end
    elseif a == "--tls-cert" or a == "--tls-key" or a == "--tls-ca" then
      o.tls = o.tls or {}
      o.tls[a:sub(7)] = value(a)
    else
      error("unknown option " .. a, 0)
    end
  end
  return o
end

local Scheduler = {}
Scheduler.__index = Scheduler

local function list(t)
  local r = {}
  for _, v in ipairs(type(t) == "table" and t or {}) do
    if type(v) == "string" then r[#r + 1] = v end
  end
  return r
end

-- The options of the scheduler's side of a computation, from what its client
-- sent; what cannot make one raises (its client is told).
function Scheduler:options(d, forward)
  local discoro = require "acoro.discoro"
  if type(d) ~= "table" or type(d.src) ~= "string" or type(d.name) ~= "string" then error("bad computation", 0) end
  local peers = {}
  for _, p in ipairs(self.peers) do peers[#peers + 1] = p end
  for _, p in ipairs(list(d.peers)) do peers[#peers + 1] = p end
  local allocations
  if type(d.allocations) == "table" then
    allocations = {}
    for i, a in ipairs(d.allocations) do allocations[i] = discoro.NodeAllocate(type(a) == "table" and a or {}) end
  end
  local function str(v) return type(v) == "string" and v or nil end
  local function tab(v) return type(v) == "table" and v or nil end
  return { code = d.src, name = d.name, retries = tonumber(d.retries), window = tonumber(d.window),
    pulse_interval = tonumber(d.pulse_interval), zombie_period = tonumber(d.zombie_period),
    server_setup = str(d.server_setup), setup_args = tab(d.setup_args), node_setup = str(d.node_setup),
    node_args = tab(d.node_args), allocations = allocations, disable_nodes = d.disable_nodes == true,
    disable_servers = d.disable_servers == true, peers = peers, status = forward, progress = false,
    files = #list(d.files) > 0 and list(d.files) or nil }
end

-- One computation, in the coroutine that relays between it and its client.
function Scheduler:computation(client, d)
  local discoro = require "acoro.discoro"
  local me = acoro.self()
  self.seq = self.seq + 1
  local id = self.seq
  local watching = type(d) == "table" and d.watch == true
  -- the status messages go to the client: a job's handle and a server's
  -- location always (the client links with its servers), the rest while
  -- the client has a subscriber; the job Exits are the client's own
  local forward = { send = function(_, m)
    if getmetatable(m) == acoro.Exit then return true end
    local kind = m.status
    if kind == "CoroCreated" then return client:send({ "started", m.job, m.coro }) end
    if kind == "ServerInitialized" then client:send({ "server_up", m.location }) end
    if kind == "ComputationClosed" or not watching then return true end
    return client:send({ "status", m })
  end }
  local ok, o = pcall(self.options, self, d, forward)
  local comp
  if ok then ok, comp = pcall(discoro.Computation, o) end
  if not ok then
    log.warn(("acoro-scheduler: computation from %s refused: %s"):format(client.location, tostring(comp or o)))
    return client:send({ "refused", tostring(comp or o) })
  end
  local Computation = require("acoro.discoro.internal").Computation
  -- each job's end goes to the client (then the embedded path: its Exit)
  function comp._finish(c, job, jok, v)
    if job.done then return end
    Computation._finish(c, job, jok, v)
    pcall(client.send, client, { "done", job.id, jok, v })
  end
  comp.client_handle = client
  -- files= are on the client's host: the client sends them to each node
  function comp._send_files(c, node, info)
    local base = type(info.dir) == "string" and info.dir or nil
    local fok, why = false, "the node gave no directory"
    if base then
      client:send({ "send_files", acoro.self(), node.location, base })
      local a = acoro.receive_match(function(x) return type(x) == "table" and x[1] == "files_sent" end, 600)
      fok, why = a and a[2] == true, a and a[3] or "the client did not send them"
    end
    if c.state ~= "scheduled" or not c.node_set[node] then return end
    if not fok then
      -- as the embedded scheduler does with a file it cannot send
      why = tostring(why)
      forward:send({ status = "NodeIgnore", time = acoro.now(), location = node.location, error = why })
      c.refusals[#c.refusals + 1] = node.location .. ": " .. why
      node:send({ "close", c.collector })
      return c:_node_lost(node, why)
    end
    local files = c.files
    c.files = {} -- sent: the embedded path lets the node start its servers
    Computation._send_files(c, node, info)
    c.files = files
  end
  local entry = { id = id, comp = comp, client = client, name = d.name }
  self.comps[me] = entry
  client:monitor(me)
  self.share:add(comp)
  log.info(("acoro-scheduler: computation %d %q from %s"):format(id, d.name, client.location))
  local sok, why = comp:schedule({ timeout = tonumber(d.timeout) })
  if not sok then
    self.share:remove(comp)
    self.comps[me] = nil
    log.info(("acoro-scheduler: computation %d: %s"):format(id, tostring(why)))
    return client:send({ "refused", tostring(why) })
  end
  client:send({ "scheduled", me })
  local reason
  while not reason do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      if m.coro == client then reason = "its client is gone: " .. tostring(m.reason) end
    elseif type(m) == "table" then
      local op = m[1]
      if op == "job" then
        self:job(comp, m)
      elseif op == "close" then
        reason = "closed by its client"
      elseif op == "watch" then
        watching = m[2] == true
      elseif op == "nodes" or op == "servers" then
        if acoro.is_remote(m[2]) then m[2]:send({ "answer", op, comp[op](comp) }) end
      elseif (op == "enable_node" or op == "enable_server") and acoro.is_remote(m[2]) and type(m[3]) == "string" then
        local args = type(m[4]) == "table" and m[4] or { n = 0 }
        local eok, n = pcall(comp[op], comp, m[3], unpack(args, 1, tonumber(args.n) or #args))
        m[2]:send({ "answer", op, eok and n or 0 })
      elseif op == "quit" then
        reason = "the scheduler quits"
      end
    end
  end
  comp:close()
  self.share:remove(comp)
  self.comps[me] = nil
  self.served = self.served + 1
  log.info(("acoro-scheduler: computation %d closed (%s)"):format(id, reason))
end

-- {"job", id, fn, args, async, watcher, limit, where} from the client: the
-- job keeps the client's id (one client per computation).
function Scheduler.job(_, comp, m)
  local id, fname, args = m[2], m[3], m[4]
  if type(id) ~= "number" or comp.jobs[id] then return end
  local client = comp.client_handle
  if type(fname) ~= "string" or type(args) ~= "table" then
    return client and client:send({ "done", id, false, "bad job" })
  end
  local where = type(m[8]) == "string" and m[8] ~= "" and m[8] or nil
  comp.next_id = id - 1
  local ok, job = pcall(comp._submit, comp, fname, args, m[5] == true, nil, 1, where)
  if not ok then return comp:_finish({ id = id, fname = fname }, false, tostring(job)) end
  if acoro.is_remote(m[6]) then job.watcher = m[6] end
  local limit = tonumber(m[7])
  if limit and limit > 0 then
    job.deadline, job.limit = acoro.now() + limit, limit
    -- the embedded wait: at its deadline the job fails, its server is killed
    local w = acoro.spawn(comp._await, comp, job)
    w:set_daemon()
  end
  if not job.done then comp:_dispatch() end
end

-- status, quit: typed on stdin (not with --daemon).
function Scheduler:command(cmd)
  local out = io.stdout
  if cmd == "status" then
    local n = 0
    for _, e in pairs(self.comps) do
      local queued = e.comp.qtail - e.comp.qhead + 1 + #e.comp.at_jobs
      local inflight = 0
      for _, s in ipairs(e.comp.server_list) do inflight = inflight + s.n end
      out:write(("computation %d %q from %s: %d servers, %d jobs in flight, %d queued\n"):format(e.id, e.name,
        e.client.location, #e.comp.server_list, inflight, queued))
      n = n + 1
    end
    out:write(("%s: %d computations, %d served\n"):format(self.location, n, self.served))
  elseif cmd == "quit" then
    self.quit = true
  elseif cmd ~= "" then
    out:write("commands: status, quit\n")
  end
  out:flush()
end

function Scheduler:run(o)
  local node = acoro.node({ name = o.name, host = o.host, port = o.port or 0, secret = o.secret,
    discover = o.discover, udp_port = o.udp_port, peers = o.peers, tls = o.tls })
  self.location = node.location
  self.me = acoro.self()
  assert(self.me:register("discoro.scheduler"))
  acoro.signal("term", self.me)
  acoro.signal("int", self.me)
  log.info(("acoro-scheduler: %s ready (pid %d), %d jobs in flight per CPU of a node"):format(node.location,
    ffi.C.getpid(), o.per_cpu))
  self.name = o.name
  if o.http_port then
    local token = os.getenv("ACORO_MONITOR_TOKEN")
    local mon, err = require("acoro.discoro.sched_monitor").start(self, o.http_port, { host = o.http_host,
      auth = token and token ~= "" and { token = token } or nil })
    if not mon then error("--http: " .. tostring(err), 0) end
    log.info(("acoro-scheduler: web monitor at %s"):format(mon.url))
    io.stdout:write("acoro-scheduler monitor ", mon.url, "\n")
  end
  io.stdout:write("acoro-scheduler listening ", node.location, "\n")
  io.stdout:flush()
  if not o.daemon then
    local reader = acoro.spawn(function()
      while true do
        local line = acoro.stdin:readline()
        if not line or line == "" then return end
        self.me:send({ "command", (line:gsub("%s+$", "")) })
      end
    end)
    reader:set_daemon()
  end
  while not self.quit do
    local m = acoro.receive()
    if acoro.is_signal(m) then
      log.info(("acoro-scheduler: SIG%s: closing every computation, then quitting"):format(m.signal:upper()))
      self.quit, self.signum = true, m.signum
    elseif type(m) == "table" and m[1] == "computation" and acoro.is_remote(m[2]) then
      local co = acoro.spawn(self.computation, self, m[2], m[3])
      co:set_daemon()
    elseif type(m) == "table" and m[1] == "command" then
      self:command(m[2])
    end
  end
  -- each computation is closed (its nodes told) before the process ends
  for co in pairs(self.comps) do co:send({ "quit" }) end
  local deadline = acoro.now() + 5
  while next(self.comps) and acoro.now() < deadline do acoro.suspend(0.05) end
end

function M.main(_, ...)
  local ok, o = pcall(parse, { ... })
  if not ok then return fail(o .. "\n" .. usage) end
  if o.help then
    io.stdout:write(usage, "\n")
    return 0
  end
  if o.secret_file then
    local f, err = io.open(o.secret_file, "rb")
    if not f then return fail("--secret-file: " .. err) end
    o.secret = f:read("*a"):gsub("\r?\n$", "")
    f:close()
  elseif (os.getenv("ACORO_SECRET") or "") ~= "" then
    o.secret = os.getenv("ACORO_SECRET")
  end
  if not o.secret and not o.insecure then
    return fail("refusing to start without a secret: the nodes it reaches run the code its clients send"
      .. " (--secret-file FILE or ACORO_SECRET; --insecure to accept anyone who reaches it)")
  end
  local self = setmetatable({ comps = {}, seq = 0, served = 0, peers = o.peers,
    share = share_mod.new({ per_cpu = o.per_cpu }) }, Scheduler)
  local run_ok, err = pcall(acoro.run, function() self:run(o) end)
  if run_ok then return self.signum and 128 + self.signum or 0 end
  local signalled = tostring(err):match("^acoro: interrupted") or tostring(err):match("^acoro: terminated")
  if signalled then return tostring(err):match("SIGTERM") and 143 or 130 end
  return fail(tostring(err):gsub("^acoro: ", ""))
end

return M

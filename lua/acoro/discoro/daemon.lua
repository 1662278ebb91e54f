-- acoro.discoro.daemon: `acoro-node`, the daemon of one host. It is an acoro
-- node (secret required) whose coroutine "discoro.node" takes computations
-- from clients: for each it makes a directory under its dest path and starts
-- one compute-server process per CPU (acoro.discoro.server), restarts a
-- server that dies, and removes everything when the client closes the
-- computation or is gone.
local acoro = require "acoro"
local code = require "acoro.discoro.code"
local avail = require "acoro.discoro.avail"
local service = require "acoro.discoro.service"
local users = require "acoro.discoro.user"
local ffi = require "ffi"

local M = {}

local log = acoro.log
local type, tostring, tonumber, pairs, ipairs = type, tostring, tonumber, pairs, ipairs

local usage = [==[
usage: acoro-node [options]
  --cpus N              compute servers per computation (0: one per CPU, the
                        default; -K: all CPUs but K)
  --listen HOST:PORT    where the node listens (default: the first interface
                        that is up, any free port)
  --name NAME           the node's name
  --secret-file FILE    the shared secret (ACORO_SECRET in the environment works
                        too); the node runs the code it is sent, so it refuses
                        to start without one ...
  --insecure            ... unless this is given
  --peer HOST:PORT      a client or node to stay connected to (repeatable)
  --no-discover         no UDP discovery
  --udp-port N          the discovery port (default 51351)
  --dest-path DIR       where computations' directories and files go (default
                        acoro-node-UID in the temp dir); one node per DIR
  --max-file-size BYTES the largest file a client may send (default: no limit)
  --serve N             exit after N computations
  --clean               remove what is left in DIR from an earlier run first
  --daemon              read no commands from stdin (else: status, close, quit)
  --tls-cert FILE, --tls-key FILE, --tls-ca FILE   TLS on every link, as acoro's
  --ext-addr HOST:PORT  where clients reach this node when that is not where
                        it listens (NAT, an ssh tunnel forwarding there): the
                        location it announces
  --max-memory BYTES    each compute server's address space (RLIMIT_AS): a job
                        that allocates past it fails ("not enough memory") and
                        its server is started again
  --service-start HH:MM take no computations before this time of day ...
  --service-stop HH:MM  ... nor new ones after this one (running ones go on) ...
  --service-end HH:MM   ... and close the running ones at this one (each day)
  --user NAME           (root only) servers run as this user, in directories
                        given to it
  --http [HOST:]PORT    serve the web monitor of this node there (HOST default
                        127.0.0.1; auth: ACORO_MONITOR_TOKEN, else a token is
                        made and logged when HOST is not a loopback address)
  -h                    this help]==]

local function fail(msg)
  log.default_writer("error", "acoro-node: " .. msg)
  return 1
end

pcall(ffi.cdef, "int getpid(void);")
pcall(ffi.cdef, "int kill(int pid, int sig);")
pcall(ffi.cdef, "long sysconf(int name);")
pcall(ffi.cdef, "char *getcwd(char *buf, size_t size);")

-- Servers run in their computation's directory: paths they get are absolute.
local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local buf = ffi.new("char[4096]")
  if ffi.C.getcwd(buf, 4096) == nil then return path end
  return ffi.string(buf) .. "/" .. path
end
local SC_NPROCESSORS_ONLN = 84 -- glibc's value on Linux

local function cpu_count()
  local n = tonumber(ffi.C.sysconf(SC_NPROCESSORS_ONLN))
  return (n and n > 0) and n or 1
end

-- parse(argv) -> options | nil, message
local function parse(argv)
  local o = { peers = {}, cpus = 0, discover = true, udp_port = 51351 }
  local i = 1
  local function value(a)
    local v = argv[i + 1]
    if not v then error(a .. " needs an argument", 0) end
    i = i + 2
    return v
  end
  local function number(a)
    local v = value(a)
    local n = v:match("^%-?%d+$") and tonumber(v)
    if not n then error(a .. " needs a whole number, got " .. v, 0) end
    return n
  end
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      o.help = true
      i = i + 1
    elseif a == "--cpus" then o.cpus = number(a)
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
    elseif a == "--dest-path" then o.dest_path = value(a)
    elseif a == "--serve" then o.serve = number(a)
    elseif a == "--max-file-size" then o.max_file_size = number(a)
    elseif a == "--daemon" then
      o.daemon = true
      i = i + 1
    elseif a == "--clean" then
      o.clean = true
      i = i + 1
    elseif a == "--ext-addr" then
      o.ext_addr = value(a)
      if not o.ext_addr:match("^.+:%d+$") then error("--ext-addr needs HOST:PORT, got " .. o.ext_addr, 0) end
    elseif a == "--max-memory" then
      o.max_memory = number(a)
      if o.max_memory < 1 then error("--max-memory needs a number of bytes", 0) end
    elseif a == "--service-start" or a == "--service-stop" or a == "--service-end" then
      o.service = o.service or {}
      o.service[a:sub(11)] = value(a)
    elseif a == "--user" then o.user = value(a)
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

-- Recursive removal under a directory this daemon owns, never following a
-- symbolic link (a link is removed, not what it points to).
local function rmtree(path)
  local st = acoro.fs.lstat(path)
  if not st then return end
  if st.type == "directory" then
    for _, name in ipairs(acoro.fs.readdir(path) or {}) do rmtree(path .. "/" .. name) end
    acoro.fs.rmdir(path)
  else
    acoro.fs.unlink(path)
  end
end

local function mkdirs(path)
  local at = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    at = at .. "/" .. part
    if not acoro.fs.stat(at) then
      local ok, err = acoro.fs.mkdir(at, tonumber("700", 8))
      if not ok and not acoro.fs.stat(at) then return nil, err end
    end
  end
  return true
end

local function alive(pid)
  return pid and pid > 0 and ffi.C.kill(pid, 0) == 0
end

-- Takes the pid file of dest: nil and why when a live acoro-node holds it.
local function take_pidfile(dest)
  local path = dest .. "/acoro-node.pid"
  local f = io.open(path, "rb")
  if f then
    local pid = tonumber(f:read("*a"):match("%d+"))
    f:close()
    if alive(pid) and pid ~= ffi.C.getpid() then
      return nil, ("another acoro-node (pid %d) runs with dest path %s"):format(pid, dest)
    end
    os.remove(path)
  end
  local out, err = acoro.fs.open(path, "wx")
  if not out then return nil, "pid file " .. path .. ": " .. tostring(err) end
  out:write(tostring(ffi.C.getpid()) .. "\n")
  out:close()
  return path
end

-- The node: computations by their scheduler's handle.
local Node = {}
Node.__index = Node

function Node.status(_, comp, what)
  log.info(("acoro-node: computation %s (%s): %s"):format(comp.id, tostring(comp.sched), what))
end

-- Starts (or restarts) the server of comp's slot and watches it; the
-- watcher restarts it while the computation is open (at most 10 times in all
-- for a computation, so code that kills its server at once stops somewhere).
function Node:start_server(comp, slot)
  local args = { self.acoro_bin, "--listen", self.host .. ":0", "--no-discover" }
  if self.max_memory then
    args[#args + 1] = "--max-memory"
    args[#args + 1] = tostring(self.max_memory)
  end
  if self.user then
    args[#args + 1] = "--user"
    args[#args + 1] = self.user.name
  end
  if self.secret_file then
    args[#args + 1] = "--secret-file"
    args[#args + 1] = self.secret_file
  end
  if self.tls then
    for _, k in ipairs({ "cert", "key", "ca" }) do
      if self.tls[k] then
        args[#args + 1] = "--tls-" .. k
        args[#args + 1] = self.tls[k]
      end
    end
  end
  -- the server dials where the node listens; it knows the node by its location
  for _, v in ipairs({ self.server_main, self.location, comp.id, slot, self.listen }) do args[#args + 1] = v end
  args.stdin, args.stdout, args.stderr, args.cwd = "pipe", "inherit", "inherit", comp.dir
  local p, err = acoro.process.spawn(args)
  if not p then
    self:status(comp, "cannot start a server: " .. tostring(err))
    return
  end
  comp.procs[slot] = p
  self.pids[p.pid] = true
  acoro.spawn(function()
    local status, sig = p:wait()
    self.pids[p.pid] = nil
    comp.procs[slot] = nil
    if comp.closed then
      comp.left = comp.left - 1
      if comp.left == 0 and comp.on_empty then comp.on_empty() end
      return
    end
    if comp.dropped[slot] then return end
    if slot == 0 then
      -- node_setup's process ended without its answer
      if not comp.node_ready then self:give_up(comp, ("node_setup failed: its process ended (status %s, signal %s)")
        :format(tostring(status), tostring(sig))) end
      return
    end
    comp.restarts = comp.restarts + 1
    self:status(comp, ("server %d ended (status %s, signal %s)%s"):format(slot, tostring(status),
      tostring(sig), comp.restarts <= 10 and ": restarting it" or ": too many restarts"))
    if comp.restarts <= 10 then
      self:start_server(comp, slot)
    else
      self:give_up(comp, "its servers ended more than 10 times")
    end
  end)
end

function Node:setup(m)
  local sched, src, name = m[2], m[3], m[4]
  if not acoro.is_remote(sched) then return end
  if self.comps[sched] then return end
  if type(src) ~= "string" or type(name) ~= "string" or #name > 200 or name:find("[%c]") then
    return sched:send({ "refused", self.me, "bad setup" })
  end
  local ok, why = code.check(src, name)
  if not ok then
    log.warn(("acoro-node: computation from %s refused: %s"):format(sched.location, why))
    return sched:send({ "refused", self.me, why })
  end
  if self.closing then return sched:send({ "refused", self.me, "the node is closing" }) end
  if self.service then
    local taking, out = self.service:taking()
    if not taking then return sched:send({ "refused", self.me, out }) end
  end
  self.seq = self.seq + 1
  local opts = type(m[5]) == "table" and m[5] or {}
  local setup = type(opts.server_setup) == "string" and { opts.server_setup, opts.setup_args } or nil
  local node_setup = type(opts.node_setup) == "string" and { opts.node_setup, opts.node_args } or nil
  -- the client's allocation may ask for fewer servers than this node's CPUs
  local want = tonumber(opts.cpus)
  local nservers = (want and want >= 1 and want % 1 == 0) and math.min(want, self.cpus) or self.cpus
  local comp = { id = "c" .. self.seq, sched = sched, src = src, name = name, procs = {}, restarts = 0,
    setup = setup, node_setup = node_setup, nservers = nservers, dropped = {}, ndropped = 0,
    disable_servers = opts.disable_servers == true }
  comp.dir = self.dest .. "/" .. comp.id
  ok, why = mkdirs(comp.dir)
  if ok and self.user then ok, why = users.give(comp.dir, self.user) end
  if not ok then return sched:send({ "refused", self.me, "cannot make its directory: " .. tostring(why) }) end
  self.comps[sched], self.by_id[comp.id] = comp, comp
  self.active = self.active + 1
  sched:monitor(self.me)
  self:status(comp, ("accepted %q, %d servers"):format(name, nservers))
  comp.avail = avail.reader(self.dest)
  sched:send({ "accepted", self.me, { name = self.name, location = self.location, cpus = nservers,
    dir = comp.id, avail = comp.avail() } })
  -- a pulse with what the host has free, until the computation ends: its
  -- scheduler learns the node lives (zombie_period) and what it can take
  local every = tonumber(opts.pulse_interval)
  every = every and math.min(math.max(every, 0.1), 3600) or 10
  local pulse = acoro.spawn(function()
    while true do
      acoro.suspend(every)
      if comp.closed then return end
      pcall(sched.send, sched, { "pulse", self.me, comp.avail() })
    end
  end)
  pulse:set_daemon()
  -- with files, the servers start once the client sent them ("start")
  comp.waiting_files = opts.files == true
  if not comp.waiting_files then self:start_servers(comp) end
end

-- With node_setup, a process of its own (slot 0) runs it first, in the
-- computation's directory with its files; the servers start once it answered.
function Node:start_servers(comp)
  comp.waiting_files = false
  -- files= arrived as the node's: the servers' user gets them
  if self.user then
    local ok, why = users.give(comp.dir, self.user)
    if not ok then return self:give_up(comp, why) end
  end
  if comp.node_setup and not comp.node_ready then return self:start_server(comp, 0) end
  for slot = 1, comp.nservers do self:start_server(comp, slot) end
end

-- Answers what a client's allocations look at before it sends a computation.
function Node:info(m)
  local to = m[2]
  if not acoro.is_remote(to) then return end
  local host = self.location:match("^(.*):%d+$")
  local info = { name = self.name, location = self.location, host = host, cpus = self.cpus }
  local a = avail.reader(self.dest)()
  for k, v in pairs(a) do info[k] = v end
  pcall(to.send, to, { "info", self.me, info })
end

-- Closes comp and tells its client, which stops waiting on this node.
function Node:give_up(comp, why)
  comp.sched:send({ "closed", self.me, why })
  acoro.spawn(self.close, self, comp, why)
end

-- Kills comp's servers, waits for them, removes its directory.
function Node:close(comp, why)
  if comp.closed then return end
  comp.closed = true
  self:status(comp, "closing (" .. why .. ")")
  local waiter, n = acoro.self(), 0
  for _ in pairs(comp.procs) do n = n + 1 end
  comp.left = n
  local done = n == 0
  comp.on_empty = function()
    done = true
    waiter:resume()
  end
  for _, p in pairs(comp.procs) do p:kill("KILL") end
  local deadline = acoro.now() + 10
  while not done and acoro.now() < deadline do acoro.suspend(deadline - acoro.now()) end
  rmtree(comp.dir)
  self.comps[comp.sched], self.by_id[comp.id] = nil, nil
  self.active = self.active - 1
  self.served = self.served + 1
  self:status(comp, "closed")
  self.me:send({ "closed" }) -- the loop checks --serve

end

-- status, close, quit: typed on stdin (not with --daemon).
function Node:command(cmd)
  local out = io.stdout
  if cmd == "status" then
    local n = 0
    for _, comp in pairs(self.comps) do
      local servers = 0
      for _ in pairs(comp.procs) do servers = servers + 1 end
      out:write(("computation %s %q from %s: %d servers%s\n"):format(comp.id, comp.name, comp.sched.location,
        servers, comp.closed and " (closing)" or ""))
      n = n + 1
    end
    out:write(("%s: %d computations, %d served\n"):format(self.location, n, self.served))
  elseif cmd == "close" then
    for _, comp in pairs(self.comps) do
      comp.sched:send({ "closed", self.me, "closed on the node" })
      acoro.spawn(self.close, self, comp, "closed on the node")
    end
  elseif cmd == "quit" then
    self.quit = true
  elseif cmd ~= "" then
    out:write("commands: status, close, quit\n")
  end
  out:flush()
end

function Node:on_message(m)
  if acoro.is_signal(m) then
    log.info(("acoro-node: SIG%s: closing every computation, then quitting"):format(m.signal:upper()))
    self.quit, self.signum = true, m.signum
    return
  end
  if acoro.is_exit(m) then
    local comp = self.comps[m.coro]
    if comp then acoro.spawn(self.close, self, comp, "its client is gone: " .. tostring(m.reason)) end
    return
  end
  if type(m) ~= "table" then return end
  local op = m[1]
  if op == "setup" then
    self:setup(m)
  elseif op == "info" then
    self:info(m)
  elseif op == "command" then
    self:command(m[2])
  elseif op == "start" then
    local comp = self.comps[m[2]]
    if comp and comp.waiting_files and not comp.closed then self:start_servers(comp) end
  elseif op == "close" then
    local comp = self.comps[m[2]]
    if comp then acoro.spawn(self.close, self, comp, "closed by its client") end
  elseif op == "server_up" then
    local comp = self.by_id[m[2]]
    if comp and not comp.closed and acoro.is_remote(m[4]) then
      if m[3] == 0 then
        m[4]:send({ "node_setup", comp.src, comp.name, comp.node_setup })
      else
        m[4]:send({ "code", comp.src, comp.name, comp.sched, comp.setup, comp.disable_servers })
        comp.servers = comp.servers or {} -- for the web monitor (--http)
        comp.servers[m[3]] = m[4].location
        comp.sched:send({ "server_started", self.me, m[3], m[4].location })
      end
    end
  elseif op == "node_setup_done" then
    local comp = self.by_id[m[2]]
    if comp and not comp.closed and not comp.node_ready then
      if comp.procs[0] then comp.procs[0]:kill("KILL") end
      if m[3] == true then
        comp.node_ready = true
        self:status(comp, "node_setup done")
        self:start_servers(comp)
      else
        comp.node_ready = "failed"
        self:give_up(comp, "node_setup failed: " .. tostring(m[4]))
      end
    end
  elseif op == "server_failed" then
    -- the code fails the same way on every server: the computation is given up
    local comp = self.by_id[m[2]]
    if comp and not comp.closed then self:give_up(comp, "its code failed on a server: " .. tostring(m[4])) end
  elseif op == "setup_failed" then
    -- server_setup failed on that server: it is dropped, not restarted; with
    -- none left the computation is given up
    local comp = self.by_id[m[2]]
    local slot = comp and tonumber(m[3])
    if slot and not comp.closed and not comp.dropped[slot] then
      comp.dropped[slot] = true
      comp.ndropped = comp.ndropped + 1
      local why = "server_setup failed: " .. tostring(m[4])
      self:status(comp, ("server %d dropped: %s"):format(slot, why))
      comp.sched:send({ "server_dropped", self.me, slot, why })
      if comp.procs[slot] then comp.procs[slot]:kill("KILL") end
      if comp.ndropped >= comp.nservers then self:give_up(comp, "every server's " .. why) end
    end
  elseif op == "kill" then
    -- a job past its timeout: its server goes (and comes back)
    local comp = self.comps[m[2]]
    local slot = comp and tonumber(m[3])
    local p = slot and comp.procs[slot]
    if p then p:kill("KILL") end
  end
end

-- run(o): inside acoro.run; returns when the node quits.
function Node:run(o)
  local node = acoro.node({ name = o.name, host = o.host, port = o.port or 0, secret = o.secret,
    discover = o.discover, udp_port = o.udp_port, peers = o.peers, dest_path = self.dest, tls = o.tls,
    max_file_size = o.max_file_size, ext_addr = o.ext_addr })
  self.location, self.name, self.listen = node.location, node.name, node.listen
  self.host = node.listen:match("^(.*):%d+$")
  self.me = acoro.self()
  assert(self.me:register("discoro.node"))
  -- SIGTERM and SIGINT come here as messages: computations are closed (servers
  -- killed and waited for, directories removed) before the node exits
  acoro.signal("term", self.me)
  acoro.signal("int", self.me)
  log.info(("acoro-node: %s ready (pid %d), %d servers per computation, dest path %s"):format(
    node.location, ffi.C.getpid(), self.cpus, self.dest))
  if self.service then
    self.service:watch(function(why)
      for _, comp in pairs(self.comps) do
        if not comp.closed then self:give_up(comp, why) end
      end
    end)
  end
  if o.http_port then
    local token = os.getenv("ACORO_MONITOR_TOKEN")
    local mon, err = require("acoro.discoro.node_monitor").start(self, o.http_port, { host = o.http_host,
      auth = token and token ~= "" and { token = token } or nil })
    if not mon then error("--http: " .. tostring(err), 0) end
    log.info(("acoro-node: web monitor at %s"):format(mon.url))
    io.stdout:write("acoro-node monitor ", mon.url, "\n")
  end
  io.stdout:write("acoro-node listening ", node.location,
    node.listen ~= node.location and " (at " .. node.listen .. ")" or "", "\n")
  io.stdout:flush()
  if not o.daemon then
    -- commands on stdin (a terminal, or whatever it is; none at its end)
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
    self:on_message(acoro.receive())
    if o.serve and self.served >= o.serve and self.active == 0 then self.quit = true end
  end
  self.closing = true
  for _, comp in pairs(self.comps) do self:close(comp, "the node quits") end
end

function M.main(argv0, ...)
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
    return fail("refusing to start without a secret: this node runs the code it is sent"
      .. " (--secret-file FILE or ACORO_SECRET; --insecure to accept anyone who reaches it)")
  end
  local self = setmetatable({ comps = {}, by_id = {}, pids = {}, seq = 0, active = 0, served = 0,
    secret_file = o.secret_file and absolute(o.secret_file), tls = o.tls, max_memory = o.max_memory }, Node)
  if o.service then
    local sv, why = service.new(o.service)
    if not sv then return fail(why) end
    self.service = sv
  end
  if o.user then
    local u, why = users.lookup(o.user)
    if not u then return fail(why) end
    self.user = u
  end
  local n = cpu_count()
  self.cpus = o.cpus > 0 and o.cpus or math.max(1, n + o.cpus)
  local dir = argv0 and argv0:match("^(.*)/[^/]*$")
  self.acoro_bin = dir and absolute(dir .. "/acoro") or "acoro"
  self.server_main = package.searchpath("acoro.discoro.server_main", package.path)
  if not self.server_main then return fail("cannot find acoro/discoro/server_main.lua") end
  self.dest = o.dest_path and absolute(o.dest_path)
    or (os.getenv("TMPDIR") or "/tmp") .. "/acoro-node-" .. acoro.fs.getuid()
  local status = 0
  local pidfile
  local run_ok, err = pcall(acoro.run, function()
    local made, why = mkdirs(self.dest)
    if not made then error("dest path " .. self.dest .. ": " .. tostring(why), 0) end
    pidfile, why = take_pidfile(self.dest)
    if not pidfile then error(why, 0) end
    -- Computations of an earlier run that ended without cleaning up (killed):
    -- one node per dest path, so nothing here is anyone else's.
    for _, name in ipairs(acoro.fs.readdir(self.dest) or {}) do
      if (o.clean and name ~= "acoro-node.pid") or name:match("^c%d+$") then rmtree(self.dest .. "/" .. name) end
    end
    self:run(o)
  end)
  if run_ok then
    if self.signum then status = 128 + self.signum end
  else
    local signalled = tostring(err):match("^acoro: interrupted") or tostring(err):match("^acoro: terminated")
    if not signalled then status = fail(tostring(err):gsub("^acoro: ", "")) end
    -- stopped before the signal reached the node's loop (or by a second one):
    -- no coroutine runs any more; servers end on their stdin's end, this kills
    -- them first, and the directories go
    for pid in pairs(self.pids) do ffi.C.kill(pid, 9) end
    pcall(acoro.run, function()
      for _, comp in pairs(self.comps) do rmtree(comp.dir) end
    end)
    if signalled then status = tostring(err):match("SIGTERM") and 143 or 130 end
  end
  if pidfile then os.remove(pidfile) end
  return status
end

return M

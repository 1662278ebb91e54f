-- acoro.discoro: distributed computing. A Computation ships Lua source to the
-- acoro-node daemons it finds; each starts compute servers for it, and the
-- scheduler embedded here places jobs on them, collects results, and
-- re-queues the jobs of a server or node that is lost.
local acoro = require "acoro"
local code = require "acoro.discoro.code"
local progress = require "acoro.discoro.progress"
local check = require "acoro.check"

local M = {}

local type, tostring, error, pairs, ipairs, select, unpack, setmetatable =
  type, tostring, error, pairs, ipairs, select, unpack, setmetatable

local DEFAULT_UDP_PORT = 51351 -- acoro-node's discovery port
local WINDOW = 16              -- jobs in flight per server by default

local function pack(...) return { n = select("#", ...), ... } end

local Computation = {}
Computation.__index = Computation
Computation.__name = "acoro.discoro.Computation"

-- Every event goes to each subscriber (the status coroutine is the first):
-- one stream of computation, node, server and job state that a monitor can
-- follow. A subscriber that is gone is dropped.
local function publish(comp, m)
  local subs = comp.subscribers
  for i = #subs, 1, -1 do
    if not pcall(subs[i].send, subs[i], m) then table.remove(subs, i) end
  end
end

local function status(comp, kind, fields)
  if #comp.subscribers == 0 then return end
  local m = fields or {}
  m.status = kind
  m.time = acoro.now()
  publish(comp, m)
end

local function node_initialized(comp, node, info)
  local a = info.avail or {}
  status(comp, "NodeInitialized", { location = node.location, name = info.name, cpus = info.cpus,
    dir = type(info.dir) == "string" and info.dir or nil, cpu = a.cpu, memory = a.memory, disk = a.disk,
    swap = a.swap })
end

local function wake(job)
  local w = job.batch and job.batch.waiter or job.waiter
  if w then w:resume() end
end

-- Values that cannot travel raise in the caller with their path, before
-- anything is sent (handles and plain tables nested 64 deep travel).
local function check_value(v, path, depth, level)
  local t = type(v)
  if t == "nil" or t == "boolean" or t == "number" or t == "string" then return end
  if t == "userdata" and getmetatable(v) ~= nil then return end -- a handle: send decides
  if t == "table" then
    if getmetatable(v) ~= nil then return end -- a handle, an Exit...: send decides
    if depth > 64 then error(("acoro.discoro: %s: nested over 64 levels"):format(path), level) end
    for k, x in pairs(v) do
      check_value(k, path .. "[key]", depth + 1, level + 1)
      check_value(x, path .. "[" .. (type(k) == "string" and ("%q"):format(k) or tostring(k)) .. "]",
        depth + 1, level + 1)
    end
    return
  end
  error(("acoro.discoro: cannot send %s: a %s"):format(path, t), level)
end

-- NodeAllocate{host=, name=, cpus=, memory=, disk=}: an allocation rule. A
-- node whose host (its address, or its location) and name match the globs
-- (`*`, `?`; default `*`) gets `cpus` servers (all its CPUs by default, -K
-- all but K, 0 none) if it has `memory` and `disk` bytes free; the first rule
-- that matches decides.
local NodeAllocate = { __name = "acoro.discoro.NodeAllocate" }
NodeAllocate.__index = NodeAllocate

local function glob(p)
  return "^" .. p:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

local function matches(where, info)
  if where == info.location or where == info.host or where == info.name then return true end
  local p = glob(where)
  return (info.location and info.location:match(p) or info.host and tostring(info.host):match(p)
    or info.name and tostring(info.name):match(p)) and true or false
end

function M.NodeAllocate(o)
  if type(o) ~= "table" then error("acoro.discoro.NodeAllocate: a table expected", 2) end
  for _, k in ipairs({ "host", "name" }) do
    if o[k] ~= nil and type(o[k]) ~= "string" then
      error("acoro.discoro.NodeAllocate: " .. k .. " must be a string", 2)
    end
  end
  for _, k in ipairs({ "cpus", "memory", "disk" }) do
    if o[k] ~= nil and (type(o[k]) ~= "number" or o[k] % 1 ~= 0) then
      error("acoro.discoro.NodeAllocate: " .. k .. " must be a whole number", 2)
    end
  end
  return setmetatable({ host = o.host, name = o.name, cpus = o.cpus, memory = o.memory, disk = o.disk,
    host_p = glob(o.host or "*"), name_p = glob(o.name or "*") }, NodeAllocate)
end

-- allocate(rules, info) -> servers | nil, why: the first rule that decides.
-- A function rule gets the node's info ({location=, host=, name=, cpus=,
-- cpu=, memory=, disk=, swap=}) and returns a count of CPUs (0 or false: not
-- this node, with a reason second) or nil to let the next rule decide.
local function allocate(rules, info)
  for i, a in ipairs(rules) do
    local n, why
    if type(a) == "function" then
      local ok, r, r2 = pcall(a, info)
      if not ok then return nil, ("allocations[%d] failed: %s"):format(i, tostring(r)) end
      n, why = r, r2
    elseif (tostring(info.host or ""):match(a.host_p) or tostring(info.location):match(a.host_p))
      and tostring(info.name or ""):match(a.name_p) then
      if a.memory and (tonumber(info.memory) or 0) < a.memory then
        return nil, ("allocations[%d]: memory %s bytes available, %d wanted"):format(i, tostring(info.memory), a.memory)
      end
      if a.disk and (tonumber(info.disk) or 0) < a.disk then
        return nil, ("allocations[%d]: disk %s bytes free, %d wanted"):format(i, tostring(info.disk), a.disk)
      end
      n = a.cpus or info.cpus
    end
    if n ~= nil then
      if type(n) ~= "number" then return nil, why and tostring(why) or ("allocations[%d] gives it no CPU"):format(i) end
      local cpus = tonumber(info.cpus) or 1
      n = n < 0 and cpus + n or math.min(n, cpus)
      if n < 1 then return nil, why and tostring(why) or ("allocations[%d] gives it no CPU"):format(i) end
      return math.floor(n)
    end
  end
  return nil, "no allocation matches it"
end

-- Computation{code=, name=, peers=, status=, retries=, timeout=, window=, node=}
function M.Computation(o)
  if type(o) ~= "table" then error("acoro.discoro.Computation: a table of options expected", 2) end
  if o.code == nil then error("acoro.discoro.Computation: code is required", 2) end
  local src, names = code.build(o.code, 2)
  if o.status ~= nil and not pcall(function() return o.status.send end) then
    error("acoro.discoro.Computation: status must be a coroutine", 2)
  end
  local retries = o.retries == nil and 1 or o.retries
  if type(retries) ~= "number" or retries < 0 or retries % 1 ~= 0 then
    error("acoro.discoro.Computation: retries must be a whole number >= 0", 2)
  end
  check.timeout(o.timeout, "acoro.discoro.Computation", 1, 3, "timeout")
  check.timeout(o.pulse_interval, "acoro.discoro.Computation", 1, 3, "pulse_interval")
  check.timeout(o.zombie_period, "acoro.discoro.Computation", 1, 3, "zombie_period")
  local pulse = o.pulse_interval or 10
  if pulse < 0.1 or pulse > 3600 then
    error("acoro.discoro.Computation: pulse_interval must be between 0.1 and 3600 seconds", 2)
  end
  if o.zombie_period and o.zombie_period <= pulse then
    error("acoro.discoro.Computation: zombie_period must be longer than pulse_interval", 2)
  end
  -- files: sent to each node before its servers start, under the
  -- computation's directory there; a relative path keeps its directories
  local files = {}
  if o.files ~= nil and type(o.files) ~= "table" then error("acoro.discoro.Computation: files must be a list", 2) end
  for i, path in ipairs(o.files or {}) do
    if type(path) ~= "string" or path == "" then
      error(("acoro.discoro.Computation: files[%d] must be a file name"):format(i), 2)
    end
    local dir = path:sub(1, 1) ~= "/" and path:match("^(.*)/[^/]+$") or nil
    for part in path:gmatch("[^/]+") do
      if part == ".." and path:sub(1, 1) ~= "/" then
        error(("acoro.discoro.Computation: files[%d] (%s) goes up with '..': give it absolute"):format(i, path), 2)
      end
    end
    files[#files + 1] = { path = path, dir = dir }
  end
  local setup = o.server_setup
  if setup ~= nil then
    if type(setup) == "function" then setup = names[setup] end
    if type(setup) ~= "string" then
      error("acoro.discoro.Computation: server_setup must be a function of code or its name", 2)
    end
  end
  if o.setup_args ~= nil and type(o.setup_args) ~= "table" then
    error("acoro.discoro.Computation: setup_args must be a list", 2)
  end
  if o.progress ~= nil and type(o.progress) ~= "boolean" and type(o.progress) ~= "function" then
    error("acoro.discoro.Computation: progress must be a boolean or a function", 2)
  end
  local node_setup = o.node_setup
  if node_setup ~= nil then
    if type(node_setup) == "function" then node_setup = names[node_setup] end
    if type(node_setup) ~= "string" then
      error("acoro.discoro.Computation: node_setup must be a function of code or its name", 2)
    end
  end
  if o.node_args ~= nil and type(o.node_args) ~= "table" then
    error("acoro.discoro.Computation: node_args must be a list", 2)
  end
  local allocations
  if o.allocations ~= nil then
    if type(o.allocations) ~= "table" then error("acoro.discoro.Computation: allocations must be a list", 2) end
    allocations = {}
    for i, a in ipairs(o.allocations) do
      if type(a) ~= "function" and getmetatable(a) ~= NodeAllocate then
        error(("acoro.discoro.Computation: allocations[%d] must be a NodeAllocate or a function"):format(i), 2)
      end
      allocations[i] = a
    end
  end
  return setmetatable({
    server_setup = setup, setup_args = o.setup_args and { n = o.setup_args.n or #o.setup_args,
      unpack(o.setup_args, 1, o.setup_args.n or #o.setup_args) },
    src = src, fnames = names, name = o.name or "computation", peers = o.peers or {},
    progress = o.progress, node_setup = node_setup, node_args = o.node_args and { n = o.node_args.n or #o.node_args,
      unpack(o.node_args, 1, o.node_args.n or #o.node_args) },
    allocations = allocations, disable_nodes = o.disable_nodes and true or false,
    disable_servers = o.disable_servers and true or false,
    at_jobs = {}, pending = {}, npending = 0, setting = {}, nsetting = 0, enables = {},
    pending_servers = {}, server_enables = {},
    subscribers = { o.status }, retries = retries, timeout = o.timeout, window = o.window or WINDOW,
    node_opts = o.node, files = files, pulse_interval = pulse, zombie_period = o.zombie_period,
    queue = {}, qhead = 1, qtail = 0, -- jobs waiting for a server
    server_set = {}, server_list = {}, -- dispatcher handle -> server
    node_set = {}, nnodes = 0, probing = {}, refusals = {},
    next_id = 0, jobs = {}, state = "new",
    ndone = 0, nfailed = 0, nrequeued = 0, -- the web monitor's counters (comp:_monitor_state)
  }, Computation)
end

-- A node sent the computation answered it.
local function settled(self, node)
  if self.setting[node] then
    self.setting[node] = nil
    self.nsetting = self.nsetting - 1
  end
end

-- The scheduler's coroutine: everything that comes back from nodes and
-- servers (answers, results, monitors' Exits, peers coming up).
function Computation:_collector()
  local me = acoro.self()
  acoro.peer_status(me)
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      if self.server_set[m.coro] then
        self:_server_lost(self.server_set[m.coro], m.reason)
      elseif self.node_set[m.coro] then
        self:_node_lost(m.coro, m.reason)
      end
    elseif acoro.is_peer_status(m) then
      if m.status == "online" then self:_probe(m.location, 2) end
    elseif type(m) == "table" then
      local op = m[1]
      if op == "done" then
        self:_done(m[2], m[3], m[4], m[5])
      elseif op == "started" then
        local job = self.jobs[m[2]]
        if job and job.server and job.server.h == m[4] then
          job.handle = m[3]
          status(self, "CoroCreated", { job = job.id, fn = job.fname, coro = m[3], location = m[3].location })
          wake(job)
        end
      elseif op == "pulse" then
        local info = self.node_set[m[2]]
        if info then
          info.last_pulse = acoro.now()
          if type(m[3]) == "table" then
            info.avail = m[3]
            status(self, "NodeAvailInfo", { location = m[2].location, cpu = m[3].cpu, memory = m[3].memory,
              disk = m[3].disk, swap = m[3].swap })
          end
        end
      elseif op == "server_waiting" then
        local h = m[2]
        if acoro.is_remote(h) and self.node_set[m[3]] then
          local args
          for _, e in ipairs(self.server_enables) do
            if matches(e.where, { location = h.location }) then args = e.args end
          end
          if args then h:send({ "enable", args }) else self.pending_servers[h.location] = h end
        end
      elseif op == "server_started" then
        if self.node_set[m[2]] and type(m[4]) == "string" then
          status(self, "ServerDiscovered", { location = m[4], node = m[2].location, slot = m[3] })
        end
      elseif op == "server" then
        self:_server_up(m[2], m[3], m[4])
      elseif op == "accepted" then
        local node, info = m[2], type(m[3]) == "table" and m[3] or {}
        if acoro.is_remote(node) and not self.node_set[node] then
          settled(self, node)
          self.node_set[node] = info
          info.last_pulse = acoro.now()
          if type(info.avail) ~= "table" then info.avail = nil end
          self.nnodes = self.nnodes + 1
          node:monitor(me)
          if #self.files > 0 then
            acoro.spawn(self._send_files, self, node, info)
          else
            node_initialized(self, node, info)
          end
          if self.schedule_waiter then self.schedule_waiter:resume() end
        end
      elseif op == "refused" and acoro.is_remote(m[2]) then
        settled(self, m[2])
        self:_unanswered(m[2].location, tostring(m[3]))
        status(self, "NodeIgnore", { location = m[2].location, error = tostring(m[3]) })
      elseif op == "server_dropped" and self.node_set[m[2]] then
        status(self, "ServerClosed", { location = m[2].location, slot = m[3], error = tostring(m[4]) })
      elseif op == "closed" and self.node_set[m[2]] then
        -- the node gave the computation up (its servers cannot run the code)
        self:_node_lost(m[2], tostring(m[3]))
      end
    end
  end
end

-- A peer of `peers` that will not take the computation: schedule() stops
-- waiting once none of them is left.
function Computation:_unanswered(location, why)
  self.refusals[#self.refusals + 1] = location .. ": " .. why
  if self.unanswered[location] then
    self.unanswered[location] = nil
    self.nunanswered = self.nunanswered - 1
  end
  if self.schedule_waiter then self.schedule_waiter:resume() end
end

-- Sends the computation's files to a node that accepted it, into its
-- directory there, then lets the node start its servers; a file that cannot
-- be sent drops that node.
function Computation:_send_files(node, info)
  local base = type(info.dir) == "string" and info.dir or nil
  for _, f in ipairs(self.files) do
    local dir = base and (f.dir and (base .. "/" .. f.dir) or base)
    local ok, err = acoro.send_file(node.location, f.path, { dir = dir, overwrite = true })
    if self.state ~= "scheduled" or not self.node_set[node] then return end
    if not ok or not base then
      local why = ("file %s not sent: %s"):format(f.path, tostring(err or "the node gave no directory"))
      status(self, "NodeIgnore", { location = node.location, error = why })
      self.refusals[#self.refusals + 1] = node.location .. ": " .. why
      node:send({ "close", self.collector })
      return self:_node_lost(node, why)
    end
  end
  node:send({ "start", self.collector })
  node_initialized(self, node, info)
end

-- Asks the peer at location for an acoro-node and sends it the computation.
function Computation:_probe(location, timeout)
  if self.probing[location] or self.state ~= "scheduled" then return end
  self.probing[location] = true
  acoro.spawn(function()
    local node = acoro.locate("discoro.node", { location = location, timeout = timeout })
    if not node or self.state ~= "scheduled" then
      self.probing[location] = nil
      -- a peer met otherwise (a server, another client) is no refusal
      if self.unanswered and self.unanswered[location] then self:_unanswered(location, "no acoro-node there") end
      return
    end
    local info, cpus = { location = location }, nil
    if self.allocations or self.disable_nodes then
      -- what the node has, for the allocations and enable_node
      node:send({ "info", acoro.self() })
      local m = acoro.receive_match(function(x)
        return type(x) == "table" and x[1] == "info" and x[2] == node and type(x[3]) == "table"
      end, timeout)
      if not m or self.state ~= "scheduled" then
        if self.unanswered and self.unanswered[location] then self:_unanswered(location, "no answer from the node") end
        self.probing[location] = nil
        return
      end
      info = m[3]
      info.location = location
    end
    if self.allocations then
      local why
      cpus, why = allocate(self.allocations, info)
      if not cpus then
        status(self, "NodeIgnore", { location = location, error = why })
        return self:_unanswered(location, why)
      end
    end
    status(self, "NodeDiscovered", { location = location, name = info.name, cpus = cpus or info.cpus })
    if self.disable_nodes then
      -- held until comp:enable_node names it (or named it already)
      local p = { node = node, info = info, cpus = cpus }
      for _, e in ipairs(self.enables) do
        if matches(e.where, info) then return self:_setup_node(p, e.args) end
      end
      self.pending[location] = p
      self.npending = self.npending + 1
      return self:_answered(location)
    end
    self:_setup_node({ node = node, info = info, cpus = cpus }, self.node_args)
  end)
end

-- No node could ever run a job: none accepted, none is being set up, none
-- waits to be enabled.
function Computation:_hopeless()
  return self.nnodes == 0 and #self.server_list == 0 and self.npending == 0 and self.nsetting == 0
end

function Computation:_setup_node(p, node_args)
  if not self.setting[p.node] then
    self.setting[p.node] = true
    self.nsetting = self.nsetting + 1
  end
  p.node:send({ "setup", self.collector, self.src, self.name,
    { files = #self.files > 0, server_setup = self.server_setup, setup_args = self.setup_args,
      pulse_interval = self.pulse_interval, cpus = p.cpus, node_setup = self.node_setup, node_args = node_args,
      disable_servers = self.disable_servers } })
end

-- A peer of `peers` that answered without a refusal (a node held disabled).
function Computation:_answered(location)
  if self.unanswered and self.unanswered[location] then
    self.unanswered[location] = nil
    self.nunanswered = self.nunanswered - 1
  end
  if self.schedule_waiter then self.schedule_waiter:resume() end
end


-- comp:enable_node(where, ...): nodes held by disable_nodes whose location,
-- address or name is `where` (or matches it as a glob) get the computation,
-- node_setup getting `...`; a node found later that matches is enabled as it
-- comes. Returns how many were enabled now.
function Computation:enable_node(where, ...)
  if type(where) ~= "string" then error("acoro.discoro: enable_node: a location, address or name expected", 2) end
  if self.state ~= "scheduled" then error("acoro.discoro: enable_node: the computation is not scheduled", 2) end
  local args = pack(...)
  self.enables[#self.enables + 1] = { where = where, args = args }
  local n = 0
  for loc, p in pairs(self.pending) do
    if matches(where, p.info) then
      self.pending[loc] = nil
      self.npending = self.npending - 1
      self:_setup_node(p, args)
      n = n + 1
    end
  end
  return n
end

-- comp:enable_server(location, ...): a server held by disable_servers (its
-- location, or a glob) runs server_setup(...) and takes jobs; one that
-- reports later is enabled as it comes. Returns how many were enabled now.
function Computation:enable_server(where, ...)
  if type(where) ~= "string" then error("acoro.discoro: enable_server: a server location expected", 2) end
  local args = pack(...)
  self.server_enables[#self.server_enables + 1] = { where = where, args = args }
  local n = 0
  for loc, h in pairs(self.pending_servers) do
    if matches(where, { location = loc }) then
      self.pending_servers[loc] = nil
      h:send({ "enable", args })
      n = n + 1
    end
  end
  return n
end

function Computation:_server_up(h, node, slot)
  if not acoro.is_remote(h) or self.server_set[h] or self.state ~= "scheduled" then return end
  local s = { h = h, node = node, slot = slot, n = 0, inflight = {}, done = 0 }
  self.server_set[h] = s
  self.server_list[#self.server_list + 1] = s
  h:monitor(self.collector)
  status(self, "ServerInitialized", { location = h.location })
  self:_dispatch()
end

local function remove_server(self, s)
  self.server_set[s.h] = nil
  for i, x in ipairs(self.server_list) do
    if x == s then
      table.remove(self.server_list, i)
      break
    end
  end
end

-- A server is gone: its jobs go back to the queue while they have retries
-- left (an async job whose handle was given out is not run again: its
-- monitors learn "unreachable" from that handle).
function Computation:_server_lost(s, reason)
  remove_server(self, s)
  -- lost, not closed: its link went (killed, its node gone) or it was dropped
  if reason ~= "normal" then status(self, "ServerDisconnected", { location = s.h.location, reason = reason }) end
  status(self, "ServerClosed", { location = s.h.location, reason = reason })
  local requeue = {}
  for _, job in pairs(s.inflight) do
    job.server = nil
    if not job.done then
      if job.handle or job.tries >= self.retries then
        self:_finish(job, false, "unreachable")
      else
        job.tries = job.tries + 1
        job.avoid = s.node
        requeue[#requeue + 1] = job
      end
    end
  end
  table.sort(requeue, function(a, b) return a.id < b.id end)
  for i = #requeue, 1, -1 do -- at the head of the queue: they were first
    local job = requeue[i]
    if job.where then
      table.insert(self.at_jobs, 1, job)
    else
      self.qhead = self.qhead - 1
      self.queue[self.qhead] = job
    end
    status(self, "JobRequeued", { job = job.id, location = s.h.location })
  end
  self.nrequeued = self.nrequeued + #requeue
  if self:_hopeless() then return self:_fail_queued("unreachable") end
  self:_dispatch()
end

function Computation:_node_lost(node, reason)
  if not self.node_set[node] then return end
  self.node_set[node] = nil
  self.nnodes = self.nnodes - 1
  status(self, "NodeClosed", { location = node.location, reason = reason })
  self.probing[node.location] = nil
  if self:_hopeless() then self:_fail_queued("unreachable") end
end

function Computation:_zombies()
  local period = self.zombie_period
  while self.state ~= "closed" do
    acoro.suspend(period / 4)
    local now = acoro.now()
    for node, info in pairs(self.node_set) do
      if self.state == "closed" then return end
      if now - info.last_pulse > period then
        local why = ("zombie: no pulse for %g s"):format(period)
        pcall(node.send, node, { "close", self.collector })
        local lost = {}
        for _, s in ipairs(self.server_list) do
          if s.node == node then lost[#lost + 1] = s end
        end
        for _, s in ipairs(lost) do self:_server_lost(s, why) end
        self:_node_lost(node, why)
      end
    end
  end
end

function Computation:_fail_queued(why)
  local at = self.at_jobs
  self.at_jobs = {}
  for _, job in ipairs(at) do
    if not job.done then self:_finish(job, false, why) end
  end
  for i = self.qhead, self.qtail do
    local job = self.queue[i]
    self.queue[i] = nil
    if job and not job.done then self:_finish(job, false, why) end
  end
  self.qhead, self.qtail = 1, 0
end

-- Places queued jobs on the servers with the fewest in flight, up to the
-- window of each. A re-queued job avoids the node that lost it while another
-- node has servers: that node's other servers are likely dying too (a killed
-- node's servers end one by one), and a second loss would spend its retries.
-- A server is `where` when its location, its node's location, address or
-- name is (or matches as a glob) where.
function Computation:_server_at(s, where)
  if s.h.location == where then return true end
  local info = self.node_set[s.node]
  local host = info and info.location and info.location:match("^(.*):%d+$")
  return matches(where, { location = s.h.location, host = host, name = info and info.name })
    or (info and info.location and matches(where, { location = info.location })) or false
end

-- run_at jobs wait in a list of their own: one that no server can take now
-- must not hold the queue behind it.
function Computation:_dispatch_at()
  local at, window, keep, share = self.at_jobs, self.window, {}, self.share
  for _, job in ipairs(at) do
    if not job.done then
      local best
      for _, s in ipairs(self.server_list) do
        if s.n < window and (not best or s.n < best.n) and self:_server_at(s, job.where)
          and (not share or share:room(self, s)) then best = s end
      end
      if best then
        self:_send_job(job, best)
        if share then share:placed(best) end
      else
        keep[#keep + 1] = job
      end
    end
  end
  self.at_jobs = keep
end

function Computation:_send_job(job, best)
  best.inflight[job.id] = job
  best.n = best.n + 1
  job.server = best
  job.started = acoro.now()
  local ok, err = pcall(best.h.send, best.h, { "run", job.id, job.fname, job.args, job.async, job.watcher })
  if not ok then
    best.inflight[job.id] = nil
    best.n = best.n - 1
    job.server = nil
    self:_finish(job, false, tostring(err))
  elseif #self.subscribers > 0 then
    status(self, "JobCreated", { job = job.id, fn = job.fname, location = best.h.location })
  end
end

-- Places queued jobs until no server can take one. A computation of a
-- shared scheduler (acoro-scheduler) has `share` (acoro.discoro.share): the
-- share places the jobs of all its computations in turn.
function Computation:_dispatch()
  if self.share then return self.share:dispatch() end
  if #self.at_jobs > 0 then self:_dispatch_at() end
  while self:_place_one() do end
end

-- Places the job at the head of the queue -> the server it went to, or nil
-- (the queue is empty, or no server has room).
function Computation:_place_one()
  local queue, list, window, share = self.queue, self.server_list, self.window, self.share
  while self.qhead <= self.qtail do
    local job = queue[self.qhead]
    if job.done then
      queue[self.qhead] = nil
      self.qhead = self.qhead + 1
    else
      local avoid, best, elsewhere = job.avoid, nil, false
      for i = 1, #list do
        local s = list[i]
        if s.node ~= avoid then
          elsewhere = true
          if s.n < window and (not best or s.n < best.n) and (not share or share:room(self, s)) then best = s end
        end
      end
      if not elsewhere then
        for i = 1, #list do
          local s = list[i]
          if s.n < window and (not best or s.n < best.n) and (not share or share:room(self, s)) then best = s end
        end
      end
      if not best then return nil end
      queue[self.qhead] = nil
      self.qhead = self.qhead + 1
      self:_send_job(job, best)
      if self.qhead > self.qtail then self.qhead, self.qtail = 1, 0 end
      return best
    end
  end
  self.qhead, self.qtail = 1, 0
  return nil
end

function Computation:_finish(job, ok, v)
  if job.done then return end
  job.done, job.ok, job.value = true, ok, v
  self.jobs[job.id] = nil
  if ok then self.ndone = self.ndone + 1 else self.nfailed = self.nfailed + 1 end
  if job.async and self.close_waiter then self.close_waiter:resume() end
  -- the status coroutine gets an acoro.Exit per job, as a monitor of it would
  if #self.subscribers > 0 then
    -- (not `ok and v[1] or nil`: a first value false travels as false)
    local value, err
    if ok then value = v[1] else err = v end
    publish(self, setmetatable({ coro = job.handle, job = job.id, fn = job.fname,
      reason = ok and "normal" or "error", value = value, error = err }, acoro.Exit))
  end
  local b = job.batch
  if b then
    b.left = b.left - 1
    if b.left == 0 then b.waiter:resume() end
  else
    wake(job)
  end
end

-- An answer counts only from the server the job runs on now: one from a
-- server it was re-queued away from (dropped as a zombie, say, but still
-- running) comes late and must not end the job nor free a slot elsewhere.
function Computation:_done(id, ok, v, from)
  local job = self.jobs[id]
  local s = job and job.server
  if not s or s.h ~= from then
    if job then
      acoro.log.debug("discoro: job ", id, " (", job.fname, "): a late answer from ",
        from and from.location or "?", " ignored (it runs on ", s and s.h.location or "no server", " now)")
    end
    return
  end
  s.inflight[id] = nil
  s.n = s.n - 1
  s.done = (s.done or 0) + 1
  self:_finish(job, ok, v)
  self:_dispatch()
end

local function fn_name(self, fn, level)
  if type(fn) == "string" then return fn end
  local name = type(fn) == "function" and self.fnames[fn]
  if not name then error("acoro.discoro: that function is not part of the computation's code", level) end
  return name
end

-- Queues one job; raises (at the caller's level) on what cannot be sent.
function Computation:_submit(fn, args, async, batch, level, where)
  if self.state ~= "scheduled" then error("acoro.discoro: the computation is not scheduled", level) end
  local name = fn_name(self, fn, level + 1)
  check_value(args, "args", 1, level + 1)
  self.next_id = self.next_id + 1
  local job = { id = self.next_id, fname = name, args = args, async = async, tries = 0, batch = batch }
  self.jobs[job.id] = job
  if where then
    job.where = where
    self.at_jobs[#self.at_jobs + 1] = job
  else
    self.qtail = self.qtail + 1
    self.queue[self.qtail] = job
  end
  if self.timeout then
    local t = self.timeout
    job.deadline, job.limit = acoro.now() + t, t
  end
  -- every node is gone: nothing would ever run it
  if self:_hopeless() then self:_fail_queued("unreachable") end
  return job
end

-- Waits for job (or a job's handle, for async) until its deadline.
function Computation:_await(job, want_handle)
  job.waiter = acoro.self()
  while not job.done and not (want_handle and job.handle) do
    if job.deadline then
      local left = job.deadline - acoro.now()
      if left <= 0 then
        self:_timeout(job)
        break
      end
      acoro.suspend(left)
    else
      acoro.suspend()
    end
  end
  job.waiter = nil
end

-- A job past its timeout fails; the server it runs on is killed (a job that
-- never yields would hold it for ever) and its other jobs are re-queued.
function Computation:_timeout(job)
  local s = job.server
  if not s and (job.where or #self.server_list == 0 or self.npending > 0 or next(self.pending_servers)) then
    -- never placed, and no server could take it: only this job fails, saying why
    local why = {}
    if job.where then
      local there = 0
      for _, x in ipairs(self.server_list) do
        if self:_server_at(x, job.where) then there = there + 1 end
      end
      why[#why + 1] = there == 0 and ("no server at %s"):format(job.where)
        or ("%d server(s) at %s, all busy"):format(there, job.where)
    end
    if #self.server_list == 0 then why[#why + 1] = "no server is up" end
    if self.npending > 0 then why[#why + 1] = ("%d node(s) not enabled"):format(self.npending) end
    local held = 0
    for _ in pairs(self.pending_servers) do held = held + 1 end
    if held > 0 then why[#why + 1] = ("%d server(s) not enabled"):format(held) end
    return self:_finish(job, false, ("no server matches the job %s(%s) in %g s: %s"):format(job.fname,
      job.id, job.limit, table.concat(why, ", ")))
  end
  self:_finish(job, false, "timeout")
  if s then
    s.inflight[job.id] = nil
    s.n = s.n - 1
    if acoro.is_remote(s.node) then s.node:send({ "kill", self.collector, s.slot }) end
  end
end

-- comp:schedule([{timeout=}]) -> true | nil, err: checks the code, finds
-- acoro-node daemons (the `peers` given, and any peer of this node), and
-- returns once one accepted the computation.
function Computation:schedule(o)
  if self.state ~= "new" then error("acoro.discoro: schedule: already scheduled", 2) end
  o = o or {}
  check.timeout(o.timeout, "schedule", 1, 3, "timeout")
  local ok, err = code.check(self.src, self.name)
  if not ok then return nil, err end
  if o.scheduler ~= nil then
    -- a shared scheduler (acoro-scheduler) places the jobs
    return require("acoro.discoro.remote").schedule(self, o)
  end
  if not acoro.node() then
    local no = {}
    for k, v in pairs(self.node_opts or {}) do no[k] = v end
    if no.secret == nil and (os.getenv("ACORO_SECRET") or "") ~= "" then no.secret = os.getenv("ACORO_SECRET") end
    if no.udp_port == nil then no.udp_port = DEFAULT_UDP_PORT end
    acoro.node(no)
  end
  self.state = "scheduled"
  self.collector = acoro.spawn(self._collector, self)
  self.collector:set_daemon()
  if self.zombie_period then
    -- a node whose pulses stopped (stopped, swapping, its loop stuck) while its
    -- link still stands is dropped, with its servers
    local watch = acoro.spawn(self._zombies, self)
    watch:set_daemon()
  end
  local timeout = o.timeout or 10
  local deadline = acoro.now() + timeout
  self.unanswered, self.nunanswered = {}, 0
  for _, loc in ipairs(self.peers) do
    if not self.unanswered[loc] then
      self.unanswered[loc] = true
      self.nunanswered = self.nunanswered + 1
    end
  end
  self.schedule_waiter = acoro.self()
  for _, loc in ipairs(self.peers) do
    local up, why = acoro.peer(loc, math.max(0.1, deadline - acoro.now()))
    if up then
      self:_probe(loc, math.max(0.1, deadline - acoro.now()))
    else
      self:_unanswered(loc, tostring(why))
    end
  end
  -- with `peers` given, the answer is known once each of them answered
  while self.nnodes == 0 and self.npending == 0 and acoro.now() < deadline
    and (#self.peers == 0 or self.nunanswered > 0 or self.nsetting > 0) do
    acoro.suspend(deadline - acoro.now())
  end
  self.schedule_waiter = nil
  if self.nnodes == 0 and self.npending == 0 then
    self:close()
    local why = #self.refusals > 0 and table.concat(self.refusals, "; ") or "no acoro-node found"
    return nil, "no node accepted the computation: " .. why, "ENOPEER"
  end
  return true
end


-- comp:run_result(fn, ...) -> fn's values | nil, err
function Computation:run_result(fn, ...)
  local job = self:_submit(fn, pack(...), false, nil, 3)
  self:_dispatch()
  self:_await(job)
  if not job.ok then return nil, job.value end
  local v = job.value
  return unpack(v, 1, v.n)
end

-- comp:submit({async=, monitor=, timeout=}, fn, ...): run_result's or (async
-- = true) run_async's answer; `monitor` (a coroutine of this process) is made a
-- monitor of the job's coroutine on its server before it runs; `timeout` is
-- this job's instead of the computation's.
function Computation:submit(o, fn, ...)
  if type(o) ~= "table" then error("acoro.discoro: submit: an options table expected", 2) end
  if o.monitor ~= nil and not pcall(function() return o.monitor.send end) then
    error("acoro.discoro: submit: monitor must be a coroutine", 2)
  end
  check.timeout(o.timeout, "submit", 1, 3, "timeout")
  local job = self:_submit(fn, pack(...), o.async and true or false, nil, 3)
  job.watcher = o.monitor
  if o.timeout then job.deadline, job.limit = acoro.now() + o.timeout, o.timeout end
  if o.async then return self:_async(job) end
  self:_dispatch()
  self:_await(job)
  if not job.ok then return nil, job.value end
  local v = job.value
  return unpack(v, 1, v.n)
end

-- comp:run_async(fn, ...) -> the job's (remote) coroutine handle | nil, err
function Computation:run_async(fn, ...)
  return self:_async(self:_submit(fn, pack(...), true, nil, 3))
end

function Computation:_async(job)
  self:_dispatch()
  self:_await(job, true)
  if job.handle then return job.handle end
  if job.done and job.ok then return nil, "ended before its handle came" end
  return nil, job.value
end

local function where_arg(where, what)
  if type(where) ~= "string" or where == "" then
    error(("acoro.discoro: %s: where must be a server's or node's location, an address or a name"):format(what), 3)
  end
end

-- comp:run_result_at(where, fn, ...) -> fn's values | nil, err: the job runs
-- on a server at `where` (a server's location, or its node's location,
-- address or name, or a glob of them) and waits there for one.
function Computation:run_result_at(where, fn, ...)
  where_arg(where, "run_result_at")
  local job = self:_submit(fn, pack(...), false, nil, 3, where)
  self:_dispatch()
  self:_await(job)
  if not job.ok then return nil, job.value end
  local v = job.value
  return unpack(v, 1, v.n)
end

-- comp:run_async_at(where, fn, ...) -> handle | nil, err; run_at is its
-- other name (asyncoro's).
function Computation:run_async_at(where, fn, ...)
  where_arg(where, "run_async_at")
  return self:_async(self:_submit(fn, pack(...), true, nil, 3, where))
end
Computation.run_at = Computation.run_async_at

-- comp:run_results(fn, list) -> results, errors: results[i] the first value
-- of job i, errors[i] its error (nil where it succeeded). Each item of list
-- is a job's argument list (a table) or its single argument.
function Computation:run_results(fn, list, o)
  if type(list) ~= "table" then error("acoro.discoro: run_results: list must be a table", 2) end
  if o ~= nil and type(o) ~= "table" then error("acoro.discoro: run_results: an options table expected", 2) end
  local p = o and o.progress
  if p == nil then p = self.progress end
  local n = #list
  local batch = { left = n, waiter = acoro.self() }
  local jobs = {}
  for i = 1, n do
    local a = list[i]
    local args = type(a) == "table" and getmetatable(a) == nil and { n = a.n or #a, unpack(a, 1, a.n or #a) }
      or { n = 1, a }
    jobs[i] = self:_submit(fn, args, false, batch, 3)
  end
  self:_dispatch()
  local line = progress.new(n, p)
  local deadline = self.timeout and acoro.now() + self.timeout
  while batch.left > 0 do
    if line then line:draw(n - batch.left) end
    local wait = line and progress.EVERY
    if deadline then
      local left = deadline - acoro.now()
      if left <= 0 then
        for i = 1, n do
          if not jobs[i].done then self:_timeout(jobs[i]) end
        end
        break
      end
      wait = wait and math.min(wait, left) or left
    end
    acoro.suspend(wait)
  end
  if line then line:draw(n - batch.left, true) end
  local results, errors = {}, {}
  for i = 1, n do
    local job = jobs[i]
    if job.ok then results[i] = job.value[1] else errors[i] = job.value end
  end
  return results, errors
end

-- comp:close(): nodes drop the computation (servers killed, directory
-- removed); jobs not done fail with "closed". Never waits on a node.
function Computation:close(o)
  if o ~= nil and type(o) ~= "table" then error("acoro.discoro: close: an options table expected", 2) end
  o = o or {}
  check.timeout(o.timeout, "close", 1, 3, "timeout")
  if o.await_async and self.state == "scheduled" then
    -- the async jobs whose handles were given out end first (each sends its
    -- result here as any job does); `timeout` bounds the wait
    local deadline = o.timeout and acoro.now() + o.timeout
    self.close_waiter = acoro.self()
    while self.state == "scheduled" do
      local left = false
      for _, job in pairs(self.jobs) do
        if job.async and not job.done then
          left = true
          break
        end
      end
      if not left then break end
      if deadline then
        local t = deadline - acoro.now()
        if t <= 0 then break end
        acoro.suspend(t)
      else
        acoro.suspend()
      end
    end
    self.close_waiter = nil
  end
  if self.state == "closed" then return true end
  local was = self.state
  self.state = "closed"
  if was == "new" then return true end
  for node in pairs(self.node_set) do pcall(node.send, node, { "close", self.collector }) end
  self:_fail_queued("closed")
  for _, s in ipairs(self.server_list) do
    for _, job in pairs(s.inflight) do self:_finish(job, false, "closed") end
  end
  self.server_set, self.server_list, self.node_set, self.nnodes = {}, {}, {}, 0
  status(self, "ComputationClosed", {})
  if self.collector ~= acoro.self() then self.collector:terminate() end
  return true
end

-- comp:subscribe(co): co gets every status message and job Exit from now on
-- (as the status coroutine does); comp:unsubscribe(co) stops it.
function Computation:subscribe(co)
  if not pcall(function() return co.send end) then error("acoro.discoro: subscribe: a coroutine expected", 2) end
  self:unsubscribe(co)
  self.subscribers[#self.subscribers + 1] = co
  return true
end

function Computation:unsubscribe(co)
  for i = #self.subscribers, 1, -1 do
    if self.subscribers[i] == co then table.remove(self.subscribers, i) end
  end
  return true
end

function Computation:nodes()
  local t = {}
  for node, info in pairs(self.node_set) do
    t[#t + 1] = { location = node.location, name = info.name, cpus = info.cpus, avail = info.avail }
  end
  table.sort(t, function(a, b) return a.location < b.location end)
  return t
end

function Computation:servers()
  local t = {}
  for _, s in ipairs(self.server_list) do t[#t + 1] = s.h.location end
  table.sort(t)
  return t
end

M.is_computation = function(v) return getmetatable(v) == Computation end

-- For acoro.discoro's own modules (the shared scheduler's two sides).
local internal = require "acoro.discoro.internal"
internal.Computation, internal.publish, internal.DEFAULT_UDP_PORT = Computation, publish, DEFAULT_UDP_PORT

------------------------------------------------------------------------------
-- The web monitor's view (acoro.discoro.httpd). It reads the scheduler's
-- state at each tick of the monitor instead of a status message per job, so
-- that a monitor costs the job rate next to nothing; these two functions are
-- the only part of the monitor that knows the scheduler's fields.

-- comp:_monitor_state() -> {name=, submitted=, running=, done=, failed=,
-- requeued=, nodes = {{location=, name=, status=, avail=, updated=}},
-- servers = {{location=, node=, done=, jobs = {{id=, fn=, args=, started=}}}}}
-- (times are acoro.now()'s; `args` the job's argument list as given).
function Computation:_monitor_state()
  local nodes, servers, running = {}, {}, 0
  for node, info in pairs(self.node_set) do
    nodes[#nodes + 1] = { location = node.location, name = info.name, status = "up", avail = info.avail,
      updated = info.last_pulse }
  end
  for loc, p in pairs(self.pending) do
    nodes[#nodes + 1] = { location = loc, name = p.info and p.info.name, status = "disabled" }
  end
  for _, s in ipairs(self.server_list) do
    local jobs = {}
    for id, job in pairs(s.inflight) do
      jobs[#jobs + 1] = { id = id, fn = job.fname, args = job.args, started = job.started }
    end
    running = running + s.n
    servers[#servers + 1] = { location = s.h.location, node = s.node and s.node.location, done = s.done,
      jobs = jobs }
  end
  return { name = self.name, state = self.state, submitted = self.next_id, running = running, done = self.ndone,
    failed = self.nfailed, requeued = self.nrequeued, nodes = nodes, servers = servers,
    refusals = self.refusals }
end

-- comp:_monitor_terminate(id) -> true | nil, why: a job not finished ends
-- now, failing with "terminated" and not re-queued; on its server its
-- coroutine is terminated (its monitors get reason "terminated").
function Computation:_monitor_terminate(id)
  local job = self.jobs[id]
  if not job or job.done then return nil, "no such job running" end
  local s = job.server
  if s then
    s.inflight[id] = nil
    s.n = s.n - 1
    job.server = nil
    pcall(s.h.send, s.h, { "terminate", id })
  end
  self:_finish(job, false, "terminated")
  self:_dispatch()
  return true
end

-- discoro.httpd(comp [, opts]) -> monitor | nil, err, code: the web monitor
-- (acoro.discoro.httpd), loaded only when asked for.
function M.httpd(comp, opts)
  return require("acoro.discoro.httpd")._new(comp, opts, 3)
end

return M

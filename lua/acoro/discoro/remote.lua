-- acoro.discoro.remote: the client's side of a shared scheduler
-- (acoro-scheduler). comp:schedule{scheduler = "HOST:PORT"} sends the
-- computation there; the scheduler finds the nodes and places the jobs. Here
-- the scheduler stands as one server of unbounded window: the client's own
-- queue, waits, timeouts and Exits are the embedded ones (acoro.discoro),
-- each job goes to the scheduler as it is submitted, and what comes back
-- (results, handles, status messages) enters the same paths.
local acoro = require "acoro"

local M = {}

local type, tostring, pairs, ipairs, pcall, select = type, tostring, pairs, ipairs, pcall, select

-- The client's own timeout of a job comes this much after the scheduler's,
-- whose answer says more ("no server matches ...") and kills the server.
local GRACE = 1

local function pack(...) return { n = select("#", ...), ... } end

local function internal()
  require "acoro.discoro"
  return require "acoro.discoro.internal"
end

local function status(comp, kind, fields)
  if #comp.subscribers == 0 then return end
  local m = fields or {}
  m.status = kind
  m.time = acoro.now()
  internal().publish(comp, m)
end

local function wake(job)
  local w = job.batch and job.batch.waiter or job.waiter
  if w then w:resume() end
end

-- The scheduler side cannot run code of this process.
local function portable(comp, level)
  for i, a in ipairs(comp.allocations or {}) do
    if type(a) == "function" then
      error(("acoro.discoro: schedule: allocations[%d] is a function, which a shared scheduler cannot run:"
        .. " use discoro.NodeAllocate"):format(i), level)
    end
  end
end

-- files=: they are on this host, so this process sends them to each node
-- the scheduler names (into the computation's directory there, `base`) and
-- tells the scheduler's coroutine that asked.
local function send_files(comp, reply, node_loc, base)
  local ok, why = acoro.peer(node_loc, 10)
  if ok then
    for _, f in ipairs(comp.files) do
      local sent, err = acoro.send_file(node_loc, f.path,
        { dir = f.dir and (base .. "/" .. f.dir) or base, overwrite = true })
      if not sent then
        ok, why = false, ("file %s not sent: %s"):format(f.path, tostring(err))
        break
      end
    end
  else
    why = ("files not sent: %s"):format(tostring(why))
  end
  pcall(reply.send, reply, { "files_sent", ok and true or false, why and tostring(why) })
end

local function description(comp, o)
  local files = {}
  for i, f in ipairs(comp.files) do files[i] = f.path end
  local allocations
  if comp.allocations then
    allocations = {}
    for i, a in ipairs(comp.allocations) do
      allocations[i] = { host = a.host, name = a.name, cpus = a.cpus, memory = a.memory, disk = a.disk }
    end
  end
  return { src = comp.src, name = comp.name, retries = comp.retries, window = comp.window,
    pulse_interval = comp.pulse_interval, zombie_period = comp.zombie_period, server_setup = comp.server_setup,
    setup_args = comp.setup_args, node_setup = comp.node_setup, node_args = comp.node_args,
    allocations = allocations, disable_nodes = comp.disable_nodes, disable_servers = comp.disable_servers,
    peers = comp.peers, watch = #comp.subscribers > 0, timeout = o.timeout, files = files }
end

-- What comes from the scheduler: its answer, results, handles, status.
local function collector(comp)
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then
      if m.coro == comp.proxy then comp:_scheduler_lost(tostring(m.reason)) end
    elseif type(m) == "table" then
      local op = m[1]
      if op == "done" then
        -- every answer comes from the scheduler, the one "server" of this
        -- computation's jobs: never a late one from a lost server
        local job = comp.jobs[m[2]]
        comp:_done(m[2], m[3], m[4], job and job.server and job.server.h)
      elseif op == "started" then
        local job = comp.jobs[m[2]]
        if job and acoro.is_remote(m[3]) then
          job.handle = m[3]
          status(comp, "CoroCreated", { job = job.id, fn = job.fname, coro = m[3], location = m[3].location })
          wake(job)
        end
      elseif op == "status" and type(m[2]) == "table" and type(m[2].status) == "string" then
        local s = m[2]
        s.time = acoro.now()
        internal().publish(comp, s)
      elseif op == "server_up" and type(m[2]) == "string" then
        -- a job's handle is a handle on that server: this process links with
        -- it (send, monitor, join work on it as on any remote handle)
        local loc = m[2]
        acoro.spawn(function() acoro.peer(loc, 10) end)
      elseif op == "send_files" and acoro.is_remote(m[2]) and type(m[3]) == "string" and type(m[4]) == "string" then
        acoro.spawn(send_files, comp, m[2], m[3], m[4])
      elseif (op == "scheduled" or op == "refused") and not comp.answer then
        comp.answer = m
        if comp.schedule_waiter then comp.schedule_waiter:resume() end
      end
    end
  end
end

local methods = {}

-- The scheduler stands as one server: its window is the computation's
-- business there, so every job goes at once.
function methods:_send_job(job, s)
  s.inflight[job.id] = job
  s.n = s.n + 1
  job.server = s
  if job.deadline then job.deadline = job.deadline + GRACE end
  local ok, sent = pcall(s.h.send, s.h, { "job", job.id, job.fname, job.args, job.async, job.watcher, job.limit,
    job.where })
  if not ok or not sent then
    s.inflight[job.id] = nil
    s.n = s.n - 1
    job.server = nil
    self:_finish(job, false, ok and "unreachable" or tostring(sent))
  end
end

-- run_at: the scheduler matches `where` against its servers.
function methods._server_at() return true end

function methods:_hopeless()
  return #self.server_list == 0
end

-- The scheduler is gone (its process, or the link to it): what it held fails
-- as a lost server's jobs with no retry left.
function methods:_scheduler_lost(reason)
  local s = self.server_list[1]
  self.server_list = {}
  if s then
    for _, job in pairs(s.inflight) do self:_finish(job, false, "unreachable") end
  end
  acoro.log.warn(("acoro.discoro: the shared scheduler of %s is gone (%s)"):format(self.name, reason))
end

function methods:close(o)
  local proxy, was = self.proxy, self.state
  local r = internal().Computation.close(self, o)
  if proxy and was == "scheduled" then pcall(proxy.send, proxy, { "close" }) end
  return r
end

-- A question to the scheduler; the answer comes to the caller.
local function ask(self, what, ...)
  if self.state ~= "scheduled" or #self.server_list == 0 then return nil end
  local me = acoro.self()
  if not self.proxy:send({ what, me, ... }) then return nil end
  local m = acoro.receive_match(function(x)
    return type(x) == "table" and x[1] == "answer" and x[2] == what
  end, 10)
  return m and m[3]
end

function methods:nodes() return ask(self, "nodes") or {} end

function methods:servers() return ask(self, "servers") or {} end

function methods:enable_node(where, ...)
  if type(where) ~= "string" then error("acoro.discoro: enable_node: a location, address or name expected", 2) end
  if self.state ~= "scheduled" then error("acoro.discoro: enable_node: the computation is not scheduled", 2) end
  return ask(self, "enable_node", where, pack(...)) or 0
end

function methods:enable_server(where, ...)
  if type(where) ~= "string" then error("acoro.discoro: enable_server: a server location expected", 2) end
  return ask(self, "enable_server", where, pack(...)) or 0
end

-- Status messages cross the network only while someone here reads them.
local function watch(self)
  if self.proxy then pcall(self.proxy.send, self.proxy, { "watch", #self.subscribers > 0 }) end
end

function methods:subscribe(co)
  local r = internal().Computation.subscribe(self, co)
  watch(self)
  return r
end

function methods:unsubscribe(co)
  local r = internal().Computation.unsubscribe(self, co)
  watch(self)
  return r
end

-- schedule(comp, o): comp:schedule{scheduler = "HOST:PORT", timeout=}.
function M.schedule(comp, o)
  local loc = o.scheduler
  if type(loc) ~= "string" or not loc:match("^.+:%d+$") then
    error("acoro.discoro: schedule: scheduler must be the HOST:PORT of an acoro-scheduler", 3)
  end
  portable(comp, 4)
  if not acoro.node() then
    local no = {}
    for k, v in pairs(comp.node_opts or {}) do no[k] = v end
    if no.secret == nil and (os.getenv("ACORO_SECRET") or "") ~= "" then no.secret = os.getenv("ACORO_SECRET") end
    if no.udp_port == nil then no.udp_port = internal().DEFAULT_UDP_PORT end
    acoro.node(no)
  end
  for k, f in pairs(methods) do comp[k] = f end
  comp.state = "scheduled"
  comp.collector = acoro.spawn(collector, comp)
  comp.collector:set_daemon()
  local timeout = o.timeout or 10
  local deadline = acoro.now() + timeout + 2 -- the scheduler waits `timeout` for a node
  local function failed(why)
    internal().Computation.close(comp)
    return nil, "no scheduler took the computation: " .. why, "ENOPEER"
  end
  local up, why = acoro.peer(loc, timeout)
  if not up then return failed(loc .. ": " .. tostring(why)) end
  local svc = acoro.locate("discoro.scheduler", { location = loc, timeout = math.max(0.1, deadline - acoro.now()) })
  if not svc then return failed(loc .. ": no acoro-scheduler there") end
  comp.schedule_waiter = acoro.self()
  svc:send({ "computation", comp.collector, description(comp, o) })
  while not comp.answer and acoro.now() < deadline do acoro.suspend(deadline - acoro.now()) end
  comp.schedule_waiter = nil
  local a = comp.answer
  if not a then return failed(loc .. ": no answer") end
  if a[1] == "refused" or not acoro.is_remote(a[2]) then return failed(tostring(a[2])) end
  comp.proxy = a[2]
  comp.proxy:monitor(comp.collector)
  comp.window = math.huge
  comp.server_list = { { h = comp.proxy, slot = 0, n = 0, inflight = {} } }
  return true
end

return M

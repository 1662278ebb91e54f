-- acoro.discoro.share: how a shared scheduler (acoro-scheduler) divides the
-- nodes between the computations it runs. Each computation has servers of
-- its own on a node, but the node's CPUs are one: the jobs in flight on a
-- node, all computations together, are bounded by its CPUs times `per_cpu`,
-- and each place that frees goes to the next computation in turn that has a
-- job queued. A computation that comes later gets every other place from
-- then on, however long the queue of one before it.
local M = {}

local ipairs = ipairs

local Share = {}
Share.__index = Share

-- new{per_cpu=} (default 16, a computation's default window per server).
function M.new(o)
  o = o or {}
  return setmetatable({ comps = {}, turn = 1, per_cpu = o.per_cpu or 16, used = {}, caps = {} }, Share)
end

function Share:add(comp)
  comp.share = self
  self.comps[#self.comps + 1] = comp
end

-- A computation closed: its places are free for the others.
function Share:remove(comp)
  for i, c in ipairs(self.comps) do
    if c == comp then
      table.remove(self.comps, i)
      if self.turn > i then self.turn = self.turn - 1 end
      break
    end
  end
  comp.share = nil
  self:dispatch()
end

-- room(comp, s) -> whether server s of comp may take one more job: its
-- node's jobs in flight (every computation's) are below its places.
function Share:room(comp, s)
  local key = s.node and s.node.location or "?"
  local info = comp.node_set[s.node]
  local cpus = info and tonumber(info.cpus) or 1
  local cap = self.caps[key]
  if not cap or cap < cpus * self.per_cpu then
    cap = cpus * self.per_cpu
    self.caps[key] = cap
  end
  return (self.used[key] or 0) < cap
end

function Share:placed(s)
  local key = s.node and s.node.location or "?"
  self.used[key] = (self.used[key] or 0) + 1
end

-- Places jobs, one per computation in turn, until none can be placed. The
-- counts in flight per node are taken afresh each time (a job done, a server
-- lost, a computation closed change them), then kept as jobs are placed.
local function place(self)
  repeat
    self.again = false
    local used = {}
    for _, c in ipairs(self.comps) do
      for _, s in ipairs(c.server_list) do
        local key = s.node and s.node.location or "?"
        used[key] = (used[key] or 0) + s.n
      end
    end
    self.used = used
    local comps = self.comps
    for _, c in ipairs(comps) do
      if c.state == "scheduled" and #c.at_jobs > 0 then c:_dispatch_at() end
    end
    local idle, i = 0, self.turn
    while idle < #comps do
      if i > #comps then i = 1 end
      local c = comps[i]
      i = i + 1
      local s = c.state == "scheduled" and c:_place_one()
      if s then
        self:placed(s)
        idle = 0
        self.turn = i
      else
        idle = idle + 1
      end
    end
  until not self.again
end

function Share:dispatch()
  -- a job that cannot be sent ends at once, and its end may dispatch again
  if self.busy then
    self.again = true
    return
  end
  self.busy = true
  local ok, err = pcall(place, self)
  self.busy = false
  if not ok then error(err, 0) end
end

return M

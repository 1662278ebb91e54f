-- acoro.discoro.node_monitor: what `acoro-node --http PORT` shows, the node
-- as it sees itself: its computations, their servers, what its host has
-- free. Jobs go from a client straight to the servers, so the node counts
-- none. A source for acoro.discoro.httpd (the same JSON as a computation's).
local acoro = require "acoro"
local avail = require "acoro.discoro.avail"

local M = {}

local Source = {}
Source.__index = Source

-- What the host has free, read at most once a second (a pulse's figures).
function Source:reading()
  local now = acoro.now()
  if not self.read_at or now - self.read_at >= 1 then
    self.last, self.read_at = self.avail(), now
  end
  return self.last
end

function Source:_monitor_state()
  local node = self.node
  local servers, comps = {}, {}
  for _, comp in pairs(node.comps) do
    local n = 0
    for slot, loc in pairs(comp.servers or {}) do
      if comp.procs[slot] then
        n = n + 1
        servers[#servers + 1] = { location = loc, node = node.location, done = 0, jobs = {} }
      end
    end
    comps[#comps + 1] = { id = comp.id, name = comp.name, client = comp.sched.location, servers = n }
  end
  table.sort(comps, function(a, b) return a.id < b.id end)
  return { name = node.name, submitted = 0, running = 0, done = 0, failed = 0, requeued = 0,
    nodes = { { location = node.location, name = node.name, status = "up", avail = self:reading(),
      updated = self.read_at } },
    servers = servers, computations = comps }
end

-- M.start(node, port, opts) -> monitor | nil, err, code: node is the
-- daemon's Node (its comps, location, name, dest).
function M.start(node, port, opts)
  local o = { port = port }
  for k, v in pairs(opts or {}) do o[k] = v end
  local source = setmetatable({ node = node, avail = avail.reader(node.dest) }, Source)
  return require("acoro.discoro.httpd")._new(source, o, 2)
end

return M

-- acoro.discoro.sched_monitor: what `acoro-scheduler --http PORT` shows, the
-- computations of every client it runs at once, as one cluster: the nodes
-- and servers they use, job counts summed, and each computation listed. A
-- source for acoro.discoro.httpd (the same JSON as a computation's).
--
-- Job ids are a computation's own, so two clients' jobs share them: the
-- page sees id = computation * 2^32 + job id, which stays an exact number
-- and tells terminate which computation to ask.
local M = {}

local SPLIT = 2 ^ 32

local Source = {}
Source.__index = Source

function Source:_monitor_state()
  local sum = { submitted = 0, running = 0, done = 0, failed = 0, requeued = 0 }
  local nodes, by_loc, servers, comps = {}, {}, {}, {}
  for _, e in pairs(self.sched.comps) do
    local st = e.comp:_monitor_state()
    for k in pairs(sum) do sum[k] = sum[k] + (tonumber(st[k]) or 0) end
    for _, n in ipairs(st.nodes) do
      -- a node shared by several computations is one row
      if not by_loc[n.location] or by_loc[n.location].status ~= "up" then
        if not by_loc[n.location] then nodes[#nodes + 1] = n end
        by_loc[n.location] = n
      end
    end
    for _, s in ipairs(st.servers) do
      for _, j in ipairs(s.jobs) do j.id = e.id * SPLIT + j.id end
      servers[#servers + 1] = s
    end
    comps[#comps + 1] = { id = e.id, name = e.name, client = e.client.location, servers = #st.servers,
      jobs = st.running }
  end
  for i, n in ipairs(nodes) do nodes[i] = by_loc[n.location] end
  table.sort(comps, function(a, b) return a.id < b.id end)
  return { name = self.sched.name or self.sched.location, submitted = sum.submitted, running = sum.running,
    done = sum.done, failed = sum.failed, requeued = sum.requeued, nodes = nodes, servers = servers,
    computations = comps }
end

function Source:_monitor_terminate(id)
  id = tonumber(id)
  if not id then return nil, "no such job running" end
  local cid, jid = math.floor(id / SPLIT), id % SPLIT
  for _, e in pairs(self.sched.comps) do
    if e.id == cid then return e.comp:_monitor_terminate(jid) end
  end
  return nil, "no such job running"
end

-- M.start(sched, port, opts) -> monitor | nil, err, code: sched is the
-- acoro-scheduler's Scheduler (its comps: {id=, comp=, client=, name=}).
function M.start(sched, port, opts)
  local o = { port = port }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("acoro.discoro.httpd")._new(setmetatable({ sched = sched }, Source), o, 2)
end

return M

-- acoro.discoro.progress: run_results' progress line, "done/total, jobs/s,
-- ETA", redrawn at most twice a second and ended by a last state. It goes
-- through acoro.log's progress sink (log.progress: on stderr only when it
-- is a terminal, unless a script or host set a progress writer), or to a
-- function given instead.
local acoro = require "acoro"

local M = {}

M.EVERY = 0.5 -- seconds between redraws

-- new(total, opt) -> a progress line, or nil when there is none to draw:
-- opt false, or nil/true with acoro.log showing no progress line; a function
-- opt gets (done, total, rate, eta) instead of a line being drawn.
function M.new(total, opt)
  if opt == false or total == 0 then return nil end
  local fn = type(opt) == "function" and opt or nil
  if not fn and not acoro.log.progress_enabled() then return nil end
  return setmetatable({ total = total, start = acoro.now(), last = -math.huge, fn = fn }, { __index = M })
end

function M:draw(done, final)
  local now = acoro.now()
  if not final and now - self.last < M.EVERY then return end
  self.last = now
  local elapsed = now - self.start
  local rate = elapsed > 0 and done / elapsed or 0
  local eta = rate > 0 and (self.total - done) / rate or nil
  if self.fn then return self.fn(done, self.total, rate, eta) end
  acoro.log.progress(("discoro: %d/%d jobs, %.1f jobs/s, ETA %s"):format(done, self.total, rate,
    eta and ("%.0f s"):format(eta) or "?"), final)
end

return M

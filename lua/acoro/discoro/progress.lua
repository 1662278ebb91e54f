-- acoro.discoro.progress: run_results' progress line, "done/total, jobs/s,
-- ETA", redrawn in place at most twice a second and ended with a newline. It
-- is a terminal's display, not a message: it goes to stderr only when stderr
-- is a terminal (acoro.log's writers take whole lines, which a redrawn line
-- is not), or to a function given instead.
local acoro = require "acoro"
local ffi = require "ffi"

pcall(ffi.cdef, "int isatty(int fd);")

local M = {}

M.EVERY = 0.5 -- seconds between redraws

local function tty_writer(s)
  io.stderr:write(s)
  io.stderr:flush()
end

-- new(total, opt) -> a progress line, or nil when there is none to draw:
-- opt false, or nil/true with stderr not a terminal; a function opt gets
-- (done, total, rate, eta) instead of a line being drawn.
function M.new(total, opt)
  if opt == false or total == 0 then return nil end
  local fn = type(opt) == "function" and opt or nil
  if not fn and ffi.C.isatty(2) ~= 1 then return nil end
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
  tty_writer(("\rdiscoro: %d/%d jobs, %.1f jobs/s, ETA %s   %s"):format(done, self.total, rate,
    eta and ("%.0f s"):format(eta) or "?", final and "\n" or ""))
end

return M

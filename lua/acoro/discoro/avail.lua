-- acoro.discoro.avail: what a host has free, sent with each pulse of
-- acoro-node to its computations' schedulers: CPU idle percent since the
-- previous reading, memory available, disk free under the node's dest path,
-- swap free (bytes). Linux /proc; a figure that cannot be read is nil.
local acoro = require "acoro"

local M = {}

local tonumber = tonumber

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- total and idle (idle + iowait) jiffies of the "cpu" line
local function cpu_times()
  local s = read("/proc/stat")
  local line = s and s:match("^cpu%s+([^\n]*)")
  if not line then return nil end
  local total, i, idle = 0, 0, 0
  for n in line:gmatch("%d+") do
    i = i + 1
    n = tonumber(n)
    total = total + n
    if i == 4 or i == 5 then idle = idle + n end
  end
  return total, idle
end

local function meminfo(key, text)
  local kb = text and text:match("\n" .. key .. ":%s*(%d+)") or (text and text:match("^" .. key .. ":%s*(%d+)"))
  return kb and tonumber(kb) * 1024 or nil
end

-- A reader keeps the previous CPU reading: the idle percent is the share of
-- the time between two calls (since boot at the first call).
function M.reader(dest)
  local last_total, last_idle = 0, 0
  return function()
    local total, idle = cpu_times()
    local cpu
    if total and total > last_total then
      cpu = math.floor(1000 * (idle - last_idle) / (total - last_total) + 0.5) / 10
      last_total, last_idle = total, idle
    end
    local mem = read("/proc/meminfo")
    local st = acoro.fs.statfs(dest)
    return { cpu = cpu, memory = meminfo("MemAvailable", mem), swap = meminfo("SwapFree", mem),
      disk = st and st.avail or nil }
  end
end

return M

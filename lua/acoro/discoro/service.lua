-- acoro.discoro.service: acoro-node's hours of service (--service-start,
-- --service-stop, --service-end, asyncoro discoronode's): the times of day,
-- each day, between which the node takes new computations, and the one at
-- which it closes those still running.
--
-- TEST HOOK: with ACORO_NODE_CLOCK_FILE set, the node's time of day is what
-- that file says ("HH:MM" or "HH:MM:SS"), read at each look, instead of the
-- local time: a spec moves the clock by writing the file, and waits for the
-- node's log line rather than for the wall clock. Not meant for real use.
local acoro = require "acoro"

local M = {}

local DAY = 24 * 3600
local floor, tonumber = math.floor, tonumber

-- "HH:MM" -> seconds since midnight | nil
local function parse_hhmm(s)
  local h, m, sec = s:match("^(%d%d?):(%d%d)$")
  if not h then h, m, sec = s:match("^(%d%d?):(%d%d):(%d%d)$") end
  h, m, sec = tonumber(h), tonumber(m), tonumber(sec) or 0
  if not h or h > 23 or m > 59 or sec > 59 then return nil end
  return h * 3600 + m * 60 + sec
end

local function hhmm(t)
  t = floor(t) % DAY
  return ("%02d:%02d"):format(floor(t / 3600), floor(t / 60) % 60)
end

-- The node's time of day, in seconds since local midnight.
local function clock()
  local path = os.getenv("ACORO_NODE_CLOCK_FILE")
  if path and path ~= "" then
    local f = io.open(path, "rb")
    local t = f and parse_hhmm((f:read("*l") or ""):match("^%s*(.-)%s*$"))
    if f then f:close() end
    if t then return t end
  end
  local d = os.date("*t")
  return d.hour * 3600 + d.min * 60 + d.sec
end
M.clock = clock

-- Seconds from a forward to b on the 24-hour circle, in [0, DAY).
local function ahead(a, b) return (b - a) % DAY end

local Service = {}
Service.__index = Service

-- new{start=, stop=, ["end"]=} ("HH:MM" strings, any of them nil) ->
-- service | nil (none given) | nil, why. New computations are taken from
-- start (default 00:00) until stop (default end, else midnight), the
-- window wrapping past midnight when stop is earlier (22:00 to 06:00);
-- at end the running ones are closed.
function M.new(o)
  if not (o.start or o.stop or o["end"]) then return nil end
  local t = {}
  for _, k in ipairs({ "start", "stop", "end" }) do
    if o[k] then
      t[k] = parse_hhmm(o[k])
      if not t[k] or not o[k]:match("^%d%d?:%d%d$") then
        return nil, ("--service-%s needs a time of day HH:MM, got %s"):format(k, o[k])
      end
    end
  end
  local s = t.start or 0
  local e = t["end"]
  local stop = t.stop or e or s
  if t.stop and stop == s then return nil, "--service-stop is --service-start: the node would never take one" end
  if e and e == s then return nil, "--service-end is --service-start" end
  -- stop no later than end, both counted from start
  if e and t.stop and ahead(s, stop) > ahead(s, e) then
    return nil, ("--service-stop %s comes after --service-end %s (from --service-start %s)")
      :format(hhmm(stop), hhmm(e), hhmm(s))
  end
  return setmetatable({ start = s, stop = stop, ["end"] = e }, Service)
end

-- Whether new computations are taken now: true, or false and why.
function Service:taking(now)
  now = now or clock()
  -- start == stop (only start, or only start and an end past it): until midnight
  local len = self.stop == self.start and ahead(self.start, 0) or ahead(self.start, self.stop)
  if len == 0 then len = DAY end
  if ahead(self.start, now) < len then return true end
  local stop = self.stop == self.start and 0 or self.stop
  return false, ("out of service: it takes computations from %s to %s (its time is %s)")
    :format(hhmm(self.start), stop == 0 and "24:00" or hhmm(stop), hhmm(now))
end

-- Watches the clock in a daemon coroutine: logs when the node starts and
-- stops taking computations, and calls on_end() each time the clock
-- passes the end of service. Wakes at the next boundary (at most a minute
-- later: the clock may be set meanwhile); with the test hook, every 0.1 s.
function Service:watch(on_end)
  local log = acoro.log
  local hooked = (os.getenv("ACORO_NODE_CLOCK_FILE") or "") ~= ""
  local stop = self.stop == self.start and 0 or self.stop
  log.info(("acoro-node: takes computations from %s to %s%s; its time is %s"):format(hhmm(self.start),
    stop == 0 and "24:00" or hhmm(stop), self["end"] and ", closes them at " .. hhmm(self["end"]) or "",
    hhmm(clock())))
  local co = acoro.spawn(function()
    local prev = clock()
    local was = self:taking(prev)
    while true do
      local wait = 0.1
      if not hooked then
        wait = 60
        for _, b in ipairs({ self.start, self.stop, self["end"] or self.start }) do
          local d = ahead(prev, b)
          if d > 0 and d < wait then wait = d end
        end
      end
      acoro.suspend(wait)
      local now = clock()
      local e = self["end"]
      -- a clock set back (less than half a day) passes no end
      local fwd = ahead(prev, now)
      if e and fwd < DAY / 2 and ahead(prev, e) > 0 and ahead(prev, e) <= fwd then
        log.info(("acoro-node: end of service (%s): closing every computation"):format(hhmm(e)))
        on_end(("end of service (%s)"):format(hhmm(e)))
      end
      local is, why = self:taking(now)
      if is ~= was then
        if is then
          log.info(("acoro-node: in service at %s: taking computations"):format(hhmm(now)))
        else
          log.info(("acoro-node: %s; running ones go on"):format(why))
        end
        was = is
      end
      prev = now
    end
  end)
  co:set_daemon()
  return co
end

M.hhmm = hhmm

return M

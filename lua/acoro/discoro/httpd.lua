-- acoro.discoro.httpd: the web monitor of a computation (or of an acoro-node,
-- `acoro-node --http PORT`): pages, a JSON snapshot, Server-Sent Events,
-- terminating a job, Prometheus metrics, on acoro.http. The URLs, the JSON
-- and the auth are the contract of docs/discoro.md, "Web monitor".
--
-- It reads its source's state at each tick (source:_monitor_state()) rather
-- than a status message per job, so that watching a computation costs its job
-- rate next to nothing; each SSE connection keeps the version it last sent.
local acoro = require "acoro"
local http = require "acoro.http"
local log = require "acoro.log"
local I = require "acoro.internal"
local cjson = require "cjson"
local bit = require "bit"
local ffi = require "ffi"

local type, tostring, tonumber, pairs, ipairs, error, pcall, setmetatable =
  type, tostring, tonumber, pairs, ipairs, error, pcall, setmetatable
local concat, sort, floor, huge = table.concat, table.sort, math.floor, math.huge
local byte, char, bxor, bor = string.byte, string.char, bit.bxor, bit.bor

local M = {}

M.DEFAULTS = { host = "127.0.0.1", port = 8181, interval = 0.5, history = 600 }
local SAMPLE_EVERY = 1   -- seconds between `sample` events
local KEEPALIVE = 15     -- seconds of silence before an SSE comment
local RATE_WINDOW = 5    -- seconds of samples /api/status's rate is over
local MAX_CLOSED = 256   -- closed nodes and servers remembered, each
local ARGS_MAX = 200     -- characters of a job's printed arguments
local MAX_CONNS = 64     -- connections at once, all clients (a monitor needs few)
local PER_SOURCE = 32    -- connections at once from one address
local MAX_STREAMS = 16   -- /api/events streams at once (each holds a connection)
local TIMEOUT = 10       -- seconds a request (or an idle keep-alive) may take
local COOKIE = "acoro_monitor"

-- The pages (index.html, app.js, app.css) live beside this file, in httpd/,
-- wherever the Lua tree was installed.
local here = package.searchpath("acoro.discoro.httpd", package.path)
M.assets = here and here:gsub("%.lua$", "") .. "/" or nil

local ASSETS = {
  ["index.html"] = "text/html; charset=utf-8",
  ["app.js"] = "text/javascript; charset=utf-8",
  ["app.css"] = "text/css; charset=utf-8",
}
-- Pages load nothing but their own script and style, and no other site may
-- frame them.
local CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
  .. "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

local function misuse(msg, level)
  error("acoro.discoro.httpd: " .. msg, level + 1)
end

-- Wall-clock seconds, read once per monitor: the JSON's times are Unix
-- times, acoro.now() + the offset (acoro.now() is monotonic). Another module
-- may have declared clock_gettime with its own struct first: then whole
-- seconds (os.time) do.
pcall(ffi.cdef, [[
  typedef struct { long sec; long nsec; } acoro_monitor_ts;
  int clock_gettime(int clk, acoro_monitor_ts *ts);]])
local function wall()
  local ok, t = pcall(function()
    local ts = ffi.new("acoro_monitor_ts")
    assert(ffi.C.clock_gettime(0, ts) == 0)
    return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
  end)
  return ok and t or os.time()
end

------------------------------------------------------------------------------
-- JSON. lua-cjson 2.1.0 writes an empty table as {}, which a page cannot
-- iterate as a list: this small encoder knows the lists (ARRAY). Strings
-- escape <, > and & too, so that no answer can be sniffed as HTML.

local ARRAY = {}
local function array(t) return setmetatable(t, ARRAY) end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function esc(c)
  local e = ESC[c]
  if not e then
    e = ("\\u%04x"):format(byte(c))
    ESC[c] = e
  end
  return e
end

local function number(n)
  if n ~= n or n == huge or n == -huge then return "null" end
  if n % 1 == 0 and n > -2 ^ 53 and n < 2 ^ 53 then return ("%d"):format(n) end
  return ("%.15g"):format(n)
end

local function encode(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = '"' .. v:gsub('[%c"\\<>&]', esc) .. '"'
  elseif t == "number" then
    out[#out + 1] = number(v)
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "table" then
    if getmetatable(v) == ARRAY or v[1] ~= nil then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for k, x in pairs(v) do
        if not first then out[#out + 1] = "," end
        first = false
        encode(tostring(k), out)
        out[#out + 1] = ":"
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = "null"
  end
  return out
end
local function json(v) return concat(encode(v, {})) end
M._json = json

-- A job's arguments as short printable text (Lua's notation, every byte
-- outside printable ASCII escaped), at most ARGS_MAX characters.
local function printable(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' or c == "\\" then return "\\" .. c end
    return ("\\%d"):format(byte(c))
  end) .. '"'
end

local function repr(v, out, depth)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = printable(#v > ARGS_MAX and v:sub(1, ARGS_MAX) or v)
  elseif t == "number" then
    out[#out + 1] = v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 and ("%d"):format(v) or ("%.14g"):format(v)
  elseif t == "table" and getmetatable(v) == nil and depth < 3 then
    out[#out + 1] = "{"
    local n = 0
    for k, x in pairs(v) do
      if n > 0 then out[#out + 1] = ", " end
      n = n + 1
      if n > 20 then
        out[#out + 1] = "..."
        break
      end
      if type(k) ~= "number" then
        out[#out + 1] = type(k) == "string" and k:match("^[%a_][%w_]*$") or ("[" .. printable(tostring(k)) .. "]")
        out[#out + 1] = " = "
      end
      repr(x, out, depth + 1)
    end
    out[#out + 1] = "}"
  else
    out[#out + 1] = printable(tostring(v)):sub(2, -2)
  end
end

function M._args(args)
  if type(args) ~= "table" then return "" end
  local out = {}
  for i = 1, args.n or #args do
    if i > 1 then out[#out + 1] = ", " end
    repr(args[i], out, 1)
    if #out > ARGS_MAX then break end
  end
  local s = concat(out)
  if #s > ARGS_MAX then s = s:sub(1, ARGS_MAX - 3) .. "..." end
  return s
end

------------------------------------------------------------------------------
-- Auth. Comparisons take the same time whatever the first differing byte is.

local function same(a, b)
  if type(a) ~= "string" or type(b) ~= "string" then return false end
  local d = bxor(#a, #b)
  for i = 1, #b do d = bor(d, bxor(byte(a, i) or 0, byte(b, i))) end
  return d == 0
end
M._same = same

local B64 = {}
for i, c in ipairs({ ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"):byte(1, -1) }) do
  B64[c] = i - 1
end
local function unbase64(s)
  s = s:gsub("=+$", "")
  local out, acc, bits = {}, 0, 0
  for i = 1, #s do
    local v = B64[byte(s, i)]
    if not v then return nil end
    acc = bor(bit.lshift(acc, 6), v)
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      out[#out + 1] = char(bit.band(bit.rshift(acc, bits), 255))
    end
  end
  return concat(out)
end

function M._is_loopback(host)
  return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- A monitor on loopback answers only requests that name a loopback host: a
-- page of another site whose name it made resolve to 127.0.0.1 (DNS
-- rebinding) sends its own name, and would otherwise read the state, the
-- CSRF token with it, and terminate jobs. No Host at all is no browser's.
function M._loopback_host(h)
  if h == nil then return true end
  local name = h:match("^%[([^%]]*)%]:?%d*$") or h:match("^([^:%[%]]*):?%d*$")
  return name ~= nil and M._is_loopback(name:lower())
end

local Monitor = {}
Monitor.__index = Monitor

function Monitor:_authorized(req)
  local auth = self.auth
  if not auth then return true end
  local h = req.headers.authorization
  if auth.token then
    local t = h and h:match("^[Bb]earer%s+(%S+)%s*$")
    if t and same(t, auth.token) then return true end
    local cookies = req.headers.cookie
    if cookies then
      for name, value in (cookies .. ";"):gmatch("%s*([^=;]+)=([^;]*);") do
        if name == COOKIE and same(value, auth.token) then return true end
      end
    end
    return false
  end
  local b = h and h:match("^[Bb]asic%s+([%w+/=]+)%s*$")
  local up = b and unbase64(b)
  local user, password = (up or ""):match("^([^:]*):(.*)$")
  -- both compared, whatever the first gives: the time says nothing
  local u, p = same(user, auth.user), same(password, auth.password)
  return u and p
end

function Monitor:_refuse(res)
  res:header("www-authenticate", self.auth.token and 'Bearer realm="acoro"' or 'Basic realm="acoro"')
  res:header("cache-control", "no-store")
  res:send("unauthorized\n", 401)
end

-- guard(handler): every route checks the auth first. `?token=` on a GET
-- sets the cookie and answers 302 to the same URL without it, so the token
-- does not stay in the address bar, the history or a Referer.
function Monitor:_guard(handler)
  return function(req, res)
    res:header("x-content-type-options", "nosniff")
    res:header("referrer-policy", "no-referrer")
    if self.loopback and not M._loopback_host(req.headers.host) then
      res:header("cache-control", "no-store")
      return res:send("this monitor answers only to a loopback host name\n", 403)
    end
    local t = req.query.token
    if t ~= nil and self.auth and self.auth.token and (req.method == "GET" or req.method == "HEAD") then
      if type(t) ~= "string" or not same(t, self.auth.token) then return self:_refuse(res) end
      local keep = {}
      for part in req.query_string:gmatch("[^&]+") do
        if not part:match("^token=") and not part:match("^token$") then keep[#keep + 1] = part end
      end
      -- never "//host" nor "/\\host", which a browser takes for another site
      local path = "/" .. (req.target:match("^[^?#]*") or "/"):gsub("\\", "%%5C"):gsub("^/+", "")
      res:header("location", path .. (#keep > 0 and "?" .. concat(keep, "&") or ""))
      res:header("set-cookie", COOKIE .. "=" .. self.auth.token .. "; HttpOnly; SameSite=Strict; Path=/"
        .. (self.tls and "; Secure" or ""))
      res:header("cache-control", "no-store")
      return res:send("", 302)
    end
    if not self:_authorized(req) then return self:_refuse(res) end
    return handler(self, req, res)
  end
end

------------------------------------------------------------------------------
-- The state: refreshed at each tick and on each /api/status, its JSON
-- cached; `version` bumps when anything in it changed.

local function sorted(list)
  sort(list, function(a, b) return a.location < b.location end)
  return array(list)
end

-- remember(set, order, key, entry): a closed node or server, the oldest
-- forgotten past MAX_CLOSED.
local function remember(set, order, key, entry)
  if not set[key] then
    order[#order + 1] = key
    if #order > MAX_CLOSED then set[table.remove(order, 1)] = nil end
  end
  set[key] = entry
end

function Monitor:refresh()
  local raw = self.source:_monitor_state()
  local off = self.off
  local nodes, by_loc, servers, live, up = {}, {}, {}, {}, {}
  for _, n in ipairs(raw.nodes or {}) do
    local a = type(n.avail) == "table" and n.avail or {}
    local e = { name = n.name and tostring(n.name) or n.location, location = n.location, status = n.status,
      servers = 0, jobs = 0, done = self.retired[n.location] or 0,
      avail = { cpu = tonumber(a.cpu), memory = tonumber(a.memory), disk = tonumber(a.disk),
        swap = tonumber(a.swap) },
      updated = n.updated and n.updated + off }
    nodes[#nodes + 1], by_loc[n.location], up[n.location] = e, e, e
    self.closed_nodes[n.location] = nil
  end
  for _, s in ipairs(raw.servers or {}) do
    local jobs = {}
    for i, j in ipairs(s.jobs or {}) do
      jobs[i] = { id = j.id, fn = tostring(j.fn), args = M._args(j.args), started = j.started and j.started + off }
    end
    sort(jobs, function(a, b) return a.id < b.id end)
    local e = { location = s.location, node = s.node, status = "up", done = s.done or 0, jobs = array(jobs) }
    servers[#servers + 1], live[s.location] = e, e
    self.closed_servers[s.location] = nil
    local n = by_loc[s.node]
    if n then
      n.servers, n.jobs, n.done = n.servers + 1, n.jobs + #jobs, n.done + e.done
    end
  end
  -- what was up and is gone shows as closed, its last figures kept
  for loc, e in pairs(self.live_servers) do
    if not live[loc] then
      e.status, e.jobs = "closed", array({})
      remember(self.closed_servers, self.closed_server_order, loc, e)
      self.retired[e.node] = (self.retired[e.node] or 0) + e.done
    end
  end
  self.live_servers = live
  for loc, e in pairs(self.live_nodes) do
    if not up[loc] then
      e.status, e.servers, e.jobs = "closed", 0, 0
      remember(self.closed_nodes, self.closed_node_order, loc, e)
    end
  end
  self.live_nodes = up
  for _, why in ipairs(raw.refusals or {}) do
    local loc = tostring(why):match("^(%S+:%d+): ")
    if loc and not by_loc[loc] and not self.closed_nodes[loc] then
      nodes[#nodes + 1] = { name = loc, location = loc, status = "ignored", servers = 0, jobs = 0, done = 0,
        avail = {} }
      by_loc[loc] = nodes[#nodes]
    end
  end
  for loc, e in pairs(self.closed_nodes) do
    if not by_loc[loc] then nodes[#nodes + 1] = e end
  end
  for _, e in pairs(self.closed_servers) do servers[#servers + 1] = e end
  local st = { name = tostring(raw.name), jobs = { submitted = raw.submitted, running = raw.running,
    done = raw.done, failed = raw.failed, requeued = raw.requeued }, nodes = sorted(nodes),
    servers = sorted(servers), rate = self:rate(),
    computations = raw.computations and array(raw.computations) }
  local key = json(st)
  if key ~= self.key then
    self.key = key
    self.version = self.version + 1
  end
  st.csrf, st.version, st.time = self.csrf, self.version, acoro.now() + off
  self.state, self.done = st, raw.done
  self.json = json(st)
  return st
end

-- Jobs done per second over the last RATE_WINDOW seconds of samples.
function Monitor:rate()
  local h = self.history
  local last = h[#h]
  if not last then return 0 end
  local first = h[math.max(1, #h - RATE_WINDOW)]
  if last.t <= first.t then return last.rate end
  return (last.done - first.done) / (last.t - first.t)
end

function Monitor:sample()
  local st = self.state
  local t = acoro.now() + self.off
  local prev = self.history[#self.history]
  local cpu = {}
  for _, n in ipairs(st.nodes) do
    if n.status == "up" and n.avail.cpu then cpu[n.location] = n.avail.cpu end
  end
  local rate = prev and t > prev.t and (st.jobs.done - prev.done) / (t - prev.t) or 0
  local s = { t = t, rate = rate, done = st.jobs.done, cpu = cpu }
  local h = self.history
  h[#h + 1] = s
  if #h > self.keep then table.remove(h, 1) end
  self.nsamples = self.nsamples + 1
  self.sample_json = nil
  return s
end

-- Wakes the SSE connections waiting for news (one that ended is dropped).
function Monitor:_wake()
  for co in pairs(self.waiters) do
    if not pcall(co.resume, co) then self.waiters[co] = nil end
  end
end

-- The ticker: a refresh each interval, a sample each second; SSE
-- connections waiting are woken when either is new.
function Monitor:_tick()
  local next_refresh, next_sample = acoro.now(), acoro.now() + SAMPLE_EVERY
  while not self.closed do
    local now = acoro.now()
    local wake = false
    if now >= next_refresh then
      local v = self.version
      self:refresh()
      next_refresh = now + self.interval
      wake = self.version ~= v
    end
    if now >= next_sample then
      self:sample()
      next_sample = next_sample + SAMPLE_EVERY
      if next_sample <= now then next_sample = now + SAMPLE_EVERY end
      wake = true
    end
    if wake then self:_wake() end
    -- monitor.busy: seconds the ticks and the SSE sends took (bench/run w7m)
    self.busy = self.busy + acoro.now() - now
    acoro.sleep(math.max(0.001, math.min(next_refresh, next_sample) - acoro.now()))
  end
end

------------------------------------------------------------------------------
-- Handlers.

local function read_asset(self, name)
  local f = io.open(self.assets .. name, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function serve_asset(self, res, name)
  local body = read_asset(self, name)
  if not body then return res:send("not installed: " .. name .. "\n", 404) end
  res:header("content-type", ASSETS[name])
  res:header("cache-control", "no-cache")
  if name == "index.html" then
    res:header("content-security-policy", CSP)
    res:header("x-frame-options", "DENY")
  end
  return res:send(body)
end

local function page(self, _, res) return serve_asset(self, res, "index.html") end

local function api_json(res, body, status)
  res:header("content-type", "application/json")
  res:header("cache-control", "no-store")
  return res:send(body, status)
end

local function status_h(self, _, res)
  self:refresh()
  return api_json(res, self.json)
end

function Monitor:_snapshot()
  local snap = {}
  for k, v in pairs(self.state) do snap[k] = v end
  snap.history = array({ unpack(self.history) })
  return json(snap)
end

local function events_h(self, req, res)
  if req.method == "HEAD" then -- the head alone: no stream to hold open
    res:header("content-type", "text/event-stream")
    return res:header("cache-control", "no-cache")
  end
  if self.streams >= MAX_STREAMS then
    res:header("retry-after", "10")
    return res:send("too many event streams open\n", 503)
  end
  self.streams = self.streams + 1
  local ok, err = pcall(Monitor._stream, self, res)
  self.streams = self.streams - 1
  if not ok then error(err, 0) end
end

function Monitor:_stream(res)
  local sse = res:sse()
  if not sse then return end
  self:refresh()
  local me = acoro.self()
  -- an open page does not keep the program running
  me:set_daemon()
  local sent_v, sent_s = self.version, self.nsamples
  local ok = sse:send("snapshot", self:_snapshot())
  local last = acoro.now()
  self.waiters[me] = true
  while ok and not self.closed do
    local t0 = acoro.now()
    if self.version ~= sent_v then
      sent_v = self.version
      ok = sse:send("status", self.json)
      last = acoro.now()
    end
    if ok and self.nsamples ~= sent_s then
      -- every sample since the last one sent, though a slow client missed wakes
      local h = self.history
      for i = math.max(1, #h - (self.nsamples - sent_s) + 1), #h do
        if not ok then break end
        ok = sse:send("sample", json(h[i]))
      end
      sent_s = self.nsamples
      last = acoro.now()
    end
    self.busy = self.busy + acoro.now() - t0
    if ok and acoro.now() - last >= KEEPALIVE then
      ok = sse:comment("keep-alive")
      last = acoro.now()
    end
    if ok and self.version == sent_v and self.nsamples == sent_s and not self.closed then
      acoro.suspend(math.max(0.01, KEEPALIVE - (acoro.now() - last)))
    end
  end
  self.waiters[me] = nil
end

local function terminate_h(self, req, res)
  if req.method ~= "POST" then
    res:header("allow", "POST")
    return res:send("method not allowed\n", 405)
  end
  if not same(req.headers["x-csrf-token"], self.csrf) then
    return api_json(res, json({ ok = false, error = "bad or missing X-CSRF-Token" }), 403)
  end
  -- a browser names the page that posts: it must be this monitor's own
  local origin = req.headers.origin
  if origin and origin:gsub("^%a[%w+.-]*://", "", 1) ~= req.headers.host then
    return api_json(res, json({ ok = false, error = "cross-origin request" }), 403)
  end
  local ok, body = pcall(cjson.decode, req.body)
  local id = ok and type(body) == "table" and tonumber(body.job)
  if not id then return api_json(res, json({ ok = false, error = "body must be {\"job\": id}" }), 400) end
  local done, why = false, "this monitor cannot terminate jobs"
  if self.source._monitor_terminate then done, why = self.source:_monitor_terminate(id) end
  if not done then return api_json(res, json({ ok = false, error = tostring(why) }), 404) end
  log.info(("acoro.discoro.httpd: job %d terminated from %s"):format(id,
    tostring((req.remote:getpeername()))))
  self:refresh()
  return api_json(res, json({ ok = true }))
end

-- Prometheus text format 0.0.4: label values escape \, " and newline.
local function label(v)
  return (tostring(v):gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

local function metrics_h(self, _, res)
  local st = self:refresh()
  local out = {}
  local function family(name, kind, help)
    out[#out + 1] = "# HELP " .. name .. " " .. help
    out[#out + 1] = "# TYPE " .. name .. " " .. kind
  end
  local function sample(name, labels, v)
    if type(v) ~= "number" then return end
    out[#out + 1] = name .. (labels or "") .. " " .. number(v):gsub("^null$", "NaN")
  end
  family("acoro_discoro_jobs", "gauge", "Jobs of the computation by state (submitted, done, failed and"
    .. " requeued count since it started).")
  for _, k in ipairs({ "submitted", "running", "done", "failed", "requeued" }) do
    sample("acoro_discoro_jobs", '{state="' .. k .. '"}', st.jobs[k])
  end
  local nodes, servers = { up = 0, closed = 0, ignored = 0, disabled = 0 }, { up = 0, closed = 0 }
  for _, n in ipairs(st.nodes) do nodes[n.status] = (nodes[n.status] or 0) + 1 end
  for _, s in ipairs(st.servers) do servers[s.status] = (servers[s.status] or 0) + 1 end
  family("acoro_discoro_nodes", "gauge", "Nodes by status.")
  for _, k in ipairs({ "up", "closed", "ignored", "disabled" }) do
    sample("acoro_discoro_nodes", '{status="' .. k .. '"}', nodes[k])
  end
  family("acoro_discoro_servers", "gauge", "Compute servers by status.")
  for _, k in ipairs({ "up", "closed" }) do
    sample("acoro_discoro_servers", '{status="' .. k .. '"}', servers[k])
  end
  family("acoro_discoro_jobs_per_second", "gauge", "Jobs done per second over the last seconds.")
  sample("acoro_discoro_jobs_per_second", nil, st.rate)
  local per = {
    { "acoro_discoro_node_cpu_idle_percent", "CPU idle percent of the node's host.", "cpu" },
    { "acoro_discoro_node_memory_available_bytes", "Memory available on the node's host.", "memory" },
    { "acoro_discoro_node_disk_free_bytes", "Disk free under the node's dest path.", "disk" },
    { "acoro_discoro_node_swap_free_bytes", "Swap free on the node's host.", "swap" },
  }
  for _, p in ipairs(per) do
    family(p[1], "gauge", p[2])
    for _, n in ipairs(st.nodes) do
      if n.status == "up" then
        sample(p[1], '{node="' .. label(n.location) .. '",name="' .. label(n.name) .. '"}', n.avail[p[3]])
      end
    end
  end
  family("acoro_discoro_node_jobs_running", "gauge", "Jobs running on the node's servers.")
  for _, n in ipairs(st.nodes) do
    if n.status == "up" then
      sample("acoro_discoro_node_jobs_running", '{node="' .. label(n.location) .. '",name="' .. label(n.name)
        .. '"}', n.jobs)
    end
  end
  out[#out + 1] = ""
  res:header("content-type", "text/plain; version=0.0.4; charset=utf-8")
  res:header("cache-control", "no-store")
  return res:send(concat(out, "\n"))
end

local function not_found(_, _, res) return res:send("not found\n", 404) end

------------------------------------------------------------------------------
-- The monitor.

-- monitor:close(): stops serving; SSE connections end.
function Monitor:close()
  if self.closed then return end
  self.closed = true
  self.server:close()
  self:_wake()
  if self.ticker ~= acoro.self() then self.ticker:terminate() end
end

local function check_opts(o, level)
  if o ~= nil and type(o) ~= "table" then misuse("opts must be a table", level) end
  o = o or {}
  if o.host ~= nil and (type(o.host) ~= "string" or o.host == "") then misuse("opts.host must be a host", level) end
  if o.port ~= nil and (type(o.port) ~= "number" or o.port < 0 or o.port > 65535 or o.port % 1 ~= 0) then
    misuse("opts.port must be a port number (0: any)", level)
  end
  for _, k in ipairs({ "interval", "history" }) do
    local v = o[k]
    if v ~= nil and (type(v) ~= "number" or v ~= v or v <= 0) then
      misuse("opts." .. k .. " must be a positive number of seconds", level)
    end
  end
  local a = o.auth
  if a ~= nil then
    if type(a) ~= "table" then misuse("opts.auth must be {token=} or {user=, password=}", level) end
    if a.token ~= nil then
      if type(a.token) ~= "string" or not a.token:match("^[%w%-%._~]+$") then
        misuse("opts.auth.token must be letters, digits, '-', '.', '_' or '~'", level)
      end
    elseif type(a.user) ~= "string" or type(a.password) ~= "string" or a.user:find(":") or a.user == "" then
      misuse("opts.auth must be {token=} or {user=, password=} (strings; no ':' in user)", level)
    end
  end
  if o.tls ~= nil and type(o.tls) ~= "table" then misuse("opts.tls must be {cert=, key=}", level) end
  if o.assets ~= nil and type(o.assets) ~= "string" then misuse("opts.assets must be a directory", level) end
  return o
end

-- M._new(source, opts, level): source is a Computation or anything with
-- _monitor_state() (and _monitor_terminate(id)); see discoro.httpd.
function M._new(source, opts, level)
  level = level or 2
  if type(source) ~= "table" or type(source._monitor_state) ~= "function" then
    misuse("a Computation (or a source with _monitor_state) expected", level)
  end
  local o = check_opts(opts, level)
  local host = o.host or M.DEFAULTS.host
  local auth = o.auth and { token = o.auth.token, user = o.auth.user, password = o.auth.password }
  local _ = acoro.fs -- loads the CSPRNG's binding
  local generated = false
  if not auth and not M._is_loopback(host) then
    auth = { token = assert(I.fs_random_hex(16)) }
    generated = true
  end
  local srv, err, code = http.server({ host = host, port = o.port or M.DEFAULTS.port, tls = o.tls,
    max_body = 64 * 1024, max_conns = MAX_CONNS, max_per_source = PER_SOURCE, timeout = TIMEOUT })
  if not srv then return nil, err, code end
  local self = setmetatable({ source = source, server = srv, port = srv.port, auth = auth, tls = o.tls ~= nil,
    csrf = assert(I.fs_random_hex(16)), off = wall() - acoro.now(), interval = o.interval or M.DEFAULTS.interval,
    keep = math.max(1, floor((o.history or M.DEFAULTS.history) / SAMPLE_EVERY)),
    assets = o.assets and (o.assets:gsub("/*$", "/")) or M.assets or "./",
    version = 0, busy = 0, history = {}, nsamples = 0, waiters = {}, retired = {}, streams = 0,
    loopback = M._is_loopback(host),
    live_nodes = {}, live_servers = {}, closed_nodes = {}, closed_node_order = {}, closed_servers = {},
    closed_server_order = {} }, Monitor)
  self.token = auth and auth.token
  local scheme = o.tls and "https" or "http"
  local shown = host:find(":") and "[" .. host .. "]" or host
  self.url = ("%s://%s:%d/"):format(scheme, shown, self.port)
  local function route(method, path, h) srv:route(method, path, self:_guard(h)) end
  route("GET", "/", page)
  route("GET", "/node/*", page)
  route("GET", "/server/*", page)
  route("GET", "/static/app.js", function(m, _, res) return serve_asset(m, res, "app.js") end)
  route("GET", "/static/app.css", function(m, _, res) return serve_asset(m, res, "app.css") end)
  route("GET", "/api/status", status_h)
  route("GET", "/api/events", events_h)
  route("*", "/api/terminate", terminate_h)
  route("GET", "/metrics", metrics_h)
  route("*", "/*", not_found)
  self:refresh()
  self:sample()
  self.ticker = acoro.spawn(self._tick, self)
  self.ticker:set_daemon()
  srv:start()
  srv._acceptor:set_daemon()
  if generated then
    log.warn(("acoro.discoro.httpd: serving %s with no auth given: open %s?token=%s"):format(host, self.url,
      auth.token))
  end
  return self
end

M.new = function(source, opts) return M._new(source, opts, 3) end

return M

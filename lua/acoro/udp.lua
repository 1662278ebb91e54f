-- acoro.udp: UDP sockets for coroutines. The C half (bindings/ludp.c,
-- core/udp.c) receives in the background into a bounded queue (datagrams
-- beyond it are dropped, as the kernel would) and sends; this file makes
-- recvfrom, and a send to a host name, look blocking.
--
-- Errors: misuse (bad arguments, a closed socket) raises; an expected
-- failure returns nil, message, code; "timeout" has the code "ETIMEDOUT".
local udp = {}

local argcheck = require "acoro.check"
local I = require "acoro.internal"

local cudp, park, check, now, K_TIMEOUT, Lock
local type, error, tostring, getmetatable = type, error, tostring, getmetatable

local Udp = {}
local udp_mt
local name_lock = setmetatable({}, { __mode = "k" }) -- socket -> Lock for sends to names

local function check_udp(u, what)
  if getmetatable(u) ~= udp_mt then argcheck.bad_self(u, "u:" .. what, "acoro UDP socket", 4) end
  if not u:is_open() then error(("acoro: %s: the socket is closed"):format(what), 3) end
end

-- nil, or a number other than NaN (acoro.check's rule for every timeout).
local check_timeout = argcheck.timeout

local check_host_port = require("acoro.io").check_host_port

local left = require("acoro.io").left

-- acoro.udp.bind(host, port [, opts]) -> socket | nil, message, code.
-- host nil or "*" for every interface, port 0 for any; opts.reuse (address
-- reuse), opts.broadcast (may send to broadcast addresses).
function udp.bind(host, port, opts)
  if host == nil then host = "0.0.0.0" end
  check_host_port(host, port, "udp.bind")
  if opts ~= nil and type(opts) ~= "table" then error("acoro: udp.bind: opts must be a table", 2) end
  opts = opts or {}
  local flags = 0
  if opts.reuse then flags = flags + cudp.REUSE end
  if opts.broadcast then flags = flags + cudp.BROADCAST end
  return cudp.bind(host, port, flags)
end

-- An address is sent to at once, anything else is resolved as a name (the
-- sender waits): the C side's own test decides, so that a host that only
-- looks like an address ("256.256.256.256") never starts a resolution here,
-- outside the name lock.
local function numeric(host)
  return cudp.is_address(host)
end

-- u:sendto(data, host, port [, timeout]) -> #data | nil, message, code.
-- A numeric host is sent to at once; a name is resolved first (the
-- coroutine waits, the loop does not).
function Udp:sendto(data, host, port, timeout)
  check_udp(self, "sendto")
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then error("acoro: sendto: expected a string, got " .. type(data), 2) end
  check_host_port(host, port, "sendto")
  check_timeout(timeout, "u:sendto", 4)
  check("sendto")
  local deadline = timeout and now() + timeout
  if numeric(host) then
    local r, err, code = self:_send(data, host, port)
    if r then return #data end
    return nil, err, code -- (an address never waits)
  end
  -- One send to a name at a time per socket: the others queue on a lock.
  local lk = name_lock[self]
  if not lk then
    lk = Lock()
    name_lock[self] = lk
  end
  if not lk:acquire(deadline and left(deadline)) then return nil, "timeout", "ETIMEDOUT" end
  local ok, r, err, code = pcall(function()
    if not self:is_open() then return nil, "closed", "ECLOSED" end
    local r1, e1, c1 = self:_send(data, host, port, left(deadline))
    if r1 then return #data end
    if r1 == nil then return nil, e1, c1 end
    if park() == K_TIMEOUT then return nil, "timeout", "ETIMEDOUT" end
    if not self:is_open() then return nil, "closed", "ECLOSED" end
    r1, e1, c1 = self:_send_status()
    if r1 then return #data end
    return nil, e1, c1
  end)
  lk:release()
  if not ok then error(r, 0) end
  if r then return r end
  return r, err, code
end

-- u:recvfrom([timeout]) -> data, host, port | nil, "timeout", "ETIMEDOUT"
-- | nil, "closed", "ECLOSED" (closed by another coroutine meanwhile).
function Udp:recvfrom(timeout)
  check_udp(self, "recvfrom")
  check_timeout(timeout, "u:recvfrom", 1)
  check("recvfrom")
  local deadline = timeout and now() + timeout
  while true do
    local data, host, port = self:_recv(left(deadline))
    if data then return data, host, port end
    if data == nil then return nil, "closed", "ECLOSED" end
    if park() == K_TIMEOUT then return nil, "timeout", "ETIMEDOUT" end
  end
end

-- u:getsockname() -> host, port
function Udp:getsockname()
  check_udp(self, "getsockname")
  return self:_name()
end

function udp.init(m, c)
  cudp = c
  park, check, now, K_TIMEOUT, Lock = I.io_park, I.io_check, m.now, I.TIMEOUT, m.Lock
  udp_mt = c.metatable
  for k, f in pairs(Udp) do udp_mt.__index[k] = f end
  m.udp = udp
end

return udp

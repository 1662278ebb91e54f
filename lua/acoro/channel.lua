-- acoro.channel: asyncoro's broadcasting channels (publish/subscribe), in pure
-- Lua over acoro's messages and its internal wait / wake / "end" hook.
--
-- A channel is named; its subscribers are coroutine handles or other channels
-- (a hierarchy without cycles). send() broadcasts without blocking; deliver()
-- hands the message to every end point coroutine at once and counts those that
-- took it. Everything a channel holds of a subscriber is its handle, so that a
-- remote handle can later stand in for a local one.
--
-- Subscribers are kept in an array in subscription order, with an index
-- (sub -> slot). A broadcast walks the array in place; a subscriber removed
-- meanwhile (by a transform, by its end) leaves a hole (false) that the walk
-- skips and that is squeezed out once no broadcast of that channel is under
-- way. A subscriber added meanwhile is appended past the walk's end: it gets
-- the next message, not this one.
--
-- REMOTE. Subscribers are of three kinds: a local coroutine (userdata), a
-- local channel (metatable Channel), and a remote value (a remote coroutine
-- handle or a remote channel proxy, both tables) that acoro.rchannel
-- handles through the hooks in channel.remote (set by rchannel.init).
local channel = {}

local core = require "acoro.core"
local check = require "acoro.check"
local log = require "acoro.log"
local fail = check.fail -- nil, why, code: expected failures (docs/lua-api-notes.md, Errors)
local I = require "acoro.internal"
local coro_mt = core.coro_mt

local acoro -- the main module, given by channel.init (it requires this file)
local type, error, pcall, tostring, setmetatable, getmetatable, pairs =
  type, error, pcall, tostring, setmetatable, getmetatable, pairs

local Channel = { __name = "acoro.Channel" }
Channel.__index = Channel
channel.Channel = Channel

local registry = {}                              -- name -> registered channel
local weak_k = { __mode = "k" }
-- sub -> {channel = true, ...}: the channels a subscriber is on (the inner
-- sets are weak too, so that a subscriber does not keep its channels alive).
local member_of = setmetatable({}, weak_k)
local waiting_in = setmetatable({}, weak_k)      -- co -> the wait set it is in
local delivering = setmetatable({}, weak_k)      -- co -> the state of its deliver
local locate_waiters = {}                        -- name -> wait set
local co_send -- Coro.send, taken from the first coroutine subscribed

-- Hooks of acoro.rchannel (nil before it loads): accepts(x) -> whether x is a
-- remote subscriber (coroutine or channel), accepts_channel(x) -> whether it
-- is a remote channel; reachable(sub); send(sub, msg) -> false when sub is
-- gone; deliver(sub, msg, left, origin, hops) -> count (a remote channel's
-- end points); added(sub) / removed(sub) when a remote sub joins its first
-- channel / leaves its last; registered(name, ch); closed(ch).
local remote
channel.remote = nil

local on_end, on_restart

function channel.init(m)
  acoro = m
  I.hook("end", "channel", on_end)
  I.hook("restart", "channel", on_restart)
end

-- Sets the hooks of acoro.rchannel (see `remote` above).
function channel.set_remote(hooks)
  remote = hooks
  channel.remote = hooks
end

local function is_channel(x)
  return getmetatable(x) == Channel
end
channel.is_channel = is_channel

local function check_open(ch, what)
  if getmetatable(ch) ~= Channel then
    error("acoro.Channel:" .. what .. ": expected a channel, got " .. type(ch), 3)
  end
  if ch._closed then
    error("acoro: channel " .. ch.name .. " is closed", 3)
  end
end

-- A checker of the timeout argument of kind's methods (kind: "acoro.Channel",
-- "acoro.RemoteChannel"): check(t, what [, argn=2]) raises, blaming the
-- method's caller, unless t is nil or a number other than NaN (acoro.check's
-- rule for every timeout). Called from the method itself.
local function timeout_checker(kind)
  local check_timeout = check.timeout
  return function(t, what, argn)
    if t ~= nil and (type(t) ~= "number" or t ~= t) then -- the name is made only to raise
      check_timeout(t, kind .. ":" .. what, argn or 2, 4)
    end
  end
end
channel.timeout_checker = timeout_checker
local check_timeout = timeout_checker("acoro.Channel")

------------------------------------------------------------------------------
-- Waiting: a wait set is a table of waiting handles. The end hook takes a
-- coroutine that ends out of its set (a dead handle must not be woken).

-- Waits in `set` until woken by wake_all, the timeout (nil: none) or an
-- error raised at the suspension point (throw, hot swap), which goes on.
local function wait_in(set, timeout)
  local me = acoro.self()
  set[me], waiting_in[me] = true, set
  local ok, err = pcall(I.wait, timeout)
  set[me], waiting_in[me] = nil, nil
  if not ok then error(err, 0) end
end

local function wake_all(set)
  for co in pairs(set) do I.wake(co) end
end

------------------------------------------------------------------------------
-- Subscriber lists.

local function membership(sub)
  local m = member_of[sub]
  if not m then
    m = setmetatable({}, weak_k)
    member_of[sub] = m
  end
  return m
end

-- Squeezes the holes out of ch's array; only when no broadcast walks it.
local function compact(ch)
  local list, pos, j = ch._list, ch._pos, 0
  for i = 1, ch._n do
    local s = list[i]
    if s then
      j = j + 1
      list[j], pos[s] = s, j
    end
  end
  for i = j + 1, ch._n do list[i] = nil end
  ch._n, ch._holes = j, 0
end

local function add_sub(ch, sub)
  local n = ch._n + 1
  ch._list[n], ch._pos[sub], ch._n = sub, n, n
  ch._count = ch._count + 1
  local m = member_of[sub]
  local first = m == nil or next(m) == nil
  membership(sub)[ch] = true
  if type(sub) == "userdata" then
    I.watch_end(sub, true)
  elseif first and remote and getmetatable(sub) ~= Channel then
    remote.added(sub)
  end
  wake_all(ch._sub_waiters)
end

-- Takes sub off ch: whether it was on it. A coroutine that is on no channel
-- any more may end in C again (no end hook needed).
local function remove_sub(ch, sub)
  local i = ch._pos[sub]
  if not i then return false end
  ch._pos[sub], ch._list[i] = nil, false
  ch._count, ch._holes = ch._count - 1, ch._holes + 1
  local m = member_of[sub]
  if m then
    m[ch] = nil
    if next(m) == nil then
      member_of[sub] = nil
      if type(sub) == "userdata" then
        if sub:is_alive() then I.watch_end(sub, false) end
      elseif remote and getmetatable(sub) ~= Channel then
        remote.removed(sub)
      end
    end
  end
  if ch._depth == 0 and ch._holes * 2 >= ch._n then compact(ch) end
  return true
end

-- The end hook: a coroutine that ends leaves its channels, its waits, and
-- the deliveries it was waiting for (their messages are taken back). One
-- that a monitor may restart (keep: it failed and is monitored) has the
-- channels it left noted, and on_restart puts it back on them: a restart
-- keeps the coroutine's identity, so it keeps its subscriptions too.
local cancel
local left_on_failure = setmetatable({}, weak_k) -- co -> {channel = true} (weak)
function on_end(co, keep)
  local m = member_of[co]
  if m then
    local chans = keep and setmetatable({}, weak_k) or nil
    for ch in pairs(m) do
      if remove_sub(ch, co) and chans then chans[ch] = true end
    end
    member_of[co] = nil
    left_on_failure[co] = chans
  end
  local w = waiting_in[co]
  if w then w[co], waiting_in[co] = nil, nil end
  local st = delivering[co]
  if st then
    delivering[co] = nil
    cancel(st)
  end
end

-- The restart hook: back on the channels it was on when it failed (those
-- still open), at the end of each one's order.
function on_restart(co)
  local chans = left_on_failure[co]
  if not chans then return end
  left_on_failure[co] = nil
  for ch in pairs(chans) do
    if not ch._closed and not ch._pos[co] then add_sub(ch, co) end
  end
end

-- Whether `target` is `from` or below it in the hierarchy.
local function reaches(from, target, seen)
  if from == target then return true end
  seen = seen or {}
  if seen[from] then return false end
  seen[from] = true
  local list = from._list
  for i = 1, from._n do
    local s = list[i]
    if s and getmetatable(s) == Channel and reaches(s, target, seen) then return true end
  end
  return false
end

------------------------------------------------------------------------------
-- Channels.

function channel.new(name, transform)
  if type(name) ~= "string" or name == "" then
    error("acoro.channel: name must be a non-empty string, got " .. tostring(name), 2)
  end
  if transform ~= nil and type(transform) ~= "function" then
    error("acoro.channel: transform must be a function or nil, got " .. type(transform), 2)
  end
  return setmetatable({
    name = name, location = I.location, _transform = transform, _closed = false,
    _list = {}, _pos = {}, _n = 0, _count = 0, _holes = 0, _depth = 0,
    _sub_waiters = {},
  }, Channel)
end

Channel.__tostring = function(ch)
  return "channel:" .. ch.name .. (ch._closed and " (closed)" or "")
end

function Channel:set_transform(fn)
  check_open(self, "set_transform")
  if fn ~= nil and type(fn) ~= "function" then
    error("acoro.Channel:set_transform: expected a function or nil, got " .. type(fn), 2)
  end
  self._transform = fn
end

-- The number of direct subscribers (coroutines and channels).
function Channel:subscribers()
  if getmetatable(self) ~= Channel then check.bad_self(self, "ch:subscribers", "acoro.Channel") end
  return self._count
end

function Channel:subscribe(sub, timeout)
  check_open(self, "subscribe")
  check_timeout(timeout, "subscribe")
  local mt = getmetatable(sub)
  if mt == Channel then
    if sub._closed then error("acoro: channel " .. sub.name .. " is closed", 2) end
    if self._pos[sub] then return true end
    if reaches(sub, self) then
      return fail("cycle: channel " .. sub.name .. " already reaches channel " .. self.name, "ELOOP")
    end
  elseif mt == coro_mt then
    if self._pos[sub] then return true end
    if not sub:is_alive() then return fail("dead") end
    co_send = co_send or sub.send
  elseif remote and remote.accepts(sub) then
    if self._pos[sub] then return true end
    if not remote.reachable(sub) then return fail("unreachable") end
  else
    error("acoro.Channel:subscribe: expected a coroutine or a channel, got " .. type(sub), 2)
  end
  add_sub(self, sub)
  return true
end

function Channel:unsubscribe(sub, timeout)
  check_open(self, "unsubscribe")
  check_timeout(timeout, "unsubscribe")
  local mt = getmetatable(sub)
  if mt ~= Channel and mt ~= coro_mt and not (remote and remote.accepts(sub)) then
    error("acoro.Channel:unsubscribe: expected a coroutine or a channel, got " .. type(sub), 2)
  end
  if remove_sub(self, sub) then return true end
  return fail("not subscribed")
end

-- Applies ch's transform: the message to pass on, or nil (dropped). An error
-- in the transform drops the message and is logged, never raised.
local function transformed(ch, msg)
  local fn = ch._transform
  if not fn then return msg end
  local ok, r = pcall(fn, ch.name, msg)
  if ok then return r end
  local ok2, text = pcall(tostring, r)
  log.error("channel ", ch.name, ": transform failed, message dropped: ",
    ((ok2 and text or "(error object)"):gsub("\n", " ")))
  return nil
end

-- HOT PATH: sends msg (after ch's transform) to ch's subscribers, down the
-- hierarchy. A coroutine found dead is dropped; one whose mailbox is full
-- keeps its subscription (the message is dropped and counted by its
-- mailbox, as for any send: a slow reader must not lose later messages).
local function broadcast(ch, msg)
  msg = transformed(ch, msg)
  if msg == nil then return end
  local list = ch._list
  ch._depth = ch._depth + 1
  for i = 1, ch._n do -- the end as of now: later subscribers wait for the next message
    local s = list[i]
    if s then
      if type(s) == "userdata" then
        if not co_send(s, msg) and not s:is_alive() then remove_sub(ch, s) end
      elseif getmetatable(s) == Channel then
        if not s._closed then broadcast(s, msg) end
      elseif not remote.send(s, msg) then
        remove_sub(ch, s)
      end
    end
  end
  local d = ch._depth - 1
  ch._depth = d
  if d == 0 and ch._holes > 0 and ch._holes * 2 >= ch._n then compact(ch) end
end

function Channel:send(msg)
  check_open(self, "send")
  if msg == nil then error("acoro.Channel:send: message is nil", 2) end
  broadcast(self, msg)
  return true -- as a remote channel's send (which may also fail)
end

-- Gathers the end point coroutines below ch with the message each gets (after
-- the transforms on the way), leaving out `me` and `origin` (the deliverer
-- here and the remote one that asked for it: neither could take it). A
-- remote channel is one entry: its owner counts its own end points.
local function collect(ch, msg, me, origin, eps, msgs)
  msg = transformed(ch, msg)
  if msg == nil then return end
  local list = ch._list
  ch._depth = ch._depth + 1
  for i = 1, ch._n do
    local s = list[i]
    if s then
      if getmetatable(s) == Channel then
        if not s._closed then collect(s, msg, me, origin, eps, msgs) end
      elseif s ~= me and s ~= origin then
        local k = #eps + 1
        eps[k], msgs[k] = s, msg
      end
    end
  end
  ch._depth = ch._depth - 1
  if ch._depth == 0 and ch._holes > 0 and ch._holes * 2 >= ch._n then compact(ch) end
end

local CANCEL = setmetatable({}, { __tostring = function() return "acoro: channel delivery cancelled" end })

-- A helper coroutine of deliver: co:deliver to one end point (a remote
-- channel: its owner's count), then counts.
-- st = {owner=, pending=, count=, cancelled=, helpers=, busy=, origin=, hops=}.
local function deliver_one(st, i, co, msg, deadline)
  if st.cancelled then return end
  local ok, r = true, nil
  local left = deadline and deadline - acoro.now()
  if not left or left > 0 then
    st.busy[i] = true
    if type(co) == "table" and remote.accepts_channel(co) then
      ok, r = pcall(remote.deliver, co, msg, left, st.origin or st.owner, st.hops)
    else
      ok, r = pcall(co.deliver, co, msg, left)
    end
    st.busy[i] = nil
  end
  if st.cancelled then return end
  if ok and r == true then
    st.count = st.count + 1
  elseif ok and type(r) == "number" then
    st.count = st.count + r
  end
  st.pending = st.pending - 1
  if st.pending == 0 then I.wake(st.owner) end
end

-- The deliverer left (error, or its end): the helpers stop, and those in
-- co:deliver take their message back (a throw does that).
function cancel(st)
  st.cancelled = true
  for i, h in pairs(st.busy) do
    if h then st.helpers[i]:throw(CANCEL) end
  end
end

-- deliver for a remote deliverer too (acoro.rchannel): `origin` its handle
-- (left out of the end points), `hops` how many nodes the request crossed.
local function do_deliver(self, msg, timeout, n, origin, hops)
  local me = acoro.self()
  local deadline = timeout and acoro.now() + timeout
  while n and self._count < n do
    local left = deadline and deadline - acoro.now()
    if (left and left <= 0) or self._closed then return 0 end
    wait_in(self._sub_waiters, left)
  end
  if self._closed then return 0 end
  local eps, msgs = {}, {}
  collect(self, msg, me, origin, eps, msgs)
  local k = #eps
  if k == 0 then return 0 end
  local st = { owner = me, pending = k, count = 0, cancelled = false, helpers = {}, busy = {},
    origin = origin, hops = hops or 0 }
  for i = 1, k do
    st.helpers[i] = acoro.spawn(deliver_one, st, i, eps[i], msgs[i], deadline)
  end
  delivering[me] = st
  while st.pending > 0 do
    local ok, err = pcall(I.wait)
    if not ok then
      delivering[me] = nil
      cancel(st)
      error(err, 0)
    end
  end
  delivering[me] = nil
  return st.count
end
channel.deliver = do_deliver

function Channel:deliver(msg, timeout, n)
  check_open(self, "deliver")
  if msg == nil then error("acoro.Channel:deliver: message is nil", 2) end
  check_timeout(timeout, "deliver")
  if n ~= nil and (type(n) ~= "number" or n < 0 or n % 1 ~= 0) then
    error("acoro.Channel:deliver: n must be a non-negative integer, got " .. tostring(n), 2)
  end
  return do_deliver(self, msg, timeout, n, nil, 0)
end

-- Takes sub off every channel it is on (acoro.rchannel: its node went down,
-- it ended, or its channel is gone there).
function channel.drop(sub)
  local m = member_of[sub]
  if not m then return end
  local chs = {}
  for ch in pairs(m) do chs[#chs + 1] = ch end
  for i = 1, #chs do remove_sub(chs[i], sub) end
end

function Channel:close()
  if getmetatable(self) ~= Channel then
    error("acoro.Channel:close: expected a channel, got " .. type(self), 2)
  end
  if self._closed then return false end
  if registry[self.name] == self then registry[self.name] = nil end
  local parents = member_of[self]
  if parents then
    for p in pairs(parents) do remove_sub(p, self) end
  end
  local list = self._list
  self._depth = self._depth + 1 -- no compaction while this walks the array
  for i = 1, self._n do
    local s = list[i]
    if s then remove_sub(self, s) end
  end
  self._depth = self._depth - 1
  if self._depth == 0 then compact(self) end -- else the broadcast under way does it
  self._closed = true
  wake_all(self._sub_waiters)
  if remote then remote.closed(self) end
  return true
end

------------------------------------------------------------------------------
-- Names (here; acoro.rchannel's resolvers look at other nodes).

function Channel:register()
  check_open(self, "register")
  local other = registry[self.name]
  if other == self then return true end
  if other then return fail("name taken") end
  registry[self.name] = self
  local w = locate_waiters[self.name]
  if w then
    locate_waiters[self.name] = nil
    wake_all(w)
  end
  if remote then remote.registered(self.name, self) end
  return true
end

function Channel:unregister()
  if getmetatable(self) ~= Channel then check.bad_self(self, "ch:unregister", "acoro.Channel") end
  if registry[self.name] ~= self then return false end
  registry[self.name] = nil
  return true
end

-- Checks acoro.locate_channel's arguments, raising (blaming the caller of
-- the locate that calls it) for a wrong one; returns opts' location and
-- timeout. acoro.rchannel's locate_channel checks with it too.
local function check_locate(name, opts)
  if type(name) ~= "string" then
    error("acoro.locate_channel: name must be a string, got " .. type(name), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("acoro.locate_channel: opts must be a table or nil, got " .. type(opts), 3)
  end
  local location, timeout = opts and opts.location, opts and opts.timeout
  if timeout ~= nil then check.timeout(timeout, "acoro.locate_channel", 2, 4, "opts.timeout") end
  if location ~= nil and type(location) ~= "string" then
    error("acoro.locate_channel: location must be a string, got " .. type(location), 3)
  end
  return location, timeout
end
channel.check_locate = check_locate

function channel.locate(name, opts)
  local location, timeout = check_locate(name, opts)
  if location ~= nil then
    return fail("not found") -- no remote nodes before distribution starts
  end
  local ch = registry[name]
  if ch then return ch end
  if not timeout or timeout <= 0 then return fail("not found") end
  local deadline = acoro.now() + timeout
  while true do
    local left = deadline - acoro.now()
    if left <= 0 then return fail("not found") end
    local w = locate_waiters[name]
    if not w then
      w = {}
      locate_waiters[name] = w
    end
    wait_in(w, left)
    if locate_waiters[name] == w and next(w) == nil then locate_waiters[name] = nil end
    ch = registry[name]
    if ch then return ch end
  end
end

-- acoro.locate_channel: the resolvers first (acoro.rchannel's, for other
-- nodes), then here.
function channel.locate_any(name, opts)
  check_locate(name, opts)
  local r = I.resolve("locate_channel", name, opts)
  if r then return unpack(r, 1, r.n) end
  return channel.locate(name, opts)
end

-- acoro.is_channel: a local channel, or what a resolver says is one (a
-- remote channel of acoro.rchannel's).
function channel.is_any(x)
  if getmetatable(x) == Channel then return true end
  return I.resolve("is_channel", x) ~= nil
end

return channel

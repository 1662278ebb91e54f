-- acoro.sync: Python threading-style synchronisation between acoro coroutines
-- (Lock, RLock, Condition, Event, Semaphore), in pure Lua on top of
-- acoro's internal waits (acoro.internal: wait_begin / park, wait) and wake. Only the
-- calling coroutine is suspended.
--
-- Every primitive keeps a FIFO queue of waiters. A waiter is an entry
-- {co=, granted=} queued before it suspends; whoever frees the resource GRANTS
-- it to the first live waiter (sets granted, and for locks makes it the owner
-- at once, so that no late comer can barge in), then resumes it. The waiter
-- trusts only `granted`, never the value or the reason suspend returned with.
--
-- A grant is only handed to a live coroutine; if the grantee ends (terminate)
-- before it ran and took the grant, acoro's end hook (on_end) forfeits the
-- grant: passes it on to the next waiter. A waiter that leaves by an error
-- (throw, hot swap) does the same itself before the error goes on.
local sync = {}

local check = require "acoro.check"
local I = require "acoro.internal"

local acoro -- the main module, given by sync.init (it requires this file)
local type, error, pcall, select, setmetatable, getmetatable = type, error, pcall, select,
  setmetatable, getmetatable
local unpack = unpack
local check_timeout, check_count, bad_self = check.timeout, check.count, check.bad_self

local on_end
local R_RESUME, R_INTERRUPT = I.RESUME, I.INTERRUPT -- wake reasons of I.park

function sync.init(m)
  acoro = m
  I.hook("end", "sync", on_end)
end

------------------------------------------------------------------------------
-- Wait queues: doubly linked lists of entries, for O(1) removal of a waiter
-- that timed out in the middle.

local Queue = {}
Queue.__index = Queue

local function new_queue()
  return setmetatable({}, Queue)
end

function Queue:push(e)
  e.prev, e.next, e.queue = self.tail, nil, self
  if self.tail then self.tail.next = e else self.head = e end
  self.tail = e
end

function Queue:remove(e)
  if e.queue ~= self then return end
  if e.prev then e.prev.next = e.next else self.head = e.next end
  if e.next then e.next.prev = e.prev else self.tail = e.prev end
  e.prev, e.next, e.queue = nil, nil, nil
end

-- Removes and returns the first waiter, or nil. Every queued waiter is
-- alive: a waiter that ends is taken out by the end hook (on_end).
function Queue:pop_live()
  local e = self.head
  if e then self:remove(e) end
  return e
end

function Queue:has_live()
  return self.head ~= nil
end

------------------------------------------------------------------------------
-- Grants, and the end hook that forfeits those of coroutines that died
-- before taking them. pending[co] is the grant `co` has not taken yet (a coroutine
-- waits on one primitive at a time).

local pending = setmetatable({}, { __mode = "k" })
local waiting = setmetatable({}, { __mode = "k" }) -- co -> its queued entry

-- Called by acoro when a coroutine ends through Lua (terminate, error,
-- results): a grant it never took passes on. (A coroutine that returned
-- nothing ran, and so took its grant.)
function on_end(co)
  local w = waiting[co]
  if w then
    waiting[co] = nil
    if w.queue then w.queue:remove(w) end
  end
  local e = pending[co]
  if e then
    pending[co] = nil
    e.prim:_forfeit(e)
  end
end

-- Marks `e` granted and wakes its coroutine. For an ownership grant the
-- caller has already made e.co the owner.
local function grant(e)
  e.granted = true
  if e.prim._forfeit then pending[e.co] = e end -- only grants that can be lost
  I.wake(e.co) -- false if it is not waiting yet: it sees `granted`
end

-- Waits on until e is granted or the deadline passes; false, err if an
-- error was raised at the suspension point.
local function wait_more(e, deadline)
  while not e.granted do
    local left
    if deadline then
      left = deadline - acoro.now()
      if left <= 0 then return true end
    end
    local ok, err = pcall(I.wait, left)
    if not ok then return false, err end
  end
  return true
end

-- Waiter entries. A granted waiter that took its grant on block's common
-- path holds the only reference left to its entry (the queue, pending and
-- waiting have let go of it): the entry is kept for the next block, an
-- allocation less per wait (the garbage collector took a fifth of the lock
-- hand-off's time). Entries that leave otherwise are left to the collector.
local SPARE_MAX = 32
local spare, nspare = {}, 0

local function new_entry(me, prim)
  local n = nspare
  if n == 0 then
    -- every field the queue sets, so that push does not grow the table
    return { co = me, prim = prim, granted = false, prev = false, next = false, queue = false }
  end
  local e = spare[n]
  spare[n] = nil
  nspare = n - 1
  e.co, e.prim, e.granted = me, prim, false
  return e
end

local function free_entry(e)
  local n = nspare
  if n < SPARE_MAX then
    e.co, e.prim = false, false -- no reference to a coroutine or primitive kept
    n = n + 1
    spare[n] = e
    nspare = n
  end
end

-- The rare ends of block's first wait: an interrupt (a throw or hot swap is
-- raised here; otherwise wait on), a timeout or a wake without a grant. On
-- an error the wait is undone, a grant passed on, and the error goes on.
local function block_slow(prim, me, e, r, deadline)
  local ok, err = true, nil
  if r == R_INTERRUPT then ok, err = pcall(I.raise_pending) end
  if ok and not e.granted then ok, err = wait_more(e, deadline) end
  waiting[me] = nil
  if not ok then
    prim._q:remove(e)
    if e.granted then
      pending[me] = nil
      if prim._forfeit then prim:_forfeit(e) end
    end
    error(err, 0)
  end
  if e.granted then
    pending[me] = nil
    return true
  end
  prim._q:remove(e)
  return false
end

-- Queues the calling coroutine on prim._q and suspends until it is granted
-- (true) or the timeout passes (false). Anything pending (throw, hot swap)
-- is raised before it queues; what comes while it waits is block_slow's.
-- JIT: no pcall and no loop on the common path (one wait, then granted), so
-- that the trace after the wake runs on into the caller's loop.
local function block(prim, me, timeout)
  local deadline = timeout and acoro.now() + timeout
  I.wait_begin(timeout)
  local e = new_entry(me, prim)
  prim._q:push(e)
  waiting[me] = e
  local r = I.park()
  if r ~= R_RESUME or not e.granted then return block_slow(prim, me, e, r, deadline) end
  waiting[me] = nil
  pending[me] = nil
  free_entry(e)
  return true
end

-- acquire([blocking=true [, timeout]]); a number as first argument is taken
-- as the timeout (acquire(timeout)). Returns the timeout to
-- wait with: nil = forever, 0 = not at all.
local function acquire_args(blocking, timeout, prim)
  local argn = 2
  if type(blocking) == "number" and timeout == nil then
    blocking, timeout, argn = true, blocking, 1
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout) then
    check_timeout(timeout, prim._name .. ":acquire", argn, 4) -- the name is made only to raise
  end
  if blocking == false then return 0 end
  return timeout
end

-- The self checks of the methods below: a primitive's methods called on
-- anything else raise ("bad self to Lock:acquire (acoro.Lock expected, got
-- number)") rather than work on a table that only looks like one.
local Lock, RLock, Semaphore, Event, Condition -- the method tables, below

local function check_lock(self, what)
  local mt = getmetatable(self)
  if mt ~= Lock and mt ~= RLock then bad_self(self, what, "acoro.Lock or acoro.RLock", 4) end
end

local function check_prim(self, mt, what)
  if getmetatable(self) ~= mt then bad_self(self, what, mt._name, 4) end
end

-- lock:with(fn, ...): acquire, fn(...), release even on error.
local function with(self, fn, ...)
  local mt = getmetatable(self)
  if mt ~= Lock and mt ~= RLock and mt ~= Semaphore and mt ~= Condition then
    bad_self(self, "x:with", "an acoro lock, semaphore or condition")
  end
  if type(fn) ~= "function" then
    error(self._name .. ":with: expected a function, got " .. type(fn), 2)
  end
  self:acquire()
  local r = { n = 0 }
  local function pack(ok, ...)
    r.n = select("#", ...)
    for i = 1, r.n do r[i] = select(i, ...) end
    return ok
  end
  local ok = pack(pcall(fn, ...))
  if ok or self:_owned() then self:release() end
  if not ok then error(r[1], 0) end
  return unpack(r, 1, r.n)
end

------------------------------------------------------------------------------
-- Lock and RLock. Invariant: _owner is nil only when no live waiter is
-- queued (release hands the lock to the first live waiter directly).

Lock = { _name = "acoro.Lock", __name = "acoro.Lock" }
Lock.__index = Lock
RLock = { _name = "acoro.RLock", __name = "acoro.RLock" }
RLock.__index = RLock

local function new_lock(mt)
  return setmetatable({ _q = new_queue(), _owner = nil, _count = 0 }, mt)
end

-- Hands the lock to the next live waiter, or frees it.
local function handoff(self)
  local e = self._q:pop_live()
  if e then
    self._owner, self._count = e.co, 1
    grant(e)
  else
    self._owner, self._count = nil, 0
  end
end

local function lock_acquire(self, blocking, timeout)
  check_lock(self, "Lock:acquire")
  if timeout ~= nil or blocking ~= nil then timeout = acquire_args(blocking, timeout, self) end
  local me = acoro.self()
  local owner = self._owner
  if owner == me and self._reentrant then
    self._count = self._count + 1
    return true
  end
  if owner ~= nil and pending[owner] and pending[owner].prim == self and not owner:is_alive() then
    pending[owner] = nil -- its grantee died before it ran: pass it on now
    handoff(self)
    owner = self._owner
  end
  if owner == nil and not self._q:has_live() then
    self._owner, self._count = me, 1
    return true
  end
  if timeout and timeout <= 0 then return false end
  return block(self, me, timeout)
end

local function lock_release(self)
  check_lock(self, "Lock:release")
  if self._owner ~= acoro.self() then
    error(self._name .. ": release of a lock not held by this coroutine", 2)
  end
  self._count = self._count - 1
  if self._count == 0 then handoff(self) end
end

local function lock_owned(self)
  local co = acoro.self()
  return self._owner == co
end

-- A grantee died (or left by an error) before taking the lock.
local function lock_forfeit(self, e)
  if self._owner == e.co then handoff(self) end
end

-- For Condition: release completely, returning what to restore.
local function lock_release_save(self)
  local n = self._count
  self._count = 0
  handoff(self)
  return n
end

local function lock_acquire_restore(self, n)
  self:acquire()
  self._count = n
end

for _, L in ipairs({ Lock, RLock }) do
  L.acquire, L.release, L.with, L._owned = lock_acquire, lock_release, with, lock_owned
  L._forfeit, L._release_save, L._acquire_restore = lock_forfeit, lock_release_save, lock_acquire_restore
  L.locked = function(self)
    check_lock(self, "Lock:locked")
    return self._owner ~= nil
  end
end
RLock._reentrant = true

function sync.Lock() return new_lock(Lock) end
function sync.RLock() return new_lock(RLock) end

------------------------------------------------------------------------------
-- Semaphore. Invariant: _value > 0 only when no live waiter is queued.

Semaphore = { _name = "acoro.Semaphore", __name = "acoro.Semaphore" }
Semaphore.__index = Semaphore

function sync.Semaphore(n)
  if n == nil then n = 1 end
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    error("acoro.Semaphore: value must be a non-negative integer, got " .. tostring(n), 2)
  end
  return setmetatable({ _q = new_queue(), _value = n }, Semaphore)
end

function Semaphore:acquire(blocking, timeout)
  check_prim(self, Semaphore, "Semaphore:acquire")
  timeout = acquire_args(blocking, timeout, Semaphore)
  if self._value > 0 and not self._q:has_live() then
    self._value = self._value - 1
    return true
  end
  if timeout and timeout <= 0 then return false end
  return block(self, acoro.self(), timeout)
end

-- release([n=1]): anyone may release (as in Python). The work is bounded by
-- the waiters, not by n: at most min(n, #waiters) grants, then the value
-- grows by what is left of n (release(2^53) is one addition).
function Semaphore:release(n)
  check_prim(self, Semaphore, "Semaphore:release")
  if n == nil then n = 1 else check_count(n, "acoro.Semaphore:release", 1) end
  while n > 0 do
    local e = self._q:pop_live()
    if not e then break end
    grant(e)
    n = n - 1
  end
  self._value = self._value + n
end

-- locked(): an acquire now would wait (as asyncio.Semaphore.locked): the
-- value is 0, or live waiters are queued ahead.
function Semaphore:locked()
  check_prim(self, Semaphore, "Semaphore:locked")
  return self._value == 0 or self._q:has_live()
end

function Semaphore:_forfeit()
  self:release()
end

function Semaphore._owned() return true end
Semaphore.with = with

------------------------------------------------------------------------------
-- Event. set() wakes every waiter; its grants cannot be lost (no _forfeit).

Event = { _name = "acoro.Event", __name = "acoro.Event" }
Event.__index = Event

function sync.Event()
  return setmetatable({ _q = new_queue(), _flag = false }, Event)
end

function Event:is_set()
  check_prim(self, Event, "Event:is_set")
  return self._flag
end

function Event:clear()
  check_prim(self, Event, "Event:clear")
  self._flag = false
end

function Event:set()
  check_prim(self, Event, "Event:set")
  self._flag = true
  local e = self._q:pop_live()
  while e do
    grant(e)
    e = self._q:pop_live()
  end
end

function Event:wait(timeout)
  check_prim(self, Event, "Event:wait")
  check_timeout(timeout, "acoro.Event:wait", 1)
  if self._flag then return true end
  if timeout and timeout <= 0 then return false end
  return block(self, acoro.self(), timeout)
end

------------------------------------------------------------------------------
-- Condition. A notified waiter that dies before it ran passes the
-- notification on (no lost wake-up).

Condition = { _name = "acoro.Condition", __name = "acoro.Condition" }
Condition.__index = Condition

function sync.Condition(lock)
  if lock == nil then
    lock = new_lock(RLock)
  elseif getmetatable(lock) ~= Lock and getmetatable(lock) ~= RLock then
    error("acoro.Condition: expected an acoro.Lock or acoro.RLock, got " .. type(lock), 2)
  end
  return setmetatable({ _q = new_queue(), _lock = lock }, Condition)
end

function Condition:acquire(...)
  check_prim(self, Condition, "Condition:acquire")
  return self._lock:acquire(...)
end

function Condition:release()
  check_prim(self, Condition, "Condition:release")
  return self._lock:release()
end

-- locked(): its lock's (held by any coroutine).
function Condition:locked()
  check_prim(self, Condition, "Condition:locked")
  return self._lock:locked()
end

function Condition:_owned() return self._lock:_owned() end
Condition.with = with

local function check_owned(self, what)
  if not self._lock:_owned() then
    error("acoro.Condition: " .. what .. " on a condition whose lock is not held by this coroutine", 3)
  end
end

-- Releases the lock, waits for a notify, re-acquires the lock (also when the
-- wait ends by an error, so that an enclosing with() can release it).
function Condition:wait(timeout)
  check_prim(self, Condition, "Condition:wait")
  check_timeout(timeout, "acoro.Condition:wait", 1)
  check_owned(self, "wait")
  local me = acoro.self()
  local saved = self._lock:_release_save()
  local ok, r
  if timeout and timeout <= 0 then
    ok, r = true, false
  else
    ok, r = pcall(block, self, me, timeout)
  end
  self._lock:_acquire_restore(saved)
  if not ok then error(r, 0) end
  return r
end

-- wait_for(pred [, timeout]): waits until pred() is truthy; returns its last value.
function Condition:wait_for(pred, timeout)
  check_prim(self, Condition, "Condition:wait_for")
  if type(pred) ~= "function" then
    error("acoro.Condition:wait_for: expected a predicate function, got " .. type(pred), 2)
  end
  check_timeout(timeout, "acoro.Condition:wait_for", 2)
  local deadline = timeout and acoro.now() + timeout
  local v = pred()
  while not v do
    local left
    if deadline then
      left = deadline - acoro.now()
      if left <= 0 then break end
    end
    self:wait(left)
    v = pred()
  end
  return v
end

function Condition:notify(n)
  check_prim(self, Condition, "Condition:notify")
  if n == nil then n = 1 else check_count(n, "acoro.Condition:notify", 0) end
  check_owned(self, "notify")
  for _ = 1, n do
    local e = self._q:pop_live()
    if not e then break end
    grant(e)
  end
end

function Condition:notify_all()
  check_prim(self, Condition, "Condition:notify_all")
  check_owned(self, "notify_all")
  local e = self._q:pop_live()
  while e do
    grant(e)
    e = self._q:pop_live()
  end
end

function Condition:_forfeit()
  local e = self._q:pop_live()
  if e then grant(e) end
end

return sync

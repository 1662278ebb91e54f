-- acoro: coroutines, messages and their life cycle, for Lua.
-- The engine (C, core/) keeps records, mailboxes, timers and the ready queue;
-- this module maps them onto Lua: hot calls go through the FFI (compiled by
-- the JIT), calls that must touch Lua state go through acoro.core (classic C).
-- SIZE: over 800 lines because the hot paths (send, receive, sleep, the
-- waits acoro.internal hands out) share file-local upvalues (the engine, the
-- record casts, the message table) that the JIT keeps as constants; a split
-- would turn them into table look-ups.
local ffi = require "ffi"
local bit = require "bit"
local core = require "acoro.core"
local check = require "acoro.check"
local log = require "acoro.log"
local I = require "acoro.internal"
require "acoro.cdef"

local C
do -- the engine's symbols: global in the acoro executable, else in core.so
  local ok = pcall(function() return ffi.C.acoro_now end)
  C = ok and ffi.C or ffi.load(assert(core.path(), "acoro: cannot locate acoro.core"))
end

local yield, running = coroutine.yield, coroutine.running
local band, bor, bnot = bit.band, bit.bor, bit.bnot
local select, type, error, tostring, setmetatable = select, type, error, tostring, setmetatable
local unpack = unpack

local E = ffi.cast("acoro_engine_t *", core.engine())
local copp = ffi.typeof("acoro_co_t **")
I.C, I.E = C, E -- for acoro.io's stream calls through the FFI

local W_SUSPEND, W_RECEIVE = C.ACORO_WAIT_SUSPEND, C.ACORO_WAIT_RECEIVE
local W_OTHER = C.ACORO_WAIT_OTHER
local K_RESUME, K_TIMEOUT = C.ACORO_WAKE_RESUME, C.ACORO_WAKE_TIMEOUT
local K_DELIVERED, K_INTERRUPT = C.ACORO_WAKE_DELIVERED, C.ACORO_WAKE_INTERRUPT
local S_DEAD = C.ACORO_STATE_DEAD
local EDEADLK, EINTR, EDEAD = C.ACORO_EDEADLK, C.ACORO_EINTR, C.ACORO_EDEAD
local EEXIST = C.ACORO_EEXIST

-- Host flags kept in each record (acoro_co_flags).
local F_SWAPPABLE, F_PENDING = 1, 2

local M = { version = core.version, log = log }
log.init(core)
local fail = check.fail -- nil, why, code: the one rule of expected failures

-- Per-coroutine Lua state. threads/objs are indexed by the record's slot
-- (host_ref) and anchor the Lua thread and the handle while it lives; vals
-- holds queued messages by mailbox key. The rest is keyed by handle, weakly,
-- and only filled when used.
local threads, objs, vals = {}, {}, {}
local weak = { __mode = "k" }
local results = setmetatable({}, weak)     -- handle -> {n=, ...} | {err=, tb=} | TERMINATED
local pending_throw = setmetatable({}, weak)
local pending_swap = setmetatable({}, weak)
local resumed = setmetatable({}, weak)     -- handle -> {value} given by co:resume
local locate_waiters = {}                  -- name -> {handle, ...}
local TERMINATED = { err = "terminated" }
local main_handle                          -- the coroutine acoro.run started

local Coro = {}       -- methods of coroutine handles
local coro_mt = core.coro_mt
local Exit = { __name = "acoro.Exit" }
local HotSwap = { __name = "acoro.HotSwap" }
HotSwap.__index = HotSwap
M.Exit, M.HotSwap = Exit, HotSwap

local function rec_of(h)
  return ffi.cast(copp, h)[0]
end

local function handle_of(rec)
  return objs[C.acoro_co_host_ref(rec)]
end

local function current(what)
  local rec = C.acoro_current(E)
  if rec == nil then
    check.misuse("acoro." .. what .. ": called outside an acoro coroutine (use acoro.run or the acoro command)")
  end
  return rec
end

local function check_handle(h, what)
  if getmetatable(h) ~= coro_mt then
    error("acoro: " .. what .. ": expected a coroutine, got " .. type(h), 3)
  end
  return rec_of(h)
end

local bad_self = check.bad_self

-- The record behind a method's self. Every method that casts self through
-- the FFI checks it first: ffi.cast turns a number, a string or another
-- userdata into a pointer, and the engine would follow it. A box is NULL
-- only once its __gc ran (a handle resurrected by another finalizer).
local function self_rec(h, what)
  if getmetatable(h) ~= coro_mt then bad_self(h, "co:" .. what, "acoro coroutine", 4) end
  local rec = rec_of(h)
  if rec == nil then error("acoro: co:" .. what .. ": the coroutine handle is released", 3) end
  return rec
end

-- check_timeout(t, "acoro.receive", argn): nil or a number, not NaN
-- (acoro.check: the rule for every timeout of the API).
local check_timeout = check.timeout

local function now()
  return C.acoro_now(E)
end
M.now = now

------------------------------------------------------------------------------
-- Waiting. A blocking call registers its wait with the engine, then park()
-- yields to the scheduler, which resumes the thread with the wake reason.

local function set_flag(rec, f, on)
  local flags = C.acoro_co_flags(rec)
  C.acoro_co_set_flags(rec, on and bor(flags, f) or band(flags, bnot(f)))
end

-- Raises what is pending for the running coroutine: a throw always, a hot
-- swap only at a swappable suspension point of a swappable coroutine.
local function raise_pending(rec, swappable)
  local h = handle_of(rec)
  local t = pending_throw[h]
  if t then
    pending_throw[h] = nil
    if not pending_swap[h] then set_flag(rec, F_PENDING, false) end
    error(t[1], 0)
  end
  local s = pending_swap[h]
  if s and swappable and band(C.acoro_co_flags(rec), F_SWAPPABLE) ~= 0 then
    pending_swap[h] = nil
    set_flag(rec, F_PENDING, false)
    error(s, 0)
  end
end

local function check_thread(rec, what)
  if threads[C.acoro_co_host_ref(rec)] ~= running() then
    error("acoro." .. what .. ": called from a plain Lua coroutine inside an acoro coroutine", 3)
  end
end

-- The hot loops (receive_any, sleep_until) leave out check_thread, whose
-- coroutine.running() stops the JIT's trace; a wait registered from a plain
-- coroutine is caught instead when the acoro coroutine waits again.
local function nested_wait(what)
  error("acoro." .. what .. ": this coroutine is already waiting: was a blocking acoro call "
    .. "made from a plain Lua coroutine inside it?", 3)
end

-- Yields until woken; returns the wake reason. An INTERRUPT raises what is
-- pending, or comes back to the caller, who waits again.
local function park(rec, swappable)
  local r = yield()
  if r == K_INTERRUPT then raise_pending(rec, swappable) end
  return r
end

-- Before blocking: checks the thread, and raises anything already pending.
local function before_block(rec, what, swappable)
  check_thread(rec, what)
  if band(C.acoro_co_flags(rec), F_PENDING) ~= 0 then raise_pending(rec, swappable) end
end

local function remaining(deadline)
  if not deadline then return -1 end
  local left = deadline - now()
  return left > 0 and left or 0
end

------------------------------------------------------------------------------
-- The end of a coroutine.

-- One message: the error once, then the frames (the traceback repeats the
-- error on its first lines). A coroutine a monitor watches failed into
-- somebody's hands (the Exit has error and traceback): "info", which a script
-- silences with acoro.log.set_level("warn"); an unwatched one: "error".
local function log_failure(h, err, tb, watched)
  local ok, text = pcall(tostring, err)
  local frames = tb and tb:find("stack traceback:", 1, true)
  if frames then tb = tb:sub(frames) end
  log.write(watched and "info" or "error", "coroutine ", tostring(h), " failed: ",
    ok and check.one_prefix(text) or "(error object cannot be converted to a string)", tb and "\n" or "", tb or "")
end

-- Clears the Lua side of co's queued messages (the engine drops them next).
local function forget_messages(rec)
  local k = C.acoro_mb_first(rec)
  while k ~= 0 do
    vals[k] = nil
    k = C.acoro_mb_next(rec, k)
  end
end

local function exit_message(h, res)
  local m = { coro = h }
  if res == TERMINATED then
    m.reason, m.error = "terminated", "terminated"
  elseif res == nil or res.n then
    m.reason, m.value = "normal", res and res[1]
  else
    m.reason, m.error, m.traceback = "error", res.err, res.tb
  end
  return setmetatable(m, Exit)
end

local function send_rec(rec, msg) -- Exit notices: past a mailbox limit too
  local key = C.acoro_send_always(rec, 0)
  if key ~= 0 then vals[key] = msg end
  return key ~= 0
end

-- ENDS co: records its result, tells its monitors, and ends the record. A
-- monitored coroutine that failed keeps its messages so that a monitor can
-- restart it with hot_swap.
local end_hooks = I.hooks("end") -- acoro.sync's, acoro.channel's

local function finish(h, res)
  local rec = rec_of(h)
  if res then results[h] = res end
  local nmon = C.acoro_co_monitor_count(rec)
  local keep = nmon > 0 and res and res.tb ~= nil -- a monitor may restart it
  for i = 1, #end_hooks do end_hooks[i](h, keep) end
  if nmon > 0 then
    local m = exit_message(h, res)
    for i = 0, nmon - 1 do send_rec(C.acoro_co_monitor_at(rec, i), m) end
  end
  if not keep then forget_messages(rec) end
  pending_throw[h], pending_swap[h], resumed[h] = nil, nil, nil
  C.acoro_co_exit(rec, keep and 1 or 0)
  if h == main_handle and res and res.tb then
    C.acoro_engine_stop(E, EINTR) -- main failed: the program ends now
  end
end

-- Called by acoro.core when a coroutine's function has returned
-- (finished(h, true, results...)) or raised (finished(h, false, err, tb)).
local function finished(h, ok, ...)
  if ok then
    local n = select("#", ...)
    finish(h, n > 0 and { n = n, ... } or nil)
    return
  end
  local e, tb = ...
  if getmetatable(e) == HotSwap then -- the old function let the swap through
    return core.rethread(h, e.fn, unpack(e.args, 1, e.args.n))
  end
  local watched = C.acoro_co_monitor_count(rec_of(h)) > 0
  finish(h, { err = e, tb = tb })
  if h ~= main_handle then
    log_failure(h, e, tb, watched)
    I.run("failure", h, e, tb) -- the specs' strict acoro.run watches these
  end
end

core.init(finished, threads, objs, vals)

------------------------------------------------------------------------------
-- Coroutines.

-- acoro.spawn([opts,] fn, ...): opts.name names the coroutine in tostring
-- and log lines (a label: acoro.locate finds only registered names);
-- opts.daemon makes it a daemon from the start.
local function spawn_with(opts, fn, ...)
  local name, daemon = opts.name, opts.daemon
  if name ~= nil and type(name) ~= "string" then
    error("acoro.spawn: opts.name must be a string, got " .. type(name), 3)
  end
  if type(fn) ~= "function" then
    error("acoro.spawn: expected a function after the options, got " .. type(fn), 3)
  end
  local h = core.spawn(fn, ...)
  local rec = rec_of(h)
  if name then C.acoro_co_set_name(rec, name) end
  if daemon then C.acoro_co_set_daemon(rec, 1) end
  return h
end

function M.spawn(fn, ...)
  if type(fn) ~= "function" then
    if type(fn) == "table" and getmetatable(fn) == nil then return spawn_with(fn, ...) end
    error("acoro.spawn: expected a function, got " .. type(fn), 2)
  end
  return core.spawn(fn, ...)
end

function M.self()
  return handle_of(current("self"))
end

-- MEMORY: no record pointer in a local across the yield (the record is
-- looked up again on an interrupt): the snapshot the JIT takes at a stitched
-- yield would box it as a cdata, an allocation per yield.
function M.yield()
  if C.acoro_co_yield(current("yield")) ~= 0 then nested_wait("yield") end
  if yield() == K_INTERRUPT then raise_pending(C.acoro_current(E), false) end
end

-- MEMORY: like receive_any, a small frame reached by a tail call, so that
-- 100,000 sleepers keep LuaJIT's initial stacks. The loop holds no record
-- pointer in a slot (it asks acoro_current again): the JIT's snapshot at
-- the stitched yield would box it, 24 bytes of garbage per sleep, and it
-- keeps every slot below the loop's jump alive, so the checks that need the
-- record are in the caller.
local function sleep_loop(deadline)
  local left = deadline - C.acoro_now(E)
  while left > 0 do
    if C.acoro_co_sleep(C.acoro_current(E), left) ~= 0 then nested_wait("sleep") end
    if yield() == K_INTERRUPT then raise_pending(C.acoro_current(E), true) end
    left = deadline - C.acoro_now(E)
  end
end

local function sleep_until(deadline)
  local rec = C.acoro_current(E)
  if rec == nil then current("sleep") end
  if band(C.acoro_co_flags(rec), F_PENDING) ~= 0 then raise_pending(rec, true) end
  return sleep_loop(deadline)
end
I.sleep_until, I.sleep_loop = sleep_until, sleep_loop -- for the spec on their frames

function M.sleep(s)
  if s ~= nil and type(s) ~= "number" then
    error("acoro.sleep: expected seconds as a number, got " .. type(s), 2)
  end
  if s ~= s then error("bad argument #1 to 'acoro.sleep' (seconds is NaN)", 2) end
  if not s or s <= 0 then return M.yield() end
  return sleep_until(C.acoro_now(E) + s)
end

function M.suspend(timeout, alarm)
  check_timeout(timeout, "acoro.suspend", 1)
  local rec = current("suspend")
  before_block(rec, "suspend", true)
  local h = handle_of(rec)
  resumed[h] = nil -- a resume that raced with a throw is spent
  if timeout and timeout <= 0 then return alarm end
  local deadline = timeout and now() + timeout
  while true do
    if C.acoro_co_wait(rec, W_SUSPEND, remaining(deadline)) ~= 0 then nested_wait("suspend") end
    local r = park(rec, true)
    local v = resumed[h]
    if v then
      resumed[h] = nil
      return v[1]
    end
    if r == K_TIMEOUT then return alarm end
  end
end

function Coro:resume(v)
  local rec = self_rec(self, "resume")
  if C.acoro_co_wake(rec, W_SUSPEND, K_RESUME) == 0 then return false end
  resumed[self] = { v }
  return true
end

------------------------------------------------------------------------------
-- Messages.

-- HOT PATH: the self check is one metatable test, which the JIT compiles.
function Coro:send(msg)
  if getmetatable(self) ~= coro_mt then bad_self(self, "co:send", "acoro coroutine") end
  if msg == nil then error("acoro: send: message is nil", 2) end
  local rec = rec_of(self)
  if rec == nil then self_rec(self, "send") end -- released: raises
  local key = C.acoro_send(rec, 0)
  if key == 0 then return false end
  vals[key] = msg
  return true
end

-- The mailbox limit (docs/lua-api-notes.md): past n queued messages, new
-- ones are dropped and counted; nil or 0: no limit.
function Coro:set_mailbox_limit(n)
  local rec = check_handle(self, "set_mailbox_limit")
  if n ~= nil and (type(n) ~= "number" or not (n >= 0 and n < 2^32) or n ~= math.floor(n)) then
    error("acoro: set_mailbox_limit: expected a whole number of messages or nil, got " .. tostring(n), 2)
  end
  C.acoro_co_set_mailbox_limit(rec, n or 0)
end

function Coro:mailbox_dropped()
  return tonumber(C.acoro_co_mailbox_dropped(check_handle(self, "mailbox_dropped")))
end

local function take(key)
  local m = vals[key]
  vals[key] = nil
  return m
end

-- receive with a timeout. MEMORY: as in sleep_loop, the loop keeps no
-- record pointer in a slot across the yield (no garbage per wait).
local function receive_loop(deadline, alarm)
  local key
  repeat
    if C.acoro_co_wait(C.acoro_current(E), W_RECEIVE, remaining(deadline)) ~= 0 then
      nested_wait("receive")
    end
    local r = yield()
    if r == K_INTERRUPT then raise_pending(C.acoro_current(E), true) end
    key = C.acoro_mb_shift(C.acoro_current(E))
    if key == 0 and r == K_TIMEOUT then return alarm end
  until key ~= 0
  return take(key)
end

-- before_block's checks, with the record asked for again after
-- coroutine.running (a stitch too).
local function receive_wait(timeout, alarm)
  check_timeout(timeout, "acoro.receive", 1)
  local key = C.acoro_mb_shift(current("receive"))
  if key ~= 0 then return take(key) end
  if threads[C.acoro_co_host_ref(C.acoro_current(E))] ~= running() then
    error("acoro.receive: called from a plain Lua coroutine inside an acoro coroutine", 2)
  end
  if band(C.acoro_co_flags(C.acoro_current(E)), F_PENDING) ~= 0 then
    raise_pending(C.acoro_current(E), true)
  end
  if timeout and timeout <= 0 then return alarm end
  return receive_loop(timeout and now() + timeout, alarm)
end

-- HOT PATH. MEMORY: a coroutine waiting here must fit LuaJIT's initial
-- stack (40 slots): the JIT's trace of this loop calls yield through a
-- stitch, which wants LUA_MINSTACK (20) free slots above this frame. So the
-- loop is in a function of its own with no parameters, reached by a tail
-- call, and kept to 7 slots (a spec checks jit.util.funcinfo's stackslots).
local function receive_any()
  local rec = C.acoro_current(E)
  if rec == nil then current("receive") end
  local key = C.acoro_mb_shift(rec)
  if key == 0 and band(C.acoro_co_flags(rec), F_PENDING) ~= 0 then raise_pending(rec, true) end
  while key == 0 do
    if C.acoro_mb_wait(rec) ~= 0 then nested_wait("receive") end
    if yield() == K_INTERRUPT then raise_pending(rec, true) end
    key = C.acoro_mb_shift(rec)
  end
  local m = vals[key]
  vals[key] = nil
  return m
end
I.receive_any = receive_any -- for the spec on its frame size

function M.receive(timeout, alarm)
  if timeout ~= nil then return receive_wait(timeout, alarm) end
  return receive_any()
end

function M.receive_match(pred, timeout, alarm)
  if type(pred) ~= "function" then
    error("acoro.receive_match: expected a predicate function, got " .. type(pred), 2)
  end
  check_timeout(timeout, "acoro.receive_match", 2)
  local rec = current("receive_match")
  local deadline = timeout and now() + timeout
  local last = 0 -- the last message already tested
  local gen = C.acoro_mb_gen(rec)
  while true do
    -- A message taken meanwhile by someone else (a deliverer taking its
    -- message back) may have been `last`, and its key may be reused: start
    -- over (the predicate may then see a message again).
    if C.acoro_mb_gen(rec) ~= gen then last, gen = 0, C.acoro_mb_gen(rec) end
    local k = last == 0 and C.acoro_mb_first(rec) or C.acoro_mb_next(rec, last)
    while k ~= 0 do
      local hit = pred(vals[k])
      if C.acoro_mb_gen(rec) ~= gen then -- the predicate waited, and the queue changed
        last, gen = 0, C.acoro_mb_gen(rec)
        k = C.acoro_mb_first(rec)
      elseif hit then
        C.acoro_mb_take(rec, k)
        return take(k)
      else
        last = k
        k = C.acoro_mb_next(rec, k)
      end
    end
    if deadline and remaining(deadline) <= 0 then return alarm end
    before_block(rec, "receive_match", true)
    if C.acoro_co_wait(rec, W_RECEIVE, remaining(deadline)) ~= 0 then nested_wait("receive_match") end
    park(rec, true)
  end
end

local deliver_tag = 0

-- The key of the delivery tagged `tag` if it is still queued at `to`, or 0.
local function find_tag(to, tag)
  local k = C.acoro_mb_first(to)
  while k ~= 0 and C.acoro_mb_data(to, k) ~= tag do k = C.acoro_mb_next(to, k) end
  return k
end

-- Takes the delivery tagged `tag` back from `to`: whether it was still there.
local function take_back(to, tag)
  local k = find_tag(to, tag)
  if k == 0 then return false end
  C.acoro_mb_take(to, k)
  vals[k] = nil
  return true
end

function Coro:deliver(msg, timeout)
  local to = self_rec(self, "deliver")
  if msg == nil then error("acoro: deliver: message is nil", 2) end
  check_timeout(timeout, "co:deliver", 2)
  local rec = current("deliver")
  if to == rec then error("acoro: deliver: a coroutine cannot deliver to itself", 2) end
  before_block(rec, "deliver", false)
  deliver_tag = deliver_tag + 1
  local tag = deliver_tag
  local key = C.acoro_send(to, tag)
  if key == 0 then return fail(C.acoro_co_state(to) == S_DEAD and "dead" or "full") end
  vals[key] = msg
  if timeout and timeout <= 0 then
    take_back(to, tag)
    return fail("timeout")
  end
  local deadline = timeout and now() + timeout
  while true do
    local rc = C.acoro_deliver_wait(rec, to, key, remaining(deadline))
    if rc == EDEAD then return fail("dead") end
    if rc ~= 0 then
      take_back(to, tag)
      nested_wait("deliver")
    end
    local ok, r = pcall(park, rec, false)
    if not ok then -- a throw: the message goes back, the error goes on
      take_back(to, tag)
      error(r, 0)
    end
    if r == K_DELIVERED then return true end
    if r ~= K_INTERRUPT then
      if r == K_TIMEOUT and take_back(to, tag) then return fail("timeout") end
      if C.acoro_co_state(to) == S_DEAD then return fail("dead") end
      return true -- taken just as the wait ended
    end
    -- interrupted for something that does not apply here: wait on, if the
    -- message is still there to wait for (in its place in the queue)
    key = find_tag(to, tag)
    if key == 0 then return true end
  end
end

------------------------------------------------------------------------------
-- Life cycle.

function Coro:throw(err)
  local rec = self_rec(self, "throw")
  if C.acoro_co_state(rec) == S_DEAD then return false end
  if rec == C.acoro_current(E) then error(err, 0) end
  if core.reset(self, function() error(err, 0) end) then return true end
  pending_throw[self] = { err }
  set_flag(rec, F_PENDING, true)
  C.acoro_co_interrupt(rec)
  return true
end

function Coro:terminate()
  local rec = self_rec(self, "terminate")
  if C.acoro_co_state(rec) == S_DEAD then return false end
  if rec == C.acoro_current(E) then check_thread(rec, "terminate") end
  finish(self, TERMINATED)
  if rec == C.acoro_current(E) then
    yield() -- never resumed: the engine drops the thread
  end
  core.release(self)
  return true
end

local function result_of(h)
  local res = results[h]
  if res == nil then return true end
  if res.n then return true, unpack(res, 1, res.n) end
  return false, res.err
end

function Coro:join(timeout)
  local target = self_rec(self, "join")
  check_timeout(timeout, "co:join", 1)
  local rec = current("join")
  if target == rec then error("acoro: join: a coroutine cannot join itself", 2) end
  if C.acoro_co_state(target) ~= S_DEAD then
    before_block(rec, "join", false)
    if timeout and timeout <= 0 then return fail("timeout") end
    local deadline = timeout and now() + timeout
    repeat
      local rc = C.acoro_co_join(rec, target, remaining(deadline))
      if rc == EDEAD then break end
      if rc ~= 0 then nested_wait("join") end
      local r = park(rec, false)
      if r == K_TIMEOUT then return fail("timeout") end
    until r ~= K_INTERRUPT
  end
  return result_of(self)
end

function Coro:set_daemon(flag)
  C.acoro_co_set_daemon(self_rec(self, "set_daemon"), (flag == nil or flag) and 1 or 0)
end

function Coro:is_alive()
  return C.acoro_co_state(self_rec(self, "is_alive")) ~= S_DEAD
end

function Coro:status()
  return ffi.string(C.acoro_state_name(C.acoro_co_state(self_rec(self, "status"))))
end

function Coro:monitor(watcher)
  local rec = self_rec(self, "monitor")
  if watcher == nil then watcher = handle_of(current("monitor")) end
  if getmetatable(watcher) ~= coro_mt then -- a watcher on another node (acoro.node's)
    local r = I.resolve("monitor", self, watcher)
    if r then return r[1] end
  end
  local wrec = check_handle(watcher, "monitor")
  if C.acoro_co_state(rec) == S_DEAD then
    send_rec(wrec, exit_message(self, results[self]))
    return true
  end
  C.acoro_co_monitor(rec, wrec)
  return true
end

------------------------------------------------------------------------------
-- Names.

function Coro:register(name)
  local rec = self_rec(self, "register")
  if name ~= nil and type(name) ~= "string" then
    error("acoro: register: name must be a string, got " .. type(name), 2)
  end
  local rc = C.acoro_register(rec, name)
  if rc == EEXIST then return fail("name taken") end
  if rc == EDEAD then return fail("dead") end -- a dead coroutine takes no name
  if rc ~= 0 then error("acoro: register: " .. ffi.string(C.acoro_strerror(rc)), 2) end
  name = ffi.string(C.acoro_co_name(rec))
  local waiting = locate_waiters[name]
  if waiting then
    locate_waiters[name] = nil
    for i = 1, #waiting do
      local w = rec_of(waiting[i])
      C.acoro_co_wake(w, W_OTHER, K_RESUME)
    end
  end
  I.run("register", name, self) -- acoro.node's remote locates
  return true
end

function Coro:unregister()
  return C.acoro_unregister(self_rec(self, "unregister")) == 0
end

-- Here only (a resolver of acoro.node's looks at other nodes); the
-- arguments are checked.
local function locate_here(name, opts)
  local timeout = opts and opts.timeout
  if opts and opts.location ~= nil then
    return fail("not found") -- no remote nodes before distribution starts
  end
  local rec = C.acoro_locate(E, name)
  if rec ~= nil then return handle_of(rec) end
  if not timeout or timeout <= 0 then return fail("not found") end
  local me = current("locate")
  before_block(me, "locate", false)
  local h = handle_of(me)
  local deadline = now() + timeout
  while true do
    if C.acoro_co_wait(me, W_OTHER, remaining(deadline)) ~= 0 then nested_wait("locate") end
    local list = locate_waiters[name]
    if not list then
      list = {}
      locate_waiters[name] = list
    end
    list[#list + 1] = h
    local ok, r = pcall(park, me, false)
    list = locate_waiters[name] -- register() may have emptied it
    if list then
      for i = #list, 1, -1 do
        if list[i] == h then table.remove(list, i) end
      end
      if #list == 0 then locate_waiters[name] = nil end
    end
    if not ok then error(r, 0) end
    rec = C.acoro_locate(E, name)
    if rec ~= nil then return handle_of(rec) end
    if r == K_TIMEOUT then return fail("not found") end
  end
end
I.locate_here = locate_here

function M.locate(name, opts)
  if type(name) ~= "string" then
    error("acoro.locate: name must be a string, got " .. type(name), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("acoro.locate: options must be a table, got " .. type(opts), 2)
  end
  check_timeout(opts and opts.timeout, "acoro.locate", 2, 3, "opts.timeout")
  local location = opts and opts.location
  if location ~= nil and type(location) ~= "string" then
    error("acoro.locate: location must be a string, got " .. type(location), 2)
  end
  local r = I.resolve("locate", name, opts)
  if r then return unpack(r, 1, r.n) end
  return locate_here(name, opts)
end

------------------------------------------------------------------------------
-- Hot swapping.

function M.hot_swappable(flag)
  local rec = current("hot_swappable")
  set_flag(rec, F_SWAPPABLE, flag == nil or flag)
end

function M.is_hot_swap(e)
  return getmetatable(e) == HotSwap
end

function M.is_exit(m)
  return getmetatable(m) == Exit
end

local function is_monitor(rec, watcher)
  for i = 0, C.acoro_co_monitor_count(rec) - 1 do
    if C.acoro_co_monitor_at(rec, i) == watcher then return true end
  end
  return false
end

function Coro:hot_swap(fn, ...)
  local rec = self_rec(self, "hot_swap")
  if type(fn) ~= "function" then
    error("acoro: hot_swap: expected a function, got " .. type(fn), 2)
  end
  if C.acoro_co_state(rec) == S_DEAD then
    -- asyncoro's restart: a monitor may start a failed coroutine again
    local res = results[self]
    local me = C.acoro_current(E)
    if res and res.tb and me ~= nil and is_monitor(rec, me) then
      results[self] = nil
      if core.restart(self, fn, ...) ~= true then return false end
      I.run("restart", self) -- what the end hooks kept for it comes back
      return true
    end
    return false
  end
  if core.reset(self, fn, ...) then return true end -- not started yet
  pending_swap[self] = setmetatable({ fn = fn, args = { n = select("#", ...), ... } }, HotSwap)
  set_flag(rec, F_PENDING, true)
  if band(C.acoro_co_flags(rec), F_SWAPPABLE) ~= 0 then C.acoro_co_interrupt(rec) end
  return true
end

------------------------------------------------------------------------------
-- Handles.

local getters = {
  id = function(rec) return tonumber(C.acoro_co_id(rec)) end,
  name = function(rec)
    local n = C.acoro_co_name(rec)
    return n ~= nil and ffi.string(n) or nil
  end,
  location = function() return I.location end, -- the node's, once one runs
}

coro_mt.__index = function(h, k)
  local m = Coro[k]
  if m then return m end
  local g = getters[k]
  if g then return g(self_rec(h, k)) end
  return nil
end

coro_mt.__tostring = function(h)
  local rec = rec_of(h)
  if rec == nil then return "coro:(released)" end
  local n = C.acoro_co_name(rec)
  local loc = I.location -- the node's, once one runs (as co.location)
  return "coro:" .. (n ~= nil and ffi.string(n) or "-") .. "/" .. tostring(tonumber(C.acoro_co_id(rec)))
    .. (loc and "@" .. loc or "")
end
Exit.__tostring = function(m)
  return "acoro.Exit(" .. tostring(m.coro) .. ", " .. m.reason .. ")"
end

------------------------------------------------------------------------------
-- Running.

-- What a stuck coroutine waits for, for the deadlock report: the library
-- call it waits in, as its caller named it ("join of coro:-/2", "acquire",
-- "receive", "wait"), and where the user's code called it. The Lua thread's
-- frames tell, so no wait pays for a description it rarely needs.
local WAIT_WORDS = {
  [C.ACORO_WAIT_SLEEP] = "sleep", [C.ACORO_WAIT_SUSPEND] = "suspend", [C.ACORO_WAIT_RECEIVE] = "receive",
  [C.ACORO_WAIT_JOIN] = "join", [C.ACORO_WAIT_DELIVER] = "deliver", [C.ACORO_WAIT_IO] = "I/O",
}
local function waits_for(rec)
  local what = WAIT_WORDS[C.acoro_co_wait_kind(rec)] or "wait"
  local th, call, at, target = threads[C.acoro_co_host_ref(rec)], nil, nil, nil
  for level = 0, 50 do
    local info = th and debug.getinfo(th, level, "Slnf")
    if not info then break end
    if info.func == Coro.join then -- its first local is self: whom it joins
      local _, v = debug.getlocal(th, level, 1)
      target = v
    end
    if info.what ~= "C" then
      if not check.in_library(info.source) then
        at = info.short_src .. ":" .. info.currentline
        break
      end
      call = info.name or call
    end
  end
  if what == "join" then
    what = target and "join of " .. tostring(target) or what
  elseif call and what ~= "receive" and what ~= "sleep" then
    what = call
  end
  return what .. (at and " at " .. at or "")
end

local function alive_summary()
  local parts, n = {}, 0
  for _, h in pairs(objs) do
    local rec = rec_of(h)
    if C.acoro_co_is_daemon(rec) == 0 then
      n = n + 1
      if n <= 8 then parts[#parts + 1] = tostring(h) .. " waits in " .. waits_for(rec) end
    end
  end
  if n > 8 then parts[#parts + 1] = "..." end
  return n, table.concat(parts, ", ")
end

local function terminate_all()
  local list = {}
  for _, h in pairs(objs) do list[#list + 1] = h end
  for i = 1, #list do list[i]:terminate() end
end

local is_running = false
local ever_ran = false -- acoro.run was called once

-- In a stock LuaJIT, coroutines spawned by a script that never calls
-- acoro.run would end with the process, silently: a sentinel's finalizer,
-- run as the Lua state closes, warns; not once a coroutine ran, as it does
-- when a C host drives the engine (run-once steps, its own libuv loop).
local never_ran_sentinel = newproxy(true)
getmetatable(never_ran_sentinel).__gc = function()
  if ever_ran or next(objs) == nil or core.resumed() then return end
  local n = 0
  for _ in pairs(objs) do n = n + 1 end
  pcall(log.warn, n, " coroutine(s) spawned but never run: acoro.run was never called ",
    "(from a stock LuaJIT, wrap the main code in acoro.run(function() ... end))")
end
I.never_ran_sentinel = never_ran_sentinel -- anchored: collected only as the state closes

function M.run(fn, ...)
  if type(fn) ~= "function" then
    error("acoro.run: expected a function, got " .. type(fn), 2)
  end
  if is_running then error("acoro.run: the engine is already running", 2) end
  local main = core.spawn(fn, ...)
  C.acoro_co_set_name(rec_of(main), "main")
  main_handle = main
  is_running, ever_ran = true, true
  local shutdown = package.loaded["acoro.shutdown"]
  if shutdown then shutdown.run_begin() end
  local ok, rc = pcall(core.run)
  local sig = C.acoro_engine_stop_signal(E) -- the next run (the hooks') resets it
  shutdown = package.loaded["acoro.shutdown"] -- (the run may have loaded it)
  if ok and shutdown then
    shutdown.run_hooks(core.run)
    -- a signal that cut the hooks of a run that had ended well ends it as
    -- during its work: one line, 128 + its number from the CLI
    local hook_sig = C.acoro_engine_stop_signal(E)
    if sig == 0 and hook_sig ~= 0 and rc == 0 then sig, rc = hook_sig, EINTR end
  end
  is_running = false
  I.log_drain() -- the engine's lines of the run's last moments (acoro.log)
  I.run("run_end") -- acoro.node stops its node
  local signame
  if shutdown then sig, signame = shutdown.run_end(sig) end
  I.stop_signal = sig -- for the CLI's exit status (128 + the signal's number)
  local stuck, which
  if ok and rc == EDEADLK then stuck, which = alive_summary() end
  terminate_all() -- daemons, and whatever a deadlock or a stop left
  main_handle = nil
  if not ok then error(rc, 0) end
  local res = results[main]
  if res and res.tb then
    if type(res.err) == "string" then error(res.tb, 0) end
    error(res.err, 0)
  end
  if rc == EDEADLK then
    error(("acoro: deadlock: %d coroutine(s) wait for something that cannot come: %s")
      :format(stuck, which), 0)
  elseif rc == EINTR then
    if sig == C.acoro_signum("term") then error("acoro: terminated (SIGTERM)", 0) end
    if sig == C.acoro_signum("int") then error("acoro: interrupted (SIGINT)", 0) end
    if sig ~= 0 then error("acoro: ended by signal " .. sig .. " (" .. (signame or "?") .. ")", 0) end
    error("acoro: interrupted", 0)
  elseif rc ~= 0 then
    error("acoro: " .. ffi.string(C.acoro_strerror(rc)), 0)
  end
  if res == nil or res == TERMINATED then return end
  return unpack(res, 1, res.n)
end

------------------------------------------------------------------------------
-- The internal interface (acoro.internal) for the other modules.

-- The running coroutine's handle, or nil.
function I.running()
  local rec = C.acoro_current(E)
  if rec == nil then return nil end
  return handle_of(rec)
end

function I.wake(h)
  return C.acoro_co_wake(rec_of(h), W_OTHER, K_RESUME) == 1
end

-- For the I/O layer: the checks before a blocking call, and the park after
-- the C side registered the coroutine's wait. Returns the wake reason; a
-- throw (or a hot swap at this swappable point) raises here.
function I.io_check(what)
  local rec = C.acoro_current(E)
  if rec == nil then current(what) end
  check_thread(rec, what)
  if band(C.acoro_co_flags(rec), F_PENDING) ~= 0 then raise_pending(rec, true) end
end

function I.io_park()
  local r = yield()
  if r == K_INTERRUPT then raise_pending(C.acoro_current(E), true) end
  return r
end

-- For acoro.sync: I.wait in parts, for a caller whose code after the wake
-- must stay JIT-compiled. The JIT continues a trace after a yield in a
-- stitched trace, which cannot return through a pcall frame ("NYI: return
-- to lower frame"): code after pcall(I.wait) runs interpreted, with every
-- FFI call there on the slow path. So: wait_begin(timeout) raises what is
-- pending (throw, hot swap) and registers the wait (same wake-ups as wait);
-- the caller queues itself (no yield in between) and calls park(), which
-- yields and returns the wake reason (RESUME, TIMEOUT, INTERRUPT) and never
-- raises. After an INTERRUPT the caller undoes what it must and calls
-- raise_pending(), which raises what is pending or returns (nothing applies
-- here: wait again). I.wait(timeout) is the whole: a lean wait, woken by
-- I.wake (no value passed), the timeout (seconds, nil for none) or what is
-- pending (throw, hot swap: raised there); returns the wake reason.
function I.wait_begin(timeout)
  local rec = C.acoro_current(E)
  if rec == nil then current("acquire") end
  if band(C.acoro_co_flags(rec), F_PENDING) ~= 0 then raise_pending(rec, true) end
  if C.acoro_co_wait(rec, W_OTHER, timeout or -1) ~= 0 then nested_wait("acquire") end
end

function I.wait(timeout)
  I.wait_begin(timeout)
  local r = yield()
  if r == K_INTERRUPT then raise_pending(C.acoro_current(E), true) end
  return r
end

function I.park()
  local r = yield() -- not `return yield()`: the JIT cannot return from a tail-called yield
  return r
end

function I.raise_pending()
  raise_pending(current("acquire"), true)
end

I.RESUME, I.TIMEOUT, I.INTERRUPT = K_RESUME, K_TIMEOUT, K_INTERRUPT

-- For acoro.channel: on (default true) makes h's end go through Lua, so that
-- the "end" hooks see it even when it returns nothing, unwatched.
local F_END_HOOK = 4 -- a host flag, after F_SWAPPABLE and F_PENDING
function I.watch_end(h, on)
  set_flag(rec_of(h), F_END_HOOK, on ~= false)
end

------------------------------------------------------------------------------
-- The other modules, loaded on first use: `require "acoro"` costs the
-- coroutine API only. Reading a name below loads its module, which puts its
-- public names on M (rawset: the next read does not come here).

local function once(fn)
  local done = false
  return function()
    if done then return end
    done = true
    fn()
  end
end

local load_sync = once(function()
  local sync = require "acoro.sync"
  sync.init(M)
  M.Lock, M.RLock, M.Condition, M.Event, M.Semaphore = sync.Lock, sync.RLock, sync.Condition,
    sync.Event, sync.Semaphore
end)

local load_channel = once(function()
  local channel = require "acoro.channel"
  channel.init(M)
  M.channel, M.locate_channel, M.is_channel = channel.new, channel.locate_any, channel.is_any
end)

local io_std -- acoro.stdin / stdout / stderr, made on first use
local load_io = once(function()
  io_std = require("acoro.io").init(M, core.io)
  require("acoro.process").init(M, core.process, core.io.metatables.stream)
  require("acoro.udp").init(M, core.udp)
end)

-- Distribution: the node and the extensions that plug into it.
local load_dist = once(function()
  load_channel()
  load_io()
  require("acoro.node").init(M, core.net, core.wire, coro_mt)
  require("acoro.rci").init(M, I.dist, coro_mt)
  require("acoro.files").init(M, I.dist)
  require("acoro.rchannel").init(M, I.dist)
  require("acoro.types").init(M, I.dist)
end)

local load_shutdown = once(function()
  require("acoro.shutdown").init(M, C, E, I, coro_mt)
end)

local loaders = {
  Lock = load_sync, RLock = load_sync, Condition = load_sync, Event = load_sync,
  Semaphore = load_sync,
  channel = load_channel, locate_channel = load_channel, is_channel = load_channel,
  tcp = load_io, stream = load_io, process = load_io, udp = load_io,
  fs = once(function()
    load_io() -- (acoro.fs waits as acoro.io does)
    require("acoro.fs").init(M, core.fs)
  end),
  pool = once(function() require("acoro.pool").init(M, core.pool) end),
  atexit = load_shutdown, signal = load_shutdown, is_signal = load_shutdown,
  node = load_dist, peer = load_dist, peers = load_dist, close_peer = load_dist,
  discover = load_dist, is_remote = load_dist, peer_status = load_dist,
  is_peer_status = load_dist, PeerStatus = load_dist, rci = load_dist, send_file = load_dist,
  del_file = load_dist, is_remote_channel = load_dist, register_type = load_dist,
}
local std = { stdin = 0, stdout = 1, stderr = 2 }

setmetatable(M, {
  __index = function(_, k)
    local load = loaders[k]
    if load then
      load()
      return rawget(M, k)
    end
    if std[k] then
      if not io_std then load_io() end
      local s = io_std(std[k])
      rawset(M, k, s)
      return s
    end
    return nil
  end,
})

-- Loads every module now (the API fuzzer enumerates the whole table).
function I.load_all()
  for _, load in pairs(loaders) do load() end
end

return M

-- acoro.shutdown: how a run ends. Hooks (acoro.atexit) that run as
-- coroutines, each with a deadline, once acoro.run's work is over (every
-- coroutine ended, main raised, SIGINT, SIGTERM); and signals routed to a
-- coroutine as messages (acoro.signal) instead of ending the run.
-- ENGINE THREAD ONLY. The engine's side is in core/engine.c (SIGNALS).
local ffi = require "ffi"
local log = require "acoro.log"
local check = require "acoro.check"

local S = {}

local A, C, E, I, coro_mt -- acoro, the FFI library, the engine, acoro.internal
local hooks = {}          -- {fn =, timeout =}, run last first
local targets = {}        -- signum -> the coroutine its messages go to
local saved = {}          -- signum -> the mode before this run changed it
local pump                -- the daemon coroutine that hands queued signals on
local stopped_by = 0      -- a signal whose target was gone: it ended the run
local running = false     -- inside acoro.run

local DEFAULT_TIMEOUT = 5 -- seconds a hook may take unless it says otherwise

local Signal = { __name = "acoro.Signal" }
Signal.__index = Signal
Signal.__tostring = function(m) return "acoro.Signal(" .. m.signal .. ")" end

-- Sets signum's mode for the rest of this run, remembering the one before.
local function claim(signum, mode)
  local prev = C.acoro_engine_signal(E, signum, mode)
  if prev < 0 then
    error("acoro.signal: cannot watch signal " .. signum .. ": " .. ffi.string(C.acoro_strerror(prev)), 3)
  end
  if saved[signum] == nil then saved[signum] = prev end
end

-- SIGINT and SIGTERM end the run (so that the hooks run) unless a
-- coroutine takes them.
local function claim_stops()
  for _, name in ipairs { "int", "term" } do
    local n = C.acoro_signum(name)
    if not targets[n] then claim(n, C.ACORO_SIGNAL_STOP) end
  end
end

local function signal_name(signum)
  for _, name in ipairs { "int", "term", "hup", "usr1", "usr2", "quit" } do
    if C.acoro_signum(name) == signum then return name end
  end
  return tostring(signum)
end

-- The daemon that waits for queued signals and sends each to its target. A
-- signal whose target has ended does what an unrouted SIGINT or SIGTERM
-- does: it ends the run.
local function pump_loop()
  while true do
    local n = C.acoro_engine_signal_take(E)
    if n == 0 then
      C.acoro_engine_signal_waiter(E, C.acoro_current(E))
      I.wait(nil)
    else
      local co = targets[n]
      if not (co and co:send(setmetatable({ signal = signal_name(n), signum = n }, Signal))) then
        stopped_by = n
        C.acoro_engine_stop(E, C.ACORO_EINTR)
      end
    end
  end
end

local function start_pump()
  if pump then return end
  pump = A.spawn({ name = "signals", daemon = true }, pump_loop)
end

-- acoro.atexit(fn[, timeout]): fn runs as a coroutine once the run's work is
-- over; hooks run one at a time, the last registered first, each ended after
-- `timeout` seconds (default 5).
local function atexit(fn, timeout)
  if type(fn) ~= "function" then
    error("acoro.atexit: expected a function, got " .. type(fn), 2)
  end
  check.timeout(timeout, "acoro.atexit", 2)
  hooks[#hooks + 1] = { fn = fn, timeout = timeout or DEFAULT_TIMEOUT }
  if running then claim_stops() end
end

-- acoro.signal(name, co): the signal `name` ("int", "term", "hup", "usr1",
-- "usr2", "quit") comes to `co` as a message (acoro.is_signal(m), m.signal
-- the name) instead of doing its default; co nil: the default again. Lasts
-- until acoro.run returns.
local function signal(name, co)
  local n = type(name) == "string" and C.acoro_signum(name) or 0
  if n == 0 then
    error("bad argument #1 to 'acoro.signal' (\"int\", \"term\", \"hup\", \"usr1\", \"usr2\" or \"quit\" expected, got "
      .. tostring(name) .. ")", 2)
  end
  if co ~= nil and getmetatable(co) ~= coro_mt then
    error("bad argument #2 to 'acoro.signal' (acoro coroutine or nil expected, got " .. type(co) .. ")", 2)
  end
  targets[n] = co
  if co then
    claim(n, C.ACORO_SIGNAL_QUEUE)
    start_pump()
  elseif saved[n] ~= nil then
    C.acoro_engine_signal(E, n, saved[n])
  end
  if co == nil and #hooks > 0 and (name == "int" or name == "term") then claim_stops() end
end

function S.init(acoro, ffi_c, engine, internal, mt)
  A, C, E, I, coro_mt = acoro, ffi_c, engine, internal, mt
  A.atexit, A.signal = atexit, signal
  A.is_signal = function(m) return getmetatable(m) == Signal end
  running = C.acoro_current(E) ~= nil -- loaded by a coroutine: inside acoro.run
end

-- acoro.run starts.
function S.run_begin()
  running, stopped_by = true, 0
  if #hooks > 0 then claim_stops() end
end

-- acoro.run's work is over: runs the hooks, in the engine again (run_engine
-- runs it), unless there are none. A SIGINT or SIGTERM meanwhile ends them.
function S.run_hooks(run_engine)
  if #hooks == 0 then return end
  local list = hooks
  hooks = {}
  for n in pairs(targets) do -- the routes end with the work: signals do their default
    targets[n] = nil
    C.acoro_engine_signal(E, n, saved[n])
  end
  claim_stops()
  A.spawn({ name = "shutdown" }, function()
    pcall(function()
      for i = #list, 1, -1 do
        local h = A.spawn({ name = "atexit" }, list[i].fn)
        local ok, why = h:join(list[i].timeout)
        if ok == nil and why == "timeout" then
          log.warn("atexit hook ", tostring(h), " still running after ", list[i].timeout, " s: terminated")
          h:terminate()
        end
      end
    end)
    C.acoro_engine_stop(E, C.ACORO_EINTR) -- other coroutines may still be alive
  end)
  pcall(run_engine)
end

-- The signal that ended the run (0: none); then forgets this run's routes
-- and gives every signal it changed its mode back.
function S.run_end(engine_signal)
  local n = engine_signal ~= 0 and engine_signal or stopped_by
  running, stopped_by = false, 0
  for k in pairs(targets) do targets[k] = nil end
  for k, mode in pairs(saved) do
    C.acoro_engine_signal(E, k, mode)
    saved[k] = nil
  end
  C.acoro_engine_signal_waiter(E, nil)
  pump = nil
  return n, n ~= 0 and signal_name(n) or nil
end

return S

-- acoro.log: the one way the Lua library writes a message. Four levels
-- (error, warn, info, debug), a threshold, and a writer: by default the
-- embedding host's log hook when it set one (acoro_lua_set_log), else one
-- line on stderr, "acoro: MESSAGE". Scripts may set both. And the one sink of
-- a progress line (a display redrawn in place): log.progress.
local log = {}

local ffi = require "ffi"
local type, tostring, select, pcall, error = type, tostring, select, pcall, error
local concat = table.concat

-- The engine's levels (acoro_host_t.log: 0 error, 1 warning, 2 info), and
-- debug after them.
local LEVELS = { error = 0, warn = 1, info = 2, debug = 3 }
local NAMES = { [0] = "error", "warn", "info", "debug" }
log.LEVELS = LEVELS

local threshold = LEVELS.info
local writer            -- the script's, or nil for the default
local writing = false   -- inside the script's writer: its own messages go to the default
-- acoro.core's: host_log(level, msg) -> true when the embedder's hook took
-- it; set_host_level(n): the engine's own lines use the same threshold;
-- take() -> level, msg: an engine line queued while a writer is set;
-- redirect(drain | nil): queue the engine's lines for drain, or not.
local host_log, set_host_level, take, redirect

-- Called once by acoro (init.lua) with acoro.core.
function log.init(core)
  host_log, set_host_level, take, redirect = core.log, core.log_level, core.log_take, core.log_redirect
  set_host_level(threshold)
end

-- The default writer: the host's hook, else stderr.
function log.default_writer(level, msg)
  if host_log and host_log(LEVELS[level] or 0, msg) then return end
  io.stderr:write("acoro: ", msg, "\n")
end

local function level_of(level, what)
  local n = LEVELS[level]
  if not n then
    error(("bad argument #1 to '%s' (a level expected: \"error\", \"warn\", \"info\" or \"debug\", got %s)")
      :format(what, tostring(level)), 3)
  end
  return n
end

local function text(...)
  local n = select("#", ...)
  if n == 1 then
    local s = ...
    if type(s) == "string" then return s end
  end
  local parts = { ... }
  for i = 1, n do
    local ok, s = pcall(tostring, parts[i])
    parts[i] = ok and s or "(value cannot be converted to a string)"
  end
  return concat(parts, "", 1, n)
end

-- log.write(level, ...): the message is its arguments (tostring'd) joined.
-- A writer that raises (or tries to wait: it runs where a yield cannot go)
-- loses nothing: the message and why go to the default writer.
local drain

local function emit(level, msg)
  local w = writer
  if w == nil or writing then return log.default_writer(level, msg) end
  writing = true
  local ok, err = pcall(w, level, msg)
  writing = false
  if not ok then
    log.default_writer("error", "log writer failed: " .. text(err))
    log.default_writer(level, msg)
  end
end

-- Hands the engine's lines queued meanwhile to the writer (they are already
-- filtered by level). The binding calls it once the coroutine that logged
-- yields (an engine line may come from inside an FFI call, where Lua must
-- not run); every message written and the end of acoro.run call it too, so
-- the order is kept.
function drain()
  local level, msg = take()
  while level do
    emit(NAMES[level] or "error", msg)
    level, msg = take()
  end
end
require("acoro.internal").log_drain = drain -- acoro.run calls it as it ends

local function write(level, n, ...)
  if n > threshold then return end
  if writer then drain() end
  return emit(level, text(...))
end

function log.write(level, ...)
  return write(level, level_of(level, "acoro.log.write"), ...)
end
function log.error(...) return write("error", 0, ...) end
function log.warn(...) return write("warn", 1, ...) end
function log.info(...) return write("info", 2, ...) end
function log.debug(...) return write("debug", 3, ...) end

-- log.enabled(level) -> bool: whether a message of that level is written
-- (to skip building a costly one).
function log.enabled(level)
  return level_of(level, "acoro.log.enabled") <= threshold
end

-- log.set_level(level) -> the previous level: messages above it are
-- dropped (default "info"). The engine's own lines follow it too.
function log.set_level(level)
  local n = level_of(level, "acoro.log.set_level")
  local prev = log.level()
  threshold = n
  if set_host_level then set_host_level(n) end
  return prev
end

function log.level()
  return NAMES[threshold]
end

-- log.set_writer(fn) -> the previous writer (nil: the default): fn(level,
-- msg) gets each message that passes the level, msg without the "acoro: "
-- prefix nor the final newline, the engine's lines included (once the
-- coroutine that caused one yields). nil restores the default. fn runs
-- where no yield can go: it must not wait (send a message, append to a
-- table, write to a Lua file; not acoro.fs nor a stream).
function log.set_writer(fn)
  if fn ~= nil and type(fn) ~= "function" then
    error("bad argument #1 to 'acoro.log.set_writer' (a function or nil expected, got " .. type(fn) .. ")", 2)
  end
  local prev = writer
  if prev then drain() end
  writer = fn
  redirect(fn and drain or nil) -- the engine's lines: queued for fn, or written again
  return prev
end

-- The progress line: a display redrawn in place (run_results' "120/1000
-- jobs"), not a message: acoro.log's writers take whole lines, which a
-- redrawn one is not. The library hands each state of it here and nowhere
-- else, so that a script or an embedding host can take it.
pcall(ffi.cdef, "int isatty(int fd);")

local progress_writer -- the script's, or nil for the default

-- The default: "\r" and the line on stderr, a newline after the last one;
-- only when stderr is a terminal (never into a pipe or a file).
local function tty_progress(line, final)
  io.stderr:write("\r", line, "   ", final and "\n" or "")
  io.stderr:flush()
end

-- log.progress_enabled() -> bool: whether a progress line would be shown
-- (a progress writer is set, or stderr is a terminal) at this level (info
-- and below: set_level("warn") hides it too).
function log.progress_enabled()
  if threshold < LEVELS.info then return false end
  return progress_writer ~= nil or ffi.C.isatty(2) == 1
end

-- log.progress(line[, final]): the line's new state (no "\r", no newline),
-- final for its last.
function log.progress(line, final)
  if not log.progress_enabled() then return end
  local w = progress_writer or tty_progress
  local ok, err = pcall(w, tostring(line), final and true or false)
  if not ok then log.default_writer("error", "log progress writer failed: " .. text(err)) end
end

-- log.set_progress_writer(fn) -> the previous (nil: the default): fn(line,
-- final) gets each state of a progress line instead, wherever stderr goes;
-- as a writer of messages, it must not wait.
function log.set_progress_writer(fn)
  if fn ~= nil and type(fn) ~= "function" then
    error("bad argument #1 to 'acoro.log.set_progress_writer' (a function or nil expected, got " .. type(fn) .. ")", 2)
  end
  local prev = progress_writer
  progress_writer = fn
  return prev
end

return log

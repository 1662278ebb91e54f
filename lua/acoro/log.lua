-- acoro.log: the one way the Lua library writes a message. Four levels
-- (error, warn, info, debug), a threshold, and a writer: by default the
-- embedding host's log hook when it set one (acoro_lua_set_log), else one
-- line on stderr, "acoro: MESSAGE". Scripts may set both.
local log = {}

local type, tostring, select, pcall, error = type, tostring, select, pcall, error
local concat = table.concat

-- The engine's levels (acoro_host_t.log: 0 error, 1 warning, 2 info), and
-- debug after them.
local LEVELS = { error = 0, warn = 1, info = 2, debug = 3 }
log.LEVELS = LEVELS

local threshold = LEVELS.info
local writer            -- the script's, or nil for the default
local host_log          -- acoro.core's: (level, msg) -> true when a host hook took it
local set_host_level    -- acoro.core's: the engine's own lines use the same threshold
local writing = false   -- inside the script's writer: its own messages go to the default

-- Called once by acoro (init.lua) with acoro.core's log calls.
function log.init(core_log, core_set_level)
  host_log, set_host_level = core_log, core_set_level
  if set_host_level then set_host_level(threshold) end
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
local function write(level, n, ...)
  if n > threshold then return end
  local msg = text(...)
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
  for name, n in pairs(LEVELS) do
    if n == threshold then return name end
  end
end

-- log.set_writer(fn) -> the previous writer (nil: the default): fn(level,
-- msg) gets each message that passes the level, msg without the "acoro: "
-- prefix nor the final newline. nil restores the default.
function log.set_writer(fn)
  if fn ~= nil and type(fn) ~= "function" then
    error("bad argument #1 to 'acoro.log.set_writer' (a function or nil expected, got " .. type(fn) .. ")", 2)
  end
  local prev = writer
  writer = fn
  return prev
end

return log

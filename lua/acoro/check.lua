-- acoro.check (internal): the argument checks every acoro module shares, so
-- that one rule reads the same everywhere: timeouts (nil, or a number that
-- is not NaN), counts, and the `self` of methods (a wrong self raises instead
-- of reaching an FFI cast or a C pointer), and the codes of expected
-- failures (check.fail).
local check = {}

local type, error, tostring, getmetatable, rawget, pairs = type, error, tostring, getmetatable,
  rawget, pairs

-- Timeouts, in seconds, across the whole API: nil = the default (usually
-- forever); a number <= 0, -inf included, = do not wait; +inf = forever
-- (the engine waits at most about 31 years); NaN raises. check.timeout(t,
-- what, argn [, level [, name]]) raises blaming the caller of the function
-- that calls it (level 3, or `level`); `what` names the call as its user
-- writes it ("acoro.receive", "Lock:acquire"), argn is the argument's
-- position, name what the argument is called ("timeout", or
-- "opts.timeout" for a field). Returns t.
function check.timeout(t, what, argn, level, name)
  if t == nil then return nil end
  if type(t) ~= "number" then
    error(("%s: %s must be a number or nil, got %s"):format(what, name or "timeout", type(t)),
      level or 3)
  end
  if t ~= t then
    error(("bad argument #%d to '%s' (%s is NaN)"):format(argn, what, name or "timeout"), level or 3)
  end
  return t
end

-- check.count(n, what, min, level): n a whole number >= min (and not NaN nor
-- infinite), else raises. Returns n.
function check.count(n, what, min, level)
  if type(n) ~= "number" or n ~= n or n < min or n % 1 ~= 0 then
    error(("%s: n must be %s integer, got %s"):format(what,
      min > 0 and "a positive" or "a non-negative", tostring(n)), level or 3)
  end
  return n
end

-- check.number(v, what, name, min): v nil, or a number (not NaN; >= min
-- if min is given), else raises "acoro: what: name must be a number ..."
-- blaming the caller of the function that calls it (I/O arguments: max,
-- mode, offset).
function check.number(v, what, name, min)
  if v ~= nil and (type(v) ~= "number" or v ~= v or (min and v < min)) then
    error(("acoro: %s: %s must be a number%s, got %s"):format(what, name,
      min and (" >= " .. min) or "", tostring(v)), 3)
  end
end

-- Raises the error of a method called with a wrong self, e.g. co.send(5,
-- msg): "bad self to co:send (acoro coroutine expected, got number)".
function check.bad_self(x, what, expected, level)
  local t = type(x)
  local mt = getmetatable(x)
  if t == "table" or t == "userdata" then
    local name = type(mt) == "table" and rawget(mt, "__name")
    if type(name) == "string" then t = name end
  end
  error(("bad self to %s (%s expected, got %s)"):format(what, expected, t), level or 3)
end

-- check.misuse(msg): raises msg at the user's line: the first caller outside
-- acoro's own Lua files (the folder of this one, dist/ included), however
-- deep in the library the check ran (acoro.tcp.connect and acoro.fs.stat
-- check it two or three calls down). A C caller (pcall) gives no position,
-- as error() does.
local getinfo, sub = debug.getinfo, string.sub
local LIB = getinfo(1, "S").source:match("^(@.*[/\\])check%.lua$") -- "@.../acoro/"

-- Whether a chunk's source (debug.getinfo's) is one of acoro's own files.
function check.in_library(source)
  return LIB ~= nil and sub(source, 1, #LIB) == LIB
end

function check.misuse(msg)
  local level = 2
  while true do
    local info = getinfo(level, "S")
    if info == nil or not check.in_library(info.source) then break end
    level = level + 1
  end
  error(msg, level)
end

-- check.one_prefix(text): the text of an error for a report that starts
-- with "acoro: " already (the CLI's, a coroutine's failure in the log):
-- without the library's own "acoro: " after the position, so that a reader
-- sees one ("acoro: x.lua:4: tcp.connect: opts must be a table").
function check.one_prefix(text)
  return (text:gsub("^([^\n]-:%d+: )acoro: ", "%1", 1))
end

-- Expected failures (docs/lua-api-notes.md, "Errors"): every call that can
-- fail in an expected way returns nil, message, code. I/O messages are
-- "ECODE: text"; coroutines, channels and distribution keep their bare word
-- as the message (what callers compare today) and add the code below, the
-- same upper-case E-name I/O uses for the same thing (a timeout is
-- ETIMEDOUT everywhere), or the engine's ACORO_E* name. A message with
-- detail starts with its word: "word: detail" or "word (detail)".
check.CODES = {
  ["timeout"] = "ETIMEDOUT",
  ["dead"] = "EDEAD",
  ["full"] = "ENOBUFS",
  ["name taken"] = "EEXIST",
  ["exists"] = "EEXIST",
  ["not found"] = "ENOENT",
  ["not subscribed"] = "ENOENT",
  ["unknown channel"] = "ENOENT",
  ["cycle"] = "ELOOP",
  ["unreachable"] = "ENOPEER",
  ["busy"] = "EBUSY",
  ["closed"] = "ECLOSED",
  -- a peer's handshake refused or failed (acoro.peer), a peer's answer
  -- that is none of the words here
  ["refused"] = "ECONNREFUSED",
  ["cannot connect"] = "ECONNREFUSED",
  -- files between nodes (acoro.send_file, acoro.del_file: the sender's
  -- checks and the receiver's refusals, which come back as their message)
  ["no such file"] = "ENOENT",
  ["not a regular file"] = "EINVAL",
  ["not a directory"] = "ENOTDIR",
  ["too large"] = "EFBIG",
  ["bad path"] = "EINVAL",
  ["bad file name"] = "EINVAL",
  ["bad size"] = "EINVAL",
  ["bad mtime"] = "EINVAL",
  ["bad mode"] = "EINVAL",
  ["bad hash"] = "EINVAL",
  ["bad timeout"] = "EINVAL",
  ["path escapes dest_path"] = "EACCES",
  ["dest_path"] = "EACCES",
  ["dest_path: timeout"] = "ETIMEDOUT",
  ["hash mismatch"] = "EIO",
  ["larger than announced"] = "EIO",
  ["read failed"] = "EIO",
  ["the file grew while it was sent"] = "EAGAIN",
  ["the file shrank while it was sent"] = "EAGAIN",
  ["the temporary file was replaced"] = "EACCES",
}

-- A lines() iterator cannot return nil, why (a for loop stops at the nil and
-- drops the rest), so a line that cannot be read raises: a timeout, a line
-- too long, a read error; only the end of the data ends the loop. `what` is
-- "s:lines" or "f:lines"; level 3 blames the line of the for loop.
function check.lines_failed(what, why, code)
  error(("acoro: %s: %s (%s)"):format(what, tostring(why), tostring(code)), 3)
end

-- The code of an expected failure's message: its word's (the whole
-- message, else the longest word of CODES it starts with, followed by ":",
-- " " or "("), or an I/O message's own "ECODE"; "EINVAL" for a message
-- without a known word. Only failures come here: no hot path.
local words -- CODES' keys, longest first
function check.code(why)
  if type(why) ~= "string" then return "EINVAL" end
  local c = check.CODES[why]
  if c then return c end
  local e = why:match("^(E[A-Z0-9]+): ")
  if e then return e end
  if not words then
    words = {}
    for k in pairs(check.CODES) do words[#words + 1] = k end
    table.sort(words, function(a, b) return #a > #b end)
  end
  for i = 1, #words do
    local k = words[i]
    if why:sub(1, #k) == k and why:sub(#k + 1, #k + 1):match("^[: (]$") then return check.CODES[k] end
  end
  return "EINVAL"
end

-- check.fail(why [, code]) -> nil, why, code: code defaults to
-- check.code(why).
function check.fail(why, code)
  return nil, why, code or check.code(why)
end

-- Lines, one rule for streams and files: a line (with its "\n") is at most
-- `max` bytes; a longer one is an expected failure of readline, nothing
-- taken (the bytes stay buffered, as asyncio's LimitOverrunError leaves
-- them), never a line cut in parts that would pass for whole ones.
function check.line_too_long(max)
  return check.fail(("line over the %d-byte limit"):format(max), "EMSGSIZE")
end

return check

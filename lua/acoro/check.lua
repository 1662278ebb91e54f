-- acoro.check (internal): the argument checks every acoro module shares, so
-- that one rule reads the same everywhere: timeouts (nil, or a number that
-- is not NaN), counts, and the `self` of methods (a wrong self raises instead
-- of reaching an FFI cast or a C pointer), and the codes of expected
-- failures (check.fail).
local check = {}

local type, error, tostring, getmetatable, rawget = type, error, tostring, getmetatable, rawget

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

-- Expected failures (docs/lua-api-notes.md, "Errors"): every call that can
-- fail in an expected way returns nil, message, code. I/O messages are
-- "ECODE: text"; coroutines, channels and distribution keep their bare word
-- as the message (what callers compare today) and add the code below, the
-- same upper-case E-name I/O uses for the same thing (a timeout is
-- ETIMEDOUT everywhere), or the engine's ACORO_E* name.
check.CODES = {
  ["timeout"] = "ETIMEDOUT",
  ["dead"] = "EDEAD",
  ["full"] = "ENOBUFS",
  ["name taken"] = "EEXIST",
  ["exists"] = "EEXIST",
  ["not found"] = "ENOENT",
  ["not subscribed"] = "ENOENT",
  ["unknown channel"] = "ENOENT",
  ["unreachable"] = "ENOPEER",
  ["busy"] = "EBUSY",
  ["closed"] = "ECLOSED",
}

-- A lines() iterator cannot return nil, why (a for loop stops at the nil and
-- drops the rest), so a line that cannot be read raises: a timeout, a line
-- too long, a read error; only the end of the data ends the loop. `what` is
-- "s:lines" or "f:lines"; level 3 blames the line of the for loop.
function check.lines_failed(what, why, code)
  error(("acoro: %s: %s (%s)"):format(what, tostring(why), tostring(code)), 3)
end

-- check.fail(why [, code]) -> nil, why, code: code defaults to CODES[why]
-- (a message with detail, such as "cycle: ...", passes its own code).
function check.fail(why, code)
  return nil, why, code or check.CODES[why] or "EINVAL"
end

-- Lines, one rule for streams and files: a line (with its "\n") is at most
-- `max` bytes; a longer one is an expected failure of readline, nothing
-- taken (the bytes stay buffered, as asyncio's LimitOverrunError leaves
-- them), never a line cut in parts that would pass for whole ones.
function check.line_too_long(max)
  return check.fail(("line over the %d-byte limit"):format(max), "EMSGSIZE")
end

return check

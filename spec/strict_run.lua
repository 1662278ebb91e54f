-- A strict acoro.run for the specs: a coroutine that fails while acoro.run runs (an
-- assertion inside a spawned coroutine, say) fails the spec, with its message and
-- traceback, instead of leaving a line on stderr. spec/helper.lua installs it on every
-- `require "acoro"` of a Busted run; a spec whose coroutines fail on purpose says so first
-- with support.expect_failures, which also keeps their log lines off the output.

local strict = {}

local expected -- what the next acoro.run lets fail: a plain string to find, or true

-- The next acoro.run lets coroutines fail with a message containing `text` (plain, not
-- a pattern), or with anything when `text` is true or nil. Other failures still fail it.
function strict.expect_failures(text)
  if text == nil then text = true end
  assert(text == true or type(text) == "string", "expect_failures: a string or true")
  expected = text
end

local function describe_error(err)
  local ok, s = pcall(tostring, err)
  if not ok then return "(error object cannot be converted to a string)" end
  if type(err) == "table" and type(err.message) == "string" then s = err.message end
  return s
end

local function pack(...) return { n = select("#", ...), ... } end

local installed = setmetatable({}, { __mode = "k" }) -- module instances wrapped
local on_failure -- while a wrapped acoro.run runs: takes each failure

-- Wraps acoro.run in place (once per module instance). Failures reach it through
-- the internal "failure" hook, which the library runs for every coroutine that fails.
function strict.install(acoro)
  if installed[acoro] then return acoro end
  installed[acoro] = true
  local run = acoro.run
  require("acoro.internal").hook("failure", "strict_run", function(h, err, tb)
    if on_failure then on_failure(h, err, tb) end
  end)
  acoro.run = function(...)
    local allowed = expected
    expected = nil
    local failures = {}
    on_failure = function(h, err, tb)
      local text = describe_error(err)
      if allowed == true or (allowed and text:find(allowed, 1, true)) then return end
      failures[#failures + 1] = { co = tostring(h), err = err, text = text, tb = tb }
    end
    -- The log lines of the failures it expects are part of the test, not its output: a
    -- passing run stays quiet. Every other line goes where it went.
    local filter, prev_writer
    if allowed then
      filter = function(level, msg)
        if msg:find("^coroutine [^\n]- failed: ") and (allowed == true or msg:find(allowed, 1, true)) then return end
        if prev_writer then return prev_writer(level, msg) end
        acoro.log.default_writer(level, msg)
      end
      prev_writer = acoro.log.set_writer(filter)
    end
    local res = pack(pcall(run, ...))
    if filter then
      local now = acoro.log.set_writer(prev_writer)
      if now ~= filter then acoro.log.set_writer(now) end -- the spec set its own: keep it
    end
    on_failure = nil
    local f = failures[1]
    if f then
      local more = #failures > 1 and (" (and %d more)"):format(#failures - 1) or ""
      if type(f.err) == "string" then
        error(("coroutine %s failed%s: %s\n%s"):format(f.co, more, f.text, f.tb or ""), 0)
      end
      error(f.err, 0) -- a luassert failure keeps its form
    end
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end
  return acoro
end

return strict

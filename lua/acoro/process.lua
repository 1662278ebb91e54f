-- acoro.process: child processes whose stdin, stdout and stderr may be
-- pipes read and written as acoro streams (the methods of a TCP connection).
-- The C half (bindings/lproc.c, core/process.c) spawns and reaps; this file
-- makes waiting look blocking: "try; if it must wait, park; try again".
--
-- Errors: misuse raises; an expected failure returns nil, message, code
-- (e.g. nil, "ENOENT: no such file or directory", "ENOENT" when there is no
-- such program); "timeout" has the code "ETIMEDOUT".
local process = {}

local argcheck = require "acoro.check"
local I = require "acoro.internal"

local cproc, park, check, now, K_TIMEOUT, acoro
local stream_mt
local type, error, tostring, setmetatable, getmetatable = type, error, tostring, setmetatable,
  getmetatable

local Process = { __name = "acoro.Process" }
Process.__index = Process

-- Without stdin/stdout/stderr fields: stdin and stdout are pipes (as
-- asyncoro's AsyncPipe), stderr is inherited.
local DEFAULTS = { stdin = "pipe", stdout = "pipe", stderr = "inherit" }

-- nil, or a number other than NaN (acoro.check's rule for every timeout).
local check_timeout = argcheck.timeout

local left = require("acoro.io").left

local function stdio_spec(v, name)
  if v == nil then return DEFAULTS[name] end
  if v == false or v == "null" then return "null" end
  if v == "pipe" or v == "inherit" then return v end
  if type(v) == "number" and v >= 0 and v < 2 ^ 31 and v % 1 == 0 then return v end
  if getmetatable(v) == stream_mt then
    if not v:is_open() then error(("acoro: process.spawn: %s: the stream is closed"):format(name), 3) end
    return v
  end
  error(('acoro: process.spawn: %s must be "pipe", "inherit", "null", false, an fd or a stream, got %s')
    :format(name, tostring(v)), 3)
end

-- env: a table {NAME = value} (or a list of "NAME=value" strings) that
-- replaces the child's whole environment.
local function env_list(env)
  if env == nil then return nil end
  if type(env) ~= "table" then error("acoro: process.spawn: env must be a table", 3) end
  local list = {}
  for k, v in pairs(env) do
    if type(k) == "number" then
      if type(v) ~= "string" or not v:find("=", 1, true) then
        error("acoro: process.spawn: env[" .. k .. "] must be a \"NAME=value\" string", 3)
      end
      list[#list + 1] = v
    else
      if type(k) ~= "string" or k == "" or k:find("=", 1, true)
        or (type(v) ~= "string" and type(v) ~= "number") then
        error("acoro: process.spawn: env." .. tostring(k) .. " must be a string or number", 3)
      end
      list[#list + 1] = k .. "=" .. v
    end
  end
  return list
end

-- acoro.process.spawn{cmd, args..., stdin=, stdout=, stderr=, cwd=, env=}
--   -> process | nil, message, code
-- Each of stdin/stdout/stderr: "pipe" (an acoro stream at p.stdin, ...),
-- "inherit" (this process's), "null" or false (/dev/null), an fd number, or
-- an open acoro stream (the child gets its fd: another process's
-- p.stdout chains them; this process keeps its own copy, to close).
function process.spawn(t)
  if type(t) ~= "table" then
    error("acoro: process.spawn: expected a table {cmd, args..., stdin=, stdout=, stderr=, cwd=, env=}", 2)
  end
  local args = {}
  for i = 1, #t do
    local a = t[i]
    if type(a) == "number" then a = tostring(a) end
    if type(a) ~= "string" then
      error(("acoro: process.spawn: argument %d must be a string, got %s"):format(i, type(a)), 2)
    end
    args[i] = a
  end
  if #args == 0 then error("acoro: process.spawn: no command given", 2) end
  if t.cwd ~= nil and type(t.cwd) ~= "string" then
    error("acoro: process.spawn: cwd must be a string", 2)
  end
  local h, pid, i, o, e = cproc.spawn(args, env_list(t.env), t.cwd, stdio_spec(t.stdin, "stdin"),
    stdio_spec(t.stdout, "stdout"), stdio_spec(t.stderr, "stderr"))
  if not h then return nil, pid, i end
  return setmetatable({ _h = h, pid = pid, stdin = i, stdout = o, stderr = e, args = args }, Process)
end

local function check_process(p, what)
  if getmetatable(p) ~= Process then argcheck.bad_self(p, "p:" .. what, "acoro process", 4) end
end

-- p:wait([timeout]) -> exit code, signal (0 if none) | nil, "timeout", "ETIMEDOUT"
function Process:wait(timeout)
  check_process(self, "wait")
  check_timeout(timeout, "p:wait", 1)
  local code, sig = self._h:_status()
  if code then return code, sig end
  check("wait")
  local deadline = timeout and now() + timeout
  while true do
    local done, err, ecode = self._h:_wait(left(deadline))
    if done then break end
    if ecode == "EWAITING" then argcheck.misuse("acoro: wait: " .. err) end
    if park() == K_TIMEOUT then return nil, "timeout", "ETIMEDOUT" end
  end
  code, sig = self._h:_status()
  if code then return code, sig end
  return nil, "closed", "ECLOSED" -- the engine is going
end

-- p:kill([signal]) -> true | nil, message, code. signal: a number or a
-- name ("TERM", "SIGKILL", ...), SIGTERM by default. Once the child has
-- exited: nil, "ESRCH: no such process", "ESRCH".
function Process:kill(sig)
  check_process(self, "kill")
  local n
  if sig == nil then
    n = cproc.signals.TERM
  elseif type(sig) == "number" and sig >= 0 and sig % 1 == 0 then
    n = sig
  elseif type(sig) == "string" then
    n = cproc.signals[(sig:upper():gsub("^SIG", ""))]
  end
  if not n then error("acoro: kill: unknown signal " .. tostring(sig), 2) end
  return self._h:_kill(n)
end

-- Closes the pipes (the child goes on; it reads EOF, or its writes fail).
function Process:close()
  check_process(self, "close")
  for _, s in ipairs({ self.stdin, self.stdout, self.stderr }) do
    if s then s:close() end
  end
end

-- p:communicate([input [, timeout]]) -> out, err, code, signal
--   | nil, "timeout", "ETIMEDOUT"
-- Writes input to stdin and closes it, reads stdout and stderr to their
-- end at the same time (so a child never blocks on a full pipe), then
-- waits for the exit. out / err are "" for streams that are not pipes.
function Process:communicate(input, timeout)
  check_process(self, "communicate")
  check_timeout(timeout, "p:communicate", 2)
  if input ~= nil and type(input) ~= "string" then
    error("acoro: communicate: input must be a string, got " .. type(input), 2)
  end
  if input and input ~= "" and not self.stdin then
    error("acoro: communicate: input given but stdin is not a pipe", 2)
  end
  check("communicate")
  local deadline = timeout and now() + timeout
  local helpers, readers = {}, {}
  local function start(fn)
    local co = acoro.spawn(fn)
    co:set_daemon(true)
    helpers[#helpers + 1] = co
    return co
  end
  if self.stdin then
    local s = self.stdin
    start(function()
      -- A child that ends without reading makes the write fail (EPIPE):
      -- that is its business, not an error of communicate.
      if input and input ~= "" and s:is_open() then s:send(input, deadline and left(deadline)) end
      s:close()
    end)
  end
  for k, s in pairs({ out = self.stdout, err = self.stderr }) do
    readers[k] = start(function()
      local data = s:read(nil, deadline and left(deadline))
      return data or ""
    end)
  end
  local res = { out = "", err = "" }
  local timed_out = false
  for _, co in ipairs(helpers) do
    local ok, v = co:join(deadline and left(deadline))
    if ok == nil then
      timed_out = true
      break
    end
    for k, r in pairs(readers) do
      if r == co and ok then res[k] = v end
    end
  end
  if timed_out then
    for _, co in ipairs(helpers) do co:terminate() end
    return nil, "timeout", "ETIMEDOUT"
  end
  local code, sig, why = self:wait(deadline and left(deadline))
  if not code then return nil, sig, why end
  return res.out, res.err, code, sig
end

function process.init(m, c, smt)
  acoro, cproc, stream_mt = m, c, smt
  park, check, now, K_TIMEOUT = I.io_park, I.io_check, m.now, I.TIMEOUT
  m.process = process
end

process.Process = Process

return process

-- acoro.pool: runs a Lua function on libuv's thread pool, in a worker Lua
-- state of its own, while every other coroutine keeps running. The C half
-- (bindings/lpool.c, core/pool.c) copies the function as bytecode and the
-- arguments and results as plain data: nil, booleans, numbers, strings and
-- nested tables of these. A function's upvalues do not travel, so a
-- function with upvalues is refused (use arguments, or require inside it:
-- a job's package.path and package.cpath are the submitter's at submit
-- time, so it finds the modules the script finds).
local pool = {}

local argcheck = require "acoro.check"
local I = require "acoro.internal"

local cpool, park, check, now, K_TIMEOUT
local type, error, tostring, pcall, unpack = type, error, tostring, pcall, unpack
local dump, getupvalue, getinfo = string.dump, debug.getupvalue, debug.getinfo

local Job = { __name = "acoro.Job" }
Job.__index = Job

local function bytecode(fn, what)
  if type(fn) ~= "function" then
    error(("acoro: %s: expected a function, got %s"):format(what, type(fn)), 3)
  end
  if getinfo(fn, "S").what == "C" then
    error(("acoro: %s: a C function cannot run on the pool"):format(what), 3)
  end
  local names, i = {}, 1
  while true do
    local name = getupvalue(fn, i)
    if name == nil then break end
    names[#names + 1] = name
    i = i + 1
  end
  if #names > 0 then
    error(("acoro: %s: the function has upvalues (%s), which are not carried to the worker "
      .. "thread: pass them as arguments, or require modules inside the function")
      :format(what, table.concat(names, ", ")), 3)
  end
  local ok, code = pcall(dump, fn)
  if not ok then error(("acoro: %s: cannot dump the function: %s"):format(what, tostring(code)), 3) end
  return code
end

-- Waits for a job; true once done, false if the deadline came first.
local function await(job, deadline)
  while true do
    local l = -1
    if deadline then
      l = deadline - now()
      if l < 0 then l = 0 end
    end
    if job:_wait(l) then return true end
    if park() == K_TIMEOUT then return false end
  end
end

local function outcome(job)
  local t = { job:_result() }
  if not t[1] then error(t[2], 0) end
  return unpack(t, 2, table.maxn(t))
end

-- acoro.pool.run(fn, ...) -> fn's results. Raises fn's error (its message).
function pool.run(fn, ...)
  check("pool.run")
  local code = bytecode(fn, "pool.run")
  local job = cpool.submit(code, package.path, package.cpath, ...)
  await(job)
  return outcome(job)
end

-- acoro.pool.submit(fn, ...) -> job: starts fn at once; job:result([timeout])
-- waits for it (fn's results; nil, "timeout", "ETIMEDOUT" if it took
-- longer, and the job goes on: ask again).
function pool.submit(fn, ...)
  local code = bytecode(fn, "pool.submit")
  return setmetatable({ job = cpool.submit(code, package.path, package.cpath, ...) }, Job)
end

function Job:result(timeout)
  if getmetatable(self) ~= Job then argcheck.bad_self(self, "job:result", "acoro pool job") end
  check("job:result")
  argcheck.timeout(timeout, "job:result", 1)
  if not await(self.job, timeout and now() + timeout) then return nil, "timeout", "ETIMEDOUT" end
  return outcome(self.job)
end

-- acoro.pool.size([n]) -> size. libuv reads its pool size once, when the
-- pool first starts in this process (the first file call, pool job or
-- host name resolution): setting it afterwards raises.
function pool.size(n)
  if n ~= nil and (type(n) ~= "number" or n < 1 or n % 1 ~= 0) then
    error("acoro: pool.size: expected a whole number >= 1, got " .. tostring(n), 2)
  end
  local size, current = cpool.size(n)
  if size == nil then
    error(("acoro: pool.size: too late: the thread pool has started (with %d threads); "
      .. "set the size before any file call, pool job or tcp.connect, or set "
      .. "UV_THREADPOOL_SIZE in the environment"):format(current), 2)
  end
  return size
end

function pool.init(m, c)
  cpool = c
  park, check, now, K_TIMEOUT = I.io_park, I.io_check, m.now, I.TIMEOUT
  m.pool = pool
  return pool
end

return pool

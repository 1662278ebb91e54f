-- acoro.hostfn: the Lua half of the functions a C host gives its scripts
-- that wait for the host (acoro_lua_push_hostfn, bindings/lhost.c). The C
-- half starts a host call; here the calling coroutine waits for it as an
-- I/O wait does, alone: the others keep running. A timeout, a throw or a
-- terminate cancels the call, so that the host may stop early and its late
-- values are freed unread.
local acoro = require "acoro"
local I = require "acoro.internal"

local M = {}
local error, pcall, setmetatable = error, pcall, setmetatable
local now, park, raise_pending = acoro.now, I.park, I.raise_pending
local K_TIMEOUT, K_INTERRUPT = I.TIMEOUT, I.INTERRUPT

-- The call each coroutine waits for: a terminate ends the coroutine
-- without resuming it, so its end hook cancels the call.
local waiting = setmetatable({}, { __mode = "k" })
I.hook("end", "hostfn", function(h)
  local call = waiting[h]
  if call then
    waiting[h] = nil
    call:_cancel()
  end
end)

-- true once done; false when the deadline came first (the call is
-- cancelled). A throw cancels it and raises.
local function await(h, call, deadline)
  waiting[h] = call
  while true do
    local left = -1
    if deadline then
      left = deadline - now()
      if left < 0 then left = 0 end
    end
    if call:_wait(left) then break end
    local r = park()
    if r == K_TIMEOUT then
      waiting[h] = nil
      call:_cancel()
      return false
    elseif r == K_INTERRUPT then
      local ok, err = pcall(raise_pending)
      if not ok then
        waiting[h] = nil
        call:_cancel()
        error(err, 0)
      end
    end
  end
  waiting[h] = nil
  return true
end

-- make(begin, name) -> the function scripts call. begin(...) starts the
-- host's work and gives the call and its timeout (nil: none).
function M.make(begin, name)
  local what = "host function " .. name
  return function(...)
    I.io_check(what)
    local h = I.running()
    local call, timeout = begin(...)
    if not await(h, call, timeout and now() + timeout) then
      return nil, "timeout", "ETIMEDOUT"
    end
    return call:_result()
  end
end

return M

-- acoro.rci: remote coroutine interface (asyncoro's RCI) over the node
-- (the extension table D, lua/acoro/dist/ext.lua). A node registers a function
-- under a name; another node locates it and calls it: the owner starts the
-- function as a new coroutine there and answers with that coroutine's
-- handle. Only functions the owner registered ever run: the call carries a
-- name and arguments, never code.
--
-- THREADS. Everything runs on the engine thread. The operation handlers are
-- called by dist/node.lua from the transport's events, outside any coroutine:
-- they never yield (a reply to a busy peer goes through a daemon, `reply`).
--
-- WIRE (the operation rci_call of acoro.dist.protocol; locating is
-- acoro.dist.locate's, directory "rci"):
--   {CALL, request, name, encoded {n=, w=watcher | nil, args...}} ->
--     the ANSWER of D.answer with {true, handle} or {false, error}   (D.ask)
-- An rci value travels as ext type EXT.rci: core.wire's encoding of
-- {location, incarnation, name}. Values are cached weakly by that triple,
-- so one rci always decodes to the same Lua value (== and table keys work).
--
-- LOCATE is acoro.locate's (D.find, acoro.dist.locate): every peer (or the one at
-- `location`) is asked; with a timeout, a peer without the name holds the
-- request until the name is registered there or the asker's deadline
-- passes, and a peer that comes up during the wait is asked too.
local check = require "acoro.check"
local I = require "acoro.internal"
local M = {}

function M.init(A, D, coro_mt)
  local OP_CALL = D.OP.rci_call
  local OP_ANSWER = D.OP.answer
  -- A call with more arguments is refused (the owner unpacks a count that
  -- a peer sent: it must be bounded, LuaJIT's stack is not).
  local MAX_ARGS = 250

  local registered = {} -- name -> fn: the RCIs of this node
  local cache = setmetatable({}, { __mode = "v" }) -- "loc/inc/name" -> rci
  local incs = setmetatable({}, { __mode = "k" })  -- rci -> incarnation | false (local, no node yet)

  local Rci = {}
  local rci_mt = { __name = "acoro.rci", __index = Rci }
  -- "rci:NAME@HOST:PORT"; one of ours found before any node ran has no
  -- location of its own and shows the node's once one runs, as tostring(co)
  rci_mt.__tostring = function(r)
    local loc = r.location or (incs[r] == false and I.location)
    return "rci:" .. r.name .. (loc and "@" .. loc or "")
  end

  local function rci_value(location, inc, name)
    local key = (location or "-") .. "/" .. (inc or "-") .. "/" .. name
    local r = cache[key]
    if r == nil then
      r = setmetatable({ name = name, location = location }, rci_mt)
      incs[r] = inc or false
      cache[key] = r
    end
    return r
  end

  -- The rci of one of our own names: bound to the node (and incarnation)
  -- running now, or "local" (location nil) when none runs.
  local function own(name)
    local node, inc = D.node()
    return rci_value(node and node.location, inc, name)
  end

  -- True when r names this process's functions (now, or before any node).
  local function is_own(r)
    local node, inc = D.node()
    if incs[r] == false then return true end
    return node ~= nil and r.location == node.location and incs[r] == inc
  end

  -- The peer id of r's node when that node (that incarnation) is up.
  local function peer_of(r)
    local id = r.location and D.peer_at(r.location)
    local p = id and D.peer(id)
    if p and p.inc == incs[r] then return id end
    return nil
  end

  D.add_ext(D.EXT.rci, rci_mt, function(r)
    local node, inc = D.node()
    if incs[r] == false then -- made before the node started: it is ours
      if not node then error("acoro: an rci can only leave the process once acoro.node runs", 0) end
      return D.encode({ node.location, inc, r.name })
    end
    return D.encode({ r.location, incs[r], r.name })
  end, function(d) -- the payload, decoded in place
    if type(d) ~= "table" or type(d[1]) ~= "string" or type(d[2]) ~= "string"
      or type(d[3]) ~= "string" then
      return nil
    end
    return rci_value(d[1], d[2], d[3])
  end)

  local reply = D.reply

  ----------------------------------------------------------------------------
  -- Registering.

  local api = {}

  local function check_name(name, what)
    if type(name) ~= "string" or name == "" then
      error(("acoro.rci.%s: name must be a non-empty string, got %s"):format(what,
        type(name) == "string" and '""' or type(name)), 3)
    end
  end

  -- A name registered here answers the LOCATEs held for it and the local
  -- locates waiting for it.
  function api.register(name, fn)
    check_name(name, "register")
    if type(fn) ~= "function" then
      error("acoro.rci.register: fn must be a function, got " .. type(fn), 2)
    end
    -- taken: an expected failure, as co:register and ch:register (two
    -- coroutines may race for a service's name)
    if registered[name] then return check.fail("name taken") end
    registered[name] = fn
    D.registered("rci", name, own(name))
    return true
  end

  function api.unregister(name)
    check_name(name, "unregister")
    if registered[name] == nil then return false end
    registered[name] = nil
    return true
  end

  ----------------------------------------------------------------------------
  -- Locating.

  D.directory("rci", function(name) return registered[name] and own(name) or nil end,
    function(v) return getmetatable(v) == rci_mt end)

  function api.locate(name, opts)
    check_name(name, "locate")
    if opts ~= nil and type(opts) ~= "table" then
      error("acoro.rci.locate: options must be a table, got " .. type(opts), 2)
    end
    local location, timeout = opts and opts.location, opts and opts.timeout
    check.timeout(timeout, "acoro.rci.locate", 2, 3, "opts.timeout")
    if location ~= nil and type(location) ~= "string" then
      error("acoro.rci.locate: location must be a string, got " .. type(location), 2)
    end
    local node = D.node()
    local here = location == nil or (node ~= nil and location == node.location)
    if here and registered[name] then return own(name) end
    local wait = timeout ~= nil and timeout > 0
    if not wait and (node == nil or location == node.location) then return check.fail("not found") end
    return D.find("rci", name, location, timeout, "acoro.rci.locate")
  end

  ----------------------------------------------------------------------------
  -- Calling.

  -- On the owner: starts registered[name](args...) and says what came of it
  -- ({true, handle} or {false, error}). Creation errors are the owner's
  -- messages: the function itself runs later, in its own coroutine.
  local function start(name, args)
    local fn = registered[name]
    local node = D.node()
    if fn == nil then
      return { false, ("acoro.rci: no RCI %q is registered at %s"):format(name,
        node and node.location or "this node") }
    end
    local ok, h = pcall(A.spawn, fn, unpack(args, 1, args.n))
    if not ok then return { false, h } end
    return { true, h }
  end

  local function is_coro(v) return getmetatable(v) == coro_mt or D.is_remote(v) end

  D.on_op(OP_CALL, function(peer, m)
    local req, name, body = m[2], m[3], m[4]
    if type(req) ~= "number" or type(name) ~= "string" or type(body) ~= "string" then
      return D.bad(peer, "bad RCI CALL")
    end
    local args, why = D.decode(body)
    local n = type(args) == "table" and args.n
    local result, watcher
    if type(n) ~= "number" or n < 0 or n > MAX_ARGS or n % 1 ~= 0
      or (args.w ~= nil and not is_coro(args.w)) then
      result = { false, "acoro.rci: the arguments of " .. name .. " could not be decoded: "
        .. tostring(why or "not an argument list") }
    else
      result, watcher = start(name, args), args.w
    end
    local ok, data = pcall(D.encode, { OP_ANSWER, req, result })
    if not ok then -- an error value that cannot travel goes as its string
      data = D.encode({ OP_ANSWER, req, { false, tostring(result[2]) } })
    end
    if not (watcher and result[1]) then return reply(peer, data) end
    -- monitor=: the watcher is set before the answer goes, from a daemon
    -- (a remote monitor may wait for a busy peer); a coroutine that ended
    -- meanwhile still gives its Exit (its handle is held here until then).
    local h = result[2]
    local co = A.spawn(function()
      h:monitor(watcher)
      D.send_peer(peer, data)
    end)
    co:set_daemon(true)
  end)

  local function call(r, timeout, watcher, ...)
    if is_own(r) then -- no wire: arguments by reference, as local messages
      local args = { n = select("#", ...), ... }
      local res = start(r.name, args)
      if not res[1] then error(res[2], 0) end
      if watcher then res[2]:monitor(watcher) end
      return res[2]
    end
    local me = I.running()
    if me == nil then error("acoro.rci: " .. tostring(r) .. ": called outside an acoro coroutine", 3) end
    if select("#", ...) > MAX_ARGS then
      error("acoro.rci: " .. tostring(r) .. ": more than " .. MAX_ARGS .. " arguments", 3)
    end
    local ok, body = pcall(D.encode, { n = select("#", ...), w = watcher, ... })
    if not ok then
      error(type(body) == "string" and body:gsub("^acoro: cannot send msg", "acoro.rci: "
        .. tostring(r) .. ": cannot send args", 1) or body, 3)
    end
    -- Failures that are not the caller's mistake raise without a position:
    -- the owner's own error value as it came, or why there was no answer.
    local peer = peer_of(r)
    if not peer then error("acoro.rci: " .. tostring(r) .. ": unreachable", 0) end
    local answered, res = D.ask(peer, function(req)
      return { OP_CALL, req, r.name, body }
    end, timeout)
    if not answered then error("acoro.rci: " .. tostring(r) .. ": " .. res, 0) end
    if type(res) ~= "table" then error("acoro.rci: " .. tostring(r) .. ": bad answer", 0) end
    if res[1] ~= true then error(res[2], 0) end
    return res[2]
  end

  -- (not tail calls: the error levels above count these frames)
  rci_mt.__call = function(r, ...)
    local h = call(r, nil, nil, ...)
    return h
  end

  -- r:call({timeout=, monitor=}, args...): the same with a bound on the
  -- wait for the owner's answer, and/or a local coroutine that gets the
  -- started coroutine's Exit (monitored there before it can end).
  function Rci.call(r, opts, ...)
    if getmetatable(r) ~= rci_mt then error("acoro.rci: call: use r:call(opts, ...)", 2) end
    if opts ~= nil and type(opts) ~= "table" then
      error("acoro.rci: call: options must be a table or nil, got " .. type(opts), 2)
    end
    local timeout = opts and opts.timeout
    if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0) then
      error("acoro.rci: call: timeout must be a positive number or nil", 2)
    end
    local watcher = opts and opts.monitor
    if watcher ~= nil and getmetatable(watcher) ~= coro_mt then
      error("acoro.rci: call: monitor must be a local coroutine, got "
        .. (D.is_remote(watcher) and "a remote one" or type(watcher)), 2)
    end
    local h = call(r, timeout, watcher, ...)
    return h
  end

  function api.is_rci(v) return getmetatable(v) == rci_mt end

  A.rci = api
end

return M

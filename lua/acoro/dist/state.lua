-- acoro.dist.state: what the distribution modules (lua/acoro/dist/) share,
-- in one table S: the running node, its peers, the handles that left this
-- process, and each module's functions that another module calls. Each
-- module's init(S) reads what it needs into locals (the hot paths keep
-- upvalues) and adds its own functions; the list below says who owns what.
--
-- OWNERSHIP. S.A, S.net, S.wire, S.coro_mt: the caller of dist/node.lua's
-- init (acoro's public table, core.net, core.wire, the local coroutine
-- metatable). The tables here are made once and emptied in place when the
-- node stops (S.clear), never replaced: a module may keep them in locals.
-- Functions: codec.lua (ext_encode, ext_decode, IN_PLACE, add_ext,
-- PeerStatus), link.lua (send_peer, reply, wait_until, ask_peer, bad,
-- answer), handles.lua (Remote methods, exit_to, monitor_proxy),
-- locate.lua (find, registered, directory), dist/node.lua (the rest).
--
-- ENGINE THREAD ONLY, as the whole Lua layer.
local S = {}

local getmetatable, next, setmetatable, tostring = getmetatable, next, setmetatable, tostring

S.node = nil -- the running node: {location=, name=}, or nil
S.inc = nil  -- its incarnation (16 hex digits, random per start)
S.peers = {} -- peer id -> {id=, location=, name=, inc=}
S.by_loc = {} -- location -> peer id
S.exported = setmetatable({}, { __mode = "v" }) -- local id -> handle (filled as handles leave)
S.ops = {}   -- op -> fn(peer, m): every operation but SEND (see dist/node.lua's on_message)

-- Remote handles: a table with metatable remote_mt (methods: S.Remote,
-- handles.lua), cached weakly by "location/id/incarnation" so that the
-- same remote coroutine is always the same Lua value (== and table keys).
S.Remote = {}
S.remote_mt = { __name = "acoro.remote_coro", __index = S.Remote }
S.remote_mt.__tostring = function(h)
  return "coro:" .. (h.name or "-") .. "/" .. tostring(h.id) .. "@" .. h.location
end
local remote_mt = S.remote_mt
local incs = setmetatable({}, { __mode = "k" })    -- Remote -> its node's incarnation
local remotes = setmetatable({}, { __mode = "v" }) -- "loc/id/inc" -> Remote
S.incs = incs

function S.remote_handle(location, id, name, inc)
  local key = location .. "/" .. id .. "/" .. inc
  local h = remotes[key]
  if h == nil then
    h = setmetatable({ location = location, id = id, name = name or nil }, remote_mt)
    incs[h] = inc
    remotes[key] = h
  end
  return h
end

function S.is_remote(h) return getmetatable(h) == remote_mt end

-- The peer id of h's node if that node (that incarnation) is up, else nil.
local peers, by_loc = S.peers, S.by_loc
function S.peer_of(h)
  local id = by_loc[h.location]
  if id and peers[id].inc == incs[h] then return id end
  return nil
end

-- Request numbers, one sequence for every kind of request of this process.
local next_req = 0
function S.request()
  next_req = next_req + 1
  return next_req
end

-- Empties t in place (a module's locals keep pointing at it).
function S.clear(t)
  local k = next(t)
  while k ~= nil do
    t[k] = nil
    k = next(t)
  end
end

-- The node stopped: no node, no peers (the modules clear their own tables).
function S.stop()
  S.node, S.inc = nil, nil
  S.clear(peers)
  S.clear(by_loc)
end

return S

-- acoro.dist.codec: how values that are not plain data travel between
-- nodes: the MessagePack ext types (numbers in acoro.dist.protocol) of
-- coroutine handles, Exit and PeerStatus messages, and the extensions' own
-- (S.add_ext).
--
-- Coroutine handles travel as the ext type EXT.coro, whose payload is
-- core.wire's encoding of {location, id, name | false, incarnation}: the
-- incarnation (random per node start) tells a restarted node on the same
-- location apart, so a message for a coroutine of the old one never
-- reaches the new. A handle of one of our own coroutines that comes back
-- decodes to the local handle itself (S.exported, filled as handles leave).
-- Every other ext type's payload is one wire value that the decoder decodes
-- in place (IN_PLACE: core.wire's EXT NESTING): its decoder gets that
-- value, and however exts nest (an Exit of an Exit of ...) a message has 64
-- levels in all and no payload is copied per level.
local P = require "acoro.dist.protocol"

local M = {}

function M.init(S)
  local encode, decode = S.wire.encode, S.wire.decode
  local coro_mt, remote_mt, exported, incs = S.coro_mt, S.remote_mt, S.exported, S.incs
  local remote_handle = S.remote_handle
  local EXT_CORO = P.EXT.coro
  local ext_dec = {} -- ext type -> fn(payload) -> value | nil
  local ext_enc = {} -- metatable -> fn(v) -> type, payload

  -- The ext types decoded in place: all but coro, whose payload string is
  -- the key of the decode cache (W6's hot path).
  local IN_PLACE = {}
  for _, t in pairs(P.EXT) do IN_PLACE[t] = t ~= EXT_CORO or nil end

  -- W6's hot path: a handle in a message is encoded and decoded on every
  -- round trip. Its encoding only changes with its name (or a new node),
  -- and a payload always decodes to the same remote handle: both cached
  -- (weakly: they go with the handles).
  local enc_cache = setmetatable({}, { __mode = "k" }) -- handle -> {payload, name, node}
  local remote_enc = setmetatable({}, { __mode = "k" }) -- Remote -> payload (never changes)
  local dec_cache = setmetatable({}, { __mode = "v" }) -- payload -> Remote

  local function ext_encode(v)
    local mt = getmetatable(v)
    if mt == coro_mt then
      local node = S.node
      if not node then error("acoro: a coroutine handle can only leave the process once acoro.node runs", 0) end
      local id, name = v.id, v.name or false
      exported[id] = v
      local c = enc_cache[v]
      if c and c[2] == name and c[3] == node then return EXT_CORO, c[1] end
      local payload = encode({ node.location, id, name, S.inc })
      enc_cache[v] = { payload, name, node }
      return EXT_CORO, payload
    elseif mt == remote_mt then
      local payload = remote_enc[v]
      if payload == nil then
        payload = encode({ v.location, v.id, v.name or false, incs[v] })
        remote_enc[v] = payload
      end
      return EXT_CORO, payload
    end
    local f = mt and ext_enc[mt]
    if f then return f(v) end
    return nil
  end

  -- A malformed payload gives nil: the whole message is then refused.
  -- payload: the string for EXT_CORO, the decoded value for the others.
  local function ext_decode(t, payload)
    if t ~= EXT_CORO then
      local f = ext_dec[t]
      return f and f(payload)
    end
    local h = dec_cache[payload]
    if h then return h end
    local d = decode(payload)
    if type(d) ~= "table" or type(d[1]) ~= "string" or type(d[2]) ~= "number"
      or type(d[4]) ~= "string" then
      return nil
    end
    local node = S.node
    local mine = node and d[1] == node.location and d[4] == S.inc
    h = mine and exported[d[2]]
    if h then -- one of ours: the handle itself, as long as it lives (both tables are weak)
      dec_cache[payload] = h
      return h
    end
    h = remote_handle(d[1], d[2], type(d[3]) == "string" and d[3] or nil, d[4])
    -- Only while a node runs: a handle of another node (or of an earlier
    -- incarnation) then stays remote for good.
    if node and not mine then dec_cache[payload] = h end
    return h
  end

  S.ext_encode, S.ext_decode, S.IN_PLACE = ext_encode, ext_decode, IN_PLACE
  function S.encode(v) return encode(v, ext_encode) end
  function S.decode(s) return decode(s, ext_decode, IN_PLACE) end

  -- Values with metatable mt travel as ext type t: enc(v) -> payload
  -- string (S.encode of one value), dec(v) -> value, v being the payload
  -- decoded in place (nil refuses the whole message).
  function S.add_ext(t, mt, enc, dec)
    assert(t ~= EXT_CORO, "ext type of coroutine handles")
    ext_enc[mt] = function(v) return t, enc(v) end
    ext_dec[t] = dec
    IN_PLACE[t] = true
  end

  -- Exit and PeerStatus messages travel too (a watcher on another node may
  -- forward them); they arrive with their metatables.
  local Exit = S.A.Exit
  local PeerStatus = { __name = "acoro.PeerStatus" }
  PeerStatus.__tostring = function(m)
    return "acoro.PeerStatus(" .. m.location .. ", " .. m.status .. ")"
  end
  S.PeerStatus = PeerStatus

  ext_enc[Exit] = function(v)
    return P.EXT.exit, encode({ v.coro, v.reason, v.value, v.error, v.traceback }, ext_encode)
  end
  ext_dec[P.EXT.exit] = function(d) -- in place: the payload's value
    if type(d) ~= "table" or type(d[2]) ~= "string" then return nil end
    return setmetatable({ coro = d[1], reason = d[2], value = d[3], error = d[4], traceback = d[5] }, Exit)
  end
  ext_enc[PeerStatus] = function(v)
    return P.EXT.peer_status, encode({ v.status, v.location, v.name })
  end
  ext_dec[P.EXT.peer_status] = function(d)
    if type(d) ~= "table" or type(d[1]) ~= "string" or type(d[2]) ~= "string" then return nil end
    return setmetatable({ status = d[1], location = d[2], name = d[3] }, PeerStatus)
  end
end

return M

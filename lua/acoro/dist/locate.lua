-- acoro.dist.locate: finding a name on other nodes, one protocol for every
-- kind of name (coroutines here, channels in rchannel.lua, RCIs in
-- rci.lua): {LOCATE, request, name, wait seconds, kind} answered by
-- {FOUND, request, value | false}. A kind is a directory (S.directory):
-- lookup(name) finds a value registered here; accept(v) says whether a
-- FOUND value is one of its kind.
--
-- A locate asks every peer (or the one at `location`); a peer that does not
-- have the name holds the request until the name is registered there or
-- the requester's timeout passes (its own clock), and answers FOUND (the
-- value, or false at once when no wait was asked). A pending locate also
-- asks each peer that comes up while it waits, so a client started before
-- its server finds it when the server appears. HELD LOCATEs
-- (acoro.dist.held) cost O(log n) each whatever a peer sends; past
-- MAX_HELD held for one peer, its next LOCATE is answered false at once.
--
-- THREADS. on_locate, on_found, peer_up and peer_down run from the
-- transport's events and never yield; find waits in its coroutine.
local check = require "acoro.check"
local I = require "acoro.internal"
local P = require "acoro.dist.protocol"
local Held = require "acoro.dist.held"

local M = {}

local fail = check.fail -- nil, why, code (docs/lua-api-notes.md, Errors)
local MAX_HELD = 1000 -- held LOCATEs per peer

function M.init(S)
  local A, coro_mt, remote_mt, peers = S.A, S.coro_mt, S.remote_mt, S.peers
  local encode, ext_encode = S.wire.encode, S.ext_encode
  local send_peer, reply, wait_until, bad = S.send_peer, S.reply, S.wait_until, S.bad
  local orig_locate = I.locate_here
  local OP_LOCATE, OP_FOUND = P.OP.locate, P.OP.found
  local dirs = {}    -- kind -> {lookup=, accept=}
  local pending = {} -- request -> a locate in progress (see find)
  local held = Held.new(MAX_HELD) -- LOCATEs waiting here for a name

  local function reply_found(peer, req, v)
    reply(peer, encode({ OP_FOUND, req, v or false }, ext_encode))
  end

  -- Asks peer for q's name; counts the question if it went.
  local function ask(peer, req, q)
    local wait = q.wait and math.max(0, q.deadline - A.now()) or 0
    if send_peer(peer, encode({ OP_LOCATE, req, q.name, wait, q.kind })) then
      q.asked[peer] = true
      q.outstanding = q.outstanding + 1
    end
  end

  -- Looks for name on the peers (the one at `location`, or all) and, when
  -- `location` is nil or ours, waits for it to be registered here too.
  -- With a timeout > 0 a peer without the name answers when it has it,
  -- and a peer that comes up meanwhile is asked too. Returns the value,
  -- or nil, "not found" | "unreachable" (the peer at `location` went
  -- down while asked), code. `what` names the caller in errors.
  local function find(kind, name, location, timeout, what)
    check.timeout(timeout, what, 2, 4, "opts.timeout")
    local me = I.running()
    if me == nil then error(what .. ": called outside an acoro coroutine", 3) end
    local req = S.request()
    local node = S.node
    -- behind ext_addr, the listener's location still names this node
    if node and location == node.listen then location = node.location end
    local q = {
      kind = kind, name = name, location = location, waiter = me, outstanding = 0, asked = {},
      here = location == nil or (node ~= nil and location == node.location),
      wait = timeout ~= nil and timeout > 0,
      deadline = timeout and timeout > 0 and A.now() + timeout or nil,
    }
    pending[req] = q
    if node and location ~= node.location then
      for id, peer in pairs(peers) do
        if location == nil or peer.location == location then ask(id, req, q) end
      end
    end
    local ok, err = pcall(wait_until, function()
      return q.found or q.unreachable or (not q.wait and q.outstanding == 0)
    end, q.deadline)
    pending[req] = nil
    if not ok then error(err, 0) end
    if q.found then return q.found end
    return fail(q.unreachable and "unreachable" or "not found")
  end

  -- A name of `kind` registered here: answers the LOCATEs held for it and
  -- the local finds waiting for it.
  local function registered(kind, name, v)
    local list = S.node and held:take(kind .. ":" .. name)
    if list then
      local t = A.now()
      for i = 1, #list do
        local e = list[i]
        if e.deadline >= t then reply_found(e.peer, e.req, v) end
      end
    end
    for _, q in pairs(pending) do
      if q.kind == kind and q.name == name and q.here and not q.found then
        q.found = v
        I.wake(q.waiter)
      end
    end
  end

  -- A kind of name that nodes look up with S.find: lookup(name) -> a value
  -- registered here | nil; accept(v) -> whether a FOUND value is of this
  -- kind.
  function S.directory(kind, lookup, accept)
    assert(dirs[kind] == nil, "directory defined twice")
    dirs[kind] = { lookup = lookup, accept = accept }
  end
  S.find, S.registered = find, registered

  S.ops[OP_LOCATE] = function(peer, m)
    local req, name, wait, kind = m[2], m[3], m[4], m[5]
    local dir = dirs[kind]
    if type(req) ~= "number" or type(name) ~= "string" or type(wait) ~= "number" or not dir then
      return bad(peer, "bad LOCATE")
    end
    local v = dir.lookup(name)
    if v or wait ~= wait or wait <= 0 or not held:hold(peer, req, kind .. ":" .. name, A.now(), wait) then
      return reply_found(peer, req, v)
    end
  end

  S.ops[OP_FOUND] = function(peer, m)
    local q = pending[m[2]]
    if not q or not q.asked[peer] then return end
    q.asked[peer] = nil
    q.outstanding = q.outstanding - 1
    if m[3] and dirs[q.kind].accept(m[3]) then q.found = q.found or m[3] end
    I.wake(q.waiter)
  end

  -- Peer id (at location) came up: the waiting locates that may look
  -- there ask it too.
  function M.peer_up(id, location)
    local node = S.node
    for req, q in pairs(pending) do
      if q.wait and not q.found and not q.asked[id] and node and q.location ~= node.location
        and (q.location == nil or q.location == location) then
        ask(id, req, q)
      end
    end
  end

  function M.peer_down(id, location)
    for _, q in pairs(pending) do
      if q.asked[id] then
        q.asked[id] = nil
        q.outstanding = q.outstanding - 1
        if q.location == location then q.unreachable = true end
        I.wake(q.waiter)
      end
    end
    held:drop_peer(id) -- its held LOCATEs go
  end

  -- The node stopped: no peer will answer now, so waits end by their
  -- deadlines; nothing stays held.
  function M.stop()
    for _, q in pairs(pending) do
      q.asked, q.outstanding = {}, 0
      I.wake(q.waiter)
    end
    S.clear(pending)
    held = Held.new(MAX_HELD)
  end

  -- Coroutine names.
  S.directory("coro", function(name) return orig_locate(name) end,
    function(v) return getmetatable(v) == remote_mt or getmetatable(v) == coro_mt end)

  -- acoro.locate (init.lua) checked the arguments; without a node it
  -- looks here only.
  I.resolver("locate", "node", function(name, opts)
    local node = S.node
    if not node then return false end
    local location, timeout = opts and opts.location, opts and opts.timeout
    if location == node.location or location == node.listen then
      return true, orig_locate(name, { timeout = timeout })
    end
    if location == nil then
      local h = orig_locate(name)
      if h then return true, h end
    end
    return true, find("coro", name, location, timeout, "acoro.locate")
  end)

  -- A coroutine name registered here.
  I.hook("register", "node", function(name, h) registered("coro", name, h) end)
end

return M

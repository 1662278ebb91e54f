-- acoro.node: distribution, the Lua layer over the peer transport (core.net,
-- bindings/lnet.c over core/net.c): starting a node, peers and their
-- status, remote coroutine handles (send, deliver, monitor, join, throw,
-- terminate) and locating coroutines on other nodes.
--
-- SIZE: over 800 lines: one closure (M.init) still holds the remote handles,
-- locate and its directories, the proxies and the node's life cycle, which
-- share its state (peers, exported, the request tables). The protocol's
-- numbers are already apart (acoro.dist.protocol); moving the rest into
-- lua/acoro/dist/ modules over one shared state table is the next step.
--
-- THREADS. Everything here runs on the engine thread. The transport's
-- events (on_up, on_down, on_message, on_connect, on_writable, on_log) are
-- called by lnet.c from libuv callbacks, outside any coroutine: they never
-- yield; they queue messages and wake coroutines (I.wake), and the woken
-- coroutine does the rest.
--
-- WIRE. Every message between nodes is one MessagePack value (core.wire):
-- an array whose first element is an operation (OP below). SEND, the hot
-- one, carries the message as its last element, encoded with the envelope
-- in one pass (wire.envelope: an encoding error still names the path inside
-- the message, `msg.handler`) and decoded with it (lnet.c decodes every
-- frame before on_message). The other operations carry a message encoded
-- on its own, as a string inside the envelope. Coroutine handles travel as the
-- ext type EXT.coro, whose payload is core.wire's encoding of
-- {location, id, name | false, incarnation}: the incarnation (random per
-- node start, 16 hex digits) tells a restarted node on the same location
-- apart, so a message for a coroutine of the old one never reaches the new.
-- Every other ext type's payload is one wire value that the decoder
-- decodes in place (IN_PLACE: core.wire's EXT NESTING): its decoder gets
-- that value, and however exts nest (an Exit of an Exit of ...) a message
-- has 64 levels in all and no payload is copied per level.
--
-- REMOTE HANDLES. A handle of a coroutine on another node is a table with
-- the metatable Remote; they are cached weakly by "location/id/incarnation", so the
-- same remote coroutine always decodes to the same Lua value (== and table
-- keys work). A handle of one of our own coroutines that comes back decodes
-- to the local handle itself (`exported`, weak, filled as handles leave).
--
-- PROXIES. What must wait on the target's node (deliver, join, a monitor)
-- runs there in a daemon coroutine spawned for it, which answers when done
-- (DELIVERED, JOINED, EXIT). The asking side waits for the answer or the
-- peer's going down ("unreachable"); a proxy whose asker went down stays
-- until its target ends (it then sends to nobody). A peer has at most
-- MAX_PROXIES deliver and join proxies here at once, its delivers holding
-- at most PROXY_BYTES of messages (one always may): past that the answer
-- is "busy" at once.
--
-- LOCATE. A locate asks every peer (or the one at `location`) with LOCATE;
-- a peer that does not have the name holds the request until the name is
-- registered there or the requester's timeout passes (its own clock), and
-- answers FOUND (the handle, or false at once when no wait was asked). A
-- pending locate also asks each peer that comes up while it waits, so a
-- client started before its server finds it when the server appears.
-- HELD LOCATEs (acoro.dist.held) cost O(log n) each whatever a peer
-- sends; past MAX_HELD held for one peer, its next LOCATE is answered
-- false at once.
--
-- EXTENSIONS. Remote channels, RCI and file transfer live in their own
-- modules over the internal table D (acoro.internal's `dist`): they add
-- operations (D.on_op) and ext types (D.add_ext), register hooks in
-- acoro.internal ("node_check", "peer_up", "peer_down", "node_stop"), and
-- use D.send_peer / D.ask / D.answer for requests.
local check = require "acoro.check"
local log = require "acoro.log"
local I = require "acoro.internal"
local P = require "acoro.dist.protocol"
local Held = require "acoro.dist.held"
local limits = require "acoro.limits"

local M = {}

-- Operation and ext type numbers: acoro.dist.protocol, the one list.
M.EXT, M.OP = P.EXT, P.OP
local EXT_CORO = M.EXT.coro
-- The ext types decoded in place: all but coro, whose payload string is
-- the key of the decode cache (W6's hot path).
local IN_PLACE = {}
for _, t in pairs(M.EXT) do IN_PLACE[t] = t ~= EXT_CORO or nil end

local OP = P.OP
local OP_SEND, OP_LOCATE, OP_FOUND, OP_MONITOR, OP_EXIT = OP.send, OP.locate, OP.found, OP.monitor,
  OP.exit
local OP_DELIVER, OP_DELIVERED, OP_JOIN, OP_JOINED = OP.deliver, OP.delivered, OP.join, OP.joined
local OP_CONTROL, OP_ANSWER, OP_MONITORED, OP_HELLO = OP.control, OP.answer, OP.monitored, OP.hello

-- Raises unless t is nil or a number that is not NaN (a NaN deadline
-- never passes and never arrives), blaming the caller of `what`, with the
-- rule and the words every module uses (acoro.check).
local function check_timeout(t, what, argn, name)
  check.timeout(t, what, argn, 4, name)
end

function M.init(A, net, wire, coro_mt)
  local encode, decode, envelope = wire.encode, wire.decode, wire.envelope
  local orig_locate = I.locate_here

  local node          -- the running node: {location=, name=}, or nil
  local my_inc        -- its incarnation
  local incs = setmetatable({}, { __mode = "k" })     -- Remote -> its node's incarnation
  local peers = {}    -- peer id -> {id=, location=, name=}
  local by_loc = {}   -- location -> peer id
  local exported = setmetatable({}, { __mode = "v" }) -- local id -> handle
  local remotes = setmetatable({}, { __mode = "v" })  -- "loc/id" -> Remote
  local connects = {} -- request -> {waiter=, done=, status=, reason=}
  local pending = {}  -- request -> a locate in progress (see find)
  local MAX_HELD = 1000 -- held LOCATEs per peer
  local held = Held.new(MAX_HELD) -- LOCATEs waiting here for a name (acoro.dist.held)
  local busy = {}     -- peer id -> {handle, ...} waiting for on_writable
  local status_subs = {} -- handle -> true: coroutines told of peer status
  local rmonitors = {} -- location -> {{target=, watcher=}, ...}: our monitors of its coroutines
  local delivers = {}  -- request -> {waiter=, peer=, done=, result=}: remote delivers waiting
  local proxied = {}   -- peer id -> {n = proxies, bytes = of their messages} (see proxy_take)
  local next_req = 0
  local send_exit, monitor_proxy, deliver_proxy, join_proxy, bad -- defined with on_message
  local ops = {}          -- op -> fn(peer, m): the extensions' operations
  local ext_dec = {}      -- ext type -> fn(payload) -> value | nil
  local ext_enc = {}      -- metatable -> fn(v) -> type, payload

  local PeerStatus = { __name = "acoro.PeerStatus" }
  PeerStatus.__tostring = function(m)
    return "acoro.PeerStatus(" .. m.location .. ", " .. m.status .. ")"
  end
  A.PeerStatus = PeerStatus
  function A.is_peer_status(m) return getmetatable(m) == PeerStatus end

  ----------------------------------------------------------------------------
  -- Remote handles.

  local Remote = {}
  local remote_mt = { __name = "acoro.remote_coro", __index = Remote }
  remote_mt.__tostring = function(h)
    return "coro:" .. (h.name or "-") .. "/" .. tostring(h.id) .. "@" .. h.location
  end

  local function remote_handle(location, id, name, inc)
    local key = location .. "/" .. id .. "/" .. inc
    local h = remotes[key]
    if h == nil then
      h = setmetatable({ location = location, id = id, name = name or nil }, remote_mt)
      incs[h] = inc
      remotes[key] = h
    end
    return h
  end

  -- The peer id of h's node if that node (that incarnation) is up, else nil.
  local function peer_of(h)
    local id = by_loc[h.location]
    if id and peers[id].inc == incs[h] then return id end
    return nil
  end

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
      if not node then error("acoro: a coroutine handle can only leave the process once acoro.node runs", 0) end
      local id, name = v.id, v.name or false
      exported[id] = v
      local c = enc_cache[v]
      if c and c[2] == name and c[3] == node then return EXT_CORO, c[1] end
      local payload = encode({ node.location, id, name, my_inc })
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
    local mine = node and d[1] == node.location and d[4] == my_inc
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

  -- send_peer's slow path: peer is busy (its outgoing buffer over the
  -- limit). A coroutine waits for it to drain and sends again; outside a
  -- coroutine the message is dropped with "busy".
  local function send_busy(peer, data)
    while true do
      local me = I.running()
      if me == nil then return nil, "busy" end
      local list = busy[peer]
      if not list then
        list = {}
        busy[peer] = list
      end
      list[#list + 1] = me
      local ok2, err = pcall(I.wait, nil)
      if not ok2 then -- a throw: take our entry out (no stale wake later), raise on
        for i = #list, 1, -1 do
          if list[i] == me then table.remove(list, i) end
        end
        error(err, 0)
      end
      if not peers[peer] then return nil, "unreachable" end
      local ok, why = net.send(peer, data)
      if ok or why ~= "busy" then return ok, why end
    end
  end

  -- Sends one envelope to a peer: true, or nil and why ("unreachable",
  -- "too large"; "busy" outside a coroutine, see send_busy). HOT PATH: the
  -- first try is outside send_busy's loop, which the JIT would otherwise
  -- try (and fail) to record as a loop on every send.
  local function send_peer(peer, data)
    local ok, why = net.send(peer, data)
    if ok or why ~= "busy" then return ok, why end
    return send_busy(peer, data)
  end

  local function raise_send(err, level)
    error(type(err) == "string" and err:gsub("^acoro: ", "acoro: send: ", 1) or err, level + 1)
  end

  -- HOT PATH (W6): one encode of envelope and message together; the
  -- message is encoded even when it will not leave (our own coroutine, or
  -- no peer) so that an unsendable message raises wherever it goes.
  function Remote:send(msg)
    if msg == nil then error("acoro: send: message is nil", 2) end
    local ok, data = pcall(envelope, ext_encode, msg, OP_SEND, self.id)
    if not ok then raise_send(data, 2) end
    if node and self.location == node.location and incs[self] == my_inc then
      local h = exported[self.id]
      return h ~= nil and h:send(msg)
    end
    local peer = peer_of(self)
    if not peer then return false end
    return send_peer(peer, data) == true
  end

  -- Remote monitor: the target's node runs a proxy coroutine that monitors
  -- it and sends its Exit back (OP_EXIT); if the node goes down first, the
  -- watcher gets an Exit with reason "unreachable" here (once: whichever
  -- comes first removes the entry).
  local function exit_to(watcher, target, reason, value, err)
    watcher:send(setmetatable({ coro = target, reason = reason, value = value, error = err }, A.Exit))
  end

  function Remote:monitor(watcher)
    if watcher == nil then watcher = I.running() end
    if getmetatable(watcher) ~= coro_mt then
      error("acoro: monitor: the watcher must be a local coroutine, got " .. type(watcher), 2)
    end
    local peer = peer_of(self)
    if peer then
      local list = rmonitors[self.location] or {}
      rmonitors[self.location] = list
      list[#list + 1] = { target = self, watcher = watcher }
      if send_peer(peer, encode({ OP_MONITOR, self.id, watcher }, ext_encode)) then return true end
      list[#list] = nil
    end
    exit_to(watcher, self, "unreachable", nil, "unreachable")
    return true
  end

  -- Waits (woken by the event handlers through I.wake) until done() or
  -- the deadline (nil: none). A throw or hot swap raised meanwhile goes on.
  local function wait_until(done, deadline)
    while not done() do
      local left = deadline and deadline - A.now()
      if left and left <= 0 then return end
      I.wait(left)
    end
  end

  -- Sends build(req) to `peer` and waits for the answer (OP_DELIVERED,
  -- OP_JOINED, OP_CONTROLLED fill d.done and d.result) at most `bound`
  -- seconds (nil: until answered or the peer goes down). Returns d, or nil
  -- when the request could not be sent.
  local function ask_peer(me, peer, build, bound)
    next_req = next_req + 1
    local req = next_req
    local d = { waiter = me, peer = peer }
    delivers[req] = d
    local ok, err = pcall(function()
      if not send_peer(peer, encode(build(req))) then
        d.unsent = true
        return
      end
      wait_until(function() return d.done end, bound and A.now() + bound)
    end)
    delivers[req] = nil
    if not ok then error(err, 0) end
    if d.unsent then return nil end
    return d
  end

  -- Remote deliver: the target's node runs a proxy coroutine that delivers
  -- there (with the timeout) and answers OP_DELIVERED.
  function Remote:deliver(msg, timeout)
    if msg == nil then error("acoro: deliver: message is nil", 2) end
    check_timeout(timeout, "co:deliver", 2)
    local me = I.running()
    if me == nil then error("acoro.deliver: called outside an acoro coroutine", 2) end
    local ok, body = pcall(encode, msg, ext_encode)
    if not ok then error(type(body) == "string" and body:gsub("^acoro: ", "acoro: deliver: ", 1) or body, 2) end
    local peer = peer_of(self)
    if not peer then return nil, "unreachable" end
    -- the peer enforces the timeout; this bound only covers a lost answer
    local d = ask_peer(me, peer, function(req)
      return { OP_DELIVER, req, self.id, body, timeout or -1 }
    end, timeout and timeout + 10)
    if not d then return nil, "unreachable" end
    if not d.done then return nil, "timeout" end
    if d.result == true then return true end
    return nil, d.result
  end

  -- Remote join: the target's node runs a proxy coroutine that joins it
  -- there (with the timeout) and sends back what join returned.
  function Remote:join(timeout)
    check_timeout(timeout, "co:join", 1)
    local me = I.running()
    if me == nil then error("acoro.join: called outside an acoro coroutine", 2) end
    local peer = peer_of(self)
    if not peer then return nil, "unreachable" end
    local d = ask_peer(me, peer, function(req)
      return { OP_JOIN, req, self.id, timeout or -1 }
    end, timeout and timeout + 10) -- the bound covers a lost answer only
    if not d then return nil, "unreachable" end
    if not d.done then return nil, "timeout" end
    local r = d.result
    if type(r) ~= "table" then return nil, r end
    return unpack(r, 1, r.n)
  end

  -- throw and terminate run on h's node, which answers whether h was alive.
  local function control(h, what, arg)
    local me = I.running()
    if me == nil then error("acoro." .. what .. ": called outside an acoro coroutine", 3) end
    local body = false
    if what == "throw" then
      local ok, b = pcall(encode, arg, ext_encode)
      if not ok then error(type(b) == "string" and b:gsub("^acoro: ", "acoro: throw: ", 1) or b, 3) end
      body = b
    end
    local peer = peer_of(h)
    if not peer then return false end
    -- answered at once, or the peer goes down
    local d = ask_peer(me, peer, function(req) return { OP_CONTROL, req, h.id, what, body } end)
    return d ~= nil and d.result == true
  end

  function Remote:throw(err) return control(self, "throw", err) end
  function Remote:terminate() return control(self, "terminate") end

  for _, m in ipairs({ "suspend", "resume", "hot_swap", "register", "unregister",
    "set_daemon", "is_alive", "status" }) do
    Remote[m] = function(h)
      error(("acoro: %s: not supported on a remote coroutine (%s)"):format(m, tostring(h)), 2)
    end
  end

  function A.is_remote(h) return getmetatable(h) == remote_mt end

  -- co:monitor(remote watcher) for a local co: a proxy here sends co's Exit
  -- to the watcher's node, which is told first (MONITORED) so that it gives
  -- the watcher "unreachable" if this node goes down before co ends.
  I.resolver("monitor", "node", function(target, watcher)
    if getmetatable(watcher) ~= remote_mt then return false end
    local peer = peer_of(watcher)
    if not peer then return true, false end
    if not send_peer(peer, encode({ OP_MONITORED, watcher.id, target }, ext_encode)) then return true, false end
    monitor_proxy(peer, target, watcher)
    return true, true
  end)

  ----------------------------------------------------------------------------
  -- Peer status.

  local function tell_status(h, p, status)
    return h:send(setmetatable({ status = status, location = p.location, name = p.name }, PeerStatus))
  end

  local function broadcast_status(p, status)
    for h in pairs(status_subs) do
      if not tell_status(h, p, status) then status_subs[h] = nil end
    end
  end

  function A.peer_status(co)
    if getmetatable(co) ~= coro_mt then
      error("acoro.peer_status: expected a local coroutine, got " .. type(co), 2)
    end
    status_subs[co] = true
    for _, p in pairs(peers) do tell_status(co, p, "online") end
  end

  ----------------------------------------------------------------------------
  -- Locate: one protocol for every kind of name (coroutines here, channels
  -- in rchannel.lua, RCIs in rci.lua): {LOCATE, request, name, wait
  -- seconds, kind} answered by {FOUND, request, value | false}. A kind is
  -- a directory: lookup(name) finds a value registered here; accept(v) says
  -- whether a FOUND value is one of its kind.

  local dirs = {}     -- kind -> {lookup=, accept=}

  -- Sends data to peer without yielding the caller: at once if the link
  -- takes it, else from a daemon that waits while the peer is busy (a
  -- dropped answer would leave its asker waiting).
  local function reply(peer, data)
    if not peers[peer] then return end
    local ok, why = net.send(peer, data)
    if ok or why ~= "busy" then return end
    A.spawn(function() send_peer(peer, data) end):set_daemon(true)
  end

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
  -- or nil and "not found" | "unreachable" (the peer at `location` went
  -- down while asked). `what` names the caller in errors.
  local function find(kind, name, location, timeout, what)
    check.timeout(timeout, what, 2, 4, "opts.timeout")
    local me = I.running()
    if me == nil then error(what .. ": called outside an acoro coroutine", 3) end
    next_req = next_req + 1
    local req = next_req
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
    return nil, q.unreachable and "unreachable" or "not found"
  end

  -- A name of `kind` registered here: answers the LOCATEs held for it and
  -- the local finds waiting for it.
  local function registered(kind, name, v)
    local list = node and held:take(kind .. ":" .. name)
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

  local function on_locate(peer, m)
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

  local function on_found(peer, m)
    local q = pending[m[2]]
    if not q or not q.asked[peer] then return end
    q.asked[peer] = nil
    q.outstanding = q.outstanding - 1
    if m[3] and dirs[q.kind].accept(m[3]) then q.found = q.found or m[3] end
    I.wake(q.waiter)
  end

  local function locate_on_up(id, location)
    for req, q in pairs(pending) do
      if q.wait and not q.found and not q.asked[id] and node and q.location ~= node.location
        and (q.location == nil or q.location == location) then
        ask(id, req, q)
      end
    end
  end

  local function locate_on_down(id, location)
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

  dirs.coro = {
    lookup = function(name) return orig_locate(name) end,
    accept = function(v) return getmetatable(v) == remote_mt or getmetatable(v) == coro_mt end,
  }

  -- acoro.locate (init.lua) checked the arguments; without a node it
  -- looks here only.
  I.resolver("locate", "node", function(name, opts)
    if not node then return false end
    local location, timeout = opts and opts.location, opts and opts.timeout
    if location == node.location then return true, orig_locate(name, { timeout = timeout }) end
    if location == nil then
      local h = orig_locate(name)
      if h then return true, h end
    end
    return true, find("coro", name, location, timeout, "acoro.locate")
  end)

  -- A coroutine name registered here.
  I.hook("register", "node", function(name, h) registered("coro", name, h) end)

  ----------------------------------------------------------------------------
  -- Transport events (lnet.c calls these; they never yield).

  local handlers = {}

  local function run_hooks(list, ...)
    for i = 1, #list do
      local ok, err = pcall(list[i], ...)
      if not ok then log.error("node: hook failed: ", tostring(err)) end
    end
  end

  function handlers.on_up(id, location, name, inc)
    net.send(id, encode({ OP_HELLO, P.VERSION })) -- first on the link, before any other
    local p = { id = id, location = location, name = name, inc = inc }
    peers[id] = p
    by_loc[location] = id
    broadcast_status(p, "online")
    run_hooks(I.hooks("peer_up"), id, p)
    locate_on_up(id, location)
  end

  function handlers.on_down(id)
    local p = peers[id]
    if not p then return end
    peers[id] = nil
    if by_loc[p.location] == id then by_loc[p.location] = nil end
    locate_on_down(id, p.location)
    local list = busy[id]
    busy[id] = nil
    proxied[id] = nil -- (its proxies still count themselves off the old table)
    if list then for i = 1, #list do I.wake(list[i]) end end
    for _, d in pairs(delivers) do
      if d.peer == id and not d.done then
        d.done, d.result, d.down = true, "unreachable", true
        I.wake(d.waiter)
      end
    end
    local mons = rmonitors[p.location]
    rmonitors[p.location] = nil
    if mons then
      for i = 1, #mons do exit_to(mons[i].watcher, mons[i].target, "unreachable", nil, "unreachable") end
    end
    run_hooks(I.hooks("peer_down"), id, p)
    broadcast_status(p, "offline")
  end

  function handlers.on_writable(id)
    local list = busy[id]
    busy[id] = nil
    if list then for i = 1, #list do I.wake(list[i]) end end
  end

  function handlers.on_connect(req, status, peer, reason)
    local c = connects[req]
    if not c then return end
    c.done, c.status, c.peer, c.reason = true, status, peer, reason
    I.wake(c.waiter)
  end

  function handlers.on_log(level, line)
    -- the transport's 0 and 1 (refusals, lost links) as before; its 2 (a
    -- peer up, a duplicate link closed) only at the debug level
    log.write(level == 0 and "error" or level == 1 and "warn" or "debug", "node: ", line)
  end

  -- Sends an Exit to a remote watcher. Its value or error may not encode
  -- (an error object with a metatable): then the error goes as its string.
  function send_exit(peer, watcher, target, info)
    local ok, body = pcall(encode, info, ext_encode)
    if not ok then
      body = encode({ reason = info.reason, error = info.error ~= nil and tostring(info.error) or nil })
    end
    if peers[peer] then send_peer(peer, encode({ OP_EXIT, watcher.id, target, body }, ext_encode)) end
  end

  -- A daemon on this node that monitors target for a remote watcher.
  function monitor_proxy(peer, target, watcher)
    local proxy = A.spawn(function()
      local m = A.receive_match(function(x) return A.is_exit(x) and x.coro == target end)
      send_exit(peer, watcher, target, { reason = m.reason, value = m.value, error = m.error })
    end)
    proxy:set_daemon(true)
    target:monitor(proxy)
  end

  -- The deliver and join proxies of each peer (see PROXIES at the top).
  local MAX_PROXIES, PROXY_BYTES = 1000, 16 * 2^20

  -- Counts a proxy for peer holding `bytes`: its count, or nil when the
  -- peer has too many; proxy_done(p, bytes) when it ends.
  local function proxy_take(peer, bytes)
    local p = proxied[peer]
    if not p then
      p = { n = 0, bytes = 0 }
      proxied[peer] = p
    end
    if p.n >= MAX_PROXIES or (p.n > 0 and p.bytes + bytes > PROXY_BYTES) then return nil end
    p.n, p.bytes = p.n + 1, p.bytes + bytes
    return p
  end
  local function proxy_done(p, bytes) p.n, p.bytes = p.n - 1, p.bytes - bytes end

  -- A daemon on this node that delivers for a remote deliverer.
  function deliver_proxy(peer, req, target, msg, timeout, p, bytes)
    local proxy = A.spawn(function()
      local ok, why = target:deliver(msg, timeout)
      proxy_done(p, bytes)
      if peers[peer] then send_peer(peer, encode({ OP_DELIVERED, req, ok and true or why })) end
    end)
    proxy:set_daemon(true)
  end

  -- A daemon on this node that joins target for a remote joiner. Results
  -- that cannot travel (a function, ...) come back as false and the reason.
  function join_proxy(peer, req, target, timeout, p)
    local proxy = A.spawn(function()
      local r = { n = 0 }
      local function pack(...) r = { n = select("#", ...), ... } end
      pack(target:join(timeout))
      proxy_done(p, 0)
      local ok, body = pcall(encode, r, ext_encode)
      if not ok then body = encode({ n = 2, false, "result cannot be sent: " .. tostring(body) }) end
      if peers[peer] then send_peer(peer, encode({ OP_JOINED, req, body })) end
    end)
    proxy:set_daemon(true)
  end

  function bad(peer, why)
    local p = peers[peer]
    log.warn("node: dropped a message from ", p and p.location or "?", ": ", why)
  end

  -- The operations from peers, one table for node.lua's and the
  -- extensions' (D.on_op): ops[op](peer, m), m = {op, ...}. SEND's hot
  -- path is handlers.on_message's own.
  ops[OP_LOCATE] = function(peer, m) on_locate(peer, m) end
  ops[OP_FOUND] = function(peer, m) on_found(peer, m) end

  ops[OP_MONITOR] = function(peer, m)
    local id, watcher = m[2], m[3]
    if type(id) ~= "number" or getmetatable(watcher) ~= remote_mt then return bad(peer, "bad MONITOR") end
    local target = exported[id]
    if target == nil then -- gone, and its result with it
      return send_exit(peer, watcher, remote_handle(node.location, id, nil, my_inc),
        { reason = "dead", error = "dead" })
    end
    monitor_proxy(peer, target, watcher)
  end

  ops[OP_EXIT] = function(peer, m)
    local watcher, target, info = exported[m[2]], m[3], m[4] and decode(m[4], ext_decode, IN_PLACE)
    if type(info) ~= "table" or type(info.reason) ~= "string" then return bad(peer, "bad EXIT") end
    local list = rmonitors[peers[peer].location]
    for i = #(list or {}), 1, -1 do -- its "unreachable" is spent
      if list[i].target == target and list[i].watcher == watcher then
        table.remove(list, i)
        break
      end
    end
    -- (no entry: a monitor set up on the target's node, co:monitor(remote watcher))
    if watcher then exit_to(watcher, target, info.reason, info.value, info.error) end
  end

  ops[OP_DELIVER] = function(peer, m)
    local req, id, body, timeout = m[2], m[3], m[4], m[5]
    if type(req) ~= "number" or type(id) ~= "number" or type(body) ~= "string"
      or type(timeout) ~= "number" then
      return bad(peer, "bad DELIVER")
    end
    local target = exported[id]
    if target == nil then return send_peer(peer, encode({ OP_DELIVERED, req, "dead" })) end
    local p = proxy_take(peer, #body)
    if not p then return send_peer(peer, encode({ OP_DELIVERED, req, "busy" })) end
    local msg, why2 = decode(body, ext_decode, IN_PLACE)
    if msg == nil then
      proxy_done(p, #body)
      return bad(peer, why2)
    end
    deliver_proxy(peer, req, target, msg, timeout >= 0 and timeout or nil, p, #body)
  end

  ops[OP_JOIN] = function(peer, m)
    local req, id, timeout = m[2], m[3], m[4]
    if type(req) ~= "number" or type(id) ~= "number" or type(timeout) ~= "number" then
      return bad(peer, "bad JOIN")
    end
    local target = exported[id]
    if target == nil then
      return send_peer(peer, encode({ OP_JOINED, req, encode({ n = 2, false, "dead" }) }))
    end
    local p = proxy_take(peer, 0)
    if not p then return send_peer(peer, encode({ OP_JOINED, req, encode({ n = 2, nil, "busy" }) })) end
    join_proxy(peer, req, target, timeout >= 0 and timeout or nil, p)
  end

  ops[OP_JOINED] = function(peer, m)
    local d = delivers[m[2]]
    if not d or d.peer ~= peer then return end
    local r = type(m[3]) == "string" and decode(m[3], ext_decode, IN_PLACE)
    if type(r) ~= "table" or type(r.n) ~= "number" then return bad(peer, "bad JOINED") end
    d.done, d.result = true, r
    I.wake(d.waiter)
  end

  ops[OP_CONTROL] = function(peer, m)
    local req, id, what, body = m[2], m[3], m[4], m[5]
    if type(req) ~= "number" or type(id) ~= "number" or (what ~= "throw" and what ~= "terminate") then
      return bad(peer, "bad CONTROL")
    end
    local target, done = exported[id], false
    if target and what == "terminate" then
      done = target:terminate()
    elseif target then
      local e, why2 = decode(type(body) == "string" and body or "", ext_decode, IN_PLACE)
      if e == nil then return bad(peer, why2 or "bad CONTROL") end
      done = target:throw(e)
    end
    send_peer(peer, encode({ OP_DELIVERED, req, done and true or "dead" }))
  end

  ops[OP_DELIVERED] = function(peer, m)
    local d = delivers[m[2]]
    if not d or d.peer ~= peer then return end
    d.done, d.result = true, m[3] == true or (type(m[3]) == "string" and m[3] or "dead")
    I.wake(d.waiter)
  end

  ops[OP_ANSWER] = function(peer, m)
    local d = delivers[m[2]]
    if not d or d.peer ~= peer then return end
    d.done, d.result = true, m[3]
    I.wake(d.waiter)
  end

  ops[OP_MONITORED] = function(peer, m)
    local watcher, target = exported[m[2]], m[3]
    if type(m[2]) ~= "number" or getmetatable(target) ~= remote_mt then return bad(peer, "bad MONITORED") end
    if not watcher then return end
    local loc = peers[peer].location
    local list = rmonitors[loc] or {}
    rmonitors[loc] = list
    list[#list + 1] = { target = target, watcher = watcher }
  end

  -- HELLO: the first message on a link, each way (handlers.on_up sends
  -- ours). A peer speaking another Lua protocol is taken down at once.
  ops[OP_HELLO] = function(peer, m)
    local p = peers[peer]
    if m[2] == P.VERSION then
      return
    end
    log.warn("node: closing the link to ", p and p.location or "?",
      ": it speaks acoro's Lua protocol ", tostring(m[2]), ", this node ", P.VERSION)
    net.close_peer(peer)
  end

  local function on_op(peer, m)
    local f = ops[m[1]]
    if f then return f(peer, m) end
    bad(peer, "unknown operation " .. tostring(m[1]))
  end

  -- A frame from a peer, decoded by lnet.c with ext_decode: its n elements
  -- (wire values, never nil), the first three as arguments and all of them
  -- in m when there are more; or nil and why if it did not decode. HOT
  -- PATH: a SEND goes to its coroutine without a table for the envelope;
  -- the other operations get theirs, m, in on_op.
  handlers.ext_decode = ext_decode
  handlers.ext_in_place = IN_PLACE
  function handlers.on_message(peer, n, op, id, msg, m)
    if op == OP_SEND and n == 3 then
      if type(id) ~= "number" then return bad(peer, "bad SEND") end
      local h = exported[id]
      if h ~= nil then h:send(msg) end -- else that coroutine is gone
      return
    end
    if n == nil then return bad(peer, op) end -- op: why
    if op == OP_SEND then return bad(peer, "bad SEND") end
    return on_op(peer, m or { op, id, msg })
  end

  ----------------------------------------------------------------------------
  -- Nodes and peers.

  local function need_node(what)
    if not node then error("acoro." .. what .. ": no node is running (call acoro.node first)", 3) end
  end

  -- Connects to location (a peer up there: at once) and waits at most
  -- `timeout` for the handshake: the peer's id (the location it says it
  -- has may be spelled another way), or nil and why. In a coroutine.
  local function connect_peer(location, timeout)
    if by_loc[location] then return by_loc[location] end
    next_req = next_req + 1
    local req = next_req
    local c = { waiter = I.running() }
    local ok, why = net.connect(location, req)
    if not ok then return nil, why end
    connects[req] = c
    local deadline = timeout and A.now() + timeout
    local ok2, err = pcall(wait_until, function() return c.done end, deadline)
    connects[req] = nil
    if not ok2 then error(err, 0) end
    if not c.done then return nil, "timeout" end
    if c.status == 0 then return c.peer end
    return nil, c.reason ~= "" and c.reason or "cannot connect"
  end

  function A.peer(location, timeout)
    need_node("peer")
    if type(location) ~= "string" then
      error("acoro.peer: location must be a \"host:port\" string, got " .. type(location), 2)
    end
    check_timeout(timeout, "acoro.peer", 2)
    if by_loc[location] then return true end
    if I.running() == nil then error("acoro.peer: called outside an acoro coroutine", 2) end
    local id, why = connect_peer(location, timeout)
    if id then return true end
    return nil, why
  end

  function A.peers()
    local list = {}
    for _, p in pairs(peers) do list[#list + 1] = { location = p.location, name = p.name } end
    table.sort(list, function(a, b) return a.location < b.location end)
    return list
  end

  function A.close_peer(location)
    need_node("close_peer")
    local id = by_loc[location]
    if not id then return false end
    return net.close_peer(id) == true
  end

  function A.discover()
    need_node("discover")
    return net.discover()
  end

  -- peers= of acoro.node: a daemon per location for as long as this node
  -- runs. While there is no link to it, it tries with back-off (0.25 s
  -- doubling to 8 s); once linked it checks every LINK_CHECK seconds that
  -- that peer (by id: "localhost:N" names a peer that says "127.0.0.1:N")
  -- is still up, and after a lost link (the peer went down, or was
  -- restarted) tries again from the shortest delay. A check by polling
  -- keeps this local to the daemon (no hook in on_down); one table
  -- look-up per second costs nothing measurable.
  local LINK_CHECK, RETRY_FIRST, RETRY_MAX = limits.PEER_LINK_CHECK, limits.PEER_RETRY_FIRST, limits.PEER_RETRY_MAX
  local function keep_trying(location, this)
    local co = A.spawn(function()
      local delay, id = RETRY_FIRST, nil
      while node == this do
        if not (id and peers[id]) then id = connect_peer(location, 10) end
        if id then
          delay = RETRY_FIRST
          A.sleep(LINK_CHECK)
        else
          A.sleep(delay)
          delay = math.min(delay * 2, RETRY_MAX)
        end
      end
    end)
    co:set_daemon(true)
  end

  local function check_opt(opts, k, t)
    local v = opts[k]
    if v ~= nil and type(v) ~= t then
      error(("acoro.node: %s must be a %s, got %s"):format(k, t, type(v)), 3)
    end
    return v
  end

  local logged_host = false

  function A.node(opts)
    if opts == nil then return node end
    if type(opts) ~= "table" then error("acoro.node: expected an options table, got " .. type(opts), 2) end
    if node then error("acoro.node: a node is already running (" .. node.location .. ")", 2) end
    local host = check_opt(opts, "host", "string")
    local port = check_opt(opts, "port", "number") or 0
    local udp_port = check_opt(opts, "udp_port", "number") or 51350
    local discover = check_opt(opts, "discover", "boolean")
    local list = check_opt(opts, "peers", "table") or {}
    check_opt(opts, "name", "string")
    check_opt(opts, "tls", "table")
    if check_opt(opts, "secret", "string") == "" then error("acoro.node: secret is empty", 2) end
    local mailbox_bytes = check_opt(opts, "mailbox_bytes", "number")
    if mailbox_bytes and not (mailbox_bytes >= 1 and mailbox_bytes < 2^53) then
      error("acoro.node: mailbox_bytes must be a positive number of bytes, got " .. tostring(mailbox_bytes), 2)
    end
    local starts = {}
    local checks = I.hooks("node_check")
    for i = 1, #checks do -- the extensions' options, checked before anything starts
      local ok, start = pcall(checks[i], opts)
      if not ok then error(start, 2) end
      starts[#starts + 1] = start
    end
    if host == nil then
      host = net.interfaces()[1] or "127.0.0.1"
      if not logged_host then
        logged_host = true
        log.info("node: listening on ", host,
          " (the first non-loopback interface that is up, else loopback; host= chooses)")
      end
    end
    local location, inc, code = net.start({
      host = host, port = port, name = opts.name, secret = opts.secret,
      discover_port = discover ~= false and udp_port or 0, tls = opts.tls,
      mailbox_limit = mailbox_bytes,
    }, handlers)
    if code == "ETLS" then error("acoro.node: " .. inc, 2) end
    if not location then error("acoro.node: cannot listen on " .. host .. ":" .. port .. ": " .. inc, 2) end
    node, my_inc = { location = location, name = opts.name or location }, inc
    I.location = location
    for i = 1, #list do keep_trying(list[i], node) end
    for i = 1, #starts do starts[i]() end
    return node
  end

  -- acoro.run returned: the node goes with the engine run that used it.
  -- Messages already sent are written out first (at most LINGER seconds):
  -- a client that sends and ends does not lose its last messages.
  local LINGER = limits.STOP_LINGER
  I.hook("run_end", "node", function()
    if not node then return end
    net.linger(LINGER)
    net.stop()
    run_hooks(I.hooks("node_stop"))
    for _, q in pairs(pending) do -- no peer will answer now: waits end by their deadlines
      q.asked, q.outstanding = {}, 0
      I.wake(q.waiter)
    end
    node, I.location, my_inc = nil, nil, nil
    peers, by_loc, connects, pending, busy, status_subs = {}, {}, {}, {}, {}, {}
    held, proxied = Held.new(MAX_HELD), {}
    rmonitors, delivers = {}, {}
  end)

  ----------------------------------------------------------------------------
  -- Exit and PeerStatus messages travel too (a watcher on another node may
  -- forward them); they arrive with their metatables.

  ext_enc[A.Exit] = function(v)
    return M.EXT.exit, encode({ v.coro, v.reason, v.value, v.error, v.traceback }, ext_encode)
  end
  ext_dec[M.EXT.exit] = function(d) -- in place: the payload's value
    if type(d) ~= "table" or type(d[2]) ~= "string" then return nil end
    return setmetatable({ coro = d[1], reason = d[2], value = d[3], error = d[4], traceback = d[5] }, A.Exit)
  end
  ext_enc[PeerStatus] = function(v)
    return M.EXT.peer_status, encode({ v.status, v.location, v.name })
  end
  ext_dec[M.EXT.peer_status] = function(d)
    if type(d) ~= "table" or type(d[1]) ~= "string" or type(d[2]) ~= "string" then return nil end
    return setmetatable({ status = d[1], location = d[2], name = d[3] }, PeerStatus)
  end

  ----------------------------------------------------------------------------
  -- The internal table for the extension modules (see EXTENSIONS above).

  local D = {
    EXT = M.EXT, OP = M.OP,
    encode = function(v) return encode(v, ext_encode) end,
    decode = function(s) return decode(s, ext_decode, IN_PLACE) end,
    ext_encode = ext_encode, ext_decode = ext_decode,
    send_peer = send_peer, wait_until = wait_until, bad = bad,
    remote_handle = remote_handle, peer_of = peer_of,
    is_remote = function(h) return getmetatable(h) == remote_mt end,
  }
  -- The running node ({location=, name=}) and its incarnation, or nil.
  function D.node() return node, my_inc end
  -- Peer id -> {id=, location=, name=, inc=}; the id of the peer at a location.
  function D.peer(id) return peers[id] end
  function D.peer_at(location) return by_loc[location] end
  function D.each_peer() return pairs(peers) end
  -- fn(peer, m) for messages {op, ...}; op from the module's OP range.
  function D.on_op(op, fn)
    assert(type(op) == "number" and op % 1 == 0 and op > 0, "an operation is a positive whole number")
    assert(ops[op] == nil, "operation defined twice")
    ops[op] = fn
  end
  -- Values with metatable mt travel as ext type t: enc(v) -> payload
  -- string (D.encode of one value), dec(v) -> value, v being the payload
  -- decoded in place (nil refuses the whole message).
  function D.add_ext(t, mt, enc, dec)
    assert(t ~= EXT_CORO, "ext type of coroutine handles")
    ext_enc[mt] = function(v) return t, enc(v) end
    ext_dec[t] = dec
    IN_PLACE[t] = true
  end
  -- Hooks (acoro.internal): "node_check" fn(opts) when acoro.node(opts) is
  -- called: raises "acoro.node: ..." for a bad option of the module's, else
  -- returns a function run once the node is up; "peer_up" / "peer_down"
  -- fn(id, p) when a peer comes up / goes down; "node_stop" fn() when the
  -- node stops.
  -- A kind of name that nodes look up with D.find (see Locate above):
  -- lookup(name) -> a value registered here | nil; accept(v) -> whether
  -- a FOUND value is of this kind.
  function D.directory(kind, lookup, accept)
    assert(dirs[kind] == nil, "directory defined twice")
    dirs[kind] = { lookup = lookup, accept = accept }
  end
  D.find, D.registered, D.reply = find, registered, reply
  -- Sends build(req) (an array with req in it) to peer and waits for
  -- D.answer(peer, req, value) at most bound seconds (nil: until answered
  -- or the peer goes down). Returns true, value; nil, "unreachable"; or
  -- nil, "timeout". Must run in a coroutine.
  function D.ask(peer, build, bound)
    local me = I.running()
    if me == nil then error("acoro: called outside an acoro coroutine", 3) end
    local d = ask_peer(me, peer, function(req) return build(req) end, bound)
    if not d then return nil, "unreachable" end
    if not d.done then return nil, "timeout" end
    if d.down then return nil, "unreachable" end
    return true, d.result
  end
  -- Answers a D.ask; never waits (a busy peer drops it: the asker times out).
  function D.answer(peer, req, value)
    if not peers[peer] then return false end
    local ok, data = pcall(encode, { OP_ANSWER, req, value }, ext_encode)
    if not ok then data = encode({ OP_ANSWER, req, false }) end
    return net.send(peer, data) == true
  end
  I.dist = D
end

return M

-- acoro.dist.node: a node's life cycle (acoro.node{} options, start, stop
-- with acoro.run), its peers (acoro.peer, peers, close_peer, discover,
-- peer_status, the peers= option), the transport's events, and the
-- extension table D that acoro's other distribution modules and any
-- extension build on. It assembles the package: state, codec, link,
-- handles, locate (lua/acoro/dist/).
--
-- THREADS. Everything here runs on the engine thread. The transport's
-- events (on_up, on_down, on_message, on_connect, on_writable, on_log) are
-- called by lnet.c from libuv callbacks, outside any coroutine: they never
-- yield; they queue messages and wake coroutines (I.wake), and the woken
-- coroutine does the rest.
--
-- WIRE. Every message between nodes is one MessagePack value (core.wire):
-- an array whose first element is an operation (acoro.dist.protocol). SEND,
-- the hot one, carries the message as its last element, encoded with the
-- envelope in one pass (wire.envelope: an encoding error still names the
-- path inside the message, `msg.handler`) and decoded with it (lnet.c
-- decodes every frame before on_message). The other operations carry a
-- message encoded on its own, as a string inside the envelope, and go
-- through one table, S.ops, for this package's and the extensions' alike.
local check = require "acoro.check"
local log = require "acoro.log"
local I = require "acoro.internal"
local P = require "acoro.dist.protocol"
local S = require "acoro.dist.state"
local limits = require "acoro.limits"

local M = {}

-- peers= of acoro.node (the values: acoro.limits): once linked, a daemon checks every LINK_CHECK
-- seconds that the peer is still up; at the node's stop, messages already
-- sent are written out for at most LINGER seconds.
local LINK_CHECK, LINGER = limits.PEER_LINK_CHECK, limits.STOP_LINGER
local RETRY_FIRST, RETRY_MAX = limits.PEER_RETRY_FIRST, limits.PEER_RETRY_MAX

function M.init(A, net, wire, coro_mt)
  S.A, S.net, S.wire, S.coro_mt = A, net, wire, coro_mt
  require("acoro.dist.codec").init(S)
  local link = require "acoro.dist.link"
  link.init(S)
  local handles = require "acoro.dist.handles"
  handles.init(S)
  local locate = require "acoro.dist.locate"
  locate.init(S)

  local encode = wire.encode
  local peers, by_loc, exported, ops = S.peers, S.by_loc, S.exported, S.ops
  local wait_until, bad = S.wait_until, S.bad
  local connects = {}    -- request -> {waiter=, done=, status=, reason=}
  local status_subs = {} -- handle -> true: coroutines told of peer status
  local OP_SEND, OP_HELLO = P.OP.send, P.OP.hello

  local PeerStatus = S.PeerStatus
  A.PeerStatus = PeerStatus
  function A.is_peer_status(m) return getmetatable(m) == PeerStatus end
  A.is_remote = S.is_remote

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
    locate.peer_up(id, location)
  end

  function handlers.on_down(id)
    local p = peers[id]
    if not p then return end
    peers[id] = nil
    if by_loc[p.location] == id then by_loc[p.location] = nil end
    locate.peer_down(id, p.location)
    link.peer_down(id)
    handles.peer_down(id, p)
    run_hooks(I.hooks("peer_down"), id, p)
    broadcast_status(p, "offline")
  end

  handlers.on_writable = link.on_writable

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
  handlers.ext_decode = S.ext_decode
  handlers.ext_in_place = S.IN_PLACE
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

  -- A node without a secret (nor TLS verifying its peers) authenticates
  -- nobody: it listens and peers on loopback only unless insecure = true
  -- (docs/security.md). Names other than localhost count as other hosts.
  local function is_loopback(host)
    return host:find("^127%.%d+%.%d+%.%d+$") ~= nil or host == "::1" or host == "localhost"
  end

  -- location: "host:port", "[v6]:port", or a bare host (host=), which is
  -- tried whole first: "::1" would otherwise split as ":" and port 1.
  local function on_this_host(location)
    if is_loopback(location) then return true end
    return is_loopback(location:match("^%[(.*)%]:%d+$") or location:match("^(.*):%d+$") or location)
  end

  local function need_node(what)
    if not S.node then error("acoro." .. what .. ": no node is running (call acoro.node first)", 3) end
  end

  -- Connects to location (a peer up there: at once) and waits at most
  -- `timeout` for the handshake: the peer's id (the location it says it
  -- has may be spelled another way), or nil and why. In a coroutine.
  local function connect_peer(location, timeout)
    if by_loc[location] then return by_loc[location] end
    if S.node.local_only and not on_this_host(location) then
      return nil, "refused: " .. location .. " is not on this host (a node without a secret peers over loopback "
        .. "only: give it secret=, or insecure = true)"
    end
    local req = S.request()
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
    check.timeout(timeout, "acoro.peer", 2)
    if by_loc[location] then return true end
    if I.running() == nil then error("acoro.peer: called outside an acoro coroutine", 2) end
    local id, why = connect_peer(location, timeout)
    if id then return true end
    local code = check.code(why) -- a reason without a word of its own: refused all the same
    return check.fail(why, code ~= "EINVAL" and code or "ECONNREFUSED")
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
    local ok, why = net.discover()
    if ok then return ok end
    return check.fail(why, why == "discovery is off for this node" and "ENOTSUP" or nil)
  end

  -- peers= of acoro.node: a daemon per location for as long as this node
  -- runs. While there is no link to it, it tries with back-off (0.25 s
  -- doubling to 8 s); once linked it checks every LINK_CHECK seconds that
  -- that peer (by id: "localhost:N" names a peer that says "127.0.0.1:N")
  -- is still up, and after a lost link (the peer went down, or was
  -- restarted) tries again from the shortest delay. A check by polling
  -- keeps this local to the daemon (no hook in on_down); one table
  -- look-up per second costs nothing measurable.
  local function keep_trying(location, this)
    local co = A.spawn(function()
      local delay, id = RETRY_FIRST, nil
      while S.node == this do
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
    if opts == nil then return S.node end
    if type(opts) ~= "table" then error("acoro.node: expected an options table, got " .. type(opts), 2) end
    if S.node then error("acoro.node: a node is already running (" .. S.node.location .. ")", 2) end
    local host = check_opt(opts, "host", "string")
    local port = check_opt(opts, "port", "number") or 0
    local udp_port = check_opt(opts, "udp_port", "number") or 51350
    local discover = check_opt(opts, "discover", "boolean")
    local announce = opts.announce -- seconds between re-announcements at most, or false
    if announce ~= nil and announce ~= false and not (type(announce) == "number" and announce > 0) then
      error("acoro.node: announce must be a positive number of seconds or false, got " .. tostring(announce), 2)
    end
    for _, k in ipairs({ "heartbeat", "missed" }) do
      local v = check_opt(opts, k, "number")
      if v and not (v > 0 and v < 3600 and (k == "heartbeat" or v % 1 == 0)) then
        error("acoro.node: " .. k .. " must be a positive " .. (k == "missed" and "integer" or "number")
          .. ", got " .. v, 2)
      end
    end
    local list = check_opt(opts, "peers", "table") or {}
    check_opt(opts, "name", "string")
    check_opt(opts, "tls", "table")
    local ext = check_opt(opts, "ext_addr", "string")
    if ext then
      local eh, ep = ext:match("^(.+):(%d+)$")
      if not eh or #ext > 63 or tonumber(ep) < 1 or tonumber(ep) > 65535 then
        error("acoro.node: ext_addr must be \"host:port\" (a port from 1 to 65535), got " .. ext, 2)
      end
    end
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
    local insecure = check_opt(opts, "insecure", "boolean")
    local local_only = opts.secret == nil and not (opts.tls and opts.tls.ca) and not insecure
    if local_only then
      local why = " without a secret: a node without one listens and peers on loopback only "
        .. "(secret= for a network; insecure = true to open it to any host anyway)"
      if host ~= nil and not on_this_host(host) then error("acoro.node: host " .. host .. why, 2) end
      for i = 1, #list do
        if not on_this_host(list[i]) then error("acoro.node: peer " .. list[i] .. why, 2) end
      end
      if ext and not on_this_host(ext) then error("acoro.node: ext_addr " .. ext .. why, 2) end
      if host == nil then
        host = "127.0.0.1"
        log.info("node: listening on 127.0.0.1 only: no secret (secret= for a network; insecure = true opens it)")
      end
    elseif host == nil then
      host = net.interfaces()[1] or "127.0.0.1"
      if not logged_host and not insecure then
        logged_host = true
        log.info("node: listening on ", host,
          " (the first non-loopback interface that is up, else loopback; host= chooses)")
      end
    end
    -- location, incarnation, the listener's location | nil, why, code
    local location, inc, code = net.start({
      host = host, port = port, name = opts.name, secret = opts.secret, ext_location = ext,
      discover_port = discover ~= false and udp_port or 0, tls = opts.tls,
      announce = announce == false and -1 or announce, heartbeat = opts.heartbeat, missed = opts.missed,
      mailbox_limit = mailbox_bytes,
    }, handlers)
    if code == "ETLS" then error("acoro.node: " .. inc, 2) end
    if not location then error("acoro.node: cannot listen on " .. host .. ":" .. port .. ": " .. inc, 2) end
    if insecure and opts.secret == nil and not on_this_host(host) then -- the one line that says so
      log.warn("node: listening on ", location, " without a secret (insecure = true): any node that can "
        .. "reach it may peer with it and run its registered functions")
    end
    -- listen: where it listens; location: where peers reach it (ext_addr)
    local node = { location = location, listen = code, name = opts.name or location,
      local_only = local_only }
    S.node, S.inc = node, inc
    I.location = location
    for i = 1, #list do keep_trying(list[i], node) end
    for i = 1, #starts do starts[i]() end
    return node
  end

  -- acoro.run returned: the node goes with the engine run that used it.
  -- Messages already sent are written out first (at most LINGER seconds):
  -- a client that sends and ends does not lose its last messages.
  I.hook("run_end", "node", function()
    if not S.node then return end
    net.linger(LINGER)
    net.stop()
    run_hooks(I.hooks("node_stop"))
    locate.stop()
    S.stop()
    I.location = nil
    S.clear(connects)
    S.clear(status_subs)
    link.stop()
    handles.stop()
  end)

  I.dist = require("acoro.dist.ext").make(S)
end

return M

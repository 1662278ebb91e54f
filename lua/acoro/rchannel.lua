-- acoro.rchannel: channels across nodes, over the local
-- channels of acoro.channel and the node's extension table (D, acoro.internal's `dist`).
--
-- WIRE. A channel travels as the ext type D.EXT.channel with the payload
-- {location, cid, name, incarnation}: cid numbers the channels of this node
-- that have left it (`exported`, weak). One of ours decodes back to the
-- channel itself; another node's to a proxy (metatable RemoteChannel),
-- cached weakly by "location/cid/incarnation" so the same channel is the
-- same Lua value each time (== and table keys work).
--
-- OWNER. Everything that touches a channel's subscribers runs on the node
-- that owns it: a proxy's subscribe, unsubscribe, send and deliver are
-- requests to the owner (SUB, SEND, DELIVER), so transforms run there. The
-- owner's channel holds remote subscribers as values: a remote coroutine
-- handle (sent to with co:send, delivered to with co:deliver) or a proxy of
-- a channel on another node (SEND / DELIVER forwarded to its owner, which
-- answers with the count of its own end points).
--
-- CLEANUP. A remote subscriber leaves the owner's channels when its node goes
-- down (a "peer_down" hook), when its coroutine ends (a watcher daemon here monitors
-- every remote coroutine subscriber), or, for a channel, when a forwarded
-- SEND or DELIVER finds it gone or closed there (its node answers GONE).
--
-- CYCLES across nodes cannot be seen from one node: every forwarded message
-- counts the nodes it crossed (hops) and is dropped with a logged line past
-- MAX_HOPS instead of circling for ever.
--
-- THREADS. Engine thread only. The operation handlers run outside any
-- coroutine (never wait); a DELIVER is served by a daemon coroutine.
local logger = require "acoro.log"
local M = {}

local channel = require "acoro.channel"
local I = require "acoro.internal"
local fail = require("acoro.check").fail -- nil, why, code (docs/lua-api-notes.md, Errors)
local coro_mt = require("acoro.core").coro_mt

local MAX_HOPS = 16
-- The owner answers SUB at once; without a caller's timeout this bounds the
-- wait for an answer lost on a busy link (D.answer never waits).
local SUB_BOUND = 60

function M.init(A, D)
  local Channel = channel.Channel
  local encode, decode = D.encode, D.decode
  local orig_locate, orig_is_channel = channel.locate, channel.is_channel
  -- (locating is acoro.dist.locate's, directory "channel"; what each
  -- operation carries: acoro.dist.protocol)
  local OP_SUB, OP_SEND = D.OP.channel_sub, D.OP.channel_send
  local OP_DELIVER, OP_GONE = D.OP.channel_deliver, D.OP.channel_gone

  local exported = setmetatable({}, { __mode = "v" }) -- cid -> our channel
  local next_cid = 0 -- never reset: a cid is not reused within the process
  local proxies = setmetatable({}, { __mode = "v" })  -- "loc/cid/inc" -> proxy
  local subs_at = {}   -- location -> {sub = true}: remote subscribers of our channels
  local monitored = {} -- remote coroutine -> true: the watcher monitors it
  local watcher        -- the daemon receiving those monitors' Exits
  local hops_now = 0   -- hops of the SEND being broadcast (0: a local send)
  -- our channel -> {proxy = true}: our channels subscribed to remote ones. The
  -- owner holds only a proxy; this holds the channel, as a local parent would
  -- (a sub-channel nobody else references keeps working).
  local anchors = {}

  local function log(...)
    logger.warn("channel ", (table.concat({ ... }):gsub("\n", " ")))
  end

  ----------------------------------------------------------------------------
  -- Proxies of channels on other nodes.

  local RChannel = {}
  local rch_mt = { __name = "acoro.RemoteChannel", __index = RChannel }
  rch_mt.__tostring = function(p) return "channel:" .. p.name .. "@" .. p.location end

  local function proxy(location, cid, name, inc)
    local key = location .. "/" .. cid .. "/" .. inc
    local p = proxies[key]
    if p == nil then
      p = setmetatable({ name = name, location = location, _cid = cid, _inc = inc }, rch_mt)
      proxies[key] = p
    end
    return p
  end

  local function is_proxy(x) return getmetatable(x) == rch_mt end

  -- The peer id of p's owner if that node (that incarnation) is up; else
  -- nil, why, code ("unknown channel": one of ours that is gone).
  local function owner_of(p)
    local node, inc = D.node()
    if node and p.location == node.location and p._inc == inc then return fail("unknown channel") end
    local id = D.peer_at(p.location)
    if id and D.peer(id).inc == p._inc then return id end
    return fail("unreachable")
  end

  local function cid_of(ch)
    local node = D.node()
    if not node then error("acoro: a channel can only leave the process once acoro.node runs", 0) end
    local cid = ch._cid
    if not cid then
      next_cid = next_cid + 1
      cid = next_cid
      ch._cid = cid
    end
    exported[cid] = ch
    ch.location = ch.location or node.location
    return cid
  end

  local function decode_channel(d) -- the payload, decoded in place
    if type(d) ~= "table" or type(d[1]) ~= "string" or type(d[2]) ~= "number"
      or type(d[3]) ~= "string" or type(d[4]) ~= "string" then
      return nil
    end
    local node, inc = D.node()
    if node and d[1] == node.location and d[4] == inc and exported[d[2]] then
      return exported[d[2]]
    end
    return proxy(d[1], d[2], d[3], d[4])
  end

  D.add_ext(D.EXT.channel, Channel, function(ch)
    local cid = cid_of(ch)
    local node, inc = D.node()
    return encode({ node.location, cid, ch.name, inc })
  end, decode_channel)
  D.add_ext(D.EXT.channel, rch_mt, function(p)
    return encode({ p.location, p._cid, p.name, p._inc })
  end, decode_channel)

  -- An encoding error, renamed for the call that raised it.
  local function raise_as(err, what, level)
    error(type(err) == "string" and err:gsub("^acoro: ", "acoro: " .. what .. ": ", 1) or err, level + 1)
  end

  local function is_remote_sub(x) return D.is_remote(x) or is_proxy(x) end

  -- What subscribe / unsubscribe accept: raises for anything else.
  local function check_sub(sub, what)
    local mt = getmetatable(sub)
    if mt == Channel then
      if sub._closed then error("acoro: channel " .. sub.name .. " is closed", 3) end
    elseif mt ~= coro_mt and not is_remote_sub(sub) then
      error("acoro.RemoteChannel:" .. what .. ": expected a coroutine or a channel, got " .. type(sub), 3)
    end
  end

  local check_timeout = channel.timeout_checker("acoro.RemoteChannel")

  local function need_coroutine(what)
    if I.running() == nil then error("acoro.RemoteChannel:" .. what .. ": called outside an acoro coroutine", 3) end
  end

  -- SUB to the owner: true | nil, why, code ("timeout", "unreachable",
  -- "unknown channel", "closed", "dead", "not subscribed", ...).
  local function sub_request(p, sub, timeout, unsub)
    local ok, body = pcall(encode, sub)
    if not ok then raise_as(body, unsub and "unsubscribe" or "subscribe", 3) end
    local id, why, code = owner_of(p)
    if not id then return nil, why, code end
    local ok2, r, code2 = D.ask(id, function(req) return { OP_SUB, req, p._cid, body, unsub } end,
      timeout or SUB_BOUND)
    if not ok2 then return nil, r, code2 end
    if r == true then return true end
    return fail(type(r) == "string" and r or "refused") -- the owner's word, its code here
  end

  local function unanchor(ch, p)
    local a = anchors[ch]
    if a then
      a[p] = nil
      if next(a) == nil then anchors[ch] = nil end
    end
  end

  function RChannel:subscribe(sub, timeout)
    check_sub(sub, "subscribe")
    check_timeout(timeout, "subscribe")
    need_coroutine("subscribe")
    if getmetatable(sub) == coro_mt and not sub:is_alive() then return fail("dead") end
    local ok, why, code = sub_request(self, sub, timeout, false)
    if not ok then return nil, why, code end
    if getmetatable(sub) == Channel and not sub._closed then
      local a = anchors[sub] or {}
      anchors[sub] = a
      a[self] = true
    end
    return true
  end

  function RChannel:unsubscribe(sub, timeout)
    check_sub(sub, "unsubscribe")
    check_timeout(timeout, "unsubscribe")
    need_coroutine("unsubscribe")
    local ok, why, code = sub_request(self, sub, timeout, true)
    if ok or why == "not subscribed" then unanchor(sub, self) end
    if not ok then return nil, why, code end
    return true
  end

  -- Sends an encoded message to p's owner: true | nil, why, code.
  local function forward(p, body, hops)
    local id, why, code = owner_of(p)
    if not id then return nil, why, code end
    local ok, why2 = D.send_peer(id, encode({ OP_SEND, p._cid, body, hops }))
    if not ok then return fail(why2) end
    return true
  end

  -- Never blocks, but for a busy link (it then waits for the link to drain,
  -- as co:send to a remote coroutine does). true | nil, "unreachable" or
  -- "unknown channel".
  function RChannel:send(msg)
    if msg == nil then error("acoro.RemoteChannel:send: message is nil", 2) end
    local ok, body = pcall(encode, msg)
    if not ok then raise_as(body, "send", 2) end
    return forward(self, body, hops_now + 1)
  end

  -- Asks p's owner to deliver: the count, or nil, why, code.
  local function deliver_request(p, body, timeout, n, origin, hops)
    local id, why, code = owner_of(p)
    if not id then return nil, why, code end
    local obody = origin and encode(origin) or false
    local ok, r, code2 = D.ask(id, function(req)
      return { OP_DELIVER, req, p._cid, body, timeout or -1, n or -1, obody, hops }
    end, timeout and timeout + 10) -- the owner enforces the timeout; the bound covers a lost answer
    if not ok then return nil, r, code2 end
    if type(r) == "number" then return r end
    return fail(type(r) == "string" and r or "refused")
  end

  function RChannel:deliver(msg, timeout, n)
    if msg == nil then error("acoro.RemoteChannel:deliver: message is nil", 2) end
    check_timeout(timeout, "deliver")
    if n ~= nil and (type(n) ~= "number" or n < 0 or n % 1 ~= 0) then
      error("acoro.RemoteChannel:deliver: n must be a non-negative integer, got " .. tostring(n), 2)
    end
    need_coroutine("deliver")
    local ok, body = pcall(encode, msg)
    if not ok then raise_as(body, "deliver", 2) end
    return deliver_request(self, body, timeout, n, I.running(), 1)
  end

  for _, m in ipairs({ "register", "unregister", "close", "set_transform", "subscribers" }) do
    RChannel[m] = function(p)
      error(("acoro: %s: not supported on a remote channel (%s)"):format(m, tostring(p)), 2)
    end
  end

  I.resolver("is_channel", "rchannel", function(x) return is_proxy(x) end)
  function A.is_remote_channel(x) return is_proxy(x) end

  ----------------------------------------------------------------------------
  -- Remote subscribers of our channels (the hooks of acoro.channel).

  -- Monitors remote coroutine subscribers; an Exit (the coroutine ended, or
  -- its node is unreachable) takes it off every channel.
  local function watch(co)
    if monitored[co] then return end
    monitored[co] = true
    if not watcher then
      watcher = A.spawn(function()
        while true do
          local m = A.receive()
          if A.is_exit(m) then
            monitored[m.coro] = nil
            channel.drop(m.coro)
          elseif type(m) == "table" and m.watch then
            m.watch:monitor(I.running()) -- in a coroutine: waits while the link is busy
          end
        end
      end)
      watcher:set_daemon(true)
    end
    watcher:send({ watch = co })
  end

  local function reachable(sub)
    if is_proxy(sub) then return owner_of(sub) ~= nil end
    return D.peer_of(sub) ~= nil
  end

  channel.set_remote({
    accepts = is_remote_sub,
    accepts_channel = is_proxy,
    reachable = reachable,

    -- From a broadcast: false takes sub off the channel. An unencodable
    -- message reaches the local subscribers only (logged, as a failing
    -- transform is); it never raises in the sender.
    send = function(sub, msg)
      local ok, r
      if is_proxy(sub) then
        if hops_now + 1 > MAX_HOPS then
          log(sub.name, ": message dropped after ", MAX_HOPS, " nodes (a cycle across nodes?)")
          return true
        end
        local body
        ok, body = pcall(encode, msg)
        if ok then r = forward(sub, body, hops_now + 1) end
        if not ok then r = body end
      else
        ok, r = pcall(sub.send, sub, msg)
      end
      if not ok then
        log(tostring(sub), ": message not sent: ", tostring(r))
        return true
      end
      -- not sent: gone if its node is, else the link was busy outside a coroutine
      return r == true or reachable(sub)
    end,

    deliver = function(p, msg, left, origin, hops)
      if hops + 1 > MAX_HOPS then
        log(p.name, ": delivery dropped after ", MAX_HOPS, " nodes (a cycle across nodes?)")
        return 0
      end
      local ok, body = pcall(encode, msg)
      if not ok then
        log(tostring(p), ": message not delivered: ", tostring(body))
        return 0
      end
      return deliver_request(p, body, left, nil, origin, hops + 1) or 0
    end,

    added = function(sub)
      local set = subs_at[sub.location] or {}
      subs_at[sub.location] = set
      set[sub] = true
      if not is_proxy(sub) then watch(sub) end
    end,

    removed = function(sub)
      local set = subs_at[sub.location]
      if set then
        set[sub] = nil
        if next(set) == nil then subs_at[sub.location] = nil end
      end
    end,

    -- Our channel closed: the owners of the channels it is subscribed to
    -- drop it now (GONE), not at their next send.
    closed = function(ch)
      local a = anchors[ch]
      anchors[ch] = nil
      for p in pairs(a or {}) do
        local id = owner_of(p)
        if id and ch._cid then D.send_peer(id, encode({ OP_GONE, ch._cid })) end
      end
    end,

    registered = function(name, ch)
      if D.node() then D.registered("channel", name, ch) end
    end,
  })

  ----------------------------------------------------------------------------
  -- Locate.

  D.directory("channel", function(name) return orig_locate(name) end,
    function(v) return is_proxy(v) or orig_is_channel(v) end)

  -- acoro.locate_channel (channel.locate_any checked the arguments):
  -- without a node it looks here only.
  I.resolver("locate_channel", "rchannel", function(name, opts)
    local node = D.node()
    if not node then return false end
    local location, timeout = opts and opts.location, opts and opts.timeout
    if location == node.location then return true, orig_locate(name, { timeout = timeout }) end
    if location == nil then
      local ch = orig_locate(name)
      if ch then return true, ch end
    end
    return true, D.find("channel", name, location, timeout, "acoro.locate_channel")
  end)

  ----------------------------------------------------------------------------
  -- Operations from peers (outside any coroutine: they never wait).

  local function tell_gone(peer, cid) D.send_peer(peer, encode({ OP_GONE, cid })) end

  -- The channel a request names, or nil and why (GONE told to the asker, so
  -- that a subscription of that channel elsewhere is dropped).
  local function target(peer, cid)
    local ch = exported[cid]
    if ch and not ch._closed then return ch end
    tell_gone(peer, cid)
    return nil, ch and "closed" or "unknown channel"
  end

  D.on_op(OP_SUB, function(peer, m)
    local req, cid, body, unsub = m[2], m[3], m[4], m[5]
    if type(req) ~= "number" or type(cid) ~= "number" or type(body) ~= "string" then
      return D.bad(peer, "bad channel SUB")
    end
    local ch, why = target(peer, cid)
    if not ch then return D.answer(peer, req, why) end
    local sub, why2 = decode(body)
    if sub == nil then
      D.bad(peer, why2 or "bad channel SUB")
      return D.answer(peer, req, "bad subscriber")
    end
    local ok, r, why3 = pcall(unsub and ch.unsubscribe or ch.subscribe, ch, sub)
    if not ok then return D.answer(peer, req, tostring(r)) end
    D.answer(peer, req, r == true or why3 or "refused")
  end)

  D.on_op(OP_SEND, function(peer, m)
    local cid, body, hops = m[2], m[3], m[4]
    if type(cid) ~= "number" or type(body) ~= "string" or type(hops) ~= "number" then
      return D.bad(peer, "bad channel SEND")
    end
    local ch = target(peer, cid)
    if not ch then return end
    local msg, why = decode(body)
    if msg == nil then return D.bad(peer, why or "bad channel SEND") end
    hops_now = hops
    local ok, err = pcall(ch.send, ch, msg)
    hops_now = 0
    if not ok then log(ch.name, ": send from ", D.peer(peer).location, " failed: ", tostring(err)) end
  end)

  D.on_op(OP_DELIVER, function(peer, m)
    local req, cid, body, timeout, n, obody, hops = m[2], m[3], m[4], m[5], m[6], m[7], m[8]
    if type(req) ~= "number" or type(cid) ~= "number" or type(body) ~= "string"
      or type(timeout) ~= "number" or type(n) ~= "number" or type(hops) ~= "number"
      or (obody ~= false and type(obody) ~= "string") then
      return D.bad(peer, "bad channel DELIVER")
    end
    local ch, why = target(peer, cid)
    if not ch then return D.answer(peer, req, why) end
    local msg, why2 = decode(body)
    local origin = obody and decode(obody)
    if msg == nil or origin == nil then
      D.bad(peer, why2 or "bad channel DELIVER")
      return D.answer(peer, req, "bad message")
    end
    if n % 1 ~= 0 then return D.answer(peer, req, "bad n") end
    local co = A.spawn(function()
      local ok, r = pcall(channel.deliver, ch, msg, timeout >= 0 and timeout or nil,
        n >= 0 and n or nil, origin or nil, hops)
      D.answer(peer, req, ok and r or ("deliver failed: " .. tostring(r)))
    end)
    co:set_daemon(true)
  end)

  D.on_op(OP_GONE, function(peer, m)
    local p = D.peer(peer)
    if type(m[2]) ~= "number" or not p then return D.bad(peer, "bad channel GONE") end
    local px = proxies[p.location .. "/" .. m[2] .. "/" .. p.inc]
    if not px then return end
    channel.drop(px)  -- a channel of p's was our subscriber,
    for ch in pairs(anchors) do unanchor(ch, px) end -- or we were its
  end)

  ----------------------------------------------------------------------------
  -- Peers and the node.

  I.hook("peer_down", "rchannel", function(_, p)
    local set, gone = subs_at[p.location], {}
    for sub in pairs(set or {}) do
      if not reachable(sub) then gone[#gone + 1] = sub end
    end
    for i = 1, #gone do
      monitored[gone[i]] = nil
      channel.drop(gone[i])
    end
    for ch, a in pairs(anchors) do
      for px in pairs(a) do
        if px.location == p.location and not reachable(px) then unanchor(ch, px) end
      end
    end
  end)

  I.hook("node_stop", "rchannel", function()
    if watcher then pcall(watcher.terminate, watcher) end
    watcher = nil
    subs_at, monitored, anchors = {}, {}, {}
  end)
end

return M

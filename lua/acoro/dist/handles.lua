-- acoro.dist.handles: handles of coroutines on other nodes (send, deliver,
-- monitor, join, throw, terminate) and, on the target's node, the proxies
-- that do for a remote asker what must wait there.
--
-- REMOTE HANDLES. A table with the metatable S.remote_mt (acoro.dist.state
-- caches them weakly by location, id and incarnation; acoro.dist.codec
-- encodes them). send is fire-and-forget (SEND, the hot path); the others
-- are requests answered by the target's node.
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
-- THREADS. The operation handlers run from the transport's events, outside
-- any coroutine: they never yield; what waits runs in a proxy.
local check = require "acoro.check"
local I = require "acoro.internal"
local P = require "acoro.dist.protocol"

local fail = check.fail -- nil, why, code (docs/lua-api-notes.md, Errors)

local M = {}

local MAX_PROXIES, PROXY_BYTES = 1000, 16 * 2^20

function M.init(S)
  local A, coro_mt, remote_mt, Remote = S.A, S.coro_mt, S.remote_mt, S.Remote
  local encode, decode, envelope = S.wire.encode, S.wire.decode, S.wire.envelope
  local ext_encode, ext_decode, IN_PLACE = S.ext_encode, S.ext_decode, S.IN_PLACE
  local send_peer, ask_peer, bad = S.send_peer, S.ask_peer, S.bad
  local peers, exported, incs, peer_of = S.peers, S.exported, S.incs, S.peer_of
  local OP = P.OP
  local OP_SEND, OP_MONITOR, OP_EXIT, OP_DELIVER, OP_DELIVERED = OP.send, OP.monitor, OP.exit,
    OP.deliver, OP.delivered
  local OP_JOIN, OP_JOINED, OP_CONTROL, OP_MONITORED = OP.join, OP.joined, OP.control, OP.monitored
  local rmonitors = {} -- location -> {{target=, watcher=}, ...}: our monitors of its coroutines
  local proxied = {}   -- peer id -> {n = proxies, bytes = of their messages} (see proxy_take)
  local delivers = S.delivers

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
    local node = S.node
    if node and self.location == node.location and incs[self] == S.inc then
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

  -- Remote deliver: the target's node runs a proxy coroutine that delivers
  -- there (with the timeout) and answers OP_DELIVERED.
  function Remote:deliver(msg, timeout)
    if msg == nil then error("acoro: deliver: message is nil", 2) end
    check.timeout(timeout, "co:deliver", 2)
    local me = I.running()
    if me == nil then error("acoro.deliver: called outside an acoro coroutine", 2) end
    local ok, body = pcall(encode, msg, ext_encode)
    if not ok then error(type(body) == "string" and body:gsub("^acoro: ", "acoro: deliver: ", 1) or body, 2) end
    local peer = peer_of(self)
    if not peer then return fail("unreachable") end
    -- the peer enforces the timeout; this bound only covers a lost answer
    local d = ask_peer(me, peer, function(req)
      return { OP_DELIVER, req, self.id, body, timeout or -1 }
    end, timeout and timeout + 10)
    if not d then return fail("unreachable") end
    if not d.done then return fail("timeout") end
    if d.result == true then return true end
    return fail(d.result)
  end

  -- Remote join: the target's node runs a proxy coroutine that joins it
  -- there (with the timeout) and sends back what join returned.
  function Remote:join(timeout)
    check.timeout(timeout, "co:join", 1)
    local me = I.running()
    if me == nil then error("acoro.join: called outside an acoro coroutine", 2) end
    local peer = peer_of(self)
    if not peer then return fail("unreachable") end
    local d = ask_peer(me, peer, function(req)
      return { OP_JOIN, req, self.id, timeout or -1 }
    end, timeout and timeout + 10) -- the bound covers a lost answer only
    if not d then return fail("unreachable") end
    if not d.done then return fail("timeout") end
    local r = d.result
    if type(r) ~= "table" then return fail(r) end
    -- a failure of join there (nil, why [, code]) arrives with its code
    if r[1] == nil and type(r[2]) == "string" then return fail(r[2], r[3]) end
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

  ----------------------------------------------------------------------------
  -- The target's side: proxies.

  -- Sends an Exit to a remote watcher. Its value or error may not encode
  -- (an error object with a metatable): then the error goes as its string.
  local function send_exit(peer, watcher, target, info)
    local ok, body = pcall(encode, info, ext_encode)
    if not ok then
      body = encode({ reason = info.reason, error = info.error ~= nil and tostring(info.error) or nil })
    end
    if peers[peer] then send_peer(peer, encode({ OP_EXIT, watcher.id, target, body }, ext_encode)) end
  end

  -- A daemon on this node that monitors target for a remote watcher.
  local function monitor_proxy(peer, target, watcher)
    local proxy = A.spawn(function()
      local m = A.receive_match(function(x) return A.is_exit(x) and x.coro == target end)
      send_exit(peer, watcher, target, { reason = m.reason, value = m.value, error = m.error })
    end)
    proxy:set_daemon(true)
    target:monitor(proxy)
  end

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
  local function deliver_proxy(peer, req, target, msg, timeout, p, bytes)
    local proxy = A.spawn(function()
      local ok, why = target:deliver(msg, timeout)
      proxy_done(p, bytes)
      if peers[peer] then send_peer(peer, encode({ OP_DELIVERED, req, ok and true or why })) end
    end)
    proxy:set_daemon(true)
  end

  -- A daemon on this node that joins target for a remote joiner. Results
  -- that cannot travel (a function, ...) come back as false and the reason.
  local function join_proxy(peer, req, target, timeout, p)
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
  -- Operations from peers (dist/node.lua's on_message calls them, m = {op, ...}).

  local ops = S.ops

  ops[OP_MONITOR] = function(peer, m)
    local id, watcher = m[2], m[3]
    if type(id) ~= "number" or getmetatable(watcher) ~= remote_mt then return bad(peer, "bad MONITOR") end
    local target = exported[id]
    if target == nil then -- gone, and its result with it
      return send_exit(peer, watcher, S.remote_handle(S.node.location, id, nil, S.inc),
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

  ops[OP_MONITORED] = function(peer, m)
    local watcher, target = exported[m[2]], m[3]
    if type(m[2]) ~= "number" or getmetatable(target) ~= remote_mt then return bad(peer, "bad MONITORED") end
    if not watcher then return end
    local loc = peers[peer].location
    local list = rmonitors[loc] or {}
    rmonitors[loc] = list
    list[#list + 1] = { target = target, watcher = watcher }
  end

  -- Peer p (id) went down: its proxies count off a table no longer used;
  -- our monitors of its coroutines end "unreachable".
  function M.peer_down(id, p)
    proxied[id] = nil
    local mons = rmonitors[p.location]
    rmonitors[p.location] = nil
    if mons then
      for i = 1, #mons do exit_to(mons[i].watcher, mons[i].target, "unreachable", nil, "unreachable") end
    end
  end

  function M.stop()
    S.clear(proxied)
    S.clear(rmonitors)
  end
end

return M

-- acoro.dist.link: sending to peers and the request/answer pattern every
-- distribution module uses. send_peer writes an envelope (waiting in a
-- coroutine while the peer's outgoing buffer is over its limit); ask_peer
-- sends a request and waits for its answer or the peer's going down;
-- answers (DELIVERED, ANSWER, and the handles' JOINED) fill the request's
-- record and wake its asker.
--
-- THREADS. The handlers (on_writable, peer_down, the answer operations) are
-- called from the transport's events, outside any coroutine: they never
-- yield, only wake (I.wake).
local I = require "acoro.internal"
local log = require "acoro.log"
local P = require "acoro.dist.protocol"

local M = {}

function M.init(S)
  local A, net, peers = S.A, S.net, S.peers
  local encode, ext_encode = S.wire.encode, S.ext_encode
  local busy = {}     -- peer id -> {handle, ...} waiting for on_writable
  local delivers = {} -- request -> {waiter=, peer=, done=, result=, down=}: requests waiting
  local OP_ANSWER, OP_DELIVERED = P.OP.answer, P.OP.delivered
  S.delivers = delivers

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

  -- Sends data to peer without yielding the caller: at once if the link
  -- takes it, else from a daemon that waits while the peer is busy (a
  -- dropped answer would leave its asker waiting).
  local function reply(peer, data)
    if not peers[peer] then return end
    local ok, why = net.send(peer, data)
    if ok or why ~= "busy" then return end
    A.spawn(function() send_peer(peer, data) end):set_daemon(true)
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

  -- Sends build(req) to `peer` and waits for the answer (DELIVERED,
  -- JOINED, ANSWER fill d.done and d.result) at most `bound` seconds (nil:
  -- until answered or the peer goes down). Returns d, or nil when the
  -- request could not be sent.
  local function ask_peer(me, peer, build, bound)
    local req = S.request()
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

  local function bad(peer, why)
    local p = peers[peer]
    log.warn("node: dropped a message from ", p and p.location or "?", ": ", why)
  end

  -- Answers a request (D.ask); never waits (a busy peer drops it: the
  -- asker times out).
  local function answer(peer, req, value)
    if not peers[peer] then return false end
    local ok, data = pcall(encode, { OP_ANSWER, req, value }, ext_encode)
    if not ok then data = encode({ OP_ANSWER, req, false }) end
    return net.send(peer, data) == true
  end

  S.send_peer, S.reply, S.wait_until, S.ask_peer, S.bad, S.answer =
    send_peer, reply, wait_until, ask_peer, bad, answer

  -- DELIVERED: the answer to a deliver or a throw/terminate (true | why).
  S.ops[OP_DELIVERED] = function(peer, m)
    local d = delivers[m[2]]
    if not d or d.peer ~= peer then return end
    d.done, d.result = true, m[3] == true or (type(m[3]) == "string" and m[3] or "dead")
    I.wake(d.waiter)
  end

  S.ops[OP_ANSWER] = function(peer, m)
    local d = delivers[m[2]]
    if not d or d.peer ~= peer then return end
    d.done, d.result = true, m[3]
    I.wake(d.waiter)
  end

  -- The transport can take more for peer id.
  function M.on_writable(id)
    local list = busy[id]
    busy[id] = nil
    if list then for i = 1, #list do I.wake(list[i]) end end
  end

  -- Peer id went down: its senders wake (to find it gone), its requests
  -- end "unreachable".
  function M.peer_down(id)
    M.on_writable(id)
    for _, d in pairs(delivers) do
      if d.peer == id and not d.done then
        d.done, d.result, d.down = true, "unreachable", true
        I.wake(d.waiter)
      end
    end
  end

  function M.stop()
    S.clear(busy)
    S.clear(delivers)
  end
end

return M

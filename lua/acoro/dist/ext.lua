-- acoro.dist.ext: the extension table D, what a distribution module
-- outside the package sees (acoro.internal's `dist`, once acoro.node has
-- been read): acoro's own rchannel, rci and files, and any new one. A new
-- extension needs no edit outside its own file: it takes operation numbers
-- from acoro.dist.protocol's EXTENSION_OPS up and registers them here
-- (spec/ext_echo.lua is one).
--
-- Hooks it may add in acoro.internal: "node_check" fn(opts) when
-- acoro.node(opts) is called (raises "acoro.node: ..." for a bad option of
-- the module's, else returns a function run once the node is up);
-- "peer_up" / "peer_down" fn(id, p) when a peer comes up / goes down;
-- "node_stop" fn() when the node stops.
local check = require "acoro.check"
local I = require "acoro.internal"
local P = require "acoro.dist.protocol"

local M = {}

function M.make(S)
  local ops, peers, by_loc = S.ops, S.peers, S.by_loc
  local D = {
    EXT = P.EXT, OP = P.OP,
    encode = S.encode, decode = S.decode,
    ext_encode = S.ext_encode, ext_decode = S.ext_decode,
    send_peer = S.send_peer, wait_until = S.wait_until, bad = S.bad,
    remote_handle = S.remote_handle, peer_of = S.peer_of, is_remote = S.is_remote,
    -- Values with metatable mt travel as ext type t: add_ext(t, mt,
    -- enc(v) -> payload string (D.encode of one value), dec(v) -> value,
    -- v being the payload decoded in place; nil refuses the message).
    add_ext = S.add_ext,
    -- find(kind, name, location, timeout, what) -> value | nil, why: a
    -- name of a directory(kind, lookup, accept) on the peers; registered
    -- (kind, name, v) when one is registered here (acoro.dist.locate).
    find = S.find, registered = S.registered, directory = S.directory,
    -- Sends data to a peer without yielding (a daemon waits if it is busy).
    reply = S.reply,
    -- Answers a D.ask; never waits (a busy peer drops it: the asker times out).
    answer = S.answer,
  }
  -- The running node ({location=, name=}) and its incarnation, or nil.
  function D.node() return S.node, S.inc end
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
  -- Sends build(req) (an array with req in it) to peer and waits for
  -- D.answer(peer, req, value) at most bound seconds (nil: until answered
  -- or the peer goes down). Returns true, value; nil, "unreachable",
  -- "ENOPEER"; or nil, "timeout", "ETIMEDOUT". Must run in a coroutine.
  function D.ask(peer, build, bound)
    local me = I.running()
    if me == nil then error("acoro: called outside an acoro coroutine", 3) end
    local d = S.ask_peer(me, peer, function(req) return build(req) end, bound)
    if not d then return check.fail("unreachable") end
    if not d.done then return check.fail("timeout") end
    if d.down then return check.fail("unreachable") end
    return true, d.result
  end
  return D
end

return M

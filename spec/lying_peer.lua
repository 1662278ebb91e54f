-- The lying peer: an authenticated node that skips every check a sender
-- makes, for the adversarial specs. It knows the secret, so it passes the
-- real handshake (core.net, the transport acoro.node runs on), and says
-- HELLO as a node would; then it sends whatever operation with whatever
-- fields a spec builds, encoded by core.wire alone (acoro.node's own
-- checks and encoders are not loaded), or raw bytes as frames.
--
-- A script run by the CLI (its chunk is a coroutine) requires it, after
-- node_support.LYING has put spec/ on package.path:
--   local p = LP.connect(TARGET, KEYFILE)   -- waits for the link, or raises
--   p:send({ LP.OP.deliver, 1, id, "x" })   -- any array, fields unchecked
--   p:raw(bytes)                           -- one frame of raw MessagePack
--   p:ask(op, ...)     -- {op, req, ...}; waits for the ANSWER, FOUND,
--                      -- DELIVERED or JOINED with that req: true, value
--                      -- (its third element) | nil, "timeout" (after
--                      -- p.wait seconds, 10 unless set)
--   p:next(pred, wait) -- the next message from the target (an array) with
--                      -- pred(m), else nil after wait seconds
--   p:locate(name)     -- the id of the coroutine registered there as name
--   p.handle           -- encodes as a handle of the calling coroutine
--   LP.ext(t, payload) -- a value that encodes as ext type t (any payload)
-- Messages the spec does not wait for may be counted instead of queued:
-- p.filter(m) returning true consumes m (a flood's answers, say).
local acoro = require "acoro"
local core = require "acoro.core"
local P = require "acoro.dist.protocol"
local net, wire = core.net, core.wire

local LP = { OP = P.OP, EXT = P.EXT, VERSION = P.VERSION }

local BLOCKED = 3 -- seconds without progress: the target stopped reading us
LP.BLOCKED = BLOCKED

local Ext = {}
function LP.ext(t, payload) return setmetatable({ t = t, payload = payload }, Ext) end

local Peer = {}
Peer.__index = Peer

-- Sends one frame, waiting while the link is busy: true, or false once the
-- target has read nothing for `patience` (BLOCKED) seconds.
function Peer:raw(data, patience)
  while true do
    local ok, why = net.send(self.id, data)
    if ok then return true end
    if why ~= "busy" then error("lying peer: send: " .. tostring(why), 2) end
    self.writer = acoro.self()
    local w = acoro.receive_match(function(x) return x == "writable" end, patience or BLOCKED)
    self.writer = nil
    if w == nil then return false end
  end
end

function Peer:encode(v) return wire.encode(v, self.ext_encode) end

function Peer:send(v, patience) return self:raw(self:encode(v), patience) end

local function inbox(x) return type(x) == "table" and x.lying_peer end

function Peer.next(_, pred, wait)
  local r = acoro.receive_match(function(x)
    return inbox(x) and (pred == nil or pred(x.m))
  end, wait or 10)
  return r and r.m
end

local REPLY = { [P.OP.answer] = true, [P.OP.found] = true, [P.OP.delivered] = true, [P.OP.joined] = true }

function Peer:ask(op, ...)
  self.req = self.req + 1
  local req = self.req
  local wait = type(self.wait) == "number" and self.wait or 10
  assert(self:send({ op, req, ... }), "lying peer: the target reads nothing")
  local m = self:next(function(x) return REPLY[x[1]] and x[2] == req end, wait)
  if not m then return nil, "timeout" end
  return true, m[3]
end

function Peer:locate(name)
  local ok, v = self:ask(P.OP.locate, name, 10, "coro")
  assert(ok and type(v) == "string", "lying peer: not found: " .. name)
  return assert(wire.decode(v))[2]
end

function Peer:close() net.close_peer(self.id) end

-- File transfer (lua/acoro/files.lua), the receiver's side of it put to the
-- test: a BEGIN whose fields are valid unless `fields` overrides them (any
-- value, nil left out: LP.NIL), then what a sender would do next.
LP.NIL = {}
local FILE_FIELDS = { "skey", "dir", "name", "size", "mtime", "mode", "overwrite", "hash", "timeout" }
function LP.sha256(s) return acoro.fs.sha256():update(s):hex() end
-- -> true, answer ({true, tid} | "identical" | why) | nil, "timeout"
function Peer:file_begin(fields)
  self.skey = (self.skey or 0) + 1
  local v = { skey = self.skey, dir = "", name = "f", size = 10, mtime = 1e9, mode = 420,
    overwrite = false, hash = string.rep("0", 64), timeout = 10 }
  for k, x in pairs(fields or {}) do v[k] = x end
  local list, n = {}, 0
  for i, k in ipairs(FILE_FIELDS) do
    if v[k] ~= LP.NIL then n = i; list[i] = v[k] end
  end
  return self:ask(P.OP.file_begin, unpack(list, 1, n))
end
function Peer:file_data(tid, bytes) return self:send({ P.OP.file_data, tid, bytes }) end
function Peer:file_end(tid) return self:ask(P.OP.file_end, tid) end
function Peer:file_abort(tid) return self:send({ P.OP.file_abort, tid }) end

-- Starts a transport of its own (any port on 127.0.0.1) with the secret in
-- keyfile and links to target ("host:port"). opts.hello = false: no HELLO.
function LP.connect(target, keyfile, opts)
  local f = assert(io.open(keyfile))
  local secret = f:read("*a"):gsub("\r?\n$", "")
  f:close()
  local me = acoro.self()
  -- (its requests count from 1e9: a spec's own raw ones, from 1, never meet them)
  local p = setmetatable({ req = 1e9, me = me }, Peer)
  local handlers = {}
  function handlers.on_up(id) p.id = id; me:send("lying peer up") end
  function handlers.on_down() me:send({ lying_peer = true, m = { "down" } }) end
  function handlers.on_connect(_, status, _, reason)
    if status ~= 0 then me:send("lying peer refused " .. tostring(reason)) end
  end
  function handlers.on_writable()
    if p.writer then p.writer:send("writable") end
  end
  function handlers.on_log(level, line)
    if level <= 1 then io.stderr:write("lying peer: ", line, "\n") end
  end
  -- ext values stay their raw payloads (a handle: wire.decode it)
  handlers.ext_decode = function(_, payload) return payload end
  function handlers.on_message(_, n, op, a, b, m)
    if n == nil then return end -- did not decode: nothing a spec waits for
    m = m or { op, a, b }
    if p.filter and p.filter(m) then return end
    me:send({ lying_peer = true, m = m })
  end
  local loc, inc = net.start({ host = "127.0.0.1", port = 0, secret = secret }, handlers)
  assert(loc, inc)
  p.location, p.inc = loc, inc
  assert(net.connect(target, 1))
  local up = acoro.receive_match(function(x) return type(x) == "string" and x:find("^lying peer") end, 10)
  assert(up == "lying peer up", "lying peer: not up: " .. tostring(up))
  -- a handle of the coroutine that uses it, as acoro.node encodes one
  local Me = {}
  local payload = wire.encode({ loc, me.id, false, inc })
  p.handle = setmetatable({}, Me)
  function p.ext_encode(v)
    local mt = getmetatable(v)
    if mt == Me then return P.EXT.coro, payload end
    if mt == Ext then return v.t, v.payload end
  end
  if not (opts and opts.hello == false) then assert(p:send({ P.OP.hello, P.VERSION })) end
  return p
end

-- Stops the transport (the link goes down at the target).
function LP.stop() net.stop() end

return LP

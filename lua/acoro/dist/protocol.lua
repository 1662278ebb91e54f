-- acoro.dist.protocol: the Lua-level protocol between nodes in one list:
-- its version, every operation number and every MessagePack ext type
-- number. Two nodes must agree on all of it; the C transport's framing has
-- its own version (ACORO_NET_VERSION_MAJOR, checked in the handshake), and
-- this one is checked when a peer comes up (HELLO, in node.lua).
local P = {}

-- Bump on any change a peer would misread: an operation's number or
-- fields, an ext type's payload. A peer with another version is taken
-- down on HELLO with a logged reason.
P.VERSION = 1

-- Operations: every message between nodes is an array {op, ...}. One
-- line per operation of node.lua; an extension module of acoro owns a
-- range of ten from its base (its own file says what each number is).
P.OP = {
  send = 1,       -- {SEND, id, message} (the hot one, W6)
  locate = 2,     -- {LOCATE, request, name, wait seconds, kind}
  found = 3,      -- {FOUND, request, value | false}
  monitor = 4,    -- {MONITOR, id, watcher}
  exit = 5,       -- {EXIT, watcher id, target, encoded {reason=, value=, error=}}
  deliver = 6,    -- {DELIVER, request, id, encoded message, timeout | -1}
  delivered = 7,  -- {DELIVERED, request, true | why}
  join = 8,       -- {JOIN, request, id, timeout | -1}
  joined = 9,     -- {JOINED, request, encoded {n=, ...}}
  control = 10,   -- {CONTROL, request, id, "throw" | "terminate", encoded error | false}
  answer = 11,    -- {ANSWER, request, value}: D.answer
  monitored = 12, -- {MONITORED, watcher id, target}
  hello = 13,     -- {HELLO, protocol version}: sent first on peer up
  channel = 20,   -- 20..29: acoro.rchannel
  rci = 30,       -- 30..39: acoro.rci
  file = 40,      -- 40..49: acoro.files
}

-- Operation numbers from EXTENSION_OPS up are for extensions outside this
-- list: such a module registers its own numbers (D.on_op) in its own
-- file, and the registry refuses a number taken twice.
P.EXTENSION_OPS = 100

-- MessagePack ext types of values inside messages.
P.EXT = { coro = 1, exit = 2, peer_status = 3, channel = 4, rci = 5 }

return P

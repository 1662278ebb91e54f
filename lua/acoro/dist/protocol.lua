-- acoro.dist.protocol: the Lua-level protocol between nodes in one list:
-- its version, every operation number and every MessagePack ext type
-- number. Two nodes must agree on all of it; the C transport's framing has
-- its own version (ACORO_NET_VERSION_MAJOR, checked in the handshake), and
-- this one is checked when a peer comes up (HELLO, in dist/node.lua).
local P = {}

-- Bump on any change a peer would misread: an operation's number or
-- fields, an ext type's payload. A peer with another version is taken
-- down on HELLO with a logged reason.
P.VERSION = 1

-- Operations: every message between nodes is an array {op, ...}. One
-- line per operation: the package's own (lua/acoro/dist/), then those of
-- the extensions shipped with acoro (their files say what each carries).
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
  -- acoro.rchannel (lua/acoro/rchannel.lua); 20 and 21 are unused
  channel_sub = 22,     -- {SUB, request, cid, encoded subscriber, unsubscribe?} -> ANSWER
  channel_send = 23,    -- {SEND, cid, encoded message, hops}
  channel_deliver = 24, -- {DELIVER, request, cid, message, timeout, n, origin, hops} -> ANSWER
  channel_gone = 25,    -- {GONE, cid}
  -- acoro.rci (lua/acoro/rci.lua); 30 and 31 are unused
  rci_call = 32,        -- {CALL, request, name, encoded {n=, w=, args...}} -> ANSWER
  -- acoro.files (lua/acoro/files.lua)
  file_begin = 40,      -- {BEGIN, request, skey, dir, name, size, mtime, mode, ...} -> ANSWER
  file_data = 41,       -- {DATA, tid, bytes}
  file_ack = 42,        -- {ACK, skey, bytes written | false, why}
  file_end = 43,        -- {END, request, tid} -> ANSWER
  file_abort = 44,      -- {ABORT, tid}
  file_del = 45,        -- {DEL, request, dir, name} -> ANSWER
}

-- Operation numbers from EXTENSION_OPS up are for extensions outside this
-- list: such a module registers its own numbers (D.on_op) in its own
-- file, and the registry refuses a number taken twice.
P.EXTENSION_OPS = 100

-- MessagePack ext types of values inside messages.
P.EXT = { coro = 1, exit = 2, peer_status = 3, channel = 4, rci = 5, typed = 6 }

return P

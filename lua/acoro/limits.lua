-- acoro.limits: the documented defaults of the Lua layer, in one table, so
-- that a spec tests each at its real value (docs/lua-api-notes.md gives
-- them). The transport's own (the per-peer queue, the inbound pause, the
-- mailbox bytes) are core/acoro.h's ACORO_NET_*_DEFAULT.
return {
  MSG_MAX = 64 * 1024 * 1024, -- send_msg / recv_msg: bytes of one frame (recv_msg's default max)
  PEER_RETRY_FIRST = 0.25,    -- peers=: the first delay (s) between connection attempts,
  PEER_RETRY_MAX = 8,         -- doubling up to this
  PEER_LINK_CHECK = 1,        -- peers=: seconds between checks that a linked peer is up
  STOP_LINGER = 5,            -- a node stopping writes out what was sent, at most this (s)
}

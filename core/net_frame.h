/* net_frame.h: the frame codec of node links, the one place that knows the
 * frame format: checking a header as it is read (on the network thread,
 * net_link.c, and by ENGINE READS on the engine thread, net_eread.c) and
 * writing one (net_link.c's batches and control frames, net.c's direct
 * writes). Pure functions over bytes: no state, safe on any thread.
 *
 * A FRAME: a 4-byte big-endian length of what follows (at least 1), a
 * type byte (FRAME_MAP), the payload. The length is checked against the
 * limit as soon as its 4 bytes are in, before anything is buffered or
 * allocated for the frame: PREAUTH_MAX until the other side has proved
 * itself, FRAME_MAX after; an engine read takes only frames of at most
 * EREAD_PAYLOAD_MAX payload bytes (larger ones go to the net thread). */
#ifndef ACORO_NET_FRAME_H
#define ACORO_NET_FRAME_H

#include "acoro.h"

#include <stddef.h>
#include <stdint.h>

#define HDR 5 /* length + type */
#define PREAUTH_MAX 4096u
#define FRAME_MAX (ACORO_NET_MSG_MAX + 1u)
/* Messages over CHUNK bytes travel as PART/LAST pieces of CHUNK at most. */
#define CHUNK (64u * 1024)
/* The largest payload an engine read handles (net_eread.c): one piece. */
#define EREAD_PAYLOAD_MAX CHUNK

#define FRAME_MAP(XX)                                                          \
  XX(HELLO, 1)                                                                 \
  XX(PROOF, 2)                                                                 \
  XX(SELECT, 3)                                                                \
  XX(REFUSE, 4)                                                                \
  XX(HEARTBEAT, 5)                                                             \
  XX(MSG, 6)                                                                   \
  XX(PART, 7)                                                                  \
  XX(LAST, 8)
enum {
#define FRAME_ENUM(name, v) F_##name = v,
  FRAME_MAP(FRAME_ENUM)
#undef FRAME_ENUM
};

static inline void net_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}
static inline uint32_t net_get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}
static inline void net_put64(unsigned char *p, uint64_t v) {
  net_put32(p, (uint32_t)(v >> 32));
  net_put32(p + 4, (uint32_t)v);
}
static inline uint64_t net_get64(const unsigned char *p) {
  return (uint64_t)net_get32(p) << 32 | net_get32(p + 4);
}

/* The limit on a frame's length field: before the other side has proved
 * itself (authed 0) only small fixed-size handshake frames are taken. */
static inline uint32_t net_frame_limit(int authed) {
  return authed ? FRAME_MAX : PREAUTH_MAX;
}

/* One frame at the front of a buffer (net_frame_parse). size: its bytes
 * with the header; payload/plen: what follows the type byte. */
typedef struct net_frame_s {
  int type;
  const unsigned char *payload;
  size_t plen, size;
} net_frame_t;
enum { NET_FRAME_BAD = -1, NET_FRAME_SHORT = 0, NET_FRAME_WHOLE = 1 };

/* Looks at the frame at the front of b (avail bytes). NET_FRAME_BAD: its
 * length field is 0 or over limit (*len_out says which, for the log);
 * NET_FRAME_SHORT: not all of it is in yet; NET_FRAME_WHOLE: *f is set. */
static inline int net_frame_parse(const unsigned char *b, size_t avail,
                                  uint32_t limit, net_frame_t *f,
                                  uint32_t *len_out) {
  uint32_t len;
  if (avail < 4)
    return NET_FRAME_SHORT;
  len = net_get32(b);
  *len_out = len;
  if (len == 0 || len > limit)
    return NET_FRAME_BAD;
  if (avail - 4 < len)
    return NET_FRAME_SHORT;
  f->type = b[4];
  f->payload = b + HDR;
  f->plen = (size_t)len - 1;
  f->size = 4 + (size_t)len;
  return NET_FRAME_WHOLE;
}

/* Writes the header of a frame of `type` with plen payload bytes at p
 * (HDR bytes); the payload goes at p + HDR. */
static inline void net_frame_header(unsigned char *p, int type, size_t plen) {
  net_put32(p, (uint32_t)(plen + 1));
  p[4] = (unsigned char)type;
}

#endif /* ACORO_NET_FRAME_H */

/* wire.c: the validator every frame from a peer goes through before anything
 * decodes it (docs/design.md, "Wire and trust"). It walks one MessagePack
 * value with an explicit stack, allocates nothing and trusts no declared
 * length: a 5-byte header may claim 4 GB, and only what is really in the
 * buffer counts. */
#include "acoro.h"

#include <stdarg.h>
#include <stdio.h>

/* Big-endian loads; callers have checked that the bytes are there. */
static uint32_t load16(const unsigned char *p) {
  return (uint32_t)p[0] << 8 | p[1];
}
static uint32_t load32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* Formats the reason (if wanted), records where, and returns ACORO_EWIRE.
 * The text holds numbers only, never input bytes: it goes to logs. */
static int fail(char *reason, size_t reason_len, size_t *used, size_t at,
                const char *fmt, ...) {
  if (used != NULL)
    *used = at;
  if (reason != NULL && reason_len > 0) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(reason, reason_len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < reason_len)
      snprintf(reason + n, reason_len - (size_t)n, " (at byte %zu)", at);
  }
  return ACORO_EWIRE;
}

/* Where a header byte's length or count field is and what it means:
 * FIXED: `size` payload bytes follow the header byte; LEN: a big-endian
 * length of `size` bytes follows (then `extra` bytes: ext's type), then
 * that many payload bytes; COUNT: a count of `size` bytes (0: in the low
 * bits) of elements (map: pairs) follows. */
enum { K_FIXED, K_LEN, K_ARRAY, K_MAP, K_BAD };

static const char *len_name(unsigned b) {
  if (b >= 0xa0 && b <= 0xbf)
    return "str";
  if (b >= 0xc4 && b <= 0xc6)
    return "bin";
  if (b >= 0xd9 && b <= 0xdb)
    return "str";
  return "ext";
}

/* INVARIANT of the walk: rem[d] is the number of values still to read in
 * the container open at level d (level 0: the top value itself), and
 * level d > 0 exists only while rem[d] > 0. Each value is counted off its
 * level when its header is read; a container with elements opens a level.
 * Nothing is read before the bytes are known to be there: `left` is what
 * remains of min(len, max_bytes) after the header's first byte. */
int acoro_wire_check(const char *buf, size_t len,
                     const acoro_wire_limits_t *limits, size_t *used,
                     char *reason, size_t reason_len) {
  uint64_t rem[ACORO_WIRE_DEPTH_CAP + 1];
  const unsigned char *p = (const unsigned char *)buf;
  size_t max_bytes = ACORO_WIRE_MAX_BYTES, end, pos = 0;
  int max_depth = ACORO_WIRE_MAX_DEPTH, top = 0;

  if (limits != NULL) {
    max_bytes = limits->max_bytes;
    max_depth = limits->max_depth;
  }
  if (max_depth < 0 || max_depth > ACORO_WIRE_DEPTH_CAP)
    max_depth = ACORO_WIRE_DEPTH_CAP;
  if (reason != NULL && reason_len > 0)
    reason[0] = '\0';
  if (buf == NULL)
    len = 0;
  end = len < max_bytes ? len : max_bytes;
  rem[0] = 1;
  for (;;) {
    unsigned b;
    int kind = K_FIXED, size = 0, extra = 0;
    size_t at = pos, left;
    uint64_t n;

    if (pos >= end) {
      if (len > max_bytes)
        return fail(reason, reason_len, used, at,
                    "value longer than the limit of %zu bytes", max_bytes);
      return fail(reason, reason_len, used, at,
                  "truncated: %llu more value(s) expected at depth %d",
                  (unsigned long long)rem[top], top);
    }
    b = p[pos++];
    left = end - pos;
    if (b <= 0x7f || b >= 0xe0) {
      /* positive and negative fixint */
    } else if (b <= 0x8f) {
      kind = K_MAP;
    } else if (b <= 0x9f) {
      kind = K_ARRAY;
    } else if (b <= 0xbf) {
      kind = K_LEN; /* fixstr: length in the low bits */
    } else {
      switch (b) {
      case 0xc0: /* nil */
      case 0xc2: /* false */
      case 0xc3: /* true */
        break;
      case 0xc4:
      case 0xc5:
      case 0xc6: /* bin 8/16/32 */
        kind = K_LEN, size = 1 << (b - 0xc4);
        break;
      case 0xc7:
      case 0xc8:
      case 0xc9: /* ext 8/16/32 */
        kind = K_LEN, size = 1 << (b - 0xc7), extra = 1;
        break;
      case 0xca:
        size = 4;
        break; /* float 32 */
      case 0xcb:
        size = 8;
        break; /* float 64 */
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf: /* uint 8..64 */
        size = 1 << (b - 0xcc);
        break;
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3: /* int 8..64 */
        size = 1 << (b - 0xd0);
        break;
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8: /* fixext */
        size = 1 + (1 << (b - 0xd4));
        break;
      case 0xd9:
      case 0xda:
      case 0xdb: /* str 8/16/32 */
        kind = K_LEN, size = 1 << (b - 0xd9);
        break;
      case 0xdc:
      case 0xdd: /* array 16/32 */
        kind = K_ARRAY, size = 2 << (b - 0xdc);
        break;
      case 0xde:
      case 0xdf: /* map 16/32 */
        kind = K_MAP, size = 2 << (b - 0xde);
        break;
      default: /* 0xc1: never used */
        kind = K_BAD;
        break;
      }
    }
    if (kind == K_BAD)
      return fail(reason, reason_len, used, at, "reserved byte 0x%02x", b);
    if ((size_t)size + (size_t)extra > left && kind != K_FIXED)
      return fail(reason, reason_len, used, at,
                  "truncated: a %d-byte length field with %zu bytes left", size,
                  left);
    /* The length or count, if any. */
    if (kind == K_FIXED) {
      n = (uint64_t)size;
    } else if (size == 0) {
      n = b & (kind == K_LEN ? 0x1f : 0x0f);
    } else if (size == 1) {
      n = p[pos];
    } else if (size == 2) {
      n = load16(p + pos);
    } else {
      n = load32(p + pos);
    }
    if (kind != K_FIXED) {
      pos += (size_t)size + (size_t)extra;
      left -= (size_t)size + (size_t)extra;
    }
    rem[top]--;
    if (kind == K_FIXED || kind == K_LEN) {
      if (n > left && len > max_bytes && n <= len - pos)
        return fail(reason, reason_len, used, at,
                    "value longer than the limit of %zu bytes", max_bytes);
      if (n > left) {
        if (kind == K_FIXED)
          return fail(reason, reason_len, used, at,
                      "truncated: byte 0x%02x needs %llu bytes, %zu left", b,
                      (unsigned long long)n, left);
        return fail(reason, reason_len, used, at,
                    "%s of %llu bytes in %zu "
                    "bytes left",
                    len_name(b), (unsigned long long)n, left);
      }
      pos += (size_t)n;
    } else {
      const char *what = kind == K_MAP ? "map" : "array";
      uint64_t items = kind == K_MAP ? 2 * n : n;
      if (top + 1 > max_depth)
        return fail(reason, reason_len, used, at, "nesting deeper than %d",
                    max_depth);
      if (items > left && len > max_bytes && items <= len - pos)
        return fail(reason, reason_len, used, at,
                    "value longer than the limit of %zu bytes", max_bytes);
      if (items > left)
        return fail(reason, reason_len, used, at,
                    "%s of %llu %s in %zu "
                    "bytes left",
                    what, (unsigned long long)n,
                    kind == K_MAP ? "pairs" : "elements", left);
      if (items > 0)
        rem[++top] = items;
    }
    while (rem[top] == 0) {
      if (top == 0) {
        if (used != NULL)
          *used = pos;
        return 0;
      }
      top--;
    }
  }
}

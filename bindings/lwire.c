/* lwire.c: `core.wire`, Lua values to MessagePack and back (docs/design.md,
 * "Wire and trust"): encode(value [, ext_encoder]) -> string,
 * envelope(ext_encoder, msg, e1, ..., en) -> string (the array {e1, ...,
 * en, msg} in one pass, for node messages) and decode(string [,
 * ext_decoder [, in_place]]) -> value | nil, reason. Packing goes
 * through msgpack-c's packer; decoding is a cursor over the frame that
 * builds Lua values directly, and runs only after acoro_wire_check passed.
 *
 * EXT NESTING. An ext value's payload counts as one level deeper than the
 * ext itself, on both sides: an ext_encoder's own encode() of the payload
 * starts at the depth of the ext (the encode buffer remembers it), and
 * the decoder decodes the payload of an in-place ext type (in_place[type]
 * true: the payload is one wire value) where it lies in the frame, with
 * the levels left, and gives ext_decoder that value instead of a copy of
 * the bytes. So one message has 64 levels in all however its exts nest,
 * and no payload is copied once per level. DECODE BUDGET: a decode also
 * counts what it builds (DEC_COST_*: strings, tables, raw payload copies,
 * ext results) and refuses a message that would expand past
 * ACORO_WIRE_MAX_EXPAND bytes of Lua values.
 *
 * Why not msgpack-c's unpacker for decoding: it builds a msgpack_object
 * tree in a zone first, which the Lua values are then copied from (and it
 * reserves that zone from declared counts, so it may only ever see frames
 * acoro_wire_check passed). The cursor skips the tree: on the small message
 * of bench/wire_codec.lua, check + cursor decodes 1.2-1.6x (median 1.4x)
 * faster than check + msgpack_unpack_next + the same walk into Lua
 * (bench/wire_unpack.c; bench/RESULTS.md, "Wire codec"). msgpuck is not
 * needed: acoro_wire_check plays mp_check's part, and the cursor is short.
 *
 * ENGINE THREAD or any Lua state's own thread: nothing here is shared
 * between Lua states (the encode buffer belongs to one state).
 *
 * SIZE: over 800 lines (about 870): the encoder and the decoder of one
 * format, which share the depth and budget rules (EXT NESTING, DECODE
 * BUDGET), the ext hooks and the Lua-side error paths; they are W6's hot
 * path (every remote message, both ways), and splitting them would put the
 * rules they must agree on in two files. */
#include "lbind.h"

#include <lauxlib.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIREBUF_MT "acoro.wirebuf"
#define MAX_SAFE_INT 9007199254740992.0 /* 2^53 */
/* A buffer grown past this is freed after the encode that needed it. */
#define KEEP_BYTES (1u << 20)

/* The encode buffer: one per Lua state, an upvalue of encode, reused by
 * every call (no malloc per message). `busy` is set while an encode uses
 * it; an encode started meanwhile (by an ext_encoder) gets a fresh buffer.
 * OWNERSHIP: data is the userdata's, freed by its __gc. */
typedef struct wirebuf_s {
  char *data;
  size_t size, cap;
  int busy, oom, toobig;
  int ext_depth; /* the depth an ext_encoder's own encode starts at */
} wirebuf_t;

/* msgpack-c's write callback. Refuses (and remembers why) rather than
 * growing past the frame limit or failing to grow. */
static int wirebuf_write(void *data, const char *buf, size_t len) {
  wirebuf_t *w = data;
  if (len > ACORO_WIRE_MAX_BYTES - w->size) {
    w->toobig = 1;
    return -1;
  }
  if (w->size + len > w->cap) {
    size_t cap = w->cap ? w->cap : 256;
    char *p;
    while (cap < w->size + len)
      cap *= 2;
    p = realloc(w->data, cap);
    if (p == NULL) {
      w->oom = 1;
      return -1;
    }
    w->data = p;
    w->cap = cap;
  }
  memcpy(w->data + w->size, buf, len);
  w->size += len;
  return 0;
}

static int wirebuf_gc(lua_State *L) {
  wirebuf_t *w = luaL_checkudata(L, 1, WIREBUF_MT);
  free(w->data);
  w->data = NULL;
  w->cap = w->size = 0;
  return 0;
}

static wirebuf_t *wirebuf_new(lua_State *L) {
  wirebuf_t *w = lua_newuserdata(L, sizeof *w);
  memset(w, 0, sizeof *w);
  luaL_getmetatable(L, WIREBUF_MT);
  lua_setmetatable(L, -2);
  return w;
}

/* ---- Encoding ---- */

/* The error path is built backwards as the error unwinds: each table level
 * prepends its key, so the common path (no error) tracks nothing. */
#define PATH_LEN 256
typedef struct enc_s {
  lua_State *L;
  wirebuf_t *buf;
  wirebuf_t *root; /* the state's buffer: ext_depth for nested encodes */
  msgpack_packer pk;
  int ext;         /* stack index of ext_encoder, 0 for none */
  const char *why; /* the refusal, set where it happened */
  char why_buf[64];
  const void *tables[ACORO_WIRE_MAX_DEPTH + 1]; /* the tables being encoded */
  size_t path_start;                            /* path is path[start..] */
  char path[PATH_LEN + 1];                      /* NUL-terminated at PATH_LEN */
} enc_t;

/* Raises a Lua error. The buffer is released first (luaL_error longjmps
 * over every C frame between here and the caller's pcall). */
static int enc_raise(enc_t *E, const char *fmt, ...) {
  lua_State *L = E->L;
  va_list ap;
  E->buf->busy = 0;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

static void path_prepend(enc_t *E, const char *seg, size_t n) {
  if (E->path_start == 0)
    return;
  if (n + 3 > E->path_start) { /* no room: mark the cut once */
    memcpy(E->path, "...", 3);
    E->path_start = 0;
    return;
  }
  E->path_start -= n;
  memcpy(E->path + E->path_start, seg, n);
}

/* A key as a path segment: .name, ["str"], [3], [true] or [<type>]. */
static void path_key(enc_t *E, int idx) {
  lua_State *L = E->L;
  char seg[80];
  int n = 0;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t len, i;
    const char *s = lua_tolstring(L, idx, &len);
    int ident = len > 0 && len <= 40 && !(s[0] >= '0' && s[0] <= '9');
    for (i = 0; ident && i < len; i++)
      ident = s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9');
    if (ident) {
      n = snprintf(seg, sizeof seg, ".%s", s);
    } else { /* printable ASCII only: error text goes to logs */
      n = snprintf(seg, sizeof seg, "[\"");
      for (i = 0; i < len && n < 60; i++)
        seg[n++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
      n += snprintf(seg + n, sizeof seg - (size_t)n, "%s\"]",
                    i < len ? "..." : "");
    }
    break;
  }
  case LUA_TNUMBER:
    n = snprintf(seg, sizeof seg, "[%.17g]", lua_tonumber(L, idx));
    break;
  case LUA_TBOOLEAN:
    n = snprintf(seg, sizeof seg, "[%s]",
                 lua_toboolean(L, idx) ? "true" : "false");
    break;
  default:
    n = snprintf(seg, sizeof seg, "[<%s>]", luaL_typename(L, idx));
    break;
  }
  if (n > 0)
    path_prepend(E, seg, (size_t)n < sizeof seg ? (size_t)n : sizeof seg - 1);
}

static int refuse(enc_t *E, const char *why) {
  E->why = why;
  return -1;
}

/* Asks ext_encoder(v) for (type, payload); returns 1 if it packed the
 * value, 0 if there is no encoder or it declined (returned nil). An error
 * in the encoder is raised again after releasing the buffer. The value is
 * inside `depth` tables: an encode the encoder makes for the payload
 * starts one level below (EXT NESTING). */
static int enc_ext(enc_t *E, int idx, int depth) {
  lua_State *L = E->L;
  lua_Number t;
  const char *payload;
  size_t len;
  if (E->ext == 0)
    return 0;
  if (depth + 1 > ACORO_WIRE_MAX_DEPTH) {
    E->why = "nesting deeper than 64";
    return -1;
  }
  E->root->ext_depth = depth + 1;
  lua_pushvalue(L, E->ext);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 2, 0) != 0) {
    E->buf->busy = 0;
    return lua_error(L);
  }
  if (lua_isnil(L, -2)) {
    lua_pop(L, 2);
    return 0;
  }
  t = lua_tonumber(L, -2);
  payload = lua_tolstring(L, -1, &len);
  if (lua_type(L, -2) != LUA_TNUMBER || t != floor(t) || t < 0 || t > 127 ||
      payload == NULL || lua_type(L, -1) != LUA_TSTRING)
    return enc_raise(E,
                     "acoro: ext_encoder must return a type in 0..127 and "
                     "a payload string (got %s, %s)",
                     luaL_typename(L, -2), luaL_typename(L, -1));
  if (msgpack_pack_ext(&E->pk, len, (int8_t)t) == 0)
    msgpack_pack_ext_body(&E->pk, payload, len);
  lua_pop(L, 2);
  return 1;
}

static int enc_value(enc_t *E, int idx, int depth);

/* A table at nesting level `depth` (1 for the top one). Keys exactly 1..n
 * make an array, anything else a map. A map's header is written once its
 * pairs are counted: one byte is reserved (fixmap) and, for more than 15
 * pairs, the body is moved up to make room for a map16/map32 header. */
static int enc_table(enc_t *E, int idx, int depth) {
  lua_State *L = E->L;
  size_t n = lua_objlen(L, idx), count = 0, hdr;
  const void *self = lua_topointer(L, idx);
  int i, is_array = 1;

  if (depth > ACORO_WIRE_MAX_DEPTH)
    return refuse(E, "nesting deeper than 64");
  for (i = 1; i < depth; i++)
    if (E->tables[i] == self)
      return refuse(E, "a cycle (a table inside itself)");
  E->tables[depth] = self;
  if (!lua_checkstack(L, 6))
    return enc_raise(E, "acoro: out of Lua stack while encoding");

  /* Classify: an array iff every key is an integer in 1..n, n keys. A
   * table with keys 1..n has a length >= 1, so n == 0 means a map (or an
   * empty table: the map loop below writes it as an empty array). */
  if (n == 0)
    is_array = 0;
  lua_pushnil(L);
  while (is_array && lua_next(L, idx) != 0) {
    lua_Number k;
    lua_pop(L, 1);
    k = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || k != floor(k) || k < 1 ||
        k > (lua_Number)n || ++count > n)
      is_array = 0;
  }
  if (!is_array)
    lua_pop(L, 1); /* the nil, or the key the loop broke off at */
  if (count != n)  /* holes: {1, nil, 3} */
    is_array = 0;
  if (is_array) {
    size_t j;
    msgpack_pack_array(&E->pk, n);
    for (j = 1; j <= n; j++) {
      lua_rawgeti(L, idx, (int)j);
      if (enc_value(E, lua_gettop(L), depth) != 0) {
        char seg[32];
        int len = snprintf(seg, sizeof seg, "[%zu]", j);
        path_prepend(E, seg, (size_t)len);
        return -1;
      }
      lua_pop(L, 1);
    }
    return 0;
  }

  hdr = E->buf->size;
  msgpack_pack_map(&E->pk, 0); /* one byte, patched below */
  count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int k = lua_gettop(L) - 1, kt = lua_type(L, k);
    if (kt == LUA_TTABLE && !lua_getmetatable(L, k)) {
      path_key(E, k);
      return refuse(E, "a table as a key (keys are strings, numbers, "
                       "booleans or handles)");
    }
    if (kt == LUA_TTABLE)
      lua_pop(L, 1); /* the metatable */
    if (enc_value(E, k, depth) != 0 || enc_value(E, k + 1, depth) != 0) {
      path_key(E, k);
      return -1;
    }
    lua_pop(L, 1);
    count++;
  }
  if (E->buf->oom || E->buf->toobig)
    return -1;
  if (count == 0) {
    E->buf->data[hdr] = (char)0x90; /* {}: an empty array */
  } else if (count <= 15) {
    E->buf->data[hdr] = (char)(0x80 | count);
  } else {
    size_t grow = count <= 0xffff ? 2 : 4, body = E->buf->size - hdr - 1;
    char pad[4] = {0, 0, 0, 0};
    unsigned char *h;
    if (wirebuf_write(E->buf, pad, grow) != 0)
      return -1;
    h = (unsigned char *)E->buf->data + hdr;
    memmove(h + 1 + grow, h + 1, body);
    if (grow == 2) {
      h[0] = 0xde;
      h[1] = (unsigned char)(count >> 8);
      h[2] = (unsigned char)count;
    } else {
      h[0] = 0xdf;
      h[1] = (unsigned char)(count >> 24);
      h[2] = (unsigned char)(count >> 16);
      h[3] = (unsigned char)(count >> 8);
      h[4] = (unsigned char)count;
    }
  }
  return 0;
}

/* Packs the value at idx, inside `depth` tables. Returns 0, or -1 with
 * E->why set (the caller adds its key to the path). Integral numbers in
 * +-2^53 go as integers (-0 stays a float, to keep its sign). */
static int enc_value(enc_t *E, int idx, int depth) {
  lua_State *L = E->L;
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: {
    lua_Number d = lua_tonumber(L, idx);
    if (d >= -MAX_SAFE_INT && d <= MAX_SAFE_INT && d == (double)(int64_t)d &&
        !(d == 0 && signbit(d)))
      msgpack_pack_int64(&E->pk, (int64_t)d);
    else
      msgpack_pack_double(&E->pk, d);
    break;
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (msgpack_pack_str(&E->pk, len) == 0)
      msgpack_pack_str_body(&E->pk, s, len);
    break;
  }
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx))
      msgpack_pack_true(&E->pk);
    else
      msgpack_pack_false(&E->pk);
    break;
  case LUA_TTABLE:
    if (lua_getmetatable(L, idx)) {
      int rc;
      lua_pop(L, 1);
      if ((rc = enc_ext(E, idx, depth)) > 0)
        break;
      if (rc < 0)
        return -1;
      return refuse(E, "a table with a metatable");
    }
    if (enc_table(E, idx, depth + 1) != 0)
      return -1;
    break;
  case LUA_TUSERDATA:
  case LUA_TLIGHTUSERDATA:
  default: /* cdata */ {
    int rc = enc_ext(E, idx, depth);
    if (rc > 0)
      break;
    if (rc < 0)
      return -1;
  }
    snprintf(E->why_buf, sizeof E->why_buf, "a %s", luaL_typename(L, idx));
    return refuse(E, E->why_buf);
  case LUA_TNIL:
    return refuse(E, "nil");
  case LUA_TFUNCTION:
    return refuse(E, "a function");
  case LUA_TTHREAD:
    return refuse(E, "a thread (coroutine object)");
  }
  return (E->buf->oom || E->buf->toobig) ? -1 : 0;
}

/* Starts an encode into this state's buffer (a fresh one if an
 * ext_encoder is encoding inside another encode); ext is the stack index
 * of the ext_encoder, 0 for none. Returns the depth the value is at: 0,
 * or below the ext being encoded (EXT NESTING). */
static int enc_begin(lua_State *L, enc_t *E, int ext) {
  wirebuf_t *w = lua_touserdata(L, lua_upvalueindex(1));
  int base = 0;
  E->root = w;
  if (w->busy) { /* an ext_encoder's encode of its payload */
    base = w->ext_depth;
    w = wirebuf_new(L); /* anchored on the stack until we return */
  }
  w->busy = 1;
  w->size = 0;
  w->oom = w->toobig = 0;
  E->L = L;
  E->buf = w;
  E->ext = ext;
  E->why = NULL;
  E->path_start = PATH_LEN;
  E->path[PATH_LEN] = '\0';
  msgpack_packer_init(&E->pk, w, wirebuf_write);
  return base;
}

/* Ends an encode: rc is enc_value's for the message. Raises, naming the
 * path from `msg`, or pushes the encoding and releases the buffer. */
static int enc_end(enc_t *E, int rc) {
  lua_State *L = E->L;
  wirebuf_t *w = E->buf;
  if (rc != 0 && w->oom)
    return enc_raise(E, "acoro: out of memory while encoding");
  if (rc != 0 && w->toobig)
    return enc_raise(E, "acoro: cannot send a message larger than %d bytes",
                     (int)ACORO_WIRE_MAX_BYTES);
  if (rc != 0)
    return enc_raise(E, "acoro: cannot send msg%s: %s", E->path + E->path_start,
                     E->why);
  lua_pushlstring(L, w->data, w->size);
  if (w->cap > KEEP_BYTES) { /* do not keep a big buffer for ever */
    free(w->data);
    w->data = NULL;
    w->cap = 0;
  }
  w->busy = 0;
  return 1;
}

/* encode(value [, ext_encoder]) -> string. Raises, naming the path, for a
 * value that cannot be sent. */
static int wire_encode(lua_State *L) {
  enc_t E;
  int depth;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  depth = enc_begin(L, &E, lua_isnil(L, 2) ? 0 : 2);
  return enc_end(&E, enc_value(&E, 1, depth));
}

/* envelope(ext_encoder | nil, msg, e1, ..., en) -> the encoding of the
 * array {e1, ..., en, msg}, in one pass. The distribution layer's
 * envelope around a message: a refusal inside msg names its path from
 * `msg` exactly as encode(msg) does (the envelope is not part of the
 * path), and msg keeps encode's 64 levels of its own (the envelope is the
 * 65th: decoders of envelopes allow it, see lwire_decode). The elements
 * e1..en are the caller's (operation numbers, ids): one that cannot be
 * encoded is a bug of the caller and raises saying which. */
static int wire_envelope(lua_State *L) {
  enc_t E;
  int i, n = lua_gettop(L), depth;
  if (!lua_isnil(L, 1))
    luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checkany(L, 2);
  depth = enc_begin(L, &E, lua_isnil(L, 1) ? 0 : 1);
  msgpack_pack_array(&E.pk, (size_t)(n - 1));
  for (i = 3; i <= n; i++)
    if (enc_value(&E, i, depth) != 0 && !E.buf->oom && !E.buf->toobig)
      return enc_raise(&E, "acoro: envelope element %d cannot be sent: %s",
                       i - 2, E.why);
  return enc_end(&E, enc_value(&E, 2, depth));
}

/* ---- Decoding ---- */

/* DECODE BUDGET: what a decode charges for each thing it builds, close to
 * LuaJIT's sizes (GC64: a table header, 8-byte array slots, 24-byte hash
 * nodes rounded up for the power-of-two hash part, a string header), and
 * for each value an ext_decoder makes from a payload. */
#define DEC_COST_TABLE 64
#define DEC_COST_SLOT 8
#define DEC_COST_PAIR 32
#define DEC_COST_STRING 24
#define DEC_COST_EXT 64

typedef struct dec_s {
  lua_State *L;
  const unsigned char *p, *start;
  int ext;      /* stack index of ext_decoder, 0 for none */
  int in_place; /* stack index of the in-place ext types, 0 for none */
  int depth;    /* containers (and exts) open around D->p */
  int max_depth;
  size_t cost; /* DECODE BUDGET spent */
  char *reason;
  size_t reason_len;
} dec_t;

static int dec_fail(dec_t *D, const unsigned char *at, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(D->reason, D->reason_len, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < D->reason_len)
    snprintf(D->reason + n, D->reason_len - (size_t)n, " (at byte %zu)",
             (size_t)(at - D->start));
  return ACORO_EWIRE;
}

/* Charges `bytes` before building something; refuses past the budget. */
static int dec_charge(dec_t *D, const unsigned char *at, size_t bytes) {
  if (bytes > ACORO_WIRE_MAX_EXPAND - D->cost)
    return dec_fail(D, at, "a message expanding past %u bytes",
                    (unsigned)ACORO_WIRE_MAX_EXPAND);
  D->cost += bytes;
  return 0;
}

static uint64_t be(const unsigned char *p, int n) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

static int dec_value(dec_t *D);

static int dec_int(dec_t *D, const unsigned char *at, int64_t v) {
  if (v < -(int64_t)MAX_SAFE_INT || v > (int64_t)MAX_SAFE_INT)
    return dec_fail(D, at, "integer %lld beyond +-2^53", (long long)v);
  lua_pushnumber(D->L, (lua_Number)v);
  return 0;
}

/* An ext value: ext_decoder(type, payload) -> value. For an in-place type
 * the payload is one wire value, checked with the levels left below this
 * ext and decoded here from the frame itself (EXT NESTING); for the others
 * it is a copy of the bytes (charged to the budget). */
static int dec_ext(dec_t *D, const unsigned char *at, int type, size_t len) {
  lua_State *L = D->L;
  int in_place = 0, rc;
  if (D->ext == 0)
    return dec_fail(D, at, "ext type %d and no ext_decoder", type);
  if (!lua_checkstack(L, 4))
    return dec_fail(D, at, "out of Lua stack");
  if (D->in_place != 0) {
    lua_rawgeti(L, D->in_place, type);
    in_place = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if ((rc = dec_charge(D, at, DEC_COST_EXT)) != 0)
    return rc;
  lua_pushvalue(L, D->ext);
  lua_pushinteger(L, type);
  if (in_place) {
    const unsigned char *end = D->p + len;
    acoro_wire_limits_t limits;
    size_t used = 0;
    char why[96];
    if (D->depth + 1 > D->max_depth)
      return dec_fail(D, at, "nesting deeper than %d", D->max_depth);
    limits.max_bytes = len;
    limits.max_depth = D->max_depth - D->depth - 1;
    if (acoro_wire_check((const char *)D->p, len, &limits, &used, why,
                         sizeof why) != 0)
      return dec_fail(D, at, "ext type %d: %s", type, why);
    if (used != len)
      return dec_fail(D, at, "ext type %d: %zu bytes after its value", type,
                      len - used);
    D->depth++;
    rc = dec_value(D);
    D->depth--;
    if (rc != 0)
      return rc;
    D->p = end;
  } else {
    if ((rc = dec_charge(D, at, DEC_COST_STRING + len)) != 0)
      return rc;
    lua_pushlstring(L, (const char *)D->p, len);
    D->p += len;
  }
  lua_call(L, 2, 1); /* an error in the decoder is the program's: raised */
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dec_fail(D, at, "ext_decoder gave nil for ext type %d", type);
  }
  return 0;
}

/* A container's elements; the table is on top of the stack. */
static int dec_container(dec_t *D, size_t n, int map) {
  lua_State *L = D->L;
  size_t i;
  int rc;
  if (!lua_checkstack(L, 4))
    return dec_fail(D, D->p, "out of Lua stack");
  if ((rc = dec_charge(D, D->p,
                       DEC_COST_TABLE +
                           n * (map ? DEC_COST_PAIR : DEC_COST_SLOT))) != 0)
    return rc;
  D->depth++;
  if (!map) {
    lua_createtable(L, n > INT32_MAX ? INT32_MAX : (int)n, 0);
    for (i = 1; i <= n; i++) {
      if ((rc = dec_value(D)) != 0)
        return rc;
      lua_rawseti(L, -2, (int)i);
    }
    D->depth--;
    return 0;
  }
  lua_createtable(L, 0, n > INT32_MAX ? INT32_MAX : (int)n);
  for (i = 0; i < n; i++) {
    const unsigned char *at = D->p;
    if ((*at >= 0x80 && *at <= 0x9f) || (*at >= 0xdc && *at <= 0xdf))
      return dec_fail(D, at, "an array or map as a map key");
    if ((rc = dec_value(D)) != 0)
      return rc;
    if (lua_type(L, -1) == LUA_TNUMBER &&
        lua_tonumber(L, -1) != lua_tonumber(L, -1))
      return dec_fail(D, at, "NaN as a map key");
    if ((rc = dec_value(D)) != 0)
      return rc;
    lua_rawset(L, -3);
  }
  D->depth--;
  return 0;
}

/* Pushes the value at D->p and moves past it. Every length was checked by
 * acoro_wire_check before: only the value rules are enforced here. */
static int dec_value(dec_t *D) {
  lua_State *L = D->L;
  const unsigned char *at = D->p;
  unsigned b = *D->p++;
  size_t n;
  if (b <= 0x7f) {
    lua_pushnumber(L, (lua_Number)b);
    return 0;
  }
  if (b >= 0xe0) {
    lua_pushnumber(L, (lua_Number)(int8_t)b);
    return 0;
  }
  if (b <= 0x8f)
    return dec_container(D, b & 0x0f, 1);
  if (b <= 0x9f)
    return dec_container(D, b & 0x0f, 0);
  if (b <= 0xbf) {
    n = b & 0x1f;
    goto str;
  }
  switch (b) {
  case 0xc2:
  case 0xc3:
    lua_pushboolean(L, b == 0xc3);
    return 0;
  case 0xc4:
  case 0xc5:
  case 0xc6:
    n = (size_t)be(D->p, 1 << (b - 0xc4));
    D->p += 1 << (b - 0xc4);
    goto str;
  case 0xd9:
  case 0xda:
  case 0xdb:
    n = (size_t)be(D->p, 1 << (b - 0xd9));
    D->p += 1 << (b - 0xd9);
    goto str;
  case 0xca: {
    uint32_t u = (uint32_t)be(D->p, 4);
    float f;
    memcpy(&f, &u, 4);
    D->p += 4;
    lua_pushnumber(L, (lua_Number)f);
    return 0;
  }
  case 0xcb: {
    uint64_t u = be(D->p, 8);
    double d;
    memcpy(&d, &u, 8);
    D->p += 8;
    lua_pushnumber(L, d);
    return 0;
  }
  case 0xcc:
  case 0xcd:
  case 0xce:
  case 0xcf: {
    uint64_t u = be(D->p, 1 << (b - 0xcc));
    D->p += 1 << (b - 0xcc);
    if (u > (uint64_t)MAX_SAFE_INT)
      return dec_fail(D, at, "integer %llu beyond +-2^53",
                      (unsigned long long)u);
    lua_pushnumber(L, (lua_Number)u);
    return 0;
  }
  case 0xd0:
  case 0xd1:
  case 0xd2:
  case 0xd3: {
    int bytes = 1 << (b - 0xd0);
    uint64_t u = be(D->p, bytes);
    int64_t v;
    D->p += bytes;
    if (bytes < 8 && (u >> (bytes * 8 - 1)) & 1) /* sign-extend */
      u |= ~(uint64_t)0 << (bytes * 8);
    memcpy(&v, &u, 8);
    return dec_int(D, at, v);
  }
  case 0xd4:
  case 0xd5:
  case 0xd6:
  case 0xd7:
  case 0xd8: {
    int type = (int8_t)*D->p++;
    return dec_ext(D, at, type, (size_t)1 << (b - 0xd4));
  }
  case 0xc7:
  case 0xc8:
  case 0xc9: {
    int type;
    n = (size_t)be(D->p, 1 << (b - 0xc7));
    D->p += 1 << (b - 0xc7);
    type = (int8_t)*D->p++;
    return dec_ext(D, at, type, n);
  }
  case 0xdc:
  case 0xdd:
    n = (size_t)be(D->p, 2 << (b - 0xdc));
    D->p += 2 << (b - 0xdc);
    return dec_container(D, n, 0);
  case 0xde:
  case 0xdf:
    n = (size_t)be(D->p, 2 << (b - 0xde));
    D->p += 2 << (b - 0xde);
    return dec_container(D, n, 1);
  case 0xc0:
    return dec_fail(D, at, "nil is not a message value");
  default: /* 0xc1: acoro_wire_check refuses it */
    return dec_fail(D, at, "reserved byte 0x%02x", b);
  }
str:
  if (dec_charge(D, at, DEC_COST_STRING + n) != 0)
    return ACORO_EWIRE;
  lua_pushlstring(L, (const char *)D->p, n);
  D->p += n;
  return 0;
}

/* Validates buf (max_depth: 64 for a value, 65 for an envelope) and sets
 * up D at its start. Returns 0, or ACORO_EWIRE with the reason. */
static int dec_open(dec_t *D, lua_State *L, const char *buf, size_t len,
                    int ext_decoder, int in_place, int max_depth, char *reason,
                    size_t reason_len) {
  acoro_wire_limits_t limits = {ACORO_WIRE_MAX_BYTES, max_depth};
  size_t used = 0;
  int rc = acoro_wire_check(buf, len, &limits, &used, reason, reason_len);
  if (rc != 0)
    return rc;
  if (ext_decoder < 0)
    ext_decoder = lua_gettop(L) + 1 + ext_decoder;
  if (in_place < 0)
    in_place = lua_gettop(L) + 1 + in_place;
  D->L = L;
  D->p = D->start = (const unsigned char *)buf;
  D->ext = ext_decoder;
  D->in_place = in_place;
  D->depth = 0;
  D->max_depth = max_depth;
  D->cost = 0;
  D->reason = reason;
  D->reason_len = reason_len;
  if (used != len)
    return dec_fail(D, D->start + used, "%zu bytes after the value",
                    len - used);
  return 0;
}

int lwire_decode(lua_State *L, const char *buf, size_t len, int ext_decoder,
                 int in_place, char *reason, size_t reason_len) {
  dec_t D;
  int top = lua_gettop(L);
  int rc = dec_open(&D, L, buf, len, ext_decoder, in_place,
                    ACORO_WIRE_MAX_DEPTH, reason, reason_len);
  if (rc == 0 && (rc = dec_value(&D)) != 0)
    lua_settop(L, top);
  return rc;
}

int lwire_decode_envelope(lua_State *L, const char *buf, size_t len,
                          int ext_decoder, int in_place, int max_elems,
                          size_t *cost, char *reason, size_t reason_len) {
  dec_t D;
  int top = lua_gettop(L), rc;
  size_t n, i;
  unsigned b;
  rc = dec_open(&D, L, buf, len, ext_decoder, in_place,
                ACORO_WIRE_MAX_DEPTH + 1, reason, reason_len);
  if (rc != 0)
    return rc;
  b = *D.p++;
  if (b >= 0x90 && b <= 0x9f) {
    n = b & 0x0f;
  } else if (b == 0xdc || b == 0xdd) {
    n = (size_t)be(D.p, 2 << (b - 0xdc));
    D.p += 2 << (b - 0xdc);
  } else {
    return dec_fail(&D, D.start, "an envelope that is not an array");
  }
  if (n > (size_t)max_elems)
    return dec_fail(&D, D.start, "an envelope of %zu elements (at most %d)", n,
                    max_elems);
  if (!lua_checkstack(L, max_elems + 4))
    return dec_fail(&D, D.start, "out of Lua stack");
  D.depth = 1; /* inside the envelope */
  for (i = 0; i < n; i++)
    if ((rc = dec_value(&D)) != 0) {
      lua_settop(L, top);
      return rc;
    }
  if (cost != NULL)
    *cost = D.cost;
  return (int)n;
}

/* decode(string [, ext_decoder [, in_place]]) -> value | nil, reason.
 * in_place: a table whose in_place[type] is true for the ext types whose
 * payload is one wire value, decoded in place (EXT NESTING). */
static int wire_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char reason[128];
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  if (lwire_decode(L, s, len, lua_isnil(L, 2) ? 0 : 2, lua_isnil(L, 3) ? 0 : 3,
                   reason, sizeof reason) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, reason);
    return 2;
  }
  return 1;
}

void lwire_open(lua_State *L) {
  if (luaL_newmetatable(L, WIREBUF_MT)) {
    lua_pushcfunction(L, wirebuf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  wirebuf_new(L);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, wire_encode, 1);
  lua_setfield(L, -3, "encode");
  lua_pushcclosure(L, wire_envelope, 1); /* the same buffer */
  lua_setfield(L, -2, "envelope");
  lua_pushcfunction(L, wire_decode);
  lua_setfield(L, -2, "decode");
  lua_pushinteger(L, ACORO_WIRE_MAX_BYTES);
  lua_setfield(L, -2, "max_bytes");
  lua_pushinteger(L, ACORO_WIRE_MAX_DEPTH);
  lua_setfield(L, -2, "max_depth");
  lua_pushnumber(L, ACORO_WIRE_MAX_EXPAND);
  lua_setfield(L, -2, "max_expand");
}

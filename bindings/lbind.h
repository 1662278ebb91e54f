/* lbind.h: what the binding's files share (internal to bindings/). */
#ifndef ACORO_LBIND_H
#define ACORO_LBIND_H

#include "acoro_lua.h"

#include <lauxlib.h>

/* lbind.c: what every binding file uses.
 * A box is the userdata of a core object: p is NULL once released (by
 * __gc, or an explicit free), so a closed object still answers; kind is
 * the file's own (an operation's result kind). lbind_push_box pushes a new
 * one with metatable mt; lbind_box is luaL_checkudata; lbind_check gives
 * the object or raises `released` (a whole message) if it was released.
 * lbind_engine: the engine, upvalue 1 of every function and method;
 * lbind_running: the running coroutine, or raises msg (NULL: the I/O
 * message) outside one; lbind_misuse raises "acoro: what: <the error>" for
 * a misuse the core reported (EWAITING, ECLOSED, ...). */
typedef struct lbind_box_s {
  void *p;
  int kind;
} lbind_box_t;
acoro_engine_t *lbind_engine(lua_State *L);
acoro_co_t *lbind_running(lua_State *L, const char *msg);
int lbind_misuse(lua_State *L, int rc, const char *what);
lbind_box_t *lbind_push_box(lua_State *L, void *p, const char *mt);
lbind_box_t *lbind_box(lua_State *L, int i, const char *mt);
void *lbind_check(lua_State *L, int i, const char *mt, const char *released);
/* Pushes nil, "ECODE: message", "ECODE" for a libuv error; returns 3. */
int lio_fail(lua_State *L, int uverr);
/* A timeout argument at stack index i: -1 (none) when absent, nil or
 * negative, else the seconds; NaN raises (luaL_argerror). */
double lio_opt_timeout(lua_State *L, int i);
/* lbind_funcs sets funcs into the table on the top, each a closure over
 * the engine; lio_metatable makes metatable `name` whose methods do, with
 * gc as __gc and __close; lbind_tostring sets its __tostring. */
void lbind_funcs(lua_State *L, acoro_engine_t *e, const luaL_Reg *funcs);
void lio_metatable(lua_State *L, acoro_engine_t *e, const char *name,
                   const luaL_Reg *methods, lua_CFunction gc);
void lbind_tostring(lua_State *L, const char *name, lua_CFunction f);
/* A box type's life: its metatable's name, how __gc (and __close) lets go
 * of the object (the box is emptied), and the "close" (the box is kept: a
 * closed object still answers) and "is_open" methods where the type has
 * them (NULL: none), each a one-line wrapper over the core's typed call.
 * lbind_type makes the metatable as lio_metatable does, with those; life
 * must outlive the Lua state (a static). */
typedef struct lbind_life_s {
  const char *mt;
  void (*release)(void *p);
  void (*close)(void *p);
  int (*is_open)(const void *p);
} lbind_life_t;
void lbind_type(lua_State *L, acoro_engine_t *e, const luaL_Reg *methods,
                const lbind_life_t *life);
/* The read-buffer methods streams and files share (each returns its
 * count of results): _buffered; _take(n) and _peek(n), the first n bytes
 * (fewer if fewer), taken or kept; _take_line(max[, from]), the line with
 * its "\n" if one is among the first max bytes (searching from offset
 * from), else nothing; lbind_read_status: nothing for 0 (more may come),
 * "eof", or message, code. */
int lbind_buffered(lua_State *L, acoro_reader_t *r);
int lbind_take(lua_State *L, acoro_reader_t *r, lua_Integer n);
int lbind_peek(lua_State *L, acoro_reader_t *r, lua_Integer n);
int lbind_take_line(lua_State *L, acoro_reader_t *r, lua_Integer max,
                    lua_Integer from);
int lbind_read_status(lua_State *L, int st);

/* lio.c: opens core.io (leaves its table on the stack); streams as
 * userdata for other binding files (processes' pipes, stdio). */
void lio_open(lua_State *L, acoro_engine_t *e);
void lio_push_stream(lua_State *L, acoro_stream_t *s);
acoro_stream_t *lio_check_stream(lua_State *L, int i);

/* lproc.c, ludp.c: open core.process and core.udp (each leaves its table
 * on the stack). */
void lproc_open(lua_State *L, acoro_engine_t *e);
void ludp_open(lua_State *L, acoro_engine_t *e);
/* lfs.c, lpool.c: open core.fs and core.pool (leave the table on the
 * stack). */
void lfs_open(lua_State *L, acoro_engine_t *e);
void lpool_open(lua_State *L, acoro_engine_t *e);

/* lwire.c: opens core.wire (leaves its table on the stack). lwire_decode
 * validates buf (acoro_wire_check, 64 MB, depth 64) and pushes the value
 * it holds (0), or returns ACORO_EWIRE with a reason and pushes nothing;
 * ext_decoder is a stack index of a function, or 0 for none; in_place the
 * stack index of a table of the ext types decoded in place (their payload
 * is one wire value, given to ext_decoder as that value; lwire.c's EXT
 * NESTING), or 0 for none. Memory is bounded twice: by the frame (every
 * element takes a byte of it; tables pre-sized from counts that the check
 * has proven) and by ACORO_WIRE_MAX_EXPAND bytes of what the decode
 * builds (lwire.c's DECODE BUDGET). An error raised by ext_decoder
 * propagates. lwire_decode_envelope does the same for a frame holding an
 * array of at most max_elems elements (core.wire's envelope(): depth 65,
 * its last element a message of depth 64) and pushes the elements
 * themselves (no table for the array): returns their count, or
 * ACORO_EWIRE; *cost (if not NULL) is the budget the decode spent. */
void lwire_open(lua_State *L);
int lwire_decode(lua_State *L, const char *buf, size_t len, int ext_decoder,
                 int in_place, char *reason, size_t reason_len);
int lwire_decode_envelope(lua_State *L, const char *buf, size_t len,
                          int ext_decoder, int in_place, int max_elems,
                          size_t *cost, char *reason, size_t reason_len);

/* lnet.c: opens core.net (leaves its table on the stack); lnet_close
 * stops a running net (the binding's __gc calls it before freeing the
 * engine). */
void lnet_open(lua_State *L, acoro_engine_t *e);
void lnet_close(lua_State *L);

/* lcoro.c, for lhost.c: the state and the vals table (registry ref) that
 * posted messages go to, or NULL while the state closes (or before
 * acoro.init ran); lcoro_post_lost counts (and logs the first) message
 * dropped on arrival. lhost.c: lhost_open makes the host calls'
 * metatable. ENGINE THREAD ONLY. */
lua_State *lcoro_state(acoro_engine_t *e, int *vals_ref);
void lcoro_post_lost(acoro_engine_t *e, const char *why);
void lhost_open(lua_State *L, acoro_engine_t *e);

/* lhttp.c: opens core.http, the HTTP/1.1 request parser (leaves its table
 * on the stack). */
void lhttp_open(lua_State *L, acoro_engine_t *e);

#endif /* ACORO_LBIND_H */

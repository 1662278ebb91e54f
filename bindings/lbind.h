/* lbind.h: what the binding's files share (internal to bindings/). */
#ifndef ACORO_LBIND_H
#define ACORO_LBIND_H

#include "acoro_lua.h"

#include <lauxlib.h>

/* lio.c: opens core.io (leaves its table on the stack); streams as
 * userdata for other binding files (processes' pipes, stdio). */
void lio_open(lua_State *L, acoro_engine_t *e);
void lio_metatable(lua_State *L, acoro_engine_t *e, const char *name,
                   const luaL_Reg *methods, lua_CFunction gc);
void lio_push_stream(lua_State *L, acoro_stream_t *s);
acoro_stream_t *lio_check_stream(lua_State *L, int i);
/* Pushes nil, "ECODE: message", "ECODE" for a libuv error; returns 3. */
int lio_fail(lua_State *L, int uverr);
/* A timeout argument at stack index i: -1 (none) when absent, nil or
 * negative, else the seconds; NaN raises (luaL_argerror). */
double lio_opt_timeout(lua_State *L, int i);

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

#endif /* ACORO_LBIND_H */

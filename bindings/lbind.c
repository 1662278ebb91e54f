/* lbind.c: the helpers every binding file shares: boxes (a userdata
 * holding a core object), the engine upvalue, the running coroutine,
 * argument checks, the failure triple, metatables and function tables,
 * and the read-buffer methods of streams and files (one acoro_reader_t). */
#include "lbind.h"

#include <string.h>
#include <uv.h>

acoro_engine_t *lbind_engine(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

acoro_co_t *lbind_running(lua_State *L, const char *msg) {
  acoro_co_t *co = acoro_current(lbind_engine(L));
  if (co == NULL)
    luaL_error(
        L, "%s",
        msg != NULL
            ? msg
            : "acoro: I/O that waits must run inside an acoro coroutine");
  return co;
}

int lbind_misuse(lua_State *L, int rc, const char *what) {
  return luaL_error(L, "acoro: %s: %s", what, acoro_strerror(rc));
}

lbind_box_t *lbind_push_box(lua_State *L, void *p, const char *mt) {
  lbind_box_t *b = lua_newuserdata(L, sizeof *b);
  b->p = p;
  b->kind = 0;
  luaL_getmetatable(L, mt);
  lua_setmetatable(L, -2);
  return b;
}

lbind_box_t *lbind_box(lua_State *L, int i, const char *mt) {
  return luaL_checkudata(L, i, mt);
}

void *lbind_check(lua_State *L, int i, const char *mt, const char *released) {
  lbind_box_t *b = luaL_checkudata(L, i, mt);
  if (b->p == NULL)
    luaL_error(L, "%s", released);
  return b->p;
}

int lio_fail(lua_State *L, int uverr) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", uv_err_name(uverr), uv_strerror(uverr));
  lua_pushstring(L, uv_err_name(uverr));
  return 3;
}

/* The C half of acoro.check's timeout rule, for every binding that takes
 * a timeout: none or nil = -1 (no timer); a negative number = -1 too (the
 * Lua layer has already made "<= 0" mean "do not wait"); NaN raises here,
 * before the engine would refuse it (ACORO_EINVAL) under a misleading
 * error. */
double lio_opt_timeout(lua_State *L, int i) {
  lua_Number t;
  if (lua_isnoneornil(L, i))
    return -1.0;
  t = luaL_checknumber(L, i);
  if (t != t)
    luaL_argerror(L, i, "timeout is NaN");
  return t < 0 ? -1.0 : (double)t;
}

void lbind_funcs(lua_State *L, acoro_engine_t *e, const luaL_Reg *funcs) {
  const luaL_Reg *f;
  for (f = funcs; f->name != NULL; f++) {
    lua_pushlightuserdata(L, e);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
}

/* A metatable whose methods (and __index) carry the engine upvalue; the
 * function on the top of the stack becomes __gc and __close (popped). */
static void metatable(lua_State *L, acoro_engine_t *e, const char *name,
                      const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  lbind_funcs(L, e, methods);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "__gc");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "__close");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 2);
}

void lio_metatable(lua_State *L, acoro_engine_t *e, const char *name,
                   const luaL_Reg *methods, lua_CFunction gc) {
  lua_pushcfunction(L, gc);
  metatable(L, e, name, methods);
}

/* The life methods; upvalue 1 is the lbind_life_t. */

static int life_gc(lua_State *L) {
  const lbind_life_t *t = lua_touserdata(L, lua_upvalueindex(1));
  lbind_box_t *b = luaL_checkudata(L, 1, t->mt);
  if (b->p != NULL)
    t->release(b->p);
  b->p = NULL;
  return 0;
}

static int life_close(lua_State *L) {
  const lbind_life_t *t = lua_touserdata(L, lua_upvalueindex(1));
  lbind_box_t *b = luaL_checkudata(L, 1, t->mt);
  if (b->p != NULL)
    t->close(b->p);
  return 0;
}

static int life_is_open(lua_State *L) {
  const lbind_life_t *t = lua_touserdata(L, lua_upvalueindex(1));
  lbind_box_t *b = luaL_checkudata(L, 1, t->mt);
  lua_pushboolean(L, b->p != NULL && t->is_open(b->p));
  return 1;
}

static void life_method(lua_State *L, const lbind_life_t *t, const char *name,
                        lua_CFunction f) {
  lua_pushlightuserdata(L, (void *)t);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
}

void lbind_type(lua_State *L, acoro_engine_t *e, const luaL_Reg *methods,
                const lbind_life_t *life) {
  lua_pushlightuserdata(L, (void *)life);
  lua_pushcclosure(L, life_gc, 1);
  metatable(L, e, life->mt, methods);
  luaL_getmetatable(L, life->mt);
  lua_getfield(L, -1, "__index");
  if (life->close != NULL)
    life_method(L, life, "close", life_close);
  if (life->is_open != NULL)
    life_method(L, life, "is_open", life_is_open);
  lua_pop(L, 2);
}

void lbind_tostring(lua_State *L, const char *name, lua_CFunction f) {
  luaL_getmetatable(L, name);
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

/* Read buffers. n and max below 0 count as 0; more than is buffered as
 * what is. */

static size_t clamp(lua_Integer n, size_t have) {
  return n < 0 ? 0 : (size_t)n < have ? (size_t)n : have;
}

int lbind_buffered(lua_State *L, acoro_reader_t *r) {
  lua_pushinteger(L, (lua_Integer)acoro_reader_buffered(r, NULL));
  return 1;
}

int lbind_take(lua_State *L, acoro_reader_t *r, lua_Integer n) {
  const char *p;
  size_t k = clamp(n, acoro_reader_buffered(r, &p));
  lua_pushlstring(L, p, k);
  acoro_reader_consume(r, k);
  return 1;
}

int lbind_peek(lua_State *L, acoro_reader_t *r, lua_Integer n) {
  const char *p;
  size_t k = clamp(n, acoro_reader_buffered(r, &p));
  lua_pushlstring(L, p, k);
  return 1;
}

int lbind_take_line(lua_State *L, acoro_reader_t *r, lua_Integer max,
                    lua_Integer from) {
  const char *p;
  size_t look = clamp(max, acoro_reader_buffered(r, &p));
  size_t n = acoro_reader_find(r, '\n', clamp(from, look), look);
  if (n == 0)
    return 0;
  lua_pushlstring(L, p, n);
  acoro_reader_consume(r, n);
  return 1;
}

int lbind_read_status(lua_State *L, int st) {
  if (st == 0)
    return 0;
  if (st == UV_EOF) {
    lua_pushliteral(L, "eof");
    return 1;
  }
  lio_fail(L, st);
  lua_remove(L, -3);
  return 2;
}

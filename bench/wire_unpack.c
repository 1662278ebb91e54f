/* wire_unpack.c: the measurement behind lwire.c's choice of decoder. Decodes
 * the small message of bench/wire_codec.lua into Lua values N times, (a)
 * with lwire_decode (acoro_wire_check, then a cursor straight into Lua
 * values) and (b) with acoro_wire_check, msgpack-c's msgpack_unpack_next
 * (a msgpack_object tree in a zone) and a walk of that tree into Lua values.
 * Build and run (prints one line):
 *   cc -O2 -Icore -Ibindings $(pkg-config --cflags luajit msgpack) \
 *     bench/wire_unpack.c bindings/lwire.c core/wire.c -o /tmp/wire_unpack \
 *     $(pkg-config --libs luajit msgpack) -lm && /tmp/wire_unpack
 */
#include "lbind.h"

#include <lauxlib.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The tree walk (b) needs: scalars, strings, arrays, maps. */
static void push_object(lua_State *L, const msgpack_object *o) {
  uint32_t i;
  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    lua_pushnumber(L, (lua_Number)o->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    lua_pushnumber(L, (lua_Number)o->via.i64);
    break;
  case MSGPACK_OBJECT_FLOAT64:
  case MSGPACK_OBJECT_FLOAT32:
    lua_pushnumber(L, o->via.f64);
    break;
  case MSGPACK_OBJECT_BOOLEAN:
    lua_pushboolean(L, o->via.boolean);
    break;
  case MSGPACK_OBJECT_STR:
    lua_pushlstring(L, o->via.str.ptr, o->via.str.size);
    break;
  case MSGPACK_OBJECT_ARRAY:
    lua_createtable(L, (int)o->via.array.size, 0);
    for (i = 0; i < o->via.array.size; i++) {
      push_object(L, &o->via.array.ptr[i]);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  case MSGPACK_OBJECT_MAP:
    lua_createtable(L, 0, (int)o->via.map.size);
    for (i = 0; i < o->via.map.size; i++) {
      push_object(L, &o->via.map.ptr[i].key);
      push_object(L, &o->via.map.ptr[i].val);
      lua_rawset(L, -3);
    }
    break;
  default:
    lua_pushboolean(L, 0);
    break;
  }
}

int main(void) {
  static const acoro_wire_limits_t lim = {ACORO_WIRE_MAX_BYTES,
                                          ACORO_WIRE_MAX_DEPTH};
  const int n = 1000000;
  lua_State *L = luaL_newstate();
  const char *msg;
  size_t len, used;
  char reason[128];
  double t0, ta, tb;
  int i;
  msgpack_unpacked u;

  lwire_open(L);
  lua_getfield(L, -1, "encode");
  lua_createtable(L, 0, 3);
  lua_pushstring(L, "ping");
  lua_setfield(L, -2, "op");
  lua_pushnumber(L, 1000000);
  lua_setfield(L, -2, "seq");
  lua_pushstring(L, "0123456789");
  lua_setfield(L, -2, "data");
  lua_call(L, 1, 1);
  msg = lua_tolstring(L, -1, &len);

  t0 = now();
  for (i = 0; i < n; i++) {
    if (lwire_decode(L, msg, len, 0, reason, sizeof reason) != 0)
      return 1;
    lua_pop(L, 1);
  }
  ta = now() - t0;

  msgpack_unpacked_init(&u);
  t0 = now();
  for (i = 0; i < n; i++) {
    if (acoro_wire_check(msg, len, &lim, &used, reason, sizeof reason) != 0)
      return 1;
    if (msgpack_unpack_next(&u, msg, len, NULL) != MSGPACK_UNPACK_SUCCESS)
      return 1;
    push_object(L, &u.data);
    lua_pop(L, 1);
  }
  tb = now() - t0;
  msgpack_unpacked_destroy(&u);
  printf("WU msgs=%d cursor_per_s=%.0f msgpackc_per_s=%.0f ratio=%.2f\n", n,
         n / ta, n / tb, tb / ta);
  lua_close(L);
  return 0;
}

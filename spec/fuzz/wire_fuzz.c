/* wire_fuzz.c: libFuzzer target for the wire decoder (tools/fuzz-wire
 * builds and runs it). Each input goes through acoro_wire_check under the
 * pre-authentication and the full limits, then through core.wire's decode
 * path (lwire_decode: check, then the cursor into Lua values); whatever
 * decodes must encode again and that must decode. Then once more with an
 * ext_decoder and every ext type in place (core.wire's EXT NESTING: each
 * payload checked and decoded where it lies, within the levels left), which
 * may refuse but must leave the stack as it was. A crash, a sanitizer
 * report, a check that claims more bytes than it was given, or a decoded
 * value that does not survive a round trip stops the fuzzer.
 * The seed corpus spec/fuzz/corpus/wire/ holds the cases of
 * spec/wire_spec.lua, one file each, named for what it is (str_4gb,
 * array_2p32, nested_100000, map_odd, truncated, random_N, ...). */
#include "lbind.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "wire_fuzz: %s: %s\n", what, detail ? detail : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const acoro_wire_limits_t preauth = {ACORO_WIRE_PREAUTH_BYTES, 8};
  static const acoro_wire_limits_t full = {ACORO_WIRE_MAX_BYTES,
                                           ACORO_WIRE_MAX_DEPTH};
  const char *buf = (const char *)data;
  char reason[128];
  size_t used = 0;
  int rc;

  rc = acoro_wire_check(buf, size, &preauth, &used, reason, sizeof reason);
  if ((rc != 0 && rc != ACORO_EWIRE) || used > size ||
      (rc == 0 && used > ACORO_WIRE_PREAUTH_BYTES))
    die("pre-auth check", reason);
  rc = acoro_wire_check(buf, size, &full, &used, reason, sizeof reason);
  if ((rc != 0 && rc != ACORO_EWIRE) || used > size)
    die("check", reason);

  if (L == NULL) {
    L = luaL_newstate();
    if (L == NULL)
      die("luaL_newstate", NULL);
    lwire_open(L);
    lua_setglobal(L, "wire");
    /* ext_decoder(type, value) -> {type, value}; every type in place */
    if (luaL_dostring(L, "ext_decoder = function(t, v) return {t, v} end "
                         "in_place = {} for t = -128, 127 do "
                         "in_place[t] = true end") != 0)
      die("setup", lua_tostring(L, -1));
  }
  lua_settop(L, 0);
  lua_getglobal(L, "ext_decoder");
  lua_getglobal(L, "in_place");
  if (lwire_decode(L, buf, size, 1, 2, reason, sizeof reason) == 0)
    lua_pop(L, 1);
  if (lua_gettop(L) != 2)
    die("an in-place decode left the stack changed", reason);
  lua_settop(L, 0);
  if (lwire_decode(L, buf, size, 0, 0, reason, sizeof reason) != 0) {
    if (lua_gettop(L) != 0)
      die("failed decode left values on the stack", reason);
    return 0;
  }
  /* The value decoded: encode it (pcall: a refusal would be a bug) and
   * decode that again. */
  lua_getglobal(L, "wire");
  lua_getfield(L, -1, "encode");
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 1, 1, 0) != 0)
    die("encode of a decoded value", lua_tostring(L, -1));
  {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (lwire_decode(L, s, len, 0, 0, reason, sizeof reason) != 0)
      die("decode of a re-encoded value", reason);
  }
  lua_settop(L, 0);
  return 0;
}

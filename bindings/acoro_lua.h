/* acoro_lua.h: embedding acoro's Lua binding in a C program that runs
 * LuaJIT (the `acoro` executable is such a program and uses nothing else). */
#ifndef ACORO_LUA_H
#define ACORO_LUA_H

#include "acoro.h"

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The C module `acoro.core` (require "acoro" loads it). One engine per
 * lua_State universe, made on first open and freed with the state. */
ACORO_API int luaopen_acoro_core(lua_State *L);

/* Makes `require "acoro"` work in L: opens acoro.core into package.loaded
 * and, when lua_dir is not NULL, puts lua_dir/?.lua and lua_dir/?/init.lua
 * first on package.path. Returns 0 or an ACORO_E* code. */
ACORO_API int acoro_lua_openlib(lua_State *L, const char *lua_dir);

/* The engine of L's binding, or NULL before acoro.core was opened: for
 * adding libuv handles or calling acoro_engine_catch_sigint. */
ACORO_API acoro_engine_t *acoro_lua_engine(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif /* ACORO_LUA_H */

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

/* Where every log line of L's acoro goes: the engine's (acoro_host_t.log)
 * and the Lua library's (acoro.log's default writer), one line each
 * without the "acoro: " prefix nor a newline; level 0 error, 1 warning, 2
 * info, 3 debug, already filtered by acoro.log's level. NULL restores the
 * default, stderr. Called on the engine thread; it must not call into L.
 * A script's acoro.log.set_writer takes the Lua library's lines before
 * they reach it. Returns 0, or ACORO_EINVAL before acoro.core was opened
 * in L (call it after acoro_lua_openlib). */
typedef void (*acoro_lua_log_fn)(void *data, int level, const char *msg);
ACORO_API int acoro_lua_set_log(lua_State *L, acoro_lua_log_fn fn, void *data);

#ifdef __cplusplus
}
#endif
#endif /* ACORO_LUA_H */

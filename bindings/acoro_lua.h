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

/* DRIVING. acoro_lua_run_once(L, mode) is acoro_engine_run_once for L's
 * engine (the ACORO_RUN_* modes; DEFAULT runs until done, as acoro.run
 * does without a main function): a frame loop calls it once per frame;
 * the coroutines it resumes are those scripts made with acoro.spawn.
 * ACORO_EINVAL before acoro.core was opened in L. Errors of the scripts
 * stay in their coroutines (logged); only a Lua error of the binding itself
 * (out of memory) would propagate: call it under lua_pcall where that
 * matters. To run inside a host's libuv loop instead,
 * acoro_engine_attach(acoro_lua_engine(L), loop, ...).
 * ENGINE THREAD ONLY (the thread that owns L). */
ACORO_API int acoro_lua_run_once(lua_State *L, int mode);

/* POSTS FROM HOST THREADS. Each sends one message to the coroutine
 * registered under `name` (co:register) or, when name is NULL, to the one
 * with id `id` (co:id()); it arrives as an ordinary message
 * (acoro.receive): a number, a string, or the value a MessagePack buffer
 * holds (checked here at once: ACORO_EWIRE if it is not exactly one
 * well-formed value; decoded on arrival). e is acoro_lua_engine(L), taken
 * on the engine thread beforehand. ANY THREAD; each thread's messages
 * keep their order; copies are taken. Returns 0, ACORO_EINVAL,
 * ACORO_ENOMEM or ACORO_ECLOSED (acoro_engine_post). A message whose
 * coroutine does not exist on arrival, or whose mailbox is full, is
 * dropped: acoro_lua_posts_lost counts those (the first is logged).
 * The engine reports a deadlock (acoro.run fails) when every coroutine
 * waits and nothing could wake one: a host whose threads will post takes
 * a hold first (acoro_engine_hold, on the engine thread). */
ACORO_API int acoro_lua_post_number(acoro_engine_t *e, const char *name,
                                    uint64_t id, double n);
ACORO_API int acoro_lua_post_string(acoro_engine_t *e, const char *name,
                                    uint64_t id, const char *s, size_t len);
ACORO_API int acoro_lua_post_msgpack(acoro_engine_t *e, const char *name,
                                     uint64_t id, const char *buf, size_t len);
ACORO_API uint64_t acoro_lua_posts_lost(lua_State *L);

/* HOST FUNCTIONS THAT WAIT. acoro_lua_push_hostfn pushes a Lua function
 * (0, or ACORO_ENOENT when acoro's Lua modules cannot be found) that a
 * script calls from an acoro coroutine: it calls start(L, call, data) with
 * the script's arguments at stack 1..n (start must not call into acoro or
 * yield), then suspends only the calling coroutine until the call is
 * completed, and returns the values given (or nil, message, code after
 * acoro_lua_call_fail; nil, "timeout", "ETIMEDOUT" after `timeout`
 * seconds, < 0 for none). start hands `call` to whoever completes it: its
 * own code at once, or another thread. Until then that side owns it:
 * acoro_lua_call_nil/boolean/number/string/msgpack add a result value
 * (copies), acoro_lua_call_complete or acoro_lua_call_fail(message, code:
 * NULL for "EHOST") hand it over, after which `call` must not be touched
 * (ANY THREAD, one thread at a time). A start that raises a Lua error
 * (luaL_argerror) must not have handed `call` over: acoro takes it back
 * and the error goes on to the script. A timeout, a co:throw or a
 * co:terminate cancels the wait: acoro_lua_call_cancelled then says 1 (the
 * host may stop its work early) and the values given later are freed
 * unread; the completer must still complete or fail the call once.
 * A call not yet completed keeps the engine's loop alive. Every call must
 * be completed before the Lua state is closed. */
typedef struct acoro_lua_call_s acoro_lua_call_t;
typedef void (*acoro_lua_start_fn)(lua_State *L, acoro_lua_call_t *call,
                                   void *data);
ACORO_API int acoro_lua_push_hostfn(lua_State *L, const char *name,
                                    acoro_lua_start_fn start, void *data,
                                    double timeout);
ACORO_API int acoro_lua_call_nil(acoro_lua_call_t *c);
ACORO_API int acoro_lua_call_boolean(acoro_lua_call_t *c, int b);
ACORO_API int acoro_lua_call_number(acoro_lua_call_t *c, double n);
ACORO_API int acoro_lua_call_string(acoro_lua_call_t *c, const char *s,
                                    size_t len);
ACORO_API int acoro_lua_call_msgpack(acoro_lua_call_t *c, const char *buf,
                                     size_t len);
ACORO_API int acoro_lua_call_complete(acoro_lua_call_t *c);
ACORO_API int acoro_lua_call_fail(acoro_lua_call_t *c, const char *message,
                                  const char *code);
ACORO_API int acoro_lua_call_cancelled(const acoro_lua_call_t *c);

#ifdef __cplusplus
}
#endif
#endif /* ACORO_LUA_H */

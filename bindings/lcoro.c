/* lcoro.c: the `acoro.core` Lua module: the engine host that maps each
 * engine coroutine onto a Lua thread, coroutine handles (userdata), spawn,
 * run and the few calls that must touch Lua state. The rest of the API is
 * Lua (lua/acoro/init.lua), calling the engine through the FFI. */
#include "lbind.h"

#include <dlfcn.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORO_MT "acoro.coro"
#define BINDING_KEY "acoro.binding"
#define LOG_QUEUE 64

/* One per Lua universe, a userdata in the registry (its __gc frees the
 * engine). Per coroutine the binding keeps a slot: threads[slot] anchors
 * the Lua thread, objs[slot] the handle userdata; free slots are a stack. */
typedef struct binding_s {
  acoro_engine_t *engine;
  lua_State *L; /* the state that called run(): used by host_resume */
  int threads_ref, objs_ref, finished_ref, vals_ref;
  int *free_slots;
  int nfree, capfree, next_slot;
  /* The embedder's log hook (acoro_lua_set_log), NULL for stderr, and the
   * threshold acoro.log sets: lines above it are dropped. */
  acoro_lua_log_fn log_fn;
  void *log_data;
  int log_level;
  /* While a script's writer is set (core.log_redirect), the engine's lines
   * wait here for acoro.log's drain function (log_ref), which the binding
   * calls once the coroutine that logged yields; past LOG_QUEUE lines the
   * newest are counted in log_lost. OWNERSHIP: the msg strings. */
  int log_ref, nlogq;
  unsigned log_lost;
  struct {
    int level;
    char *msg;
  } logq[LOG_QUEUE];
  int closing;         /* the state is closing: posts find no Lua */
  uint64_t posts_lost; /* posted messages dropped on arrival */
  int resumed;         /* a coroutine ran (by acoro.run or a host's steps) */
} binding_t;

static binding_t *get_binding(lua_State *L) {
  binding_t *b;
  lua_getfield(L, LUA_REGISTRYINDEX, BINDING_KEY);
  b = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return b;
}

static int slot_alloc(binding_t *b) {
  if (b->nfree > 0)
    return b->free_slots[--b->nfree];
  return ++b->next_slot;
}

static int slot_free(binding_t *b, int slot) {
  if (b->nfree == b->capfree) {
    int cap = b->capfree ? b->capfree * 2 : 256;
    int *p = realloc(b->free_slots, (size_t)cap * sizeof *p);
    if (p == NULL)
      return ACORO_ENOMEM; /* the slot number is lost, nothing else */
    b->free_slots = p;
    b->capfree = cap;
  }
  b->free_slots[b->nfree++] = slot;
  return 0;
}

/* Forgets co's Lua thread and handle anchor (the coroutine ended). */
static void unanchor(binding_t *b, lua_State *L, acoro_co_t *co) {
  int slot = acoro_co_host_ref(co);
  if (slot <= 0)
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->threads_ref);
  lua_pushnil(L);
  lua_rawseti(L, -2, slot);
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->objs_ref);
  lua_pushnil(L);
  lua_rawseti(L, -2, slot);
  lua_pop(L, 2);
  acoro_co_set_host(co, -1, NULL);
  slot_free(b, slot);
}

/* The engine's log lines (and, through l_log, acoro.log's default writer):
 * to the embedder's hook when it set one, else to stderr. The engine may
 * log from inside an FFI call, so this never calls into Lua. */
static void host_log(void *data, int level, const char *msg) {
  binding_t *b = data;
  if (level > b->log_level)
    return;
  if (b->log_ref != LUA_NOREF) {
    char *copy = b->nlogq < LOG_QUEUE ? strdup(msg) : NULL;
    if (copy == NULL) {
      b->log_lost++;
      return;
    }
    b->logq[b->nlogq].level = level;
    b->logq[b->nlogq++].msg = copy;
    return;
  }
  if (b->log_fn != NULL)
    b->log_fn(b->log_data, level, msg);
  else
    fprintf(stderr, "acoro: %s%s\n", level == 0 ? "error: " : "", msg);
}

/* core.log(level, msg) -> true when the embedder's hook took the line,
 * false when there is none (acoro.log then writes to stderr itself). */
static int l_log(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  int level = (int)luaL_checkinteger(L, 1);
  const char *msg = luaL_checkstring(L, 2);
  if (b->log_fn == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  b->log_fn(b->log_data, level, msg);
  lua_pushboolean(L, 1);
  return 1;
}

/* Hands the queued engine lines to acoro.log's drain function (on L, the
 * state running the engine, between two coroutine runs: never inside an
 * FFI call). */
static void log_flush(binding_t *b, lua_State *L) {
  if (b->log_ref == LUA_NOREF || (b->nlogq == 0 && b->log_lost == 0))
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->log_ref);
  if (lua_pcall(L, 0, 0, 0) != 0)
    lua_pop(L, 1);
}

/* core.log_take() -> level, msg | nil: the oldest queued engine line (a
 * count of lost ones comes as one line, after the rest). */
static int l_log_take(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  if (b->nlogq > 0) {
    lua_pushinteger(L, b->logq[0].level);
    lua_pushstring(L, b->logq[0].msg);
    free(b->logq[0].msg);
    memmove(&b->logq[0], &b->logq[1], (size_t)--b->nlogq * sizeof b->logq[0]);
    return 2;
  }
  if (b->log_lost > 0) {
    lua_pushinteger(L, 1);
    lua_pushfstring(L, "%d engine log lines lost (more than %d waited)",
                    (int)b->log_lost, LOG_QUEUE);
    b->log_lost = 0;
    return 2;
  }
  return 0;
}

/* core.log_redirect(drain | nil): with a function, the engine's lines are
 * queued for it (a script's writer is set); nil writes them again (hook or
 * stderr), the queue being drained first by the caller. */
static int l_log_redirect(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  luaL_unref(L, LUA_REGISTRYINDEX, b->log_ref);
  b->log_ref = LUA_NOREF;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    b->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

/* core.log_level(n): the threshold of the engine's own lines. */
static int l_log_level(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  b->log_level = (int)luaL_checkinteger(L, 1);
  return 0;
}

/* Hands the end of co's thread T to the Lua side: finished(handle, true,
 * results...) or finished(handle, false, err, traceback). T's frames are
 * still there after an error, so the traceback shows where it was raised. */
static void call_finished(binding_t *b, lua_State *L, acoro_co_t *co,
                          lua_State *T, int status) {
  int top = lua_gettop(L), n;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->finished_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->objs_ref);
  lua_rawgeti(L, -1, acoro_co_host_ref(co));
  lua_remove(L, -2);
  n = status == 0 ? lua_gettop(T) : 0;
  if (status == 0 && lua_checkstack(L, n + LUA_MINSTACK)) {
    lua_pushboolean(L, 1);
    lua_xmove(T, L, n);
    n += 2;
  } else {
    /* The error value goes as it is; the traceback's message is a copy
     * (lua_tostring would turn a number into a string in place). */
    const char *msg = NULL;
    int copy = 0;
    lua_pushboolean(L, 0);
    if (status == 0) {
      lua_pushfstring(L, "coroutine returned too many values (%d)", n);
      msg = lua_tostring(L, -1);
    } else {
      lua_xmove(T, L, 1);
      if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        lua_pushvalue(L, -1);
        msg = lua_tostring(L, -1);
        copy = 1;
      }
    }
    luaL_traceback(L, T, msg ? msg : "(error object is not a string)", 0);
    if (copy)
      lua_remove(L, -2);
    n = 4;
  }
  if (lua_pcall(L, n, 0, 0) != 0) {
    fprintf(stderr, "acoro: internal error ending coroutine %llu: %s\n",
            (unsigned long long)acoro_co_id(co), lua_tostring(L, -1));
    if (acoro_co_state(co) != ACORO_STATE_DEAD)
      acoro_co_exit(co, 0);
  }
  lua_settop(L, top);
}

/* ENGINE THREAD ONLY, called by acoro_engine_run. Resumes co's thread with
 * the wake reason (or, on its first run, with fn's arguments already on its
 * stack). The thread comes back here when it waits, yields or ends.
 * MEMORY: the thread's function is the user's function itself, with no
 * Lua frame of acoro's below it, so a waiting coroutine fits LuaJIT's
 * initial stack; errors are caught by lua_resume, not by an xpcall. */
static void host_resume(void *data, acoro_co_t *co) {
  binding_t *b = data;
  lua_State *T = acoro_co_host_ptr(co);
  int nargs, status;
  b->resumed = 1;
  if (T == NULL) { /* no thread: ended while queued */
    acoro_co_exit(co, 0);
    return;
  }
  if (lua_status(T) == LUA_YIELD) {
    lua_pushinteger(T, acoro_co_wake_reason(co));
    nargs = 1;
  } else {
    nargs = lua_gettop(T) - 1;
  }
  status = lua_resume(T, nargs);
  if (b->nlogq > 0)
    log_flush(b, b->L);
  if (status == LUA_YIELD) {
    lua_settop(T, 0);
    if (acoro_co_state(co) == ACORO_STATE_DEAD) /* it terminated itself */
      unanchor(b, b->L, co);
    return;
  }
  /* The common ending, a return of nothing by a coroutine nobody watches
   * and nothing is pending for, needs no Lua: the Lua side would only end
   * the record. */
  if (status == 0 && lua_gettop(T) == 0 && acoro_co_monitor_count(co) == 0 &&
      acoro_mb_count(co) == 0 && acoro_co_flags(co) == 0)
    acoro_co_exit(co, 0);
  else
    call_finished(b, b->L, co, T, status);
  /* A hot swap gives the coroutine a new thread: keep that one. */
  if (acoro_co_host_ptr(co) == T)
    unanchor(b, b->L, co);
}

static acoro_co_t *check_coro(lua_State *L, int idx) {
  acoro_co_t **box = luaL_checkudata(L, idx, CORO_MT);
  if (*box == NULL)
    luaL_argerror(L, idx, "coroutine handle is released");
  return *box;
}

/* Gives co a new Lua thread that runs the function at stack position
 * `first` of L with the values above it as arguments, and anchors the thread
 * (in co's slot, reused if it has one) and the handle. */
static void start_thread(binding_t *b, lua_State *L, acoro_co_t *co,
                         int handle_idx, int first) {
  int top = lua_gettop(L), slot = acoro_co_host_ref(co);
  lua_State *T = lua_newthread(L);
  if (slot <= 0)
    slot = slot_alloc(b);
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->threads_ref);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, slot);
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->objs_ref);
  lua_pushvalue(L, handle_idx);
  lua_rawseti(L, -2, slot);
  lua_pop(L, 1);
  lua_pop(L, 1); /* the thread, anchored now */
  if (top - first + 1 > 16)
    luaL_checkstack(T, top - first + 1, "too many arguments");
  lua_xmove(L, T, top - first + 1);
  acoro_co_set_host(co, slot, T);
}

/* core.spawn(fn, ...) -> handle. The coroutine runs once the engine gets
 * to it; the caller goes on. */
static int l_spawn(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  acoro_co_t *co, **box;
  int rc;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (b->finished_ref == LUA_NOREF)
    return luaL_error(L, "acoro.core: init() was not called");
  box = lua_newuserdata(L, sizeof *box);
  *box = NULL;
  luaL_getmetatable(L, CORO_MT);
  lua_setmetatable(L, -2);
  rc = acoro_co_new(b->engine, 0, &co);
  if (rc != 0)
    return luaL_error(L, "acoro.spawn: %s", acoro_strerror(rc));
  *box = co; /* OWNERSHIP: the creator's reference, released by __gc */
  lua_insert(L, 1);
  start_thread(b, L, co, 1, 2);
  lua_settop(L, 1);
  return 1;
}

/* core.restart(handle, fn, ...): runs fn in a dead coroutine again (same id,
 * name and mailbox): asyncoro's restart of a failed coroutine. */
static int l_restart(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  acoro_co_t *co = check_coro(L, 1);
  int rc;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  rc = acoro_co_restart(co);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, acoro_strerror(rc));
    return 2;
  }
  start_thread(b, L, co, 1, 2);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.rethread(handle, fn, ...): the running coroutine, whose function just
 * ended, starts fn in a new thread (a hot swap); it runs once its turn comes.
 */
static int l_rethread(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  acoro_co_t *co = check_coro(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (acoro_co_state(co) == ACORO_STATE_DEAD)
    return luaL_error(L, "acoro.core.rethread: coroutine has ended");
  start_thread(b, L, co, 1, 2);
  acoro_co_yield(co);
  return 0;
}

/* core.reset(handle, fn, ...) -> bool: a coroutine that has not started yet
 * will run fn(...) instead; false if it has started (or ended). */
static int l_reset(lua_State *L) {
  acoro_co_t *co = check_coro(L, 1);
  lua_State *T;
  int n;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  T = acoro_co_host_ptr(co);
  /* Not started: a thread that has not run holds its function (and
   * arguments) and has not yielded; a hot swap's new thread is one too. */
  if (T == NULL || lua_status(T) != 0 || lua_gettop(T) == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  n = lua_gettop(L) - 1;
  lua_settop(T, 0);
  luaL_checkstack(T, n + LUA_MINSTACK, "too many arguments");
  lua_xmove(L, T, n);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.release(handle): drops the thread of a coroutine that was ended
 * from outside (terminate); its handle stays usable. */
static int l_release(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  acoro_co_t *co = check_coro(L, 1);
  if (acoro_co_state(co) == ACORO_STATE_DEAD)
    unanchor(b, L, co);
  return 0;
}

/* core.run() -> 0 | negative code. Runs the engine; the calling state is
 * used for the binding's own table updates meanwhile. */
static int l_run(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  lua_State *saved = b->L;
  int rc;
  b->L = L;
  rc = acoro_engine_run(b->engine);
  b->L = saved;
  lua_pushinteger(L, rc);
  return 1;
}

/* core.run_once(mode) -> acoro_engine_run_once's value: a Lua host's
 * frame loop steps the engine itself. */
static int l_run_once(lua_State *L) {
  int mode = (int)luaL_optinteger(L, 1, ACORO_RUN_NOWAIT);
  lua_pushinteger(L, acoro_lua_run_once(L, mode));
  return 1;
}

/* core.resumed() -> true once the engine ran a coroutine, whoever drove
 * it (acoro.run, a host's run-once steps or its own libuv loop): init.lua's
 * never-ran warning is for a script whose coroutines never ran. */
static int l_resumed(lua_State *L) {
  binding_t *b = get_binding(L);
  lua_pushboolean(L, b != NULL && b->resumed);
  return 1;
}

/* core.init(finished, threads, objs, vals): the Lua side hands over the
 * function that ends a coroutine, its anchor tables and its message values. */
static int l_init(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_unref(L, LUA_REGISTRYINDEX, b->vals_ref);
  lua_pushvalue(L, 4);
  b->vals_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_unref(L, LUA_REGISTRYINDEX, b->finished_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, b->threads_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, b->objs_ref);
  lua_pushvalue(L, 1);
  b->finished_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 2);
  b->threads_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 3);
  b->objs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int l_engine(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushlightuserdata(L, b->engine);
  return 1;
}

/* handle.__gc: the handle's reference to the record goes. */
/* handle.__gc: the handle's reference to the record goes. A dead record's
 * kept messages (a failed, monitored coroutine) can no longer be restarted
 * by anyone once its handle is gone: their Lua values go too. */
static int coro_gc(lua_State *L) {
  binding_t *b = lua_touserdata(L, lua_upvalueindex(1));
  acoro_co_t **box = lua_touserdata(L, 1);
  if (box == NULL || *box == NULL)
    return 0;
  if (acoro_co_state(*box) == ACORO_STATE_DEAD && acoro_mb_count(*box) > 0 &&
      b->vals_ref != LUA_NOREF) {
    uint32_t k;
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->vals_ref);
    for (k = acoro_mb_first(*box); k != 0; k = acoro_mb_next(*box, k)) {
      lua_pushnil(L);
      lua_rawseti(L, -2, (int)k);
    }
    lua_pop(L, 1);
    acoro_mb_clear(*box);
  }
  acoro_co_release(*box);
  *box = NULL;
  return 0;
}

static int binding_gc(lua_State *L) {
  binding_t *b = lua_touserdata(L, 1);
  b->closing = 1;
  if (b->engine != NULL) {
    lnet_close(L); /* the net must stop before its engine goes */
    acoro_engine_free(b->engine);
    b->engine = NULL;
  }
  free(b->free_slots);
  b->free_slots = NULL;
  while (b->nlogq > 0)
    free(b->logq[--b->nlogq].msg);
  return 0;
}

/* The path of the shared object holding this code, for ffi.load: a Lua C
 * module is opened RTLD_LOCAL, so ffi.C cannot see its symbols. */
static int l_path(lua_State *L) {
  Dl_info info;
  if (dladdr((void *)luaopen_acoro_core, &info) && info.dli_fname)
    lua_pushstring(L, info.dli_fname);
  else
    lua_pushnil(L);
  return 1;
}

static const luaL_Reg core_funcs[] = {{"spawn", l_spawn},
                                      {"restart", l_restart},
                                      {"release", l_release},
                                      {"rethread", l_rethread},
                                      {"reset", l_reset},
                                      {"run", l_run},
                                      {"run_once", l_run_once},
                                      {"resumed", l_resumed},
                                      {"init", l_init},
                                      {"engine", l_engine},
                                      {"path", l_path},
                                      {"log", l_log},
                                      {"log_level", l_log_level},
                                      {"log_take", l_log_take},
                                      {"log_redirect", l_log_redirect},
                                      {NULL, NULL}};

static binding_t *binding_new(lua_State *L) {
  static const acoro_host_t host = {host_resume, NULL, host_log};
  binding_t *b = lua_newuserdata(L, sizeof *b);
  int rc;
  memset(b, 0, sizeof *b);
  b->threads_ref = b->objs_ref = b->finished_ref = b->vals_ref = LUA_NOREF;
  b->log_level = 2; /* info, as acoro.log's default */
  b->log_ref = LUA_NOREF;
  b->L = L;
  lua_newtable(L);
  lua_pushcfunction(L, binding_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  rc = acoro_engine_new(&host, b, &b->engine);
  if (rc != 0)
    luaL_error(L, "acoro: cannot start the engine: %s", acoro_strerror(rc));
  lua_setfield(L, LUA_REGISTRYINDEX, BINDING_KEY);
  return b;
}

int luaopen_acoro_core(lua_State *L) {
  binding_t *b = get_binding(L);
  const luaL_Reg *f;
  if (b == NULL)
    b = binding_new(L);
  if (luaL_newmetatable(L, CORO_MT)) {
    lua_pushlightuserdata(L, b);
    lua_pushcclosure(L, coro_gc, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_newtable(L);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "coro_mt");
  for (f = core_funcs; f->name != NULL; f++) {
    lua_pushlightuserdata(L, b);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  lua_pushstring(L, ACORO_VERSION_STRING);
  lua_setfield(L, -2, "version");
  lio_open(L, b->engine);
  lua_setfield(L, -2, "io");
  lproc_open(L, b->engine);
  lua_setfield(L, -2, "process");
  ludp_open(L, b->engine);
  lua_setfield(L, -2, "udp");
  lfs_open(L, b->engine);
  lua_setfield(L, -2, "fs");
  lpool_open(L, b->engine);
  lua_setfield(L, -2, "pool");
  lwire_open(L);
  lua_setfield(L, -2, "wire");
  lnet_open(L, b->engine);
  lua_setfield(L, -2, "net");
  lhost_open(L, b->engine);
  lhttp_open(L, b->engine);
  lua_setfield(L, -2, "http");
  return 1;
}

int acoro_lua_openlib(lua_State *L, const char *lua_dir) {
  int top = lua_gettop(L);
  lua_getglobal(L, "package");
  if (!lua_istable(L, -1)) {
    lua_settop(L, top);
    return ACORO_EINVAL;
  }
  if (lua_dir != NULL) {
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
  }
  lua_getfield(L, -1, "loaded");
  lua_pushcfunction(L, luaopen_acoro_core);
  if (lua_pcall(L, 0, 1, 0) != 0) {
    lua_settop(L, top);
    return ACORO_ENOMEM;
  }
  lua_setfield(L, -2, "acoro.core");
  lua_settop(L, top);
  return 0;
}

int acoro_lua_set_log(lua_State *L, acoro_lua_log_fn fn, void *data) {
  binding_t *b = get_binding(L);
  if (b == NULL)
    return ACORO_EINVAL;
  b->log_fn = fn;
  b->log_data = data;
  return 0;
}

acoro_engine_t *acoro_lua_engine(lua_State *L) {
  binding_t *b = get_binding(L);
  return b ? b->engine : NULL;
}

/* ENGINE THREAD: a step of the engine from the host (as l_run, one step). */
int acoro_lua_run_once(lua_State *L, int mode) {
  binding_t *b = get_binding(L);
  lua_State *saved;
  int rc;
  if (b == NULL || b->engine == NULL)
    return ACORO_EINVAL;
  saved = b->L;
  b->L = L;
  rc = acoro_engine_run_once(b->engine, mode);
  b->L = saved;
  return rc;
}

uint64_t acoro_lua_posts_lost(lua_State *L) {
  binding_t *b = get_binding(L);
  return b != NULL ? b->posts_lost : 0;
}

lua_State *lcoro_state(acoro_engine_t *e, int *vals_ref) {
  binding_t *b = acoro_engine_host_data(e);
  if (b == NULL || b->closing || b->vals_ref == LUA_NOREF)
    return NULL;
  *vals_ref = b->vals_ref;
  return b->L;
}

/* The first loss is logged (a warning), the others only counted. */
void lcoro_post_lost(acoro_engine_t *e, const char *why) {
  binding_t *b = acoro_engine_host_data(e);
  if (b->posts_lost++ == 0) {
    char line[200];
    snprintf(line, sizeof line,
             "a message posted by the host was dropped (%s); later drops "
             "are only counted",
             why);
    host_log(b, 1, line);
  }
}

/* thread_events.c: a host worker thread posts 100,000 events to a Lua
 * coroutine, which receives every one of them, in order.
 *
 * The script registers a coroutine under the name "events" and calls the
 * host's start_worker(); the worker thread posts numbers 1..N to that
 * name (acoro_lua_post_number), then a MessagePack map {done = N}
 * (acoro_lua_post_msgpack, packed with msgpack-c), and ends. A hold keeps
 * acoro.run from calling the waiting coroutine deadlocked while the worker
 * may still post; the worker's last post releases it on the engine thread.
 *
 *   build/examples/embed/thread_events [N]
 */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static const char script[] =
    "local acoro = require 'acoro'\n"
    "local n = ...\n"
    "acoro.run(function()\n"
    "  local co = acoro.spawn(function()\n"
    "    local expect = 1\n"
    "    while true do\n"
    "      local m = acoro.receive()\n"
    "      if type(m) == 'table' then\n"
    "        assert(m.done == n and expect == n + 1, 'events lost')\n"
    "        return\n"
    "      end\n"
    "      assert(m == expect, ('event %d, expected %d'):format(m, expect))\n"
    "      expect = expect + 1\n"
    "    end\n"
    "  end)\n"
    "  co:register('events')\n"
    "  start_worker()\n"
    "  co:join()\n"
    "  print(('received %d events in order'):format(n))\n"
    "end)\n";

typedef struct {
  acoro_engine_t *engine;
  int n;
  uv_thread_t thread;
  int started;
} worker_t;

static worker_t worker;

/* ENGINE THREAD, posted last: nothing more will come. */
static void release_hold(acoro_engine_t *e, void *data) {
  (void)data;
  acoro_engine_hold(e, -1);
}

/* The worker thread: it touches no Lua, only the post calls. */
static void worker_main(void *arg) {
  worker_t *w = arg;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  int i;
  for (i = 1; i <= w->n; i++) {
    if (acoro_lua_post_number(w->engine, "events", 0, i) != 0) {
      fprintf(stderr, "thread_events: post failed\n");
      break;
    }
  }
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str(&pk, 4);
  msgpack_pack_str_body(&pk, "done", 4);
  msgpack_pack_int(&pk, w->n);
  acoro_lua_post_msgpack(w->engine, "events", 0, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  acoro_engine_post(w->engine, release_hold, NULL);
}

/* start_worker(): called by the script, on the engine thread. */
static int start_worker(lua_State *L) {
  if (worker.started)
    return luaL_error(L, "start_worker: already started");
  acoro_engine_hold(worker.engine, 1);
  if (uv_thread_create(&worker.thread, worker_main, &worker) != 0) {
    acoro_engine_hold(worker.engine, -1);
    return luaL_error(L, "start_worker: cannot start a thread");
  }
  worker.started = 1;
  return 0;
}

int main(int argc, char **argv) {
  const char *dir = getenv("ACORO_LUA_DIR");
  lua_State *L = luaL_newstate();
  int status = 0;
  worker.n = argc > 1 ? atoi(argv[1]) : 100000;
  if (L == NULL || worker.n < 1)
    return 2;
  luaL_openlibs(L);
  if (acoro_lua_openlib(L, dir != NULL ? dir : EXAMPLE_LUA_DIR) != 0) {
    fprintf(stderr, "thread_events: cannot open acoro\n");
    return 1;
  }
  worker.engine = acoro_lua_engine(L);
  lua_pushcfunction(L, start_worker);
  lua_setglobal(L, "start_worker");
  if (luaL_loadstring(L, script) != 0 ||
      (lua_pushinteger(L, worker.n), lua_pcall(L, 1, 0, 0)) != 0) {
    fprintf(stderr, "thread_events: %s\n", lua_tostring(L, -1));
    status = 1;
  }
  /* The worker is joined before the engine goes with the state. */
  if (worker.started)
    uv_thread_join(&worker.thread);
  lua_close(L);
  return status;
}

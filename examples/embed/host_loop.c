/* host_loop.c: a host that owns its libuv loop, with a timer of its own,
 * and runs acoro scripts inside that loop (acoro_engine_attach).
 *
 * The host never calls into acoro to run it: its uv_run serves the
 * engine's timers and I/O along with its own handles. The host's timer
 * ticks every 10 ms and sends each tick to the script's "ticks" coroutine
 * (a post made on the engine thread itself); a "worker" coroutine sleeps
 * and logs in between; a daemon heartbeat runs for ever. The host's timer
 * stops once no script but the daemon is left, and uv_run then returns:
 * a daemon alone does not keep the host's loop alive.
 *
 *   build/examples/embed/host_loop
 */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static const char script[] = "local acoro = require 'acoro'\n"
                             "local ticks = acoro.spawn(function()\n"
                             "  local seen = 0\n"
                             "  while seen < 5 do\n"
                             "    local n = acoro.receive()\n"
                             "    seen = seen + 1\n"
                             "    print('script: host tick ' .. n)\n"
                             "  end\n"
                             "end)\n"
                             "ticks:register('ticks')\n"
                             "acoro.spawn(function()\n"
                             "  for i = 1, 3 do\n"
                             "    acoro.sleep(0.015)\n"
                             "    print('script: worker step ' .. i)\n"
                             "  end\n"
                             "end)\n"
                             "local beat = acoro.spawn(function()\n"
                             "  while true do acoro.sleep(0.005) end\n"
                             "end)\n"
                             "beat:set_daemon(true)\n";

typedef struct {
  uv_timer_t timer;
  acoro_engine_t *engine;
  int ticks;
} host_t;

static void on_tick(uv_timer_t *t) {
  host_t *h = t->data;
  h->ticks++;
  /* The scripts are done (the daemon does not count): stop ticking. */
  if (acoro_engine_alive(h->engine, 1) == 0) {
    uv_timer_stop(t);
    return;
  }
  if (h->ticks <= 5) /* the script's "ticks" coroutine waits for five */
    acoro_lua_post_number(h->engine, "ticks", 0, h->ticks);
}

static void on_stop(void *data, int code) {
  (void)data;
  fprintf(stderr, "host_loop: acoro stopped: %s\n", acoro_strerror(code));
}

int main(void) {
  const char *dir = getenv("ACORO_LUA_DIR");
  uv_loop_t loop;
  host_t host = {0};
  lua_State *L = luaL_newstate();
  if (L == NULL || uv_loop_init(&loop) != 0)
    return 2;
  luaL_openlibs(L);
  if (acoro_lua_openlib(L, dir != NULL ? dir : EXAMPLE_LUA_DIR) != 0) {
    fprintf(stderr, "host_loop: cannot open acoro\n");
    return 1;
  }
  host.engine = acoro_lua_engine(L);
  if (luaL_dostring(L, script) != 0) {
    fprintf(stderr, "host_loop: %s\n", lua_tostring(L, -1));
    return 1;
  }
  /* The host's own handle, and acoro, on the host's loop. */
  uv_timer_init(&loop, &host.timer);
  host.timer.data = &host;
  uv_timer_start(&host.timer, on_tick, 10, 10);
  if (acoro_engine_attach(host.engine, &loop, on_stop, NULL) != 0) {
    fprintf(stderr, "host_loop: cannot attach acoro\n");
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("host: uv_run returned after %d ticks, daemon alive: %s\n", host.ticks,
         acoro_engine_alive(host.engine, 0) > 0 ? "yes" : "no");
  /* Closing the state frees the engine, which detaches from the loop;
   * the loop runs once more for the handles to close. */
  lua_close(L);
  uv_close((uv_handle_t *)&host.timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}

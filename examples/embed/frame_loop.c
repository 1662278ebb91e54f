/* frame_loop.c: a game-style frame loop, 60 frames a second, that steps
 * acoro once per frame with acoro_lua_run_once(L, ACORO_RUN_NOWAIT).
 *
 * The scripts sleep and send messages between frames: a "player"
 * coroutine moves every 50 ms and tells the "hud" coroutine, which prints
 * the frame it heard it in. A step never blocks: it takes what is due
 * (timers, messages, I/O), runs the coroutines that are ready, and
 * returns; the frame then sleeps until the next one. The loop ends when
 * the scripts have (run_once returns 0).
 *
 *   build/examples/embed/frame_loop
 */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#define FPS 60
#define MAX_FRAMES (FPS * 10) /* a safety net: the scripts take ~0.4 s */

static const char script[] =
    "local acoro = require 'acoro'\n"
    "local hud = acoro.spawn(function()\n"
    "  while true do\n"
    "    local m = acoro.receive()\n"
    "    if m == 'bye' then return end\n"
    "    print(('frame %d: player at step %d'):format(frame(), m))\n"
    "  end\n"
    "end)\n"
    "hud:register('hud')\n"
    "acoro.spawn(function()\n"
    "  for step = 1, 6 do\n"
    "    acoro.sleep(0.05)\n"
    "    acoro.locate('hud'):send(step)\n"
    "  end\n"
    "  acoro.locate('hud'):send('bye')\n"
    "end)\n";

static int frame_no;

/* frame(): the host's frame counter, for the scripts. */
static int l_frame(lua_State *L) {
  lua_pushinteger(L, frame_no);
  return 1;
}

static void sleep_until(uint64_t deadline_ns) {
  uint64_t now = uv_hrtime();
  if (now < deadline_ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
    ts.tv_nsec = (long)((deadline_ns - now) % 1000000000u);
    nanosleep(&ts, NULL);
  }
}

int main(void) {
  const char *dir = getenv("ACORO_LUA_DIR");
  lua_State *L = luaL_newstate();
  uint64_t next;
  int rc = 1;
  if (L == NULL)
    return 2;
  luaL_openlibs(L);
  if (acoro_lua_openlib(L, dir != NULL ? dir : EXAMPLE_LUA_DIR) != 0) {
    fprintf(stderr, "frame_loop: cannot open acoro\n");
    return 1;
  }
  lua_pushcfunction(L, l_frame);
  lua_setglobal(L, "frame");
  if (luaL_dostring(L, script) != 0) {
    fprintf(stderr, "frame_loop: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  next = uv_hrtime();
  for (frame_no = 1; frame_no <= MAX_FRAMES; frame_no++) {
    /* ... the host's input, physics and drawing go here ... */
    rc = acoro_lua_run_once(L, ACORO_RUN_NOWAIT);
    if (rc <= 0)
      break;
    fflush(stdout);
    next += 1000000000u / FPS;
    sleep_until(next);
  }
  if (rc == 0)
    printf("scripts done after %d frames\n", frame_no);
  else
    fprintf(stderr, "frame_loop: %s\n",
            rc > 0 ? "out of frames" : acoro_strerror(rc));
  lua_close(L);
  return rc == 0 ? 0 : 1;
}

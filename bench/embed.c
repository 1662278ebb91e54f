/* embed.c: the embedding figures (bench/run embed; docs/embedding.md).
 *   latency  a host thread posts a number to a Lua coroutine waiting in
 *            acoro.receive; the time from the post to the coroutine having
 *            it (same clock: uv_hrtime), one message in flight, each posted
 *            0.1 ms after the last arrived so that the engine thread sleeps
 *            in its poll (the uv_async wake-up is in the figure); median
 *            and 99th percentile of 10,000; then again with no pause (the
 *            engine thread is still busy: no wake-up)
 *   posts    2 host threads post 1,000,000 numbers each to one coroutine;
 *            posts/s from the first post to the last message received
 *   step     acoro_lua_run_once(L, ACORO_RUN_NOWAIT) with nothing to do
 *            (a daemon sleeps for a minute): ns per call over 1,000,000
 * Prints one line per figure. */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#define LAT_N 10000
#define POST_THREADS 2
#define POST_N 1000000
#define STEP_N 1000000

static const char script[] =
    "local acoro = require 'acoro'\n"
    "local core = require 'acoro.core'\n"
    "local mode = ...\n"
    "if mode == 'latency' then\n"
    "  local co = acoro.spawn(function()\n"
    "    for i = 1, LAT_N do\n"
    "      local t0 = acoro.receive()\n"
    "      record(t0)\n"
    "    end\n"
    "  end)\n"
    "  co:register('sink')\n"
    "elseif mode == 'posts' then\n"
    "  local co = acoro.spawn(function()\n"
    "    for i = 1, POST_TOTAL do acoro.receive() end\n"
    "    record(0)\n"
    "  end)\n"
    "  co:register('sink')\n"
    "else\n"
    "  acoro.spawn(function() acoro.sleep(60) end):set_daemon(true)\n"
    "end\n";

static acoro_engine_t *engine;
static uint64_t samples[LAT_N];
static int nsamples;
static uv_sem_t ack; /* latency: the coroutine has the message */
static uint64_t done_ns;

/* record(t0): the coroutine has the message (t0: its post time, in ns). */
static int l_record(lua_State *L) {
  uint64_t now = uv_hrtime();
  uint64_t t0 = (uint64_t)lua_tonumber(L, 1);
  if (t0 != 0 && nsamples < LAT_N)
    samples[nsamples++] = now - t0;
  done_ns = now;
  uv_sem_post(&ack);
  return 0;
}

static long pause_ns; /* before each post: 0 (busy engine) or 0.1 ms */

static void latency_thread(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < LAT_N; i++) {
    struct timespec pause = {0, pause_ns};
    if (pause_ns > 0)
      nanosleep(&pause, NULL);
    acoro_lua_post_number(engine, "sink", 0, (double)uv_hrtime());
    uv_sem_wait(&ack); /* one in flight */
  }
}

static void posts_thread(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < POST_N; i++)
    acoro_lua_post_number(engine, "sink", 0, 0);
}

static void release(acoro_engine_t *e, void *data) {
  (void)data;
  acoro_engine_hold(e, -1);
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static lua_State *open_state(const char *mode) {
  lua_State *L = luaL_newstate();
  const char *dir = getenv("ACORO_LUA_DIR");
  luaL_openlibs(L);
  if (acoro_lua_openlib(L, dir != NULL ? dir : EXAMPLE_LUA_DIR) != 0)
    exit(1);
  engine = acoro_lua_engine(L);
  lua_pushcfunction(L, l_record);
  lua_setglobal(L, "record");
  lua_pushinteger(L, LAT_N);
  lua_setglobal(L, "LAT_N");
  lua_pushinteger(L, POST_THREADS * POST_N);
  lua_setglobal(L, "POST_TOTAL");
  if (luaL_loadstring(L, script) != 0 ||
      (lua_pushstring(L, mode), lua_pcall(L, 1, 0, 0)) != 0) {
    fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
    exit(1);
  }
  return L;
}

static void run_threads(lua_State *L, void (*fn)(void *), int n) {
  uv_thread_t th[POST_THREADS];
  int i;
  acoro_engine_hold(engine, 1);
  for (i = 0; i < n; i++)
    uv_thread_create(&th[i], fn, NULL);
  /* the hold goes once the coroutine has everything: run until then */
  while (acoro_lua_run_once(L, ACORO_RUN_ONCE) == 1) {
    if (acoro_engine_alive(engine, 1) == 0)
      break;
  }
  for (i = 0; i < n; i++)
    uv_thread_join(&th[i]);
  acoro_engine_post(engine, release, NULL);
  acoro_lua_run_once(L, ACORO_RUN_NOWAIT);
}

int main(void) {
  lua_State *L;
  uint64_t t0;
  int i;

  uv_sem_init(&ack, 0);
  for (pause_ns = 100000; pause_ns >= 0; pause_ns -= 100000) {
    nsamples = 0;
    L = open_state("latency");
    run_threads(L, latency_thread, 1);
    qsort(samples, (size_t)nsamples, sizeof samples[0], cmp);
    printf("embed latency (%s): post to waiting coroutine median %.1f us, "
           "p99 %.1f us (%d messages)\n",
           pause_ns > 0 ? "engine asleep" : "engine busy",
           samples[nsamples / 2] / 1e3, samples[nsamples * 99 / 100] / 1e3,
           nsamples);
    lua_close(L);
  }

  L = open_state("posts");
  t0 = uv_hrtime();
  run_threads(L, posts_thread, POST_THREADS);
  printf("embed posts: %d threads x %d: %.2f M posts/s received\n",
         POST_THREADS, POST_N,
         POST_THREADS * (double)POST_N / ((done_ns - t0) / 1e9) / 1e6);
  lua_close(L);

  L = open_state("step");
  acoro_lua_run_once(L, ACORO_RUN_NOWAIT); /* the daemon starts sleeping */
  t0 = uv_hrtime();
  for (i = 0; i < STEP_N; i++)
    acoro_lua_run_once(L, ACORO_RUN_NOWAIT);
  printf("embed step: run_once(NOWAIT) with nothing to do: %.0f ns per call\n",
         (double)(uv_hrtime() - t0) / STEP_N);
  lua_close(L);
  return 0;
}

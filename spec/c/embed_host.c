/* embed_host.c: a minimal embedding host for spec/log_spec.lua and
 * spec/embed_spec.lua. It opens acoro in a Lua state as a C program would,
 * gives it a log hook (acoro_lua_set_log) that writes "LOG <level>
 * <message>" lines to stdout, gives the script a `host` table (below) and
 * runs the Lua file named on the command line. */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* host.wait(ms, ...) and host.wait_briefly(ms, ...) (a 0.05 s timeout):
 * host functions that a thread completes after ms (or as soon as the call
 * is cancelled) with the values given
 * (numbers and strings; the string "fail" fails the call instead, a table
 * {msgpack = n} gives a MessagePack array 1..n). host.post(target, n,
 * kind): a thread posts n messages (kind "number": 1..n, "string":
 * "m1".., "msgpack": {i = k}) to a coroutine by name (a string) or id,
 * then "done". host.join() joins every thread and gives how many
 * completions found their call cancelled; host.lost() the posts lost;
 * host.bad_msgpack() what posting a malformed buffer returns. */
#define MAX_THREADS 64
#define MAX_VALS 8
typedef struct {
  acoro_lua_call_t *call;
  int ms, n, msgpack_n, fail;
  struct {
    int is_str;
    double num;
    char str[64];
  } v[MAX_VALS];
} job_t;
typedef struct {
  acoro_engine_t *e;
  char name[64];
  uint64_t id;
  int n;
  char kind[16];
} poster_t;
static uv_thread_t threads[MAX_THREADS];
static int nthreads;
static atomic_int cancelled;

static void job_main(void *arg) {
  job_t *j = arg;
  int i;
  /* ms of work, cut short when the waiter gives up */
  for (i = 0; i < j->ms && !acoro_lua_call_cancelled(j->call); i++)
    uv_sleep(1);
  if (acoro_lua_call_cancelled(j->call))
    atomic_fetch_add(&cancelled, 1);
  if (j->fail) {
    acoro_lua_call_fail(j->call, "host says no", "ENOPE");
    free(j);
    return;
  }
  for (i = 0; i < j->n; i++) {
    if (j->v[i].is_str)
      acoro_lua_call_string(j->call, j->v[i].str, strlen(j->v[i].str));
    else
      acoro_lua_call_number(j->call, j->v[i].num);
  }
  if (j->msgpack_n > 0) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)j->msgpack_n);
    for (i = 1; i <= j->msgpack_n; i++)
      msgpack_pack_int(&pk, i);
    acoro_lua_call_msgpack(j->call, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
  }
  acoro_lua_call_complete(j->call);
  free(j);
}

static void job_start(lua_State *L, acoro_lua_call_t *call, void *data) {
  int i, top = lua_gettop(L), ms = (int)luaL_checkinteger(L, 1);
  job_t *j;
  (void)data;
  if (nthreads == MAX_THREADS || top - 1 > MAX_VALS)
    luaL_error(L, "host.wait: too many");
  j = calloc(1, sizeof *j);
  j->call = call;
  j->ms = ms;
  for (i = 2; i <= top; i++) {
    if (lua_type(L, i) == LUA_TTABLE) {
      lua_getfield(L, i, "msgpack");
      j->msgpack_n = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    } else if (lua_type(L, i) == LUA_TSTRING) {
      j->fail |= strcmp(lua_tostring(L, i), "fail") == 0;
      j->v[j->n].is_str = 1;
      snprintf(j->v[j->n++].str, 64, "%s", lua_tostring(L, i));
    } else {
      j->v[j->n++].num = luaL_checknumber(L, i);
    }
  }
  uv_thread_create(&threads[nthreads++], job_main, j);
}

static void release_hold(acoro_engine_t *e, void *data) {
  (void)data;
  acoro_engine_hold(e, -1);
}

static void poster_main(void *arg) {
  poster_t *p = arg;
  const char *name = p->name[0] ? p->name : NULL;
  int i;
  char buf[32];
  for (i = 1; i <= p->n; i++) {
    if (strcmp(p->kind, "string") == 0) {
      snprintf(buf, sizeof buf, "m%d", i);
      acoro_lua_post_string(p->e, name, p->id, buf, strlen(buf));
    } else if (strcmp(p->kind, "msgpack") == 0) {
      /* {i = k}: fixmap of 1, fixstr "i", an int */
      msgpack_sbuffer sb;
      msgpack_packer pk;
      msgpack_sbuffer_init(&sb);
      msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
      msgpack_pack_map(&pk, 1);
      msgpack_pack_str(&pk, 1);
      msgpack_pack_str_body(&pk, "i", 1);
      msgpack_pack_int(&pk, i);
      acoro_lua_post_msgpack(p->e, name, p->id, sb.data, sb.size);
      msgpack_sbuffer_destroy(&sb);
    } else {
      acoro_lua_post_number(p->e, name, p->id, i);
    }
  }
  acoro_lua_post_string(p->e, name, p->id, "done", 4);
  acoro_engine_post(p->e, release_hold, NULL);
  free(p);
}

static int l_post(lua_State *L) {
  poster_t *p = calloc(1, sizeof *p);
  p->e = acoro_lua_engine(L);
  if (lua_type(L, 1) == LUA_TSTRING)
    snprintf(p->name, sizeof p->name, "%s", lua_tostring(L, 1));
  else
    p->id = (uint64_t)luaL_checknumber(L, 1);
  p->n = (int)luaL_checkinteger(L, 2);
  snprintf(p->kind, sizeof p->kind, "%s", luaL_optstring(L, 3, "number"));
  if (nthreads == MAX_THREADS)
    return luaL_error(L, "host.post: too many");
  acoro_engine_hold(p->e, 1);
  uv_thread_create(&threads[nthreads++], poster_main, p);
  return 0;
}

static int l_join(lua_State *L) {
  while (nthreads > 0)
    uv_thread_join(&threads[--nthreads]);
  lua_pushinteger(L, atomic_load(&cancelled));
  return 1;
}

static int l_lost(lua_State *L) {
  lua_pushnumber(L, (double)acoro_lua_posts_lost(L));
  return 1;
}

static int l_bad_msgpack(lua_State *L) {
  static const char bad[] = {(char)0x92, 0x01}; /* an array of 2, 1 given */
  lua_pushinteger(
      L, acoro_lua_post_msgpack(acoro_lua_engine(L), "x", 0, bad, sizeof bad));
  return 1;
}

static int open_host(lua_State *L) {
  lua_newtable(L);
  if (acoro_lua_push_hostfn(L, "host.wait", job_start, NULL, -1) != 0)
    return 1;
  lua_setfield(L, -2, "wait");
  if (acoro_lua_push_hostfn(L, "host.wait_briefly", job_start, NULL, 0.05) != 0)
    return 1;
  lua_setfield(L, -2, "wait_briefly");
  lua_pushcfunction(L, l_post);
  lua_setfield(L, -2, "post");
  lua_pushcfunction(L, l_join);
  lua_setfield(L, -2, "join");
  lua_pushcfunction(L, l_lost);
  lua_setfield(L, -2, "lost");
  lua_pushcfunction(L, l_bad_msgpack);
  lua_setfield(L, -2, "bad_msgpack");
  lua_setglobal(L, "host");
  return 0;
}

static void hook(void *data, int level, const char *msg) {
  fprintf((FILE *)data, "LOG %d %s\n", level, msg);
  fflush((FILE *)data);
}

int main(int argc, char **argv) {
  char exe[4096], dir[4200];
  size_t len = sizeof exe;
  char *slash;
  lua_State *L;
  int status = 0;
  if (argc != 2 || uv_exepath(exe, &len) != 0 ||
      (slash = strrchr(exe, '/')) == NULL) {
    fprintf(stderr, "usage: embed_host script.lua\n");
    return 2;
  }
  *slash = '\0';
  snprintf(dir, sizeof dir, "%s/share/lua/5.1", exe);
  L = luaL_newstate();
  if (L == NULL)
    return 1;
  luaL_openlibs(L);
  if (acoro_lua_set_log(L, hook, stdout) != ACORO_EINVAL ||
      acoro_lua_openlib(L, dir) != 0 ||
      acoro_lua_set_log(L, hook, stdout) != 0 || open_host(L) != 0) {
    fprintf(stderr, "embed_host: cannot open acoro\n");
    lua_close(L);
    return 1;
  }
  if (luaL_dofile(L, argv[1]) != 0) {
    fprintf(stderr, "embed_host: %s\n", lua_tostring(L, -1));
    status = 1;
  }
  lua_pushcfunction(L, l_join); /* threads end before the engine goes */
  lua_call(L, 0, 0);
  lua_close(L);
  return status;
}

/* db_query.c: a host function that waits. Scripts call db.query(sql); the
 * calling coroutine waits while a host thread (a fake database) runs the
 * query, and every other coroutine keeps running meanwhile.
 *
 * The host pushes db.query with acoro_lua_push_hostfn: its start function
 * queues the SQL text and the call for the database thread, which
 * "executes" it (a short sleep), adds the rows as result values and
 * completes the call, or fails it. A query that takes longer than the
 * function's timeout (1 s) returns nil, "timeout", "ETIMEDOUT"; the
 * thread, seeing the call cancelled, stops and drops the rows. The database
 * thread is stopped and joined before the Lua state (and the engine) close.
 *
 *   build/examples/embed/db_query
 */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char script[] =
    "local acoro = require 'acoro'\n"
    "acoro.run(function()\n"
    "  local ticks, busy = 0, true\n"
    "  acoro.spawn(function()\n" /* shows that only the callers wait */
    "    while busy do ticks = ticks + 1; acoro.sleep(0.001) end\n"
    "  end)\n"
    "  local users = acoro.spawn(db.query, 'select name from users')\n"
    "  local count = acoro.spawn(db.query, 'select count(*) from users')\n"
    "  print('users:', users:join())\n"
    "  print('count:', count:join())\n"
    "  print('bad:', db.query('selec nothing'))\n"
    "  print('slow:', db.query('slow select'))\n"
    "  busy = false\n"
    "  print('others ran meanwhile:', ticks > 0)\n"
    "end)\n";

/* One query on its way to the database thread. */
typedef struct query_s {
  struct query_s *next;
  char *sql;
  acoro_lua_call_t *call;
} query_t;

static struct {
  uv_mutex_t mu;
  uv_cond_t cond;
  query_t *head, *tail;
  int stop;
  uv_thread_t thread;
} db;

/* The database thread: takes queries in order and completes each. */
static void db_main(void *arg) {
  (void)arg;
  for (;;) {
    query_t *q;
    int ms;
    uv_mutex_lock(&db.mu);
    while (db.head == NULL && !db.stop)
      uv_cond_wait(&db.cond, &db.mu);
    q = db.head;
    if (q != NULL && (db.head = q->next) == NULL)
      db.tail = NULL;
    uv_mutex_unlock(&db.mu);
    if (q == NULL)
      return; /* stopped, and every query completed */
    /* "executes" it, and stops early once nobody waits any more */
    for (ms = strncmp(q->sql, "slow", 4) == 0 ? 5000 : 5;
         ms > 0 && !acoro_lua_call_cancelled(q->call); ms--)
      uv_sleep(1);
    if (acoro_lua_call_cancelled(q->call)) {
      acoro_lua_call_fail(q->call, "cancelled", NULL); /* freed unread */
    } else if (strncmp(q->sql, "select name", 11) == 0) {
      acoro_lua_call_string(q->call, "ada", 3);
      acoro_lua_call_string(q->call, "grace", 5);
      acoro_lua_call_complete(q->call);
    } else if (strncmp(q->sql, "select count", 12) == 0) {
      acoro_lua_call_number(q->call, 2);
      acoro_lua_call_complete(q->call);
    } else {
      acoro_lua_call_fail(q->call, "syntax error", "EDB");
    }
    free(q->sql);
    free(q);
  }
}

/* ENGINE THREAD: db.query(sql) starts here. luaL_checkstring may raise:
 * the call has not been handed over yet. */
static void query_start(lua_State *L, acoro_lua_call_t *call, void *data) {
  const char *sql = luaL_checkstring(L, 1);
  query_t *q = calloc(1, sizeof *q);
  (void)data;
  if (q == NULL || (q->sql = strdup(sql)) == NULL) {
    free(q);
    luaL_error(L, "db.query: out of memory");
    return;
  }
  q->call = call;
  uv_mutex_lock(&db.mu);
  if (db.tail != NULL)
    db.tail->next = q;
  else
    db.head = q;
  db.tail = q;
  uv_cond_signal(&db.cond);
  uv_mutex_unlock(&db.mu);
}

int main(void) {
  const char *dir = getenv("ACORO_LUA_DIR");
  lua_State *L = luaL_newstate();
  int status = 0;
  if (L == NULL)
    return 2;
  luaL_openlibs(L);
  if (acoro_lua_openlib(L, dir != NULL ? dir : EXAMPLE_LUA_DIR) != 0) {
    fprintf(stderr, "db_query: cannot open acoro\n");
    return 1;
  }
  uv_mutex_init(&db.mu);
  uv_cond_init(&db.cond);
  uv_thread_create(&db.thread, db_main, NULL);
  lua_newtable(L);
  if (acoro_lua_push_hostfn(L, "db.query", query_start, NULL, 1.0) != 0) {
    fprintf(stderr, "db_query: cannot make db.query\n");
    return 1;
  }
  lua_setfield(L, -2, "query");
  lua_setglobal(L, "db");
  if (luaL_dostring(L, script) != 0) {
    fprintf(stderr, "db_query: %s\n", lua_tostring(L, -1));
    status = 1;
  }
  uv_mutex_lock(&db.mu);
  db.stop = 1;
  uv_cond_signal(&db.cond);
  uv_mutex_unlock(&db.mu);
  uv_thread_join(&db.thread);
  lua_close(L);
  uv_cond_destroy(&db.cond);
  uv_mutex_destroy(&db.mu);
  return status;
}

/* lhost.c: what a C host gives the scripts of its Lua state: messages
 * posted from any thread to a coroutine, and functions that wait for the
 * host (host calls: core/call.c) with their values made in C. The Lua half
 * of the waiting is lua/acoro/hostfn.lua. */
#include "lbind.h"

#include <stdlib.h>
#include <string.h>

#define CALL_MT "acoro.host_call"

enum { V_NIL, V_BOOL, V_NUMBER, V_STRING, V_MSGPACK };

/* A message on its way to the engine thread: the target, the value. */
typedef struct {
  uint64_t id;
  char *name; /* NULL: by id */
  int kind;
  double number;
  size_t len;
  char *bytes;
} lmsg_t;

static void lmsg_free(lmsg_t *m) {
  if (m != NULL)
    free(m->bytes);
  free(m);
}

/* Pushes the value (kind, number, bytes, len); 0, or -1 with a message
 * in reason (a MessagePack buffer that does not decode). */
static int push_value(lua_State *L, int kind, double number, const char *bytes,
                      size_t len, char *reason, size_t reason_len) {
  switch (kind) {
  case V_BOOL:
    lua_pushboolean(L, number != 0);
    return 0;
  case V_NUMBER:
    lua_pushnumber(L, number);
    return 0;
  case V_STRING:
    lua_pushlstring(L, bytes, len);
    return 0;
  case V_MSGPACK:
    return lwire_decode(L, bytes, len, 0, 0, reason, reason_len) == 0 ? 0 : -1;
  default:
    lua_pushnil(L);
    return 0;
  }
}

/* ENGINE THREAD: the message arrives; it goes to the coroutine's mailbox
 * as a Lua value, or is dropped (and counted) when there is no such
 * coroutine, its mailbox is full, or the buffer does not decode. */
static void on_message(acoro_engine_t *e, void *data) {
  lmsg_t *m = data;
  int vals_ref;
  lua_State *L = lcoro_state(e, &vals_ref);
  acoro_co_t *co;
  char reason[128];
  int top;
  uint32_t key;
  if (L == NULL) { /* the state is closing */
    lmsg_free(m);
    return;
  }
  co = m->name != NULL ? acoro_locate(e, m->name) : acoro_find(e, m->id);
  top = lua_gettop(L);
  if (co == NULL || acoro_co_state(co) == ACORO_STATE_DEAD) {
    lcoro_post_lost(e, "no such coroutine");
  } else if (push_value(L, m->kind, m->number, m->bytes, m->len, reason,
                        sizeof reason) != 0) {
    lcoro_post_lost(e, reason);
  } else if ((key = acoro_send(co, 0)) == 0) {
    lcoro_post_lost(e, "mailbox full");
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, vals_ref);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (int)key);
  }
  lua_settop(L, top);
  lmsg_free(m);
}

static int post(acoro_engine_t *e, const char *name, uint64_t id, int kind,
                double number, const char *bytes, size_t len) {
  lmsg_t *m;
  size_t nlen = name != NULL ? strlen(name) + 1 : 0;
  int rc;
  if (e == NULL || (name == NULL && id == 0) || (len > 0 && bytes == NULL))
    return ACORO_EINVAL;
  m = calloc(1, sizeof *m);
  if (m == NULL)
    return ACORO_ENOMEM;
  /* one buffer: the value's bytes, then the name */
  if (len + nlen > 0 && (m->bytes = malloc(len + nlen)) == NULL) {
    free(m);
    return ACORO_ENOMEM;
  }
  if (len > 0)
    memcpy(m->bytes, bytes, len);
  if (name != NULL) {
    m->name = m->bytes + len;
    memcpy(m->name, name, nlen);
  }
  m->id = id;
  m->kind = kind;
  m->number = number;
  m->len = len;
  rc = acoro_engine_post(e, on_message, m);
  if (rc != 0)
    lmsg_free(m);
  return rc;
}

int acoro_lua_post_number(acoro_engine_t *e, const char *name, uint64_t id,
                          double n) {
  return post(e, name, id, V_NUMBER, n, NULL, 0);
}

int acoro_lua_post_string(acoro_engine_t *e, const char *name, uint64_t id,
                          const char *s, size_t len) {
  return post(e, name, id, V_STRING, 0, s, len);
}

int acoro_lua_post_msgpack(acoro_engine_t *e, const char *name, uint64_t id,
                           const char *buf, size_t len) {
  acoro_wire_limits_t lim = {ACORO_WIRE_MAX_BYTES, ACORO_WIRE_MAX_DEPTH};
  size_t used;
  /* Checked here, on the poster's thread: a bad buffer is the caller's
   * error, told at once, not a message lost later. */
  if (buf == NULL || acoro_wire_check(buf, len, &lim, &used, NULL, 0) != 0 ||
      used != len)
    return ACORO_EWIRE;
  return post(e, name, id, V_MSGPACK, 0, buf, len);
}

/* --- Host calls --------------------------------------------------------- */

/* The completer's side of a host call: the values it adds, then hands over
 * with complete or fail (it becomes the call's result, freed by
 * lcall_free on the engine thread). */
typedef struct {
  int kind;
  double number;
  char *bytes;
  size_t len;
} lval_t;

struct acoro_lua_call_s {
  acoro_call_t *call;
  lval_t *vals;
  int n, cap;
  int nomem; /* a value could not be added: the call fails */
  char *error, *code;
};

static void lcall_free(void *p) {
  acoro_lua_call_t *c = p;
  int i;
  for (i = 0; i < c->n; i++)
    free(c->vals[i].bytes);
  free(c->vals);
  free(c->error);
  free(c->code);
  free(c);
}

static int add(acoro_lua_call_t *c, int kind, double number, const char *bytes,
               size_t len) {
  lval_t *v;
  if (c == NULL)
    return ACORO_EINVAL;
  if (c->n == c->cap) {
    int cap = c->cap ? c->cap * 2 : 4;
    lval_t *p = realloc(c->vals, (size_t)cap * sizeof *p);
    if (p == NULL) {
      c->nomem = 1;
      return ACORO_ENOMEM;
    }
    c->vals = p;
    c->cap = cap;
  }
  v = &c->vals[c->n];
  v->kind = kind;
  v->number = number;
  v->len = len;
  v->bytes = NULL;
  if (len > 0) {
    if ((v->bytes = malloc(len)) == NULL) {
      c->nomem = 1;
      return ACORO_ENOMEM;
    }
    memcpy(v->bytes, bytes, len);
  }
  c->n++;
  return 0;
}

int acoro_lua_call_nil(acoro_lua_call_t *c) {
  return add(c, V_NIL, 0, NULL, 0);
}

int acoro_lua_call_boolean(acoro_lua_call_t *c, int b) {
  return add(c, V_BOOL, b != 0, NULL, 0);
}

int acoro_lua_call_number(acoro_lua_call_t *c, double n) {
  return add(c, V_NUMBER, n, NULL, 0);
}

int acoro_lua_call_string(acoro_lua_call_t *c, const char *s, size_t len) {
  return add(c, V_STRING, 0, s, len);
}

int acoro_lua_call_msgpack(acoro_lua_call_t *c, const char *buf, size_t len) {
  acoro_wire_limits_t lim = {ACORO_WIRE_MAX_BYTES, ACORO_WIRE_MAX_DEPTH};
  size_t used;
  if (buf == NULL || acoro_wire_check(buf, len, &lim, &used, NULL, 0) != 0 ||
      used != len)
    return ACORO_EWIRE;
  return add(c, V_MSGPACK, 0, buf, len);
}

int acoro_lua_call_cancelled(const acoro_lua_call_t *c) {
  return acoro_call_cancelled(c->call);
}

int acoro_lua_call_complete(acoro_lua_call_t *c) {
  if (c == NULL)
    return ACORO_EINVAL;
  return acoro_call_complete(c->call, c->nomem ? ACORO_ENOMEM : 0, c);
}

int acoro_lua_call_fail(acoro_lua_call_t *c, const char *message,
                        const char *code) {
  if (c == NULL)
    return ACORO_EINVAL;
  c->error = strdup(message != NULL ? message : "host call failed");
  c->code = strdup(code != NULL ? code : "EHOST");
  /* without its message the failure would read as a success */
  if (c->error == NULL || c->code == NULL)
    c->nomem = 1;
  return acoro_call_complete(c->call, c->nomem ? ACORO_ENOMEM : -1, c);
}

/* The host function's start and data (upvalue 2 of begin). */
typedef struct {
  acoro_lua_start_fn start;
  void *data;
  double timeout;
} hostfn_t;

/* Runs start(L, c, data) with the script's arguments at 1..n; upvalue 1
 * of begin calls it protected, with c and the hostfn_t first. */
static int run_start(lua_State *L) {
  acoro_lua_call_t *c = lua_touserdata(L, 1);
  hostfn_t *f = lua_touserdata(L, 2);
  lua_remove(L, 1);
  lua_remove(L, 1);
  f->start(L, c, f->data);
  return 0;
}

/* begin(...) -> call box, timeout: makes the call and starts the host's
 * work. A start that raises has not handed the call over (the rule of
 * acoro_lua_push_hostfn): its error goes on to the script. */
static int l_begin(lua_State *L) {
  acoro_engine_t *e = lbind_engine(L);
  hostfn_t *f = lua_touserdata(L, lua_upvalueindex(2));
  int nargs = lua_gettop(L);
  acoro_lua_call_t *c;
  lbind_box_t *box;
  int rc;
  box = lbind_push_box(L, NULL, CALL_MT);
  lua_insert(L, 1);
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return luaL_error(L, "acoro: host call: out of memory");
  rc = acoro_call_new(e, lcall_free, &c->call);
  if (rc != 0) {
    free(c);
    return lbind_misuse(L, rc, "host call");
  }
  box->p = c->call; /* OWNERSHIP: the waiter's reference, released by __gc */
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_pushlightuserdata(L, c);
  lua_pushvalue(L, lua_upvalueindex(2));
  luaL_checkstack(L, nargs + 3, "too many arguments");
  for (rc = 0; rc < nargs; rc++)
    lua_pushvalue(L, 2 + rc);
  if (lua_pcall(L, nargs + 2, 0, 0) != 0) {
    acoro_call_cancel(c->call);
    acoro_call_complete(c->call, -1, c); /* frees c on the engine thread */
    return lua_error(L);
  }
  lua_settop(L, 1);
  if (f->timeout >= 0)
    lua_pushnumber(L, f->timeout);
  else
    lua_pushnil(L);
  return 2;
}

static acoro_call_t *check_call(lua_State *L) {
  return lbind_check(L, 1, CALL_MT, "acoro: host call: released");
}

/* call:_wait(timeout) -> true (done) | false (the coroutine now waits) */
static int call_wait(lua_State *L) {
  acoro_call_t *call = check_call(L);
  double timeout = lio_opt_timeout(L, 2);
  int rc = acoro_call_wait(
      lbind_running(L, "acoro: a host function must be called inside an "
                       "acoro coroutine"),
      call, timeout);
  if (rc < 0)
    return lbind_misuse(L, rc, "host call");
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* call:_result() -> the values | nil, message, code */
static int call_result(lua_State *L) {
  acoro_call_t *call = check_call(L);
  acoro_lua_call_t *c = acoro_call_result(call);
  char reason[128];
  int i;
  if (c == NULL)
    return luaL_error(L, "acoro: host call: not done");
  if (acoro_call_status(call) == ACORO_ENOMEM) {
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    lua_pushliteral(L, "ENOMEM");
    return 3;
  }
  if (c->error != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, c->error);
    lua_pushstring(L, c->code);
    return 3;
  }
  luaL_checkstack(L, c->n, "too many results");
  for (i = 0; i < c->n; i++) {
    lval_t *v = &c->vals[i];
    if (push_value(L, v->kind, v->number, v->bytes, v->len, reason,
                   sizeof reason) != 0) {
      lua_pushnil(L);
      lua_pushfstring(L, "bad result: %s", reason);
      lua_pushliteral(L, "EWIRE");
      return 3;
    }
  }
  return c->n;
}

static int call_cancel(lua_State *L) {
  acoro_call_cancel(check_call(L));
  return 0;
}

static int call_gc(lua_State *L) {
  lbind_box_t *b = luaL_checkudata(L, 1, CALL_MT);
  if (b->p != NULL)
    acoro_call_release(b->p);
  b->p = NULL;
  return 0;
}

static const luaL_Reg call_methods[] = {{"_wait", call_wait},
                                        {"_result", call_result},
                                        {"_cancel", call_cancel},
                                        {NULL, NULL}};

void lhost_open(lua_State *L, acoro_engine_t *e) {
  lio_metatable(L, e, CALL_MT, call_methods, call_gc);
}

int acoro_lua_push_hostfn(lua_State *L, const char *name,
                          acoro_lua_start_fn start, void *data,
                          double timeout) {
  hostfn_t *f;
  acoro_engine_t *e = acoro_lua_engine(L);
  int top = lua_gettop(L);
  if (e == NULL || start == NULL || name == NULL)
    return ACORO_EINVAL;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "acoro.hostfn");
  if (lua_pcall(L, 1, 1, 0) != 0) {
    lua_settop(L, top);
    return ACORO_ENOENT;
  }
  lua_getfield(L, -1, "make");
  lua_pushlightuserdata(L, e);
  f = lua_newuserdata(L, sizeof *f);
  f->start = start;
  f->data = data;
  f->timeout = timeout;
  lua_pushcfunction(L, run_start);
  lua_pushcclosure(L, l_begin, 3);
  lua_pushstring(L, name);
  if (lua_pcall(L, 2, 1, 0) != 0) {
    lua_settop(L, top);
    return ACORO_ENOMEM;
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 0;
}

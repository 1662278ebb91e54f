/* lpool.c: the C half of acoro.pool (core.pool): a Lua function (as
 * bytecode) and its arguments run on libuv's thread pool in a worker Lua
 * state of that thread, cached for the thread's life. Arguments and results
 * cross as bytes (nil, booleans, numbers, strings, nested tables of these),
 * never as Lua objects: the two states share nothing. */
#include "lbind.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#define JOB_MT "acoro.pool_job"
#define MAX_DEPTH 64

/* A growable byte buffer (malloc'd: the worker fills one without Lua). */
typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

/* A job. OWNERSHIP: malloc'd; until submitted the job box (userdata) owns
 * it, then the core work (its free_data frees it), which the box holds. The
 * worker thread writes res, ok and err; the engine thread reads them only
 * once the work is done. */
typedef struct {
  buf_t code, args, res;
  buf_t path, cpath; /* the submitter's package.path and cpath, for require */
  int ok;
  size_t nres; /* values in res */
  size_t nargs;
} job_t;

typedef struct {
  job_t *job;         /* before submit */
  acoro_work_t *work; /* after */
} job_box_t;

static void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int buf_add(buf_t *b, const void *p, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    char *q;
    while (cap - b->len < n)
      cap *= 2;
    q = realloc(b->p, cap);
    if (q == NULL)
      return -1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

static void job_free(void *data) {
  job_t *j = data;
  buf_free(&j->code);
  buf_free(&j->args);
  buf_free(&j->res);
  buf_free(&j->path);
  buf_free(&j->cpath);
  free(j);
}

/* Encoding: a tag byte, then for numbers 8 bytes of double, for strings 8
 * bytes of length and the bytes, for tables key, value, ... and 'e'. */

typedef struct {
  lua_State *L;
  buf_t *b;
  const char *what;        /* "argument" or "result" */
  int n;                   /* its number */
  int keys[MAX_DEPTH + 1]; /* stack indexes of the keys being walked */
} enc_t;

static void add(enc_t *e, const void *p, size_t n) {
  if (buf_add(e->b, p, n) != 0)
    luaL_error(e->L, "acoro.pool: out of memory");
}

/* Raises "<what> <n><path>: <why>", the path made of the keys walked. */
static void enc_fail(enc_t *e, int depth, const char *why) {
  lua_State *L = e->L;
  luaL_Buffer lb;
  int d;
  luaL_buffinit(L, &lb);
  lua_pushfstring(L, "acoro.pool.run: %s %d", e->what, e->n);
  luaL_addvalue(&lb);
  for (d = 0; d < depth; d++) {
    int k = e->keys[d];
    if (lua_type(L, k) == LUA_TNUMBER)
      lua_pushfstring(L, "[%s]", lua_tostring(L, k));
    else if (lua_type(L, k) == LUA_TSTRING)
      lua_pushfstring(L, "[\"%s\"]", lua_tostring(L, k));
    else
      lua_pushfstring(L, "[<%s key>]", luaL_typename(L, k));
    luaL_addvalue(&lb);
  }
  luaL_addstring(&lb, ": ");
  luaL_addstring(&lb, why);
  luaL_pushresult(&lb);
  lua_error(L);
}

static void encode(enc_t *e, int idx, int depth) {
  lua_State *L = e->L;
  char tag;
  if (idx < 0)
    idx = lua_gettop(L) + idx + 1;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
  case LUA_TNONE:
    add(e, "n", 1);
    return;
  case LUA_TBOOLEAN:
    add(e, lua_toboolean(L, idx) ? "t" : "f", 1);
    return;
  case LUA_TNUMBER: {
    double d = lua_tonumber(L, idx);
    add(e, "d", 1);
    add(e, &d, sizeof d);
    return;
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    uint64_t n = len;
    add(e, "s", 1);
    add(e, &n, sizeof n);
    add(e, s, len);
    return;
  }
  case LUA_TTABLE:
    if (depth >= MAX_DEPTH)
      enc_fail(e, depth, "tables nested too deep (a cycle?)");
    luaL_checkstack(L, 4, "acoro.pool: tables nested too deep");
    tag = 'T';
    add(e, &tag, 1);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      e->keys[depth] = lua_gettop(L) - 1;
      if (lua_type(L, -2) == LUA_TTABLE)
        enc_fail(e, depth + 1, "a table as a key is not copied");
      encode(e, -2, depth + 1);
      encode(e, -1, depth + 1);
      lua_pop(L, 1);
    }
    add(e, "e", 1);
    return;
  default: {
    const char *why = lua_pushfstring(
        L,
        "a %s cannot be copied to or from the pool (only nil, booleans, "
        "numbers, strings and tables of these)",
        luaL_typename(L, idx));
    enc_fail(e, depth, why);
  }
  }
}

/* Decoding: the bytes were made by encode, in this process. */
static const char *decode(lua_State *L, const char *p, int depth) {
  luaL_checkstack(L, 3, "acoro.pool: tables nested too deep");
  switch (*p++) {
  case 'n':
    lua_pushnil(L);
    return p;
  case 't':
    lua_pushboolean(L, 1);
    return p;
  case 'f':
    lua_pushboolean(L, 0);
    return p;
  case 'd': {
    double d;
    memcpy(&d, p, sizeof d);
    lua_pushnumber(L, d);
    return p + sizeof d;
  }
  case 's': {
    uint64_t n;
    memcpy(&n, p, sizeof n);
    p += sizeof n;
    lua_pushlstring(L, p, (size_t)n);
    return p + n;
  }
  default: /* 'T' */
    lua_newtable(L);
    while (*p != 'e') {
      p = decode(L, p, depth + 1);
      p = decode(L, p, depth + 1);
      lua_rawset(L, -3);
    }
    return p + 1;
  }
}

static int decode_all(lua_State *L, const buf_t *b, size_t n) {
  const char *p = b->p;
  size_t i;
  luaL_checkstack(L, (int)n + 4, "acoro.pool: too many values");
  for (i = 0; i < n; i++)
    p = decode(L, p, 0);
  return (int)n;
}

/* THREAD POOL: each pool thread keeps one Lua state for its life (libuv's
 * pool threads live as long as the process). Jobs run one at a time on a
 * thread, so a state is never shared. Globals a job sets stay for later jobs
 * on that thread. */
static __thread lua_State *worker_L;

/* THREAD POOL: package[field] = the submitter's, so that require in a job
 * finds what the script that submitted it finds (a job that replaced
 * `package` keeps its own). */
static void set_package(lua_State *L, const char *field, const buf_t *b) {
  if (b->p == NULL)
    return;
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_pushlstring(L, b->p, b->len);
    lua_setfield(L, -2, field);
  }
  lua_pop(L, 1);
}

static int worker_main(lua_State *L) {
  job_t *j = lua_touserdata(L, 1);
  enc_t e;
  int base, nres, i;
  lua_settop(L, 0);
  set_package(L, "path", &j->path);
  set_package(L, "cpath", &j->cpath);
  if (luaL_loadbuffer(L, j->code.p, j->code.len, "=pool") != 0)
    return lua_error(L);
  decode_all(L, &j->args, j->nargs);
  lua_call(L, (int)j->nargs, LUA_MULTRET);
  nres = lua_gettop(L);
  base = 0;
  e.L = L;
  e.b = &j->res;
  e.what = "result";
  for (i = 1; i <= nres; i++) {
    e.n = i;
    encode(&e, i + base, 0);
  }
  j->nres = (size_t)nres;
  return 0;
}

/* THREAD POOL: runs the job in this thread's state. An error becomes the
 * job's only result (its message, or the error value if it can be copied). */
static void job_run(void *data) {
  job_t *j = data;
  lua_State *L = worker_L;
  if (L == NULL) {
    L = worker_L = luaL_newstate();
    if (L == NULL) {
      static const char msg[] = "acoro.pool: cannot create a worker Lua state";
      uint64_t n = sizeof msg - 1;
      j->ok = 0;
      buf_add(&j->res, "s", 1);
      buf_add(&j->res, &n, sizeof n);
      buf_add(&j->res, msg, (size_t)n);
      j->nres = 1;
      return;
    }
    luaL_openlibs(L);
  }
  lua_settop(L, 0);
  lua_pushcfunction(L, worker_main);
  lua_pushlightuserdata(L, j);
  j->ok = lua_pcall(L, 1, 0, 0) == 0;
  if (!j->ok) {
    size_t len;
    const char *msg;
    uint64_t n;
    if (!lua_isstring(L, -1)) {
      lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
      lua_replace(L, -2);
    }
    msg = lua_tolstring(L, -1, &len);
    n = len;
    j->res.len = 0;
    if (buf_add(&j->res, "s", 1) || buf_add(&j->res, &n, sizeof n) ||
        buf_add(&j->res, msg, len))
      j->res.len = 0;
    j->nres = j->res.len > 0;
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCSTEP, 0);
}

/* Copies the string at i (if it is one) into b. */
static int copy_opt_string(lua_State *L, int i, buf_t *b) {
  size_t len;
  const char *p =
      lua_type(L, i) == LUA_TSTRING ? lua_tolstring(L, i, &len) : NULL;
  return p != NULL && buf_add(b, p, len) != 0;
}

/* core.pool.submit(bytecode, path, cpath, ...) -> job: path and cpath (nil:
 * the worker's own) for package.path and package.cpath. Raises naming the
 * argument that cannot be copied. */
static int pool_submit(lua_State *L) {
  acoro_engine_t *eng = lbind_engine(L);
  size_t len;
  const char *code = luaL_checklstring(L, 1, &len);
  int nargs = lua_gettop(L) > 3 ? lua_gettop(L) - 3 : 0, i, rc;
  job_box_t *box = lua_newuserdata(L, sizeof *box);
  job_t *j;
  enc_t e;
  box->job = NULL;
  box->work = NULL;
  luaL_getmetatable(L, JOB_MT);
  lua_setmetatable(L, -2);
  j = calloc(1, sizeof *j);
  if (j == NULL)
    return luaL_error(L, "acoro.pool: out of memory");
  box->job = j;
  if (buf_add(&j->code, code, len) != 0 || copy_opt_string(L, 2, &j->path) ||
      copy_opt_string(L, 3, &j->cpath))
    return luaL_error(L, "acoro.pool: out of memory");
  e.L = L;
  e.b = &j->args;
  e.what = "argument";
  for (i = 1; i <= nargs; i++) {
    e.n = i;
    encode(&e, i + 3, 0);
  }
  j->nargs = (size_t)nargs;
  rc = acoro_work_submit(eng, job_run, job_free, j, &box->work);
  if (rc != 0)
    return luaL_error(L, "acoro.pool: cannot queue the work: %s",
                      rc < 0 && rc > -20 ? acoro_strerror(rc) : "libuv");
  box->job = NULL; /* the work owns it now */
  return 1;
}

static acoro_work_t *check_job(lua_State *L) {
  job_box_t *b = luaL_checkudata(L, 1, JOB_MT);
  if (b->work == NULL)
    luaL_error(L, "acoro.pool: the job was released");
  return b->work;
}

/* job:_wait(timeout) -> true (done) | false (the coroutine now waits) */
static int job_wait(lua_State *L) {
  acoro_work_t *w = check_job(L);
  double timeout = lio_opt_timeout(L, 2);
  int rc = acoro_work_wait(
      lbind_running(L, "acoro.pool: must run inside an acoro coroutine"), w,
      timeout);
  if (rc < 0)
    return luaL_error(L, "acoro.pool: %s", acoro_strerror(rc));
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* job:_result() -> true, results... | false, message */
static int job_result(lua_State *L) {
  acoro_work_t *w = check_job(L);
  job_t *j = acoro_work_data(w);
  if (!acoro_work_done(w))
    return luaL_error(L, "acoro.pool: the job is not done");
  lua_pushboolean(L, j->ok);
  if (!j->ok && j->nres == 0) {
    lua_pushliteral(L, "acoro.pool: the job failed (out of memory)");
    return 2;
  }
  return 1 + decode_all(L, &j->res, j->nres);
}

static int job_gc(lua_State *L) {
  job_box_t *b = luaL_checkudata(L, 1, JOB_MT);
  if (b->job != NULL)
    job_free(b->job);
  if (b->work != NULL)
    acoro_work_release(b->work);
  b->job = NULL;
  b->work = NULL;
  return 0;
}

/* core.pool.size([n]) -> size | nil, "too late" */
static int pool_size(lua_State *L) {
  int n = (int)luaL_optinteger(L, 1, 0);
  int rc;
  if (n < 0 || (!lua_isnoneornil(L, 1) && n == 0))
    return luaL_argerror(L, 1, "expected a size of at least 1");
  rc = acoro_pool_size(n);
  if (rc == ACORO_ESTATE) {
    lua_pushnil(L);
    lua_pushinteger(L, acoro_pool_size(0));
    return 2;
  }
  lua_pushinteger(L, rc);
  return 1;
}

static const luaL_Reg job_methods[] = {
    {"_wait", job_wait}, {"_result", job_result}, {NULL, NULL}};

static const luaL_Reg pool_funcs[] = {
    {"submit", pool_submit}, {"size", pool_size}, {NULL, NULL}};

void lpool_open(lua_State *L, acoro_engine_t *e) {
  lio_metatable(L, e, JOB_MT, job_methods, job_gc);
  lua_newtable(L);
  lbind_funcs(L, e, pool_funcs);
}

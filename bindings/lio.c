/* lio.c: the C half of acoro's I/O for Lua (core.io): streams, TCP,
 * TLS contexts as userdata. These functions never yield: a call that must
 * wait registers the wait with the engine and returns false, and the Lua
 * half (lua/acoro/io.lua) yields the coroutine and calls again once woken.
 * Expected failures return nil, "ECODE: message", "ECODE"; misuse raises. */
#include "lbind.h"

#include <lauxlib.h>
#include <string.h>
#include <uv.h>

#define STREAM_MT "acoro.stream"
#define SERVER_MT "acoro.server"
#define CONNECT_MT "acoro.connect"
#define TLSCTX_MT "acoro.tls_context"

static acoro_co_t *running_co(lua_State *L) { return lbind_running(L, NULL); }

static void *check_box(lua_State *L, int i, const char *mt, const char *what) {
  lbind_box_t *b = lbind_box(L, i, mt);
  if (b->p == NULL)
    luaL_error(L, "acoro: %s: the object is closed", what);
  return b->p;
}

/* Streams. */

void lio_push_stream(lua_State *L, acoro_stream_t *s) {
  lbind_push_box(L, s, STREAM_MT);
}

acoro_stream_t *lio_check_stream(lua_State *L, int i) {
  return check_box(L, i, STREAM_MT, "stream");
}

/* s:read(min, delim, timeout) -> true (the buffer has it, or reading
 * ended) | false (the coroutine now waits: yield, then call again) | nil,
 * why, "EWAITING" (another coroutine reads: io.lua raises that misuse at
 * its user's line, which a C function cannot find). */
static int busy(lua_State *L, const char *why) {
  lua_pushnil(L);
  lua_pushstring(L, why);
  lua_pushliteral(L, "EWAITING");
  return 3;
}

static int s_read(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  lua_Integer min = luaL_optinteger(L, 2, 1);
  int delim = (int)luaL_optinteger(L, 3, -1);
  double timeout = lio_opt_timeout(L, 4);
  int rc = acoro_stream_read(running_co(L), s, min > 0 ? (size_t)min : 1, delim,
                             timeout);
  if (rc == ACORO_EWAITING)
    return busy(L, "another coroutine is already reading this stream");
  if (rc < 0)
    return lbind_misuse(L, rc, "read");
  lua_pushboolean(L, rc == 1);
  return 1;
}

static int s_buffered(lua_State *L) {
  return lbind_buffered(L, acoro_stream_reader(lio_check_stream(L, 1)));
}

static int s_take(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  return lbind_take(L, acoro_stream_reader(s), luaL_checkinteger(L, 2));
}

static int s_peek(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  return lbind_peek(L, acoro_stream_reader(s), luaL_checkinteger(L, 2));
}

static int s_take_line(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  return lbind_take_line(L, acoro_stream_reader(s), luaL_checkinteger(L, 2), 0);
}

/* s:read_status() -> nil (more may come) | "eof" | nil-less message, code */
static int s_read_status(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  int st = acoro_reader_status(acoro_stream_reader(s));
  const char *tls;
  if (st == 0 || st == UV_EOF)
    return lbind_read_status(L, st);
  tls = acoro_stream_tls_error(s);
  if (st == UV_EPROTO && tls != NULL) {
    lua_pushstring(L, tls);
    lua_pushliteral(L, "ETLS");
    return 2;
  }
  if (st == UV_ECANCELED && !acoro_stream_is_open(s)) {
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "ECLOSED");
    return 2;
  }
  return lbind_read_status(L, st);
}

static int write_failure(lua_State *L, acoro_stream_t *s) {
  int st = acoro_stream_write_status(s);
  const char *tls = acoro_stream_tls_error(s);
  if (st == UV_EPROTO && tls != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, tls);
    lua_pushliteral(L, "ETLS");
    return 3;
  }
  if (st == UV_ECANCELED && !acoro_stream_is_open(s)) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "ECLOSED");
    return 3;
  }
  return lio_fail(L, st);
}

/* s:write(data, timeout) -> true (written) | false (waits) | nil, err
 * (nil, why, "EWAITING": another coroutine writes, as for read) */
static int s_write(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  double timeout = lio_opt_timeout(L, 3);
  int rc = acoro_stream_write(running_co(L), s, data, len, timeout);
  if (rc == ACORO_EIO)
    return write_failure(L, s);
  if (rc == ACORO_EWAITING)
    return busy(L, "another coroutine is already writing this stream");
  if (rc < 0)
    return lbind_misuse(L, rc, "write");
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* s:write_status() -> true (all written) | false (still going) | nil, err */
static int s_write_status(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  int st = acoro_stream_write_status(s);
  if (st == 0 || st == UV_EAGAIN) {
    lua_pushboolean(L, st == 0);
    return 1;
  }
  return write_failure(L, s);
}

/* The stream is open, or the call raises: the core answers a closed stream
 * with ACORO_ECLOSED, whose value is also a libuv code (UV_ENOMEM), so it
 * must not reach lio_fail. */
static acoro_stream_t *check_open_stream(lua_State *L, const char *what) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  if (!acoro_stream_is_open(s))
    luaL_error(L, "acoro: %s: the stream is closed", what);
  return s;
}

static int s_shutdown(lua_State *L) {
  int rc = acoro_stream_shutdown(check_open_stream(L, "shutdown"));
  if (rc != 0)
    return lio_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* close ends the stream (waiters wake); the memory goes with the userdata. */
static void stream_close(void *p) { acoro_stream_close(p); }
static void stream_release(void *p) { acoro_stream_release(p); }
static int stream_is_open(const void *p) { return acoro_stream_is_open(p); }
static const lbind_life_t stream_life = {STREAM_MT, stream_release,
                                         stream_close, stream_is_open};

static int s_name(lua_State *L) {
  acoro_stream_t *s =
      check_open_stream(L, lua_toboolean(L, 2) ? "getpeername" : "getsockname");
  char host[64];
  int port = 0;
  int rc = acoro_tcp_name(s, lua_toboolean(L, 2), host, sizeof host, &port);
  if (rc == ACORO_EINVAL)
    return luaL_error(L, "acoro: not a TCP stream");
  if (rc != 0)
    return lio_fail(L, rc);
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

static int s_nodelay(lua_State *L) {
  acoro_stream_t *s = check_open_stream(L, "setnodelay");
  int rc = acoro_tcp_nodelay(s, lua_isnoneornil(L, 2) || lua_toboolean(L, 2));
  if (rc == ACORO_EINVAL)
    return luaL_error(L, "acoro: not a TCP stream");
  if (rc != 0)
    return lio_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* s:starttls(ctx, server, server_name) */
static int s_starttls(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  acoro_tls_ctx_t *ctx = check_box(L, 2, TLSCTX_MT, "TLS context");
  int rc = acoro_stream_starttls(s, ctx, lua_toboolean(L, 3),
                                 luaL_optstring(L, 4, NULL));
  if (rc == ACORO_ESTATE)
    return luaL_error(L, "acoro: starttls: the stream is already TLS");
  if (rc != 0)
    return lbind_misuse(L, rc, "starttls");
  lua_pushboolean(L, 1);
  return 1;
}

/* s:handshake(timeout) -> true | false (waits) | nil, reason */
static int s_handshake(lua_State *L) {
  acoro_stream_t *s = lio_check_stream(L, 1);
  int rc = acoro_stream_handshake(running_co(L), s, lio_opt_timeout(L, 2));
  if (rc == ACORO_ETLS) {
    const char *why = acoro_stream_tls_error(s);
    lua_pushnil(L);
    lua_pushstring(L, why ? why : "TLS handshake failed");
    lua_pushliteral(L, "ETLS");
    return 3;
  }
  if (rc < 0)
    return lbind_misuse(L, rc, "handshake");
  lua_pushboolean(L, rc == 1);
  return 1;
}

static int s_tostring(lua_State *L) {
  lbind_box_t *b = lbind_box(L, 1, STREAM_MT);
  lua_pushfstring(L, "acoro.stream (%p%s)", b->p, b->p ? "" : ", closed");
  return 1;
}

static int open_fd(lua_State *L) {
  acoro_stream_t *s;
  int rc =
      acoro_stream_open_fd(lbind_engine(L), (int)luaL_checkinteger(L, 1), &s);
  if (rc == ACORO_EINVAL) {
    lua_pushnil(L);
    lua_pushliteral(L, "not a stream (a regular file?)");
    lua_pushliteral(L, "EINVAL");
    return 3;
  }
  if (rc != 0)
    return lio_fail(L, rc);
  lio_push_stream(L, s);
  return 1;
}

/* TCP. */

static int tcp_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  acoro_connect_t *c;
  int rc = acoro_tcp_connect(lbind_engine(L), host, port, &c);
  if (rc == ACORO_EINVAL)
    return luaL_argerror(L, 2, "port out of range");
  if (rc != 0)
    return lio_fail(L, rc);
  lbind_push_box(L, c, CONNECT_MT);
  return 1;
}

static int c_wait(lua_State *L) {
  acoro_connect_t *c = check_box(L, 1, CONNECT_MT, "connect");
  int rc = acoro_connect_wait(running_co(L), c, lio_opt_timeout(L, 2));
  if (rc < 0)
    return lbind_misuse(L, rc, "connect");
  lua_pushboolean(L, rc == 1);
  return 1;
}

static int c_result(lua_State *L) {
  acoro_connect_t *c = check_box(L, 1, CONNECT_MT, "connect");
  acoro_stream_t *s;
  int rc = acoro_connect_result(c, &s);
  if (rc != 0)
    return lio_fail(L, rc);
  lio_push_stream(L, s);
  return 1;
}

static int c_free(lua_State *L) {
  lbind_box_t *b = lbind_box(L, 1, CONNECT_MT);
  if (b->p != NULL)
    acoro_connect_free(b->p);
  b->p = NULL;
  return 0;
}

static int tcp_listen(lua_State *L) {
  const char *host = luaL_optstring(L, 1, "0.0.0.0");
  int port = (int)luaL_checkinteger(L, 2);
  int backlog = (int)luaL_optinteger(L, 3, 128);
  acoro_server_t *srv;
  int rc = acoro_tcp_listen(lbind_engine(L), host, port, backlog, &srv);
  if (rc == ACORO_EINVAL)
    return luaL_argerror(L, 2, "port out of range");
  if (rc != 0)
    return lio_fail(L, rc);
  lbind_push_box(L, srv, SERVER_MT);
  return 1;
}

/* srv:accept(timeout) -> stream | false (waits) | nil, err */
static int srv_accept(lua_State *L) {
  acoro_server_t *srv = check_box(L, 1, SERVER_MT, "server");
  acoro_stream_t *s;
  int rc = acoro_tcp_accept(running_co(L), srv, lio_opt_timeout(L, 2), &s);
  if (rc == 1) {
    lio_push_stream(L, s);
    return 1;
  }
  if (rc == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (rc == ACORO_ECLOSED) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "ECLOSED");
    return 3;
  }
  if (rc == ACORO_EWAITING || rc == ACORO_ESTATE) { /* io.lua raises */
    lua_pushnil(L);
    lua_pushstring(L, acoro_strerror(rc));
    lua_pushliteral(L, "EWAITING");
    return 3;
  }
  return lio_fail(L, rc);
}

static void server_close(void *p) { acoro_server_close(p); }
static void server_release(void *p) { acoro_server_release(p); }
static int server_is_open(const void *p) { return acoro_server_is_open(p); }
static const lbind_life_t server_life = {SERVER_MT, server_release,
                                         server_close, server_is_open};

static int srv_name(lua_State *L) {
  acoro_server_t *srv = check_box(L, 1, SERVER_MT, "server");
  char host[64];
  int port = 0;
  int rc = acoro_server_name(srv, host, sizeof host, &port);
  if (rc != 0)
    return lio_fail(L, rc);
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

/* TLS contexts: tls_context(server, cert, key, ca, verify) */
static int tls_context(lua_State *L) {
  char err[300];
  acoro_tls_ctx_t *ctx =
      acoro_tls_ctx_new(lua_toboolean(L, 1), luaL_optstring(L, 2, NULL),
                        luaL_optstring(L, 3, NULL), luaL_optstring(L, 4, NULL),
                        lua_toboolean(L, 5), err, sizeof err);
  if (ctx == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushliteral(L, "ETLS");
    return 3;
  }
  lbind_push_box(L, ctx, TLSCTX_MT);
  return 1;
}

static void tls_release(void *p) { acoro_tls_ctx_free(p); }
static const lbind_life_t tls_life = {TLSCTX_MT, tls_release, NULL, NULL};

static const luaL_Reg stream_methods[] = {
    {"_read", s_read},           {"_buffered", s_buffered},
    {"_take", s_take},           {"_peek", s_peek},
    {"_take_line", s_take_line}, {"_read_status", s_read_status},
    {"_write", s_write},         {"_write_status", s_write_status},
    {"_shutdown", s_shutdown},   {"_name", s_name},
    {"_nodelay", s_nodelay},     {"_starttls", s_starttls},
    {"_handshake", s_handshake}, {NULL, NULL}};

static const luaL_Reg connect_methods[] = {
    {"_wait", c_wait}, {"_result", c_result}, {"_free", c_free}, {NULL, NULL}};

static const luaL_Reg server_methods[] = {
    {"_accept", srv_accept}, {"_name", srv_name}, {NULL, NULL}};

static const luaL_Reg no_methods[] = {{NULL, NULL}};

static const luaL_Reg io_funcs[] = {{"open_fd", open_fd},
                                    {"tcp_connect", tcp_connect},
                                    {"tcp_listen", tcp_listen},
                                    {"tls_context", tls_context},
                                    {NULL, NULL}};

void lio_open(lua_State *L, acoro_engine_t *e) {
  lbind_type(L, e, stream_methods, &stream_life);
  lbind_tostring(L, STREAM_MT, s_tostring);
  lio_metatable(L, e, CONNECT_MT, connect_methods, c_free);
  lbind_type(L, e, server_methods, &server_life);
  lbind_type(L, e, no_methods, &tls_life);
  lua_newtable(L);
  lbind_funcs(L, e, io_funcs);
  /* The method tables, for io.lua to add the Lua half to. */
  lua_newtable(L);
  luaL_getmetatable(L, STREAM_MT);
  lua_setfield(L, -2, "stream");
  luaL_getmetatable(L, SERVER_MT);
  lua_setfield(L, -2, "server");
  lua_setfield(L, -2, "metatables");
}

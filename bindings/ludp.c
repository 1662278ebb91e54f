/* ludp.c: the C half of acoro.udp (core.udp): UDP sockets as userdata.
 * Nothing here yields: recvfrom and a send to a name register the
 * coroutine's wait and return false; lua/acoro/udp.lua parks and retries.
 * Expected failures return nil, "ECODE: message", "ECODE"; misuse raises. */
#include "lbind.h"

#include <lauxlib.h>
#include <uv.h>

#define UDP_MT "acoro.udp"

typedef struct {
  acoro_udp_t *u; /* NULL once released */
} ubox_t;

static acoro_engine_t *engine_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

static acoro_udp_t *check_udp(lua_State *L, int i) {
  ubox_t *b = luaL_checkudata(L, i, UDP_MT);
  if (b->u == NULL)
    luaL_error(L, "acoro: udp: the socket is closed");
  return b->u;
}

static acoro_co_t *running_co(lua_State *L) {
  acoro_co_t *co = acoro_current(engine_of(L));
  if (co == NULL)
    luaL_error(L, "acoro: I/O that waits must run inside an acoro coroutine");
  return co;
}

static int misuse(lua_State *L, int rc, const char *what) {
  if (rc == ACORO_EWAITING)
    return luaL_error(L, "acoro: %s: another coroutine is already waiting",
                      what);
  return luaL_error(L, "acoro: %s: %s", what, acoro_strerror(rc));
}

/* bind(host, port, flags) -> udp | nil, message, code */
static int u_bind(lua_State *L) {
  const char *host = luaL_optstring(L, 1, "0.0.0.0");
  int port = (int)luaL_checkinteger(L, 2);
  int flags = (int)luaL_optinteger(L, 3, 0);
  acoro_udp_t *u;
  ubox_t *b;
  int rc;
  if (port < 0 || port > 65535)
    return luaL_argerror(L, 2, "port out of range");
  b = lua_newuserdata(L, sizeof *b);
  b->u = NULL;
  luaL_getmetatable(L, UDP_MT);
  lua_setmetatable(L, -2);
  rc = acoro_udp_bind(engine_of(L), host, port, flags, &u);
  if (rc != 0)
    return lio_fail(L, rc);
  b->u = u;
  return 1;
}

/* u:_recv(timeout) -> data, host, port | false (waits) | nil (ended) */
static int u_recv(lua_State *L) {
  acoro_udp_t *u = check_udp(L, 1);
  double timeout = lio_opt_timeout(L, 2);
  const char *data;
  size_t len;
  char host[64];
  int port, rc = acoro_udp_recv(running_co(L), u, timeout);
  if (rc < 0)
    return misuse(L, rc, "recvfrom");
  if (rc == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!acoro_udp_next(u, &data, &len, host, sizeof host, &port))
    return 0;
  lua_pushlstring(L, data, len);
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  acoro_udp_pop(u);
  return 3;
}

/* u:_send(data, host, port, timeout) -> true (sent) | false (waits: the
 * result comes from _send_status) | nil, message, code */
static int u_send(lua_State *L) {
  acoro_udp_t *u = check_udp(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *host = luaL_checkstring(L, 3);
  int port = (int)luaL_checkinteger(L, 4);
  double timeout = lio_opt_timeout(L, 5);
  int rc;
  if (port < 0 || port > 65535)
    return luaL_argerror(L, 4, "port out of range");
  rc = acoro_udp_send(running_co(L), u, data, len, host, port, timeout);
  if (rc == ACORO_EIO)
    return lio_fail(L, acoro_udp_send_status(u));
  if (rc < 0)
    return misuse(L, rc, "sendto");
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* core.udp.is_address(host) -> whether host is an IPv4 or IPv6 address as
 * acoro_udp_send reads one (sent at once; anything else is resolved as a
 * name, and the sender waits). */
static int udp_is_address(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  struct sockaddr_storage a;
  lua_pushboolean(L, uv_ip4_addr(host, 0, (struct sockaddr_in *)&a) == 0 ||
                         uv_ip6_addr(host, 0, (struct sockaddr_in6 *)&a) == 0);
  return 1;
}

/* u:_send_status() -> true | nil, message, code (of the last send) */
static int u_send_status(lua_State *L) {
  int st = acoro_udp_send_status(check_udp(L, 1));
  if (st != 0)
    return lio_fail(L, st);
  lua_pushboolean(L, 1);
  return 1;
}

static int u_name(lua_State *L) {
  acoro_udp_t *u = check_udp(L, 1);
  char host[64];
  int port = 0, rc = acoro_udp_name(u, host, sizeof host, &port);
  if (rc != 0)
    return lio_fail(L, rc);
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

static int u_dropped(lua_State *L) {
  lua_pushnumber(L, (lua_Number)acoro_udp_dropped(check_udp(L, 1)));
  return 1;
}

static int u_close(lua_State *L) {
  ubox_t *b = luaL_checkudata(L, 1, UDP_MT);
  if (b->u != NULL)
    acoro_udp_close(b->u);
  return 0;
}

static int u_is_open(lua_State *L) {
  ubox_t *b = luaL_checkudata(L, 1, UDP_MT);
  lua_pushboolean(L, b->u != NULL && acoro_udp_is_open(b->u));
  return 1;
}

static int u_gc(lua_State *L) {
  ubox_t *b = luaL_checkudata(L, 1, UDP_MT);
  if (b->u != NULL)
    acoro_udp_release(b->u);
  b->u = NULL;
  return 0;
}

static int u_tostring(lua_State *L) {
  ubox_t *b = luaL_checkudata(L, 1, UDP_MT);
  lua_pushfstring(L, "acoro.udp (%p%s)", (void *)b->u,
                  b->u != NULL && acoro_udp_is_open(b->u) ? "" : ", closed");
  return 1;
}

static const luaL_Reg udp_methods[] = {{"_recv", u_recv},
                                       {"_send", u_send},
                                       {"_send_status", u_send_status},
                                       {"_name", u_name},
                                       {"dropped", u_dropped},
                                       {"close", u_close},
                                       {"is_open", u_is_open},
                                       {NULL, NULL}};

void ludp_open(lua_State *L, acoro_engine_t *e) {
  lio_metatable(L, e, UDP_MT, udp_methods, u_gc);
  luaL_getmetatable(L, UDP_MT);
  lua_pushcfunction(L, u_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushlightuserdata(L, e);
  lua_pushcclosure(L, u_bind, 1);
  lua_setfield(L, -2, "bind");
  lua_pushcfunction(L, udp_is_address);
  lua_setfield(L, -2, "is_address");
  lua_pushinteger(L, ACORO_UDP_REUSE);
  lua_setfield(L, -2, "REUSE");
  lua_pushinteger(L, ACORO_UDP_BROADCAST);
  lua_setfield(L, -2, "BROADCAST");
  luaL_getmetatable(L, UDP_MT);
  lua_setfield(L, -2, "metatable");
}

/* ludp.c: the C half of acoro.udp (core.udp): UDP sockets as userdata.
 * Nothing here yields: recvfrom and a send to a name register the
 * coroutine's wait and return false; lua/acoro/udp.lua parks and retries.
 * Expected failures return nil, "ECODE: message", "ECODE"; misuse raises. */
#include "lbind.h"

#include <lauxlib.h>
#include <uv.h>

#define UDP_MT "acoro.udp"

static acoro_udp_t *check_udp(lua_State *L, int i) {
  return lbind_check(L, i, UDP_MT, "acoro: udp: the socket is closed");
}

/* bind(host, port, flags) -> udp | nil, message, code */
static int u_bind(lua_State *L) {
  const char *host = luaL_optstring(L, 1, "0.0.0.0");
  int port = (int)luaL_checkinteger(L, 2);
  int flags = (int)luaL_optinteger(L, 3, 0);
  acoro_udp_t *u;
  lbind_box_t *b;
  int rc;
  if (port < 0 || port > 65535)
    return luaL_argerror(L, 2, "port out of range");
  b = lbind_push_box(L, NULL, UDP_MT);
  rc = acoro_udp_bind(lbind_engine(L), host, port, flags, &u);
  if (rc != 0)
    return lio_fail(L, rc);
  b->p = u;
  return 1;
}

/* u:_recv(timeout) -> data, host, port | false (waits) | nil (ended) */
static int u_recv(lua_State *L) {
  acoro_udp_t *u = check_udp(L, 1);
  double timeout = lio_opt_timeout(L, 2);
  const char *data;
  size_t len;
  char host[64];
  int port, rc = acoro_udp_recv(lbind_running(L, NULL), u, timeout);
  if (rc < 0)
    return lbind_misuse(L, rc, "recvfrom");
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
  rc =
      acoro_udp_send(lbind_running(L, NULL), u, data, len, host, port, timeout);
  if (rc == ACORO_EIO)
    return lio_fail(L, acoro_udp_send_status(u));
  if (rc < 0)
    return lbind_misuse(L, rc, "sendto");
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

static void udp_close(void *p) { acoro_udp_close(p); }
static void udp_release(void *p) { acoro_udp_release(p); }
static int udp_is_open(const void *p) { return acoro_udp_is_open(p); }
static const lbind_life_t udp_life = {UDP_MT, udp_release, udp_close,
                                      udp_is_open};

static int u_tostring(lua_State *L) {
  lbind_box_t *b = lbind_box(L, 1, UDP_MT);
  lua_pushfstring(L, "acoro.udp (%p%s)", b->p,
                  b->p != NULL && acoro_udp_is_open(b->p) ? "" : ", closed");
  return 1;
}

static const luaL_Reg udp_methods[] = {
    {"_recv", u_recv}, {"_send", u_send},      {"_send_status", u_send_status},
    {"_name", u_name}, {"dropped", u_dropped}, {NULL, NULL}};

void ludp_open(lua_State *L, acoro_engine_t *e) {
  lbind_type(L, e, udp_methods, &udp_life);
  lbind_tostring(L, UDP_MT, u_tostring);
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

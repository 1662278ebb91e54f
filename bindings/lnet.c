/* lnet.c: `core.net`, the Lua face of the peer transport (core/net.c) for
 * the binding's engine: one net at a time per Lua universe. Outgoing
 * payloads are strings (lua/acoro/node.lua encodes them with core.wire);
 * incoming frames are decoded here with core.wire's decoder, as envelopes
 * (see lwire_decode_envelope), with handlers.ext_decode for ext types and
 * handlers.ext_in_place for those decoded in place. Each message is
 * charged to the engine (acoro_mb_charge_next) for what its decode built
 * plus MSG_OVERHEAD, so that what a peer's SEND leaves in a mailbox counts
 * against the node's mailbox_limit (net.c's MAILBOX FLOW CONTROL).
 *
 * EVENTS. The net's callbacks run on the ENGINE THREAD from the engine's
 * libuv loop, outside any coroutine. Each calls one function of the
 * handlers table given to start(): on_up(peer, location, name,
 * incarnation as 16 hex digits), on_down(peer, reason),
 * on_message(peer, n, e1, e2, e3, m) (the frame's array: see
 * deliver_message; nil, why: the frame did not decode),
 * on_connect(request, status, peer, reason) (status 0 or a negative
 * code), on_writable(peer), on_log(level, line); on_message,
 * ext_decode and ext_in_place are read once, at start, the others at
 * each event. They run on a
 * Lua thread of their own (made at start, never yielded: a handler must not
 * yield; it queues messages and wakes coroutines). An error in a handler is
 * written to stderr and dropped: the transport goes on.
 *
 * LIFETIME. The state is a userdata in the registry (NET_KEY). The net is
 * stopped by stop(), by that userdata's __gc, or by lnet_close, which
 * lcoro.c's binding __gc calls before it frees the engine (whichever runs
 * first at lua_close; the others find it stopped). */
#include "lbind.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define NET_KEY "acoro.net.state"
#define NET_MT "acoro.net.state_mt"

/* OWNERSHIP: net is ours between start and stop; thread_ref anchors T,
 * handlers_ref the handlers table (both registry references). */
typedef struct lnet_s {
  acoro_engine_t *engine;
  acoro_net_t *net;
  lua_State *T;
  int thread_ref, handlers_ref;
  int in_cb; /* a handler is running: stop() must not run now */
  /* TLS contexts of the links (opts.tls), freed once the net is stopped. */
  acoro_tls_ctx_t *tls_server, *tls_client;
  /* TESTS ONLY (n_test_version): the protocol version the next start
   * speaks; 0.0: this build's. */
  int test_major, test_minor;
  int test_drop_pings; /* TESTS ONLY: n_test_drop_pings */
} lnet_t;

static lnet_t *state_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* Stops the net, then frees the TLS contexts its links used. */
static void stop_net(lnet_t *s) {
  if (s->net != NULL) {
    acoro_net_stop(s->net);
    s->net = NULL;
  }
  acoro_tls_ctx_free(s->tls_server);
  acoro_tls_ctx_free(s->tls_client);
  s->tls_server = s->tls_client = NULL;
}

static void net_close(lua_State *L, lnet_t *s) {
  stop_net(s);
  luaL_unref(L, LUA_REGISTRYINDEX, s->handlers_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->thread_ref);
  s->handlers_ref = s->thread_ref = LUA_NOREF;
  s->T = NULL;
}

/* T's stack keeps, below every call, what each message needs, pushed once
 * at start (a C function pushed per call would be a closure allocated per
 * message, a handler looked up per call two string lookups): 1 traceback,
 * 2 deliver_message, 3 handlers.on_message, 4 handlers.ext_decode (or
 * nil), 5 handlers.ext_in_place (or nil). The other handlers are looked up
 * at each event. */
#define T_BASE 5
/* Charged per message from a peer besides its decoded values: its pool
 * slot and its slot in the host's table of queued values. */
#define MSG_OVERHEAD 64
/* Elements in a frame's array (node.lua's envelopes have at most 11). */
#define ENVELOPE_MAX 32

/* Pushes handlers[name] on T; returns 0 if it is not a function (popped). */
static int get_handler(lnet_t *s, const char *name) {
  lua_State *T = s->T;
  lua_settop(T, T_BASE);
  lua_rawgeti(T, LUA_REGISTRYINDEX, s->handlers_ref);
  lua_getfield(T, -1, name);
  lua_remove(T, T_BASE + 1);
  if (lua_isfunction(T, -1))
    return 1;
  lua_settop(T, T_BASE);
  return 0;
}

static int traceback(lua_State *T) {
  const char *msg = lua_tostring(T, 1);
  lua_getglobal(T, "debug");
  lua_getfield(T, -1, "traceback");
  lua_pushstring(T, msg ? msg : "(error object is not a string)");
  lua_pushinteger(T, 2);
  lua_call(T, 2, 1);
  return 1;
}

/* Calls the handler pushed by get_handler with its nargs arguments. */
static void call_handler(lnet_t *s, const char *name, int nargs) {
  lua_State *T = s->T;
  s->in_cb = 1;
  if (lua_pcall(T, nargs, 0, 1) != 0)
    fprintf(stderr, "acoro: node: error in %s: %s\n", name,
            lua_tostring(T, -1) ? lua_tostring(T, -1) : "?");
  s->in_cb = 0;
  lua_settop(T, T_BASE);
}

/* deliver_message(on_message, ext_decode | nil, ext_in_place | nil, peer,
 * frame, len): decodes the frame (a light userdata, valid for this call
 * only) as an envelope of n elements and calls on_message(peer, n, e1, e2,
 * e3, m): its first three elements (nil past n), and m, the whole array as
 * a table, only when n > 3. Or on_message(peer, nil, why) when it does not
 * decode. Runs under call_handler's pcall: an error raised by ext_decode
 * is the handler's, logged like one. Decoding here rather than in Lua
 * spares a Lua string per message, and passing a short envelope's
 * elements a table (allocated, filled, indexed, then collected). Fixed
 * parameters, not varargs: LuaJIT compiles no trace starting at a vararg
 * function. Upvalue 1: the lnet_t (its engine is charged). */
static int deliver_message(lua_State *T) {
  lnet_t *s = lua_touserdata(T, lua_upvalueindex(1));
  const char *frame = lua_touserdata(T, 5);
  size_t len = (size_t)lua_tonumber(T, 6), cost = 0;
  char reason[128];
  int n, i;
  lua_settop(T, 4);
  n = lwire_decode_envelope(T, frame, len, lua_isnil(T, 2) ? 0 : 2,
                            lua_isnil(T, 3) ? 0 : 3, ENVELOPE_MAX, &cost,
                            reason, sizeof reason);
  lua_remove(T, 3); /* ext_in_place */
  if (n < 0) {
    lua_pushnil(T);
    lua_pushstring(T, reason);
  } else if (n <= 3) {
    lua_settop(T, 3 + 3 + 1); /* e1..e3 padded with nils, m = nil */
    lua_pushinteger(T, n);
    lua_insert(T, 4);
  } else {
    lua_createtable(T, n, 0);
    lua_insert(T, 4); /* under the elements */
    for (i = n; i >= 1; i--)
      lua_rawseti(T, 4, i);
    lua_pushinteger(T, n);
    lua_insert(T, 4);
    for (i = 1; i <= 3; i++)
      lua_rawgeti(T, 5, i);
    lua_pushvalue(T, 5); /* m last */
    lua_remove(T, 5);
  }
  lua_remove(T, 2);
  if (n >= 0)
    acoro_mb_charge_next(s->engine, cost + MSG_OVERHEAD);
  lua_call(T, lua_gettop(T) - 1, 0);
  return 0;
}

/* An incarnation as 16 hex digits (a Lua number would lose bits). */
static void push_incarnation(lua_State *L, uint64_t inc) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", (unsigned long long)inc);
  lua_pushstring(L, buf);
}

static void cb_up(void *d, uint64_t peer, const char *location,
                  const char *name, uint64_t incarnation) {
  lnet_t *s = d;
  if (!get_handler(s, "on_up"))
    return;
  lua_pushnumber(s->T, (lua_Number)peer);
  lua_pushstring(s->T, location);
  lua_pushstring(s->T, name);
  push_incarnation(s->T, incarnation);
  call_handler(s, "on_up", 4);
}

static void cb_down(void *d, uint64_t peer, const char *reason) {
  lnet_t *s = d;
  if (!get_handler(s, "on_down"))
    return;
  lua_pushnumber(s->T, (lua_Number)peer);
  lua_pushstring(s->T, reason ? reason : "");
  call_handler(s, "on_down", 2);
}

static void cb_message(void *d, uint64_t peer, const char *msg, size_t len) {
  lnet_t *s = d;
  lua_State *T = s->T;
  if (!lua_isfunction(T, 3))
    return;
  lua_settop(T, T_BASE);
  lua_pushvalue(T, 2);
  lua_pushvalue(T, 3);
  lua_pushvalue(T, 4);
  lua_pushvalue(T, 5);
  lua_pushnumber(T, (lua_Number)peer);
  lua_pushlightuserdata(T, (void *)msg);
  lua_pushnumber(T, (lua_Number)len);
  call_handler(s, "on_message", 6);
  acoro_mb_charge_next(s->engine, 0); /* not taken by a send: void */
}

static void cb_connect(void *d, uint64_t request, int status, uint64_t peer,
                       const char *reason) {
  lnet_t *s = d;
  if (!get_handler(s, "on_connect"))
    return;
  lua_pushnumber(s->T, (lua_Number)request);
  lua_pushinteger(s->T, status);
  lua_pushnumber(s->T, (lua_Number)peer);
  lua_pushstring(s->T, reason ? reason : "");
  call_handler(s, "on_connect", 4);
}

static void cb_writable(void *d, uint64_t peer) {
  lnet_t *s = d;
  if (!get_handler(s, "on_writable"))
    return;
  lua_pushnumber(s->T, (lua_Number)peer);
  call_handler(s, "on_writable", 1);
}

static void cb_log(void *d, int level, const char *line) {
  lnet_t *s = d;
  if (!get_handler(s, "on_log")) {
    fprintf(stderr, "acoro: net: %s\n", line);
    return;
  }
  lua_pushinteger(s->T, level);
  lua_pushstring(s->T, line);
  call_handler(s, "on_log", 2);
}

static const char *opt_string(lua_State *L, const char *key, size_t *len) {
  const char *v;
  lua_getfield(L, 1, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "acoro.node: %s must be a string", key);
  v = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* still anchored by the options table */
  return v;
}

static double opt_number(lua_State *L, const char *key, double dflt) {
  double v = dflt;
  lua_getfield(L, 1, key);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "acoro.node: %s must be a number", key);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* The TLS options of start: opts.tls = {cert=, key=, ca=, verify=} (cert
 * and key required: every node also accepts links). Two contexts: the
 * server one asks for and verifies the peer's certificate when there is a
 * ca and verify is not false; the client one shows the same certificate
 * (mutual authentication) and verifies the peer's and its name. Returns 0,
 * or pushes nil, message, "ETLS" and returns 3. Raises before making
 * anything when an option has the wrong type. */
static int tls_contexts(lua_State *L, lnet_t *s) {
  const char *cert, *key, *ca;
  int verify;
  char err[300];
  lua_getfield(L, 1, "tls");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1))
    return luaL_error(L, "acoro.node: tls must be a table");
  lua_getfield(L, -1, "cert");
  lua_getfield(L, -2, "key");
  lua_getfield(L, -3, "ca");
  lua_getfield(L, -4, "verify");
  if (lua_type(L, -4) != LUA_TSTRING || lua_type(L, -3) != LUA_TSTRING)
    return luaL_error(L, "acoro.node: tls needs cert and key (file names)");
  if (!lua_isnil(L, -2) && lua_type(L, -2) != LUA_TSTRING)
    return luaL_error(L, "acoro.node: tls.ca must be a file name");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
    return luaL_error(L, "acoro.node: tls.verify must be a boolean");
  cert = lua_tostring(L, -4);
  key = lua_tostring(L, -3);
  ca = lua_tostring(L, -2);
  verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
  s->tls_server = acoro_tls_ctx_new(1, cert, key, ca, verify, err, sizeof err);
  if (s->tls_server != NULL)
    s->tls_client =
        acoro_tls_ctx_new(0, cert, key, ca, verify, err, sizeof err);
  lua_pop(L, 5);
  if (s->tls_client == NULL) {
    acoro_tls_ctx_free(s->tls_server);
    s->tls_server = NULL;
    lua_pushnil(L);
    lua_pushfstring(L, "tls: %s", err);
    lua_pushliteral(L, "ETLS");
    return 3;
  }
  return 0;
}

/* TESTS ONLY: the version test_version set (acoro_net_opts_t version_major
 * / minor), so that a spec can check how a peer of another version is
 * refused. Not an option of acoro.node: real nodes speak this build's. */
static void test_version(lua_State *L, acoro_net_opts_t *o) {
  const lnet_t *s = state_of(L);
  o->version_major = s->test_major;
  o->version_minor = s->test_minor;
}

/* start(opts, handlers) -> location, incarnation (16 hex digits), the
 * listener's location | nil, message, code. opts: host, port, name,
 * ext_location, secret, discover_port, announce, heartbeat, missed,
 * mailbox_limit (acoro_net_opts_t), tls (tls_contexts). */
static int n_start(lua_State *L) {
  static const acoro_net_host_t host = {cb_up,      cb_down,     cb_message,
                                        cb_connect, cb_writable, cb_log};
  lnet_t *s = state_of(L);
  acoro_net_opts_t o;
  int rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (s->net != NULL)
    return luaL_error(L, "acoro.node: a node is already running");
  lua_getfield(L, 2, "ext_in_place");
  if (!lua_isnil(L, -1) && !lua_istable(L, -1))
    return luaL_error(L, "acoro.node: ext_in_place must be a table");
  lua_pop(L, 1);
  memset(&o, 0, sizeof o);
  o.host = opt_string(L, "host", NULL);
  o.name = opt_string(L, "name", NULL);
  o.ext_location = opt_string(L, "ext_location", NULL);
  o.secret = opt_string(L, "secret", &o.secret_len);
  o.port = (int)opt_number(L, "port", 0);
  o.discover_port = (int)opt_number(L, "discover_port", 0);
  o.heartbeat = opt_number(L, "heartbeat", 0);
  o.missed = (int)opt_number(L, "missed", 0);
  o.announce = opt_number(L, "announce", 0);
  o.test_drop_pings = s->test_drop_pings;
  o.mailbox_limit = (size_t)opt_number(L, "mailbox_limit", 0);
  test_version(L, &o);
  if (o.port < 0 || o.port > 65535 || o.discover_port < 0 ||
      o.discover_port > 65535)
    return luaL_error(L, "acoro.node: port out of range");
  if (tls_contexts(L, s) != 0)
    return 3;
  o.tls_server = s->tls_server;
  o.tls_client = s->tls_client;
  s->T = lua_newthread(L);
  s->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(s->T, traceback); /* T's stack: see T_BASE */
  lua_pushlightuserdata(s->T, s);
  lua_pushcclosure(s->T, deliver_message, 1);
  lua_getfield(L, 2, "on_message");
  lua_getfield(L, 2, "ext_decode");
  lua_getfield(L, 2, "ext_in_place");
  lua_xmove(L, s->T, 3);
  lua_pushvalue(L, 2);
  s->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rc = acoro_net_start(s->engine, &o, &host, s, &s->net);
  if (rc != 0) {
    s->net = NULL;
    net_close(L, s);
    return lio_fail(L, rc);
  }
  lua_pushstring(L, acoro_net_location(s->net));
  push_incarnation(L, acoro_net_incarnation(s->net));
  lua_pushstring(L, acoro_net_listen_location(s->net));
  return 3;
}

static int n_stop(lua_State *L) {
  lnet_t *s = state_of(L);
  if (s->in_cb)
    return luaL_error(L, "acoro: the node cannot stop from its own handler");
  net_close(L, s);
  return 0;
}

static acoro_net_t *check_net(lua_State *L) {
  lnet_t *s = state_of(L);
  if (s->net == NULL)
    luaL_error(L, "acoro: no node is running (call acoro.node first)");
  return s->net;
}

/* Pushes true, or nil and a short word for the code; returns the count. */
static int push_result(lua_State *L, int rc) {
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  switch (rc) {
  case ACORO_ENOPEER:
    lua_pushliteral(L, "unreachable");
    break;
  case ACORO_EPEERBUSY:
    lua_pushliteral(L, "busy");
    break;
  default:
    lua_pushstring(L, acoro_strerror(rc));
  }
  return 2;
}

/* send(peer, data) -> true | nil, "unreachable" | "busy" | "too large" (over
 * ACORO_NET_MSG_MAX) */
static int n_send(lua_State *L) {
  acoro_net_t *net = check_net(L);
  uint64_t peer = (uint64_t)luaL_checknumber(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int rc = acoro_net_send(net, peer, data, len);
  if (rc == ACORO_EINVAL) {
    lua_pushnil(L);
    lua_pushliteral(L, "too large");
    return 2;
  }
  return push_result(L, rc);
}

/* connect(location, request) -> true | nil, message */
static int n_connect(lua_State *L) {
  acoro_net_t *net = check_net(L);
  const char *loc = luaL_checkstring(L, 1);
  uint64_t req = (uint64_t)luaL_checknumber(L, 2);
  return push_result(L, acoro_net_connect(net, loc, req));
}

static int n_close_peer(lua_State *L) {
  acoro_net_t *net = check_net(L);
  return push_result(
      L, acoro_net_close_peer(net, (uint64_t)luaL_checknumber(L, 1)));
}

/* linger(max_seconds) -> true | false: waits (blocking this thread, outside
 * the engine's run) until everything sent is written to the sockets, at
 * most max_seconds; the net thread does the writing meanwhile. */
static int n_linger(lua_State *L) {
  acoro_net_t *net = check_net(L);
  double max = luaL_checknumber(L, 1);
  uint64_t end = uv_hrtime() + (uint64_t)(max > 0 ? max * 1e9 : 0);
  while (acoro_net_queued(net) > 0) {
    if (uv_hrtime() >= end) {
      lua_pushboolean(L, 0);
      return 1;
    }
    uv_sleep(1);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int n_discover(lua_State *L) {
  int rc = acoro_net_discover(check_net(L));
  if (rc == ACORO_EINVAL) {
    lua_pushnil(L);
    lua_pushliteral(L, "discovery is off for this node");
    return 2;
  }
  return push_result(L, rc);
}

/* interfaces() -> {address, ...}: the IPv4 addresses of the interfaces
 * that are up, loopback ones left out, in libuv's order. */
static int n_interfaces(lua_State *L) {
  uv_interface_address_t *ifs;
  int n, i, k = 0;
  lua_newtable(L);
  if (uv_interface_addresses(&ifs, &n) != 0)
    return 1;
  for (i = 0; i < n; i++) {
    char buf[64];
    if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET)
      continue;
    if (uv_ip4_name(&ifs[i].address.address4, buf, sizeof buf) != 0)
      continue;
    lua_pushstring(L, buf);
    lua_rawseti(L, -2, ++k);
  }
  uv_free_interface_addresses(ifs, n);
  return 1;
}

/* test_version(major, minor): TESTS ONLY (spec/node_liveness_spec.lua, run
 * as `acoro -e 'require("acoro.core").net.test_version(9, 0)' ...`): the
 * node started next speaks that protocol version; (0, 0): this build's.
 * Not part of acoro.node's API and read by no node that does not call it. */
static int n_test_version(lua_State *L) {
  lnet_t *s = state_of(L);
  lua_Integer major = luaL_checkinteger(L, 1);
  lua_Integer minor = luaL_checkinteger(L, 2);
  if (major < 0 || major > 65535)
    return luaL_argerror(L, 1, "0..65535 expected");
  if (minor < 0 || minor > 65535)
    return luaL_argerror(L, 2, "0..65535 expected");
  s->test_major = (int)major;
  s->test_minor = (int)minor;
  return 0;
}

/* test_drop_pings(n): TESTS ONLY (spec/node_mesh_spec.lua, as
 * test_version): the node started next ignores the first n discovery pings
 * it hears, as if they were lost on the way. */
static int n_test_drop_pings(lua_State *L) {
  lua_Integer k = luaL_checkinteger(L, 1);
  if (k < 0 || k > 1000000)
    return luaL_argerror(L, 1, "0..1000000 expected");
  state_of(L)->test_drop_pings = (int)k;
  return 0;
}

/* gen_secret() -> a strong shared secret (acoro_net_gen_secret: 32 random
 * bytes as 64 hex digits) | nil, message. Needs no running node. */
static int n_gen_secret(lua_State *L) {
  char buf[2 * ACORO_NET_SECRET_BYTES + 1];
  int rc = acoro_net_gen_secret(buf, sizeof buf);
  if (rc != 0)
    return lio_fail(L, rc);
  lua_pushstring(L, buf);
  return 1;
}

static int state_gc(lua_State *L) {
  lnet_t *s = lua_touserdata(L, 1);
  stop_net(s);
  return 0;
}

void lnet_close(lua_State *L) {
  lnet_t *s;
  lua_getfield(L, LUA_REGISTRYINDEX, NET_KEY);
  s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (s != NULL)
    stop_net(s);
}

static const luaL_Reg net_funcs[] = {{"start", n_start},
                                     {"stop", n_stop},
                                     {"send", n_send},
                                     {"connect", n_connect},
                                     {"close_peer", n_close_peer},
                                     {"discover", n_discover},
                                     {"interfaces", n_interfaces},
                                     {"linger", n_linger},
                                     {"gen_secret", n_gen_secret},
                                     {"test_version", n_test_version},
                                     {"test_drop_pings", n_test_drop_pings},
                                     {NULL, NULL}};

void lnet_open(lua_State *L, acoro_engine_t *e) {
  const luaL_Reg *f;
  lnet_t *s;
  lua_getfield(L, LUA_REGISTRYINDEX, NET_KEY);
  s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (s == NULL) {
    s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->engine = e;
    s->thread_ref = s->handlers_ref = LUA_NOREF;
    if (luaL_newmetatable(L, NET_MT)) {
      lua_pushcfunction(L, state_gc);
      lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, NET_KEY);
  }
  lua_newtable(L);
  for (f = net_funcs; f->name != NULL; f++) {
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
}

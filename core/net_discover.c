/* net_discover.c: discovery of peers by UDP broadcast pings, on the NETWORK
 * THREAD. A ping is one fixed-size datagram (DISC_*: magic, version,
 * incarnation, location, name) that proves nothing; a node that hears one
 * from a node it has no link to opens a TCP link to it, and the handshake
 * decides. Anyone can send pings naming any port of its own address, so
 * connects are bounded (DISCOVERY LIMITS, net_internal.h): a token bucket
 * in all, no second try at a location whose discovered link failed
 * recently, refusals logged at most once a minute. Every node of a host binds
 * the same port with address reuse, so that broadcasts reach them all. */
#include "net_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int net_is_loopback(const char *host) {
  return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
         strcmp(host, "localhost") == 0;
}

/* One datagram at a time: libuv calls alloc then recv for each. */
static void on_dgram_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  acoro_net_t *n = h->data;
  (void)suggested;
  *buf = uv_buf_init(n->dgram, sizeof n->dgram);
}

/* A link to loc is open or opening (by what we dialled or what it said). */
static int linked_to(acoro_net_t *n, const char *loc) {
  link_t *l;
  for (l = n->links; l != NULL; l = l->next)
    if (!l->closing &&
        (strcmp(l->addr, loc) == 0 || strcmp(l->their_loc, loc) == 0))
      return 1;
  return 0;
}

void net_discover_failed(acoro_net_t *n, const char *location, double now) {
  struct disc_recent_s *r, *oldest = &n->disc_recent[0];
  int i;
  for (i = 0; i < DISC_RECENT; i++) {
    r = &n->disc_recent[i];
    if (strcmp(r->location, location) == 0) {
      r->at = now;
      return;
    }
    if (r->at < oldest->at)
      oldest = r;
  }
  snprintf(oldest->location, sizeof oldest->location, "%s", location);
  oldest->at = now;
}

/* Whether a ping from a node not linked may open a link now: not when
 * its location failed within DISC_REFUSED_S, nor past the token bucket.
 * What is ignored is counted and logged at most once a minute. */
static int admit(acoro_net_t *n, const char *loc) {
  double now = net_now();
  const char *why = NULL;
  int i;
  for (i = 0; i < DISC_RECENT; i++)
    if (n->disc_recent[i].at > 0 &&
        now - n->disc_recent[i].at < DISC_REFUSED_S &&
        strcmp(n->disc_recent[i].location, loc) == 0) {
      why = "its discovered link failed recently";
      break;
    }
  if (why == NULL) {
    n->disc_tokens += (now - n->disc_refill) * DISC_RATE;
    n->disc_refill = now;
    if (n->disc_tokens > DISC_BURST)
      n->disc_tokens = DISC_BURST;
    if (n->disc_tokens < 1)
      why = "over the rate of connects to discovered nodes";
    else
      n->disc_tokens -= 1;
  }
  if (why == NULL)
    return 1;
  n->disc_ignored++;
  if (net_quiet_ok(&n->disc_log_at, now))
    net_log(n, 1,
            "discovery: ignored a ping from %s: %s (%llu ignored so far; "
            "logged at most once a minute)",
            loc, why, (unsigned long long)n->disc_ignored);
  return 0;
}

/* Checks a ping without trusting anything in it (exact size, magic, major
 * version, printable fields, the location's host being the sender's
 * address), then connects to a node not known yet. */
static void on_dgram(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *addr, unsigned flags) {
  acoro_net_t *n = u->data;
  const unsigned char *d = (const unsigned char *)buf->base;
  char loc[FIELD], name[FIELD], src[48];
  const char *colon;
  uint64_t inc;
  link_t *l;
  if (nread != DISC_LEN || addr == NULL || (flags & UV_UDP_PARTIAL) ||
      addr->sa_family != AF_INET)
    return;
  if (memcmp(d, DISC_MAGIC, 8) != 0 ||
      (d[DISC_MAJOR] << 8 | d[DISC_MAJOR + 1]) != n->vmajor)
    return;
  inc = net_get64(d + DISC_INC);
  net_sanitize(loc, sizeof loc, (const char *)d + DISC_LOC, FIELD);
  net_sanitize(name, sizeof name, (const char *)d + DISC_NAME, FIELD);
  if (inc == n->inc && strcmp(loc, n->location) == 0)
    return; /* our own */
  if (uv_ip4_name((const struct sockaddr_in *)addr, src, sizeof src) != 0)
    return;
  colon = strrchr(loc, ':');
  if (colon == NULL || strlen(src) != (size_t)(colon - loc) ||
      memcmp(src, loc, strlen(src)) != 0)
    return;
  if (net_is_loopback(n->host) != net_is_loopback(src))
    return; /* a loopback node cannot peer with another host */
  if (net_peer_by_location(n, loc) != NULL || linked_to(n, loc))
    return;
  if (!admit(n, loc))
    return;
  net_log(n, 2, "discovered %s (%s)", loc, name);
  l = net_connect_to(n, loc, 0, 0);
  if (l != NULL)
    l->discovered = 1;
}

static void ping_to(acoro_net_t *n, const char *ip, const unsigned char *d) {
  struct sockaddr_in sa;
  uv_buf_t b = uv_buf_init((char *)d, DISC_LEN);
  int rc;
  if (uv_ip4_addr(ip, n->udp_port, &sa) != 0)
    return;
  rc = uv_udp_try_send(&n->udp, &b, 1, (const struct sockaddr *)&sa);
  if (rc < 0)
    net_log(n, 1, "discovery ping to %s failed: %s", ip, uv_strerror(rc));
}

/* Pings every IPv4 interface's broadcast address (only loopback's when
 * this node listens on loopback: others could not reach it). */
void net_discover_ping(acoro_net_t *n) {
  unsigned char d[DISC_LEN];
  uv_interface_address_t *ifs;
  int count, i;
  if (n->udp_port == 0)
    return;
  memset(d, 0, sizeof d);
  memcpy(d, DISC_MAGIC, 8);
  d[DISC_MAJOR] = (unsigned char)(n->vmajor >> 8);
  d[DISC_MAJOR + 1] = (unsigned char)n->vmajor;
  d[DISC_MINOR] = (unsigned char)(n->vminor >> 8);
  d[DISC_MINOR + 1] = (unsigned char)n->vminor;
  net_put64(d + DISC_INC, n->inc);
  memcpy(d + DISC_LOC, n->location, strlen(n->location));
  memcpy(d + DISC_NAME, n->name, strlen(n->name));
  if (net_is_loopback(n->host) || uv_interface_addresses(&ifs, &count) != 0) {
    ping_to(n, "127.255.255.255", d);
    return;
  }
  for (i = 0; i < count; i++) {
    char ip[INET_ADDRSTRLEN];
    struct in_addr bc;
    uint32_t a, m;
    if (ifs[i].address.address4.sin_family != AF_INET)
      continue;
    a = ntohl(ifs[i].address.address4.sin_addr.s_addr);
    m = ntohl(ifs[i].netmask.netmask4.sin_addr.s_addr);
    bc.s_addr = htonl(a | ~m);
    if (inet_ntop(AF_INET, &bc, ip, sizeof ip) != NULL)
      ping_to(n, ip, d);
  }
  uv_free_interface_addresses(ifs, count);
}

/* ENGINE THREAD, before the net thread starts: binds the shared port. */
int net_discover_start(acoro_net_t *n, int port) {
  struct sockaddr_in sa;
  int rc;
  if ((rc = uv_udp_init(&n->loop, &n->udp)) != 0)
    return rc;
  n->udp.data = n;
  n->udp_port = port;
  if ((rc = uv_ip4_addr("0.0.0.0", port, &sa)) != 0 ||
      (rc = uv_udp_bind(&n->udp, (const struct sockaddr *)&sa,
                        UV_UDP_REUSEADDR)) != 0 ||
      (rc = uv_udp_set_broadcast(&n->udp, 1)) != 0)
    return rc;
  return uv_udp_recv_start(&n->udp, on_dgram_alloc, on_dgram);
}

void net_discover_close(acoro_net_t *n) {
  if (n->udp_port != 0 && !uv_is_closing((uv_handle_t *)&n->udp))
    uv_close((uv_handle_t *)&n->udp, NULL);
}

/* net_discover.c: discovery of peers by UDP broadcast pings, on the NETWORK
 * THREAD. A ping is one fixed-size datagram (DISC_*: magic, version,
 * incarnation, location, name) that proves nothing; a node that hears one
 * from a node it has no link to opens a TCP link to it, and the handshake
 * decides. Anyone can send pings naming any port of its own address, so
 * connects are bounded (DISCOVERY LIMITS, net_internal.h): a token bucket
 * in all, a table of the locations heard of (what the bucket holds back
 * waits there, and is dialled on a later tick), quick retries only for a
 * location that answered with a valid HELLO, a long rest for the others,
 * refusals logged at most once a minute. So that a mesh converges without
 * help: nodes ping again now and then (RE-ANNOUNCEMENT: a ping lost, or
 * sent before another node listened, is made up for), and of a pair one
 * dials at once, the other later (DIAL ORIENTATION). Every node of a host
 * binds the same port with address reuse, so that broadcasts reach them
 * all. */
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

/* Jitter for retries and re-announcements, in [0, 1): xorshift64, seeded
 * at start (no need for more: it only spreads nodes' timers apart). */
static double jitter(acoro_net_t *n) {
  uint64_t x = n->disc_rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  n->disc_rng = x;
  return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

/* The slot of a location heard of: its own, else (make) a free one, else
 * the one resting longest past its time, else the one resting the
 * shortest (NULL when every slot is pending: the next ping tries again). */
static struct disc_loc_s *slot_of(acoro_net_t *n, const char *loc, int make) {
  struct disc_loc_s *s, *best = NULL;
  int i;
  for (i = 0; i < DISC_TABLE; i++) {
    s = &n->disc[i];
    if (s->location[0] != '\0' && strcmp(s->location, loc) == 0)
      return s;
  }
  if (!make)
    return NULL;
  for (i = 0; i < DISC_TABLE; i++) {
    s = &n->disc[i];
    if (s->location[0] == '\0')
      return s;
    if (!s->pending && (best == NULL || s->next < best->next))
      best = s;
  }
  if (best != NULL)
    memset(best, 0, sizeof *best);
  return best;
}

static void set_pending(acoro_net_t *n, struct disc_loc_s *s, double at) {
  if (!s->pending)
    n->disc_pending++;
  s->pending = 1;
  s->next = at;
}

/* Not pending any more; it rests until `until` (a ping before is
 * ignored). */
static void set_resting(acoro_net_t *n, struct disc_loc_s *s, double until) {
  if (s->pending)
    n->disc_pending--;
  s->pending = 0;
  s->next = until;
}

static void forget(acoro_net_t *n, struct disc_loc_s *s) {
  set_resting(n, s, 0);
  memset(s, 0, sizeof *s);
}

void net_discover_failed(acoro_net_t *n, const char *location, int answered,
                         double now) {
  struct disc_loc_s *s = slot_of(n, location, 1);
  double delay;
  if (s == NULL)
    return;
  if (s->location[0] == '\0')
    snprintf(s->location, sizeof s->location, "%s", location);
  if ((!answered && s->tries == 0) || s->tries >= DISC_RETRIES) {
    set_resting(n, s, now + DISC_REFUSED_S);
    return;
  }
  delay = DISC_RETRY_FIRST * (double)(1u << s->tries);
  if (delay > DISC_RETRY_MAX)
    delay = DISC_RETRY_MAX;
  s->tries++;
  set_pending(n, s, now + delay * (0.5 + 0.5 * jitter(n)));
}

/* The token bucket: 1 if a connect may go now (a token taken). */
static int take_token(acoro_net_t *n, double now) {
  n->disc_tokens += (now - n->disc_refill) * DISC_RATE;
  n->disc_refill = now;
  if (n->disc_tokens > DISC_BURST)
    n->disc_tokens = DISC_BURST;
  if (n->disc_tokens < 1)
    return 0;
  n->disc_tokens -= 1;
  return 1;
}

/* Dials the pending locations whose time came, as far as the bucket
 * allows (the rest wait for the next tick). One with a peer up is
 * forgotten; one with a link opening rests (that link's end decides). */
static void pump(acoro_net_t *n, double now) {
  int i;
  for (i = 0; i < DISC_TABLE && n->disc_pending > 0; i++) {
    struct disc_loc_s *s = &n->disc[i];
    link_t *l;
    if (!s->pending || s->next > now)
      continue;
    if (net_peer_by_location(n, s->location) != NULL) {
      forget(n, s);
      continue;
    }
    if (linked_to(n, s->location)) {
      set_resting(n, s, now);
      continue;
    }
    if (!take_token(n, now))
      return;
    set_resting(n, s, now);
    l = net_connect_to(n, s->location, 0, 0);
    if (l != NULL)
      l->discovered = 1;
  }
}

/* DIAL ORIENTATION: of a pair that hear each other's pings, one dials at
 * once and the other only after DISC_DEFER if no link came by then, so
 * that a mesh starting together makes about one connect per pair, each
 * node about half of them (not all by the node that started first): the
 * lower of the two (incarnation, location) dials first when the parity of
 * their incarnations' XOR is 1, the higher one when it is 0. */
static int dials_first(const acoro_net_t *n, uint64_t inc, const char *loc) {
  uint64_t x = n->inc ^ inc;
  int lower = n->inc != inc ? n->inc < inc : strcmp(n->location, loc) < 0;
  x ^= x >> 32;
  x ^= x >> 16;
  x ^= x >> 8;
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return lower == (int)(x & 1);
}

/* A ping from a node not linked: remembered, and dialled now or later
 * (DIAL ORIENTATION), within the bucket; ignored while its location rests
 * after a failure. What is ignored is counted and logged at most once a
 * minute. */
static void heard(acoro_net_t *n, uint64_t inc, const char *loc,
                  const char *name) {
  double now = net_now();
  struct disc_loc_s *s = slot_of(n, loc, 1);
  const char *why = NULL;
  if (s == NULL) {
    why = "too many nodes waiting to be dialled";
  } else if (s->location[0] == '\0') {
    snprintf(s->location, sizeof s->location, "%s", loc);
    net_log(n, 2, "discovered %s (%s)", loc, name);
    set_pending(n, s,
                dials_first(n, inc, loc)
                    ? now
                    : now + DISC_DEFER * (0.5 + 0.5 * jitter(n)));
  } else if (!s->pending && now >= s->next) {
    set_pending(n, s, now);
  } else if (!s->pending) {
    why = "its discovered link failed recently";
  }
  if (why != NULL) {
    n->disc_ignored++;
    if (net_quiet_ok(&n->disc_log_at, now))
      net_log(n, 1,
              "discovery: ignored a ping from %s: %s (%llu ignored so far; "
              "logged at most once a minute)",
              loc, why, (unsigned long long)n->disc_ignored);
    return;
  }
  pump(n, now);
}

void net_discover_tick(acoro_net_t *n, double now) {
  if (n->udp_port == 0)
    return;
  if (n->disc_pending > 0)
    pump(n, now);
  if (n->announce > 0 && now >= n->announce_at) {
    net_discover_ping(n);
    n->announce_gap *= 2;
    if (n->announce_gap > n->announce)
      n->announce_gap = n->announce;
    n->announce_at = now + n->announce_gap * (0.75 + 0.5 * jitter(n));
  }
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
  if (n->disc_drop > 0) {
    n->disc_drop--; /* a test's lost datagram */
    return;
  }
  heard(n, inc, loc, name);
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
  n->disc_rng = (n->inc ^ uv_hrtime()) | 1;
  n->announce_gap = n->announce < ANNOUNCE_FIRST ? n->announce : ANNOUNCE_FIRST;
  n->announce_at = net_now() + n->announce_gap * (0.75 + 0.5 * jitter(n));
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

/* test-net-mesh.c: many nets of one process in a mesh (core/net.c LIVENESS,
 * core/net_discover.c): one link per pair however the pairs connect,
 * discovery that converges, and heartbeats only on links without traffic. */
#include "net_support.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MESH 6

/* A UDP port free now on 127.0.0.1 (a discovery port for this test). */
static int free_udp_port(void) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int fd = socket(AF_INET, SOCK_DGRAM, 0), port = 0;
  if (fd < 0)
    return 0;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

/* Every side has MESH - 1 peers up and exactly as many links open (the
 * pairs' other links closed). */
static int settled(side_t *s) {
  acoro_net_stats_t st;
  int i;
  for (i = 0; i < MESH; i++) {
    acoro_net_stats(s[i].net, &st);
    if (s[i].ups != MESH - 1 || st.peers != MESH - 1 || st.links != MESH - 1)
      return 0;
  }
  return 1;
}

static void check_settled(side_t *s) {
  acoro_net_stats_t st;
  int i;
  for (i = 0; i < MESH; i++) {
    acoro_net_stats(s[i].net, &st);
    if (st.links != MESH - 1 || s[i].ups != MESH - 1)
      fprintf(stderr, "side %d: %u links, %d ups\n%s", i, st.links, s[i].ups,
              s[i].logs);
    ASSERT_EQ(st.links, MESH - 1);
    ASSERT_EQ(st.peers, MESH - 1);
    ASSERT_EQ(s[i].ups, MESH - 1);
    ASSERT_EQ(s[i].downs, 0);
  }
}

static void finish(acoro_engine_t *e, side_t *s) {
  int i;
  for (i = 2; i < MESH; i++)
    nt_stop_side(&s[i]);
  nt_finish(e, &s[0], &s[1]);
}

/* Every net dials every other in the same turn: each pair is dialled both
 * ways at once, every request ends with the pair's peer, and each pair
 * keeps one link. */
TEST(net_mesh_simultaneous_connects_keep_one_link_per_pair) {
  acoro_engine_t *e = nt_engine();
  side_t s[MESH];
  acoro_net_opts_t o = nt_opts("s3cret");
  int i, j;
  memset(s, 0, sizeof s);
  for (i = 0; i < MESH; i++)
    nt_start(e, &s[i], &o);
  for (i = 0; i < MESH; i++)
    for (j = 0; j < MESH; j++)
      if (i != j)
        ASSERT_EQ(acoro_net_connect(s[i].net, acoro_net_location(s[j].net),
                                    (uint64_t)j),
                  0);
  PUMP_UNTIL(e, 20, settled(s));
  check_settled(s);
  for (i = 0; i < MESH; i++) {
    ASSERT_EQ(s[i].connects, MESH - 1);
    ASSERT_EQ(s[i].connect_status, 0);
  }
  finish(e, s);
}

/* Discovery alone: nets started together on one discovery port find each
 * other (a dial at once or, for the other of the pair, after a wait) and
 * end with one link per pair. */
TEST(net_mesh_discovery_converges_with_one_link_per_pair) {
  acoro_engine_t *e = nt_engine();
  side_t s[MESH];
  acoro_net_opts_t o = nt_opts("s3cret");
  int i;
  memset(s, 0, sizeof s);
  o.discover_port = free_udp_port();
  ASSERT_TRUE(o.discover_port > 0);
  for (i = 0; i < MESH; i++)
    nt_start(e, &s[i], &o);
  PUMP_UNTIL(e, 30, settled(s));
  check_settled(s);
  finish(e, s);
}

static uint64_t hb_out(side_t *s) {
  acoro_net_stats_t st;
  acoro_net_stats(s->net, &st);
  return st.heartbeats_out;
}

/* Traffic is life: a sends messages (small ones written directly by this
 * thread, large ones by the net thread) at an eighth of the heartbeat
 * interval; b only receives. b keeps sending heartbeats, a next to none
 * (at most a quarter of b's: where its first messages fall, or a stall of
 * this loaded thread); once a stops, its heartbeats come back. */
TEST(net_link_with_traffic_sends_no_heartbeats) {
  acoro_engine_t *e = nt_engine();
  side_t a = {0}, b = {0};
  acoro_net_opts_t o = nt_opts("s3cret");
  static char big[20000];
  uint64_t a0, b0, a1, b1;
  uint32_t seq = 0;
  double next = 0, end;
  o.heartbeat = 0.4;
  nt_start_pair(e, &a, &b, &o);
  a0 = hb_out(&a);
  b0 = hb_out(&b);
  end = nt_now() + 60; /* the safety net */
  while (hb_out(&b) < b0 + 8 && nt_now() < end) {
    if (nt_now() >= next) {
      if (seq % 5 == 4) {
        nt_put_seq(big, seq++);
        ASSERT_EQ(acoro_net_send(a.net, a.peer, big, sizeof big), 0);
      } else {
        nt_send_seq(&a, seq++, 8);
      }
      next = nt_now() + o.heartbeat / 8;
    }
    uv_run(acoro_engine_loop(e), UV_RUN_ONCE);
  }
  a1 = hb_out(&a);
  b1 = hb_out(&b);
  ASSERT_TRUE(b1 >= b0 + 8);
  if (a1 - a0 > (b1 - b0) / 4)
    fprintf(stderr, "a sent %llu heartbeats while b sent %llu\n",
            (unsigned long long)(a1 - a0), (unsigned long long)(b1 - b0));
  ASSERT_TRUE(a1 - a0 <= (b1 - b0) / 4);
  PUMP_UNTIL(e, 10, b.msgs == seq);
  ASSERT_EQ(b.msgs, seq);
  ASSERT_EQ(b.order_broken, 0);
  /* Idle again: a's heartbeats resume, and the link stays up. */
  PUMP_UNTIL(e, 20, hb_out(&a) >= a1 + 3);
  ASSERT_TRUE(hb_out(&a) >= a1 + 3);
  ASSERT_EQ(a.downs + b.downs, 0);
  nt_finish(e, &a, &b);
}

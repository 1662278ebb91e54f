/* net_support.c: the harness the peer-link tests share (net_support.h):
 * host callbacks that record into a side_t, and the steps every test of a
 * link takes (start, link, refuse, exchange, finish). */
#include "net_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

double nt_now(void) { return (double)uv_hrtime() * 1e-9; }

uint8_t nt_big_byte(size_t i) { return (uint8_t)(i * 7 + 3); }

void nt_put_seq(char *buf, uint32_t seq) {
  buf[0] = (char)(seq >> 24);
  buf[1] = (char)(seq >> 16);
  buf[2] = (char)(seq >> 8);
  buf[3] = (char)seq;
}

static void on_up(void *d, uint64_t peer, const char *loc, const char *name,
                  uint64_t inc) {
  side_t *s = d;
  (void)name;
  (void)inc;
  snprintf(s->up_location, sizeof s->up_location, "%s", loc);
  s->ups++;
  s->peer = peer;
}

static void on_down(void *d, uint64_t peer, const char *reason) {
  side_t *s = d;
  (void)peer;
  if (s->exit_on_down)
    _exit(0);
  s->downs++;
  snprintf(s->down_reason, sizeof s->down_reason, "%s", reason);
}

/* Checks big messages against nt_big_byte and small ones' sequence. */
static void on_msg(void *d, uint64_t peer, const char *m, size_t len) {
  side_t *s = d;
  const unsigned char *u = (const unsigned char *)m;
  if (len >= (1u << 20)) {
    size_t i;
    for (i = 0; i < len; i++)
      if (u[i] != nt_big_byte(i)) {
        s->big_broken = 1;
        break;
      }
    s->bigs++;
  } else if (len >= 4) {
    uint32_t seq = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
                   (uint32_t)u[2] << 8 | u[3];
    if (seq != s->next_seq)
      s->order_broken = 1;
    s->next_seq = seq + 1;
  }
  s->msgs++;
  if (s->echo)
    acoro_net_send(s->net, peer, m, len);
}

static void on_connect(void *d, uint64_t req, int status, uint64_t peer,
                       const char *reason) {
  side_t *s = d;
  (void)req;
  s->connects++;
  s->connect_status = status;
  s->connect_peer = peer;
  snprintf(s->connect_reason, sizeof s->connect_reason, "%s",
           reason ? reason : "");
}

static void on_writable(void *d, uint64_t peer) {
  side_t *s = d;
  (void)peer;
  s->writables++;
}

/* Keeps every line (a test prints them when it fails); NET_TEST_VERBOSE
 * also prints them as they come, with the process and the side. */
static void on_log(void *d, int level, const char *line) {
  side_t *s = d;
  size_t have = strlen(s->logs);
  (void)level;
  if (getenv("NET_TEST_VERBOSE"))
    fprintf(stderr, "[%d %p] %s\n", (int)getpid(), d, line);
  snprintf(s->logs + have, sizeof s->logs - have, "%s\n", line);
}

const acoro_net_host_t nt_host = {on_up,      on_down,     on_msg,
                                  on_connect, on_writable, on_log};

static uv_timer_t pump_timer;
static void on_pump_timer(uv_timer_t *t) { (void)t; }

acoro_engine_t *nt_engine(void) {
  acoro_engine_t *e = test_engine();
  uv_timer_init(acoro_engine_loop(e), &pump_timer);
  uv_timer_start(&pump_timer, on_pump_timer, 10, 10);
  return e;
}

acoro_net_opts_t nt_opts(const char *secret) {
  acoro_net_opts_t o;
  memset(&o, 0, sizeof o);
  o.host = "127.0.0.1";
  o.secret = secret;
  o.secret_len = secret ? strlen(secret) : 0;
  return o;
}

void nt_start(acoro_engine_t *e, side_t *s, const acoro_net_opts_t *o) {
  ASSERT_EQ(acoro_net_start(e, o, &nt_host, s, &s->net), 0);
}

int nt_has(const char *hay, const char *needle) {
  return strstr(hay, needle) != NULL;
}

void nt_link_pair(acoro_engine_t *e, side_t *a, side_t *b) {
  int connects = a->connects, ups_a = a->ups, ups_b = b->ups;
  ASSERT_EQ(acoro_net_connect(a->net, acoro_net_location(b->net), 7), 0);
  PUMP_UNTIL(e, 10, a->connects > connects && a->ups > ups_a && b->ups > ups_b);
  if (a->connect_status != 0)
    fprintf(stderr, "%s\n%s\n%s\n", a->connect_reason, a->logs, b->logs);
  ASSERT_EQ(a->connects, connects + 1);
  ASSERT_EQ(a->connect_status, 0);
  ASSERT_EQ(a->ups, ups_a + 1);
  ASSERT_EQ(b->ups, ups_b + 1);
  ASSERT_EQ(a->connect_peer, a->peer);
}

void nt_start_pair(acoro_engine_t *e, side_t *a, side_t *b,
                   const acoro_net_opts_t *o) {
  nt_start(e, a, o);
  nt_start(e, b, o);
  nt_link_pair(e, a, b);
}

void nt_expect_refused(acoro_engine_t *e, side_t *a, side_t *b,
                       const char *a_says, const char *b_says) {
  ASSERT_EQ(acoro_net_connect(a->net, acoro_net_location(b->net), 1), 0);
  PUMP_UNTIL(e, 10,
             a->connects == 1 && nt_has(b->logs, b_says) &&
                 nt_has(a->logs, a_says));
  if (a->connects != 1 || !nt_has(a->connect_reason, a_says) ||
      !nt_has(a->logs, a_says) || !nt_has(b->logs, b_says)) {
    fprintf(stderr, "a: %s\na logs:\n%sb logs:\n%s", a->connect_reason, a->logs,
            b->logs);
    ASSERT_TRUE(0);
  }
  ASSERT_TRUE(a->connect_status < 0);
  ASSERT_EQ(a->ups + b->ups, 0);
}

void nt_simultaneous_connect(acoro_engine_t *e, side_t *a, side_t *b) {
  acoro_net_stats_t sa, sb;
  uint32_t i;
  ASSERT_EQ(acoro_net_connect(a->net, acoro_net_location(b->net), 1), 0);
  ASSERT_EQ(acoro_net_connect(b->net, acoro_net_location(a->net), 2), 0);
  PUMP_UNTIL(e, 10, a->connects == 1 && b->connects == 1);
  if (a->connect_status != 0 || b->connect_status != 0)
    fprintf(stderr, "%s / %s\n%s%s", a->connect_reason, b->connect_reason,
            a->logs, b->logs);
  ASSERT_EQ(a->connect_status, 0);
  ASSERT_EQ(b->connect_status, 0);
  PUMP_UNTIL(e, 10,
             (acoro_net_stats(a->net, &sa), acoro_net_stats(b->net, &sb),
              sa.links == 1 && sb.links == 1));
  ASSERT_EQ(sa.links, 1);
  ASSERT_EQ(sb.links, 1);
  ASSERT_EQ(a->ups, 1);
  ASSERT_EQ(b->ups, 1);
  ASSERT_EQ(a->connect_peer, a->peer);
  ASSERT_EQ(b->connect_peer, b->peer);
  for (i = 0; i < 1000; i++) {
    nt_send_seq(a, i, 20);
    nt_send_seq(b, i, 20);
  }
  PUMP_UNTIL(e, 10, a->msgs == 1000 && b->msgs == 1000);
  ASSERT_EQ(a->msgs, 1000);
  ASSERT_EQ(b->msgs, 1000);
  ASSERT_EQ(a->order_broken + b->order_broken, 0);
  ASSERT_EQ(a->downs + b->downs, 0);
}

void nt_send_seq(side_t *s, uint32_t seq, size_t len) {
  char buf[512];
  ASSERT_TRUE(len >= 4 && len <= sizeof buf);
  memset(buf, 'x', sizeof buf);
  nt_put_seq(buf, seq);
  ASSERT_EQ(acoro_net_send(s->net, s->peer, buf, len), 0);
}

int nt_raw_connect(const char *location) {
  struct sockaddr_in sa;
  const char *colon = strrchr(location, ':');
  int fd;
  if (colon == NULL)
    return -1;
  fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)atoi(colon + 1));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

void nt_stop_side(side_t *s) {
  if (s->net)
    acoro_net_stop(s->net);
  acoro_tls_ctx_free(s->srv);
  acoro_tls_ctx_free(s->cli);
  memset(s, 0, sizeof *s);
}

void nt_finish(acoro_engine_t *e, side_t *a, side_t *b) {
  if (a)
    nt_stop_side(a);
  if (b)
    nt_stop_side(b);
  acoro_engine_free(e);
  LEAK_CHECK();
}

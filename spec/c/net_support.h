/* net_support.h: what the C tests of peer links (test-net.c over plain TCP,
 * test-net-tls.c over TLS) share: a side_t recording what one net's host
 * callbacks saw, an engine whose loop a timer keeps turning, PUMP_UNTIL, and
 * helpers to start, link, refuse, send numbered messages and finish.
 * ENGINE THREAD ONLY: the test's own thread is the engine thread. */
#ifndef ACORO_NET_SUPPORT_H
#define ACORO_NET_SUPPORT_H

#include "test.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The C tests run with leak checking on: a test that _exits (or ends
 * normally) asks LeakSanitizer itself, at the end of nt_finish. */
#if defined(__SANITIZE_ADDRESS__)
int __lsan_do_recoverable_leak_check(void);
#define LEAK_CHECK() ASSERT_EQ(__lsan_do_recoverable_leak_check(), 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

/* What one net saw, through its callbacks (engine thread). srv/cli: its
 * TLS contexts (NULL: plain), freed by nt_stop_side. */
typedef struct side_s {
  acoro_net_t *net;
  acoro_tls_ctx_t *srv, *cli;
  int ups, downs, connects, writables;
  int connect_status;
  uint64_t peer, connect_peer;
  char down_reason[256], connect_reason[256];
  char up_location[64]; /* the location the last peer up announced */
  char logs[16384];
  uint64_t msgs, bigs;
  uint32_t next_seq;
  int order_broken, big_broken;
  int echo;         /* send every message back to its sender */
  int exit_on_down; /* _exit(0) when a peer goes down (a forked node) */
} side_t;

/* The callbacks, each recording into the side_t given as cb_data. */
extern const acoro_net_host_t nt_host;

double nt_now(void);

/* Messages of 1 MB and more carry this pattern (on_msg checks it); smaller
 * ones start with a 4-byte big-endian sequence number (nt_put_seq). */
uint8_t nt_big_byte(size_t i);
void nt_put_seq(char *buf, uint32_t seq);

/* An engine whose loop a 10 ms timer keeps turning while a test pumps it. */
acoro_engine_t *nt_engine(void);

/* Runs the engine's loop (this thread is the engine thread) until expr
 * holds or secs have passed. */
#define PUMP_UNTIL(e, secs, expr)                                              \
  do {                                                                         \
    double end_ = nt_now() + (secs);                                           \
    while (!(expr) && nt_now() < end_)                                         \
      uv_run(acoro_engine_loop(e), UV_RUN_ONCE);                               \
  } while (0)

/* Options for 127.0.0.1, an ephemeral port and secret (NULL: none). */
acoro_net_opts_t nt_opts(const char *secret);
void nt_start(acoro_engine_t *e, side_t *s, const acoro_net_opts_t *o);
int nt_has(const char *hay, const char *needle);

/* a connects to b; both see one more peer up. */
void nt_link_pair(acoro_engine_t *e, side_t *a, side_t *b);
/* Starts a and b with the same options o and links them (nt_link_pair). */
void nt_start_pair(acoro_engine_t *e, side_t *a, side_t *b,
                   const acoro_net_opts_t *o);

/* a connects to b and is refused: a's connect fails with a reason holding
 * a_says, which a also logs; b logs a line holding b_says. */
void nt_expect_refused(acoro_engine_t *e, side_t *a, side_t *b,
                       const char *a_says, const char *b_says);

/* a and b, started and not linked, connect to each other in the same turn:
 * each ends with one peer and one link, and 1000 messages each way arrive
 * once and in order. */
void nt_simultaneous_connect(acoro_engine_t *e, side_t *a, side_t *b);

/* Sends a message of len bytes (4 .. 512) numbered seq to s->peer. */
void nt_send_seq(side_t *s, uint32_t seq, size_t len);

/* A blocking TCP connection to 127.0.0.1:port of location; -1 if none. */
int nt_raw_connect(const char *location);

/* Stops s's net, frees its TLS contexts and clears it. */
void nt_stop_side(side_t *s);

/* Stops a and b (either may be NULL), frees e and checks for leaks. */
void nt_finish(acoro_engine_t *e, side_t *a, side_t *b);

#endif

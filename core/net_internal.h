/* net_internal.h: the peer transport's private structures, shared by
 * net.c (threads, queues, events, the API), net_link.c (one connection:
 * opening, reading, writing, closing), net_handshake.c (its handshake),
 * net_eread.c, net_tls.c and net_discover.c; the frame format is
 * net_frame.h's. See net.c's top comment for the design. */
#ifndef ACORO_NET_INTERNAL_H
#define ACORO_NET_INTERNAL_H

#include "internal.h"
#include "net_frame.h"

#include <string.h>

#define BATCH (256u * 1024)
#define DIRECT_MAX (16u * 1024) /* largest message written directly */
#define EREAD_ROOM (64u * 1024) /* an engine read's free room */
#define READ_ROOM (64u * 1024)
#define CHAL_LEN 32
#define PROOF_LEN 32
#define FIELD 64
#define CTL_MAX 1024
#define REFUSE_TEXT_MAX 200
/* UNAUTHENTICATED INBOUND LINKS (net_handshake.c net_hs_admit): at most this
 * many in all and from one source address; a newcomer past either bound closes
 * the oldest idle one (fewest bytes sent, longest silent) instead of being
 * refused. Outbound links this node started are never counted. */
#define MAX_HANDSHAKING 64
#define MAX_HANDSHAKING_PER_SOURCE 32
#define MAGIC "ACORONET"
/* HANDSHAKE (net.c's top comment): PROOF = HMAC-SHA256(key, PROOF_LABEL,
 * direction byte, HELLO_I, HELLO_A, TLS binding). */
#define PROOF_LABEL "acoro-net-v3"
#define KEY_LEN 32
/* The key from the secret: scrypt (N, r, p) with a fixed salt that names
 * the protocol version, so that both sides derive the same key. */
#define KDF_SALT "acoro-net-kdf-v3"
#define KDF_N 16384u
#define KDF_R 8u
#define KDF_P 1u
#define WEAK_SECRET 16 /* shorter secrets get a warning at start */
/* TLS channel binding (RFC 5705 exporter) bound into the proofs. */
#define BINDING_LABEL "EXPORTER-acoro-net-v3"
#define BINDING_LEN 32
/* Logs that an attacker could repeat at will (evictions, discovery
 * refusals): at most one line a minute each. */
#define QUIET_S 60.0
/* HELLO payload layout (all integers big-endian). */
#define HELLO_MAGIC 0
#define HELLO_MAJOR 8
#define HELLO_MINOR 10
#define HELLO_INC 12
#define HELLO_CHAL 20
#define HELLO_FLAGS 52
#define HELLO_LOC 56
#define HELLO_NAME (HELLO_LOC + FIELD)
#define HELLO_LEN (HELLO_NAME + FIELD)
/* Discovery datagram (fixed size; anything else is ignored). */
#define DISC_MAGIC "ACORODSC"
#define DISC_MAJOR 8
#define DISC_MINOR 10
#define DISC_INC 12
#define DISC_LOC 20
#define DISC_NAME (DISC_LOC + FIELD)
#define DISC_LEN (DISC_NAME + FIELD)
/* DISCOVERY LIMITS (net_discover.c): connects to discovered nodes, a token
 * bucket of DISC_BURST refilled at DISC_RATE a second. A location heard of
 * is remembered (DISC_TABLE slots) until a peer is up there: pings past the
 * bucket wait their turn there instead of being dropped. A discovered link
 * that failed after the other side answered with a valid HELLO (an acoro
 * node of this version, busy or evicting: the bounds of UNAUTHENTICATED
 * INBOUND LINKS), or failed in any way after such a failure, is tried
 * again after DISC_RETRY_FIRST seconds, doubling to DISC_RETRY_MAX, each
 * delay jittered (half to all of it), at most DISC_RETRIES times; one that
 * failed otherwise (nothing listening, closed or timed out without a
 * HELLO, refused for its version or secret) is not tried again for
 * DISC_REFUSED_S seconds. A ping from a node whose pair
 * should be dialled by the other side (DIAL ORIENTATION, net_discover.c)
 * is dialled only after DISC_DEFER seconds (jittered) if no link came. */
#define DISC_RATE 8.0
#define DISC_BURST 32.0
#define DISC_REFUSED_S 30.0
#define DISC_RETRY_FIRST 0.25
#define DISC_RETRY_MAX 8.0
#define DISC_RETRIES 8
#define DISC_DEFER 2.0
#define DISC_TABLE 512
/* IDLE LINKS (net.c LIVENESS): a link on which no message went either way
 * for IDLE_AFTER heartbeat periods sends its heartbeats every IDLE_FACTOR
 * periods, and its peer is down after `missed` such longer periods. */
#define IDLE_AFTER 8
#define IDLE_FACTOR 5
/* RE-ANNOUNCEMENT (net_discover.c): after the ping at start, pings again
 * after ANNOUNCE_FIRST seconds, doubling up to the node's announce
 * interval (acoro_net_opts_t announce), each jittered by +-25%. */
#define ANNOUNCE_FIRST 0.5
#define ANNOUNCE_DEFAULT 60.0
/* Peers dialled whose failures are remembered (QUIET DIALS). */
#define DIAL_FAIL_SLOTS 32

/* REFUSE codes; any other: log the text. WRONG: the acceptor's answer to a
 * proof that did not check (the initiator says so as the acceptor does). */
enum { REFUSE_DUP = 1, REFUSE_WRONG = 2 };

enum {
  CMD_SEND,
  CMD_CONNECT,
  CMD_CLOSE,
  CMD_DISCOVER,
  CMD_RESUME_READ,
  CMD_EREAD_BACK
};
/* EV_READ (net_eread.c): the engine thread reads the peer's socket from now
 * on; status: a dup of the socket the event owns, req: the hand-over's
 * generation. */
enum { EV_UP, EV_DOWN, EV_MSG, EV_CONNECT, EV_WRITABLE, EV_LOG, EV_READ };
/* RESOLVING/CONNECTING: outbound, before the socket is connected; HELLO:
 * waiting for the other's HELLO; PROOF: for its PROOF; SELECT: proven,
 * waiting for the arbiter's word; UP: carries a peer's traffic. */
enum { L_RESOLVING, L_CONNECTING, L_HELLO, L_PROOF, L_SELECT, L_UP };

/* A command (engine -> net). SEND: data is the message (off: bytes of it
 * already in write batches); CONNECT: data is the location. */
typedef struct cmd_s {
  struct cmd_s *next;
  int kind;
  uint64_t peer, req;
  size_t len, off;
  char data[];
} cmd_t;

/* An event (net -> engine). text: UP "location\0name", DOWN/CONNECT the
 * reason, LOG the line. MSG: data, owned (freed with the event). */
typedef struct ev_s {
  struct ev_s *next;
  int kind, status;
  uint64_t peer, req, inc;
  char *data;
  size_t len;
  char text[];
} ev_t;

/* OWNERSHIP TABLE: who may touch each field of peer_t, link_t and
 * acoro_net_s (checked by tools/tsan). Four kinds:
 *   ONCE    written once before the readers can see it: the net's options
 *           before acoro_net_start creates the thread (uv_thread_create is
 *           a barrier), a peer's identity before link_up puts it on
 *           net->peers under mu; read-only after, on any thread.
 *   NET     NET THREAD ONLY: no lock.
 *   ENGINE  ENGINE THREAD ONLY: no lock.
 *   MU      SHARED: read and written under net->mu, on both threads.
 *
 * peer_t        next            MU; written by the net thread only, which
 *                               may read net->peers without the lock
 *               id inc location name                              ONCE
 *               link out_head out_tail                            NET
 *               queued want_writable (busy sends)                 MU
 *               dfd draw draw_len dwrites (DIRECT WRITES)         MU
 *               idle_fd ereading egen erx epend epend_len
 *               epend_cap emsgs (ENGINE READS)                    MU
 *               mb_paused mb_recent (MAILBOX FLOW CONTROL)        MU
 * link_t        every field                                       NET
 *               (the engine thread never sees a link: it reaches
 *               a peer's socket through p->dfd and its EV_READ dup)
 * acoro_net_s   engine cb cb_data host location listen_loc name key
 *               has_secret hb hs_timeout tick_s missed busy_limit
 *               inbound_limit mailbox_limit inc vmajor vminor
 *               tls_server
 *               tls_client no_eread udp_port spin_ns announce     ONCE
 *               eng_wake      ONCE; the net thread only uv_async_sends
 *                             it (thread-safe), the engine closes it
 *                             after the join
 *               wake          NET handle; the engine thread only
 *                             uv_async_sends it (thread-safe)
 *               loop listener tick udp dgram links dupwaits
 *               next_peer handshaking evict_log_at hs_log_at wakes
 *               disc_* (made on the engine thread before the
 *               thread starts, as ONCE)                           NET
 *               thread direct_cap readers                         ENGINE
 *               cmd_head cmd_tail ev_head ev_tail stopping stats
 *               ev_drains read_paused posts                       MU
 *               peers         MU; written by the net thread only
 * After acoro_net_stop's join the engine thread owns everything left. */

typedef struct link_s link_t;
typedef struct net_tls_s net_tls_t;
typedef struct peer_s {
  struct peer_s *next;
  uint64_t id, inc;
  char location[FIELD], name[FIELD];
  link_t *link;
  cmd_t *out_head, *out_tail;
  size_t queued;     /* SHARED: bytes sent and not yet written */
  int want_writable; /* SHARED: a send was refused as busy */
  /* SHARED (mutex), the DIRECT WRITE path (net.c acoro_net_send): dfd is
   * the link's socket while nothing is pending for the peer on the net
   * thread (no queued message, control frame or write in flight), else -1;
   * draw/draw_len: the rest of a frame a direct write left unwritten, which
   * the net thread writes before anything else. */
  int dfd;
  char *draw;
  size_t draw_len;
  uint64_t dwrites; /* SHARED: direct writes (LIVENESS: traffic) */
  uint64_t emsgs;   /* SHARED: messages the engine thread read (LIVENESS) */
  /* SHARED (mutex), ENGINE READS (net_eread.c). idle_fd: dfd's value while
   * the net thread has nothing pending for the peer (armed by arm_direct,
   * cleared with dfd by net_kick and queued sends): the engine thread arms
   * dfd again from it after its own reads, as on_read does. ereading: the
   * engine thread reads the socket (the net thread's read is stopped);
   * egen: counts hand-overs (a reader of an older one stops); erx: when
   * the engine last read bytes; epend: bytes it read that are not yet a
   * whole frame (the net thread takes them back first). */
  int idle_fd;
  int ereading;
  uint64_t egen;
  double erx;
  char *epend;
  size_t epend_len, epend_cap;
  /* SHARED (mutex): MAILBOX FLOW CONTROL (net.c) stopped reading it;
   * mb_recent: bytes it left in mailboxes since the node went over. */
  int mb_paused;
  size_t mb_recent;
} peer_t;

/* A connect request whose link lost a duplicate race: it ends when the
 * pair's chosen link comes up here, or at its deadline. */
typedef struct dupwait_s {
  struct dupwait_s *next;
  uint64_t req, inc;
  char location[FIELD];
  double deadline;
} dupwait_t;

struct link_s {
  uv_tcp_t tcp; /* data = the link */
  acoro_net_t *net;
  link_t *next, *prev;
  int state, outbound, has_req, closing, writing, shutting;
  uint64_t req;
  peer_t *peer;
  uv_getaddrinfo_t *gai; /* pending resolution (its data = the link) */
  uv_connect_t creq;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  char addr[FIELD];  /* the address connected to or accepted from */
  char src[48];      /* inbound: the source address (no port) */
  int discovered;    /* opened on a discovery ping (net_discover.c) */
  int answered;      /* the other's HELLO checked (and no wrong proof) */
  int authed;        /* the other's proof checked */
  uint64_t rx_bytes; /* bytes read from the socket (ever) */
  uint8_t my_chal[CHAL_LEN];
  /* HANDSHAKE: the HELLO this side sent (its half of the transcript);
   * pf_send: this side's proof, sent at once by the initiator and by the
   * acceptor only once the initiator's proof checked; pf_want: the other's
   * expected proof. */
  uint8_t my_hello[HELLO_LEN];
  uint8_t pf_send[PROOF_LEN], pf_want[PROOF_LEN];
  uint64_t their_inc;
  char their_loc[FIELD], their_name[FIELD];
  /* LIVENESS: last_tx: when a frame last went out (a write this thread
   * started, or the tick that saw the peer's dwrites move); last_msg: when
   * a message last went either way (IDLE LINKS); dwrites_seen, emsgs_seen:
   * the peer's dwrites and emsgs then. */
  double deadline, last_rx, last_tx, last_msg;
  uint64_t dwrites_seen, emsgs_seen;
  char *rbuf; /* unparsed bytes */
  size_t rlen, rcap;
  char *asm_buf; /* a split message being reassembled */
  size_t asm_len, asm_cap;
  int in_asm;
  char ctl[CTL_MAX]; /* control frames to write before any data */
  size_t ctl_len;
  char *wbuf;     /* the batch being written */
  size_t wdata;   /* message bytes in it */
  net_tls_t *tls; /* NULL on a plain link (net_tls.c) */
  /* ENGINE READS (net_eread.c): eread: reading is handed to the engine
   * thread; reclaimed/reclaim_drains: taken back from a busy engine, not
   * handed over again until the engine has drained its events since. */
  int eread, reclaimed;
  int read_paused; /* NET THREAD: stopped at inbound_limit (net.c) */
  uint64_t reclaim_drains;
};

struct acoro_net_s {
  acoro_engine_t *engine;
  acoro_net_host_t cb;
  void *cb_data;
  /* Options, fixed at start. */
  char host[FIELD], location[FIELD], name[FIELD];
  /* The listener's location; `location` is the one announced (the
   * ext_location option, or the same). */
  char listen_loc[FIELD];
  /* KEY: derived from the secret at start (the secret is not kept);
   * zeros without one. */
  unsigned char key[KEY_LEN];
  int has_secret;
  double hb, hs_timeout, tick_s;
  int missed;
  size_t busy_limit, inbound_limit, mailbox_limit;
  uint64_t inc;
  int vmajor, vminor;
  /* TLS on every link when set (both or neither); the caller's. */
  acoro_tls_ctx_t *tls_server, *tls_client;
  /* TESTS ONLY (acoro_net_opts_t test_no_engine_reads): no ENGINE READS. */
  int no_eread;
  /* SPIN BEFORE BLOCK (net.c net_thread): the engine's, at start. */
  uint64_t spin_ns;
  /* TESTS ONLY, ENGINE THREAD ONLY: a direct write offers at most this
   * many bytes of its frame, to make short writes happen at will;
   * spec/c/test-net.c sets it on a running net. (size_t)-1, set at
   * start: the whole frame. */
  size_t direct_cap;
  /* NET THREAD ONLY. */
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t wake;
  uv_timer_t tick;
  uv_thread_t thread;
  uv_udp_t udp; /* discovery, when udp_port */
  int udp_port;
  char dgram[DISC_LEN + 1];
  link_t *links;
  dupwait_t *dupwaits;
  uint64_t next_peer;
  int handshaking;
  uint64_t wakes;      /* on_wake's runs: commands from the engine */
  double evict_log_at; /* QUIET_S: the last eviction logged */
  double hs_log_at;    /* QUIET_S: the last inbound handshake timeout */
  /* DISCOVERY LIMITS: the token bucket, the locations heard of, quiet
   * logs; RE-ANNOUNCEMENT: announce (0: none), the next ping and delay. */
  double disc_tokens, disc_refill;
  struct disc_loc_s {
    char location[FIELD];
    double next; /* not dialled before (0: a free slot) */
    int pending; /* to be dialled at `next` (else: resting) */
    int tries;   /* failed dials after a HELLO, in a row */
  } disc[DISC_TABLE];
  int disc_pending; /* slots pending: the tick looks only when > 0 */
  double announce, announce_at, announce_gap;
  uint64_t hb_next;  /* LIVENESS: the next heartbeat boundary (ms) */
  uint64_t disc_rng; /* jitter (xorshift), seeded at start */
  int disc_drop;     /* TESTS ONLY: pings still to be ignored */
  double disc_log_at, disc_fail_log_at;
  uint64_t disc_ignored, disc_failed;
  /* QUIET DIALS (net_link.c): a peer this node dials that fails the same
   * way again is logged at most once per QUIET_S; a new reason, or a link
   * that came up, logs the next failure at once. */
  struct dial_fail_s {
    char addr[FIELD];
    char reason[FIELD];
    double at;
    uint64_t quiet; /* failures not logged since */
  } dial_fail[DIAL_FAIL_SLOTS];
  /* SHARED: under mu. peers: written by the net thread only. */
  uv_mutex_t mu;
  cmd_t *cmd_head, *cmd_tail;
  ev_t *ev_head, *ev_tail;
  peer_t *peers;
  int stopping;
  acoro_net_stats_t stats;
  uint64_t ev_drains; /* times the engine thread took the event queue */
  uint64_t posts;     /* events queued (net_post) */
  /* INBOUND FLOW CONTROL: a link stopped reading at inbound_limit; the
   * engine thread sends CMD_RESUME_READ once stats.inbound is below half. */
  int read_paused;
  /* ENGINE THREAD: an async on the engine's loop (malloc'd: its close
   * callback frees it, after the net is gone). */
  uv_async_t *eng_wake;
  struct ereader_s *readers; /* ENGINE READS (net_eread.c) */
};

static inline double net_now(void) { return (double)uv_hrtime() * 1e-9; }

/* Copies at most cap - 1 bytes of src (n bytes, stopping at a NUL) into dst
 * with every byte outside printable ASCII replaced: peer-supplied text goes
 * into logs. */
static inline void net_sanitize(char *dst, size_t cap, const char *src,
                                size_t n) {
  size_t i;
  for (i = 0; i < n && i + 1 < cap && src[i] != '\0'; i++)
    dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
  dst[i] = '\0';
}

/* net.c (NET THREAD unless said otherwise) */
ev_t *net_ev_new(int kind, uint64_t peer, const char *text, size_t extra);
void net_post(acoro_net_t *n, ev_t *ev); /* ANY THREAD */
void net_log(acoro_net_t *n, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void net_post_connect(acoro_net_t *n, uint64_t req, int status, uint64_t peer,
                      const char *reason);
void net_free_cmds(cmd_t *c);
peer_t *net_peer_by_key(acoro_net_t *n, uint64_t inc, const char *loc);
peer_t *net_peer_by_location(acoro_net_t *n, const char *loc);
void net_peer_gone(acoro_net_t *n, peer_t *p, const char *reason);
void net_account(acoro_net_t *n, peer_t *p, size_t bytes);
void net_stat_add(acoro_net_t *n, uint32_t *field, int d);
void net_push_cmd(acoro_net_t *n, cmd_t *c); /* mutex held */
/* ENGINE THREAD: runs the host callbacks for an event list and frees it. */
void net_run_events(acoro_net_t *n, ev_t *ev);
/* ENGINE THREAD, after a message from `peer` was delivered: MAILBOX FLOW
 * CONTROL (net.c) stops reading it if the mailboxes hold too much. */
void net_mb_check(acoro_net_t *n, uint64_t peer);
void net_free_events(ev_t *ev); /* closes EV_READ's fds too */

/* net_link.c (NET THREAD) */
void net_link_close(link_t *l, int level, int graceful, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void net_on_link_closed(uv_handle_t *h);
void net_ctl_frame(link_t *l, int type, const void *payload, size_t n);
void net_kick(link_t *l);
/* Returns the new link (NULL: none opened, e.g. a peer is up there). */
link_t *net_connect_to(acoro_net_t *n, const char *location, int has_req,
                       uint64_t req);
/* 1 when a line that an attacker could repeat may be logged now (at most
 * one every QUIET_S seconds per *last). */
int net_quiet_ok(double *last, double now);
void net_dial_up(acoro_net_t *n, const char *addr);
void net_on_connection(uv_stream_t *server, int status);
/* Reads again on the net thread: len bytes the engine read first, then
 * the socket. */
void net_link_resume_read(link_t *l, char *bytes, size_t len);

/* net_handshake.c (NET THREAD). begin: a fresh challenge (-1: no random
 * bytes); hello: queues this side's HELLO (kept for the proofs); frame: a
 * frame of a link not yet up, 0 if not expected there (malformed); refuse:
 * the other side's REFUSE, in any state; admit: bounds unauthenticated
 * inbound links, closing the idlest for room (a newcomer l is counted). */
int net_hs_begin(link_t *l);
void net_hs_hello(link_t *l);
int net_hs_frame(link_t *l, int type, const unsigned char *p, size_t len);
void net_hs_refuse(link_t *l, const unsigned char *p, size_t len);
void net_hs_admit(acoro_net_t *n, link_t *l);

/* net_eread.c, ENGINE READS. NET THREAD: */
void net_eread_handover(link_t *l); /* on_read done: hand reading over? */
void net_eread_tick(link_t *l, double now);         /* an up link, each tick */
void net_eread_back(acoro_net_t *n, uint64_t peer); /* CMD_EREAD_BACK */
/* ENGINE THREAD: */
void net_eread_start(acoro_net_t *n, ev_t *ev); /* EV_READ; takes its fd */
void net_eread_stop_peer(acoro_net_t *n, uint64_t peer);
void net_eread_stop_all(acoro_net_t *n);

void net_on_written(uv_write_t *req, int status);
/* Makes room for READ_ROOM more bytes in l->rbuf: 0, or -1 (no memory). */
int net_rbuf_room(link_t *l);

/* net_tls.c (NET THREAD): TLS on a link. start: makes the session (closes
 * the link and returns -1 on failure); in: the socket's bytes, returns the
 * plaintext count appended at rbuf + rlen (not yet added to rlen), or -1
 * when the link closed; flush: writes the records OpenSSL has ready when
 * no write is in flight; seal: replaces a plaintext batch by its records
 * (-1: closed); ended: the socket ended before TLS was open; closing: the
 * last bytes of a graceful close (control frames sealed, close_notify) in
 * a malloc'd *buf. */
int net_tls_start(link_t *l);
void net_tls_free(link_t *l);
int net_tls_is_open(const link_t *l);
void net_tls_raw_buffer(link_t *l, uv_buf_t *buf);
ssize_t net_tls_in(link_t *l, const char *raw, size_t n);
void net_tls_flush(link_t *l);
int net_tls_seal(link_t *l, char **buf, size_t *len);
void net_tls_ended(link_t *l, int status);
int net_tls_closing(link_t *l, char **buf, size_t *len);
/* The TLS session's exporter value (BINDING_LABEL) for the proofs: 0, or
 * -1 (not open). */
int net_tls_binding(link_t *l, unsigned char out[BINDING_LEN]);

/* net_discover.c. start: ENGINE THREAD, before the net thread runs. */
int net_is_loopback(const char *host);
int net_discover_start(acoro_net_t *n, int port);
void net_discover_ping(acoro_net_t *n);
void net_discover_close(acoro_net_t *n);
/* A discovered link to location failed before it was up; answered: the
 * other side had sent a valid HELLO (retried soon, DISCOVERY LIMITS). */
void net_discover_failed(acoro_net_t *n, const char *location, int answered,
                         double now);
/* The tick: pending dials whose time came (within the bucket), and the
 * re-announcement when due. */
void net_discover_tick(acoro_net_t *n, double now);

#endif /* ACORO_NET_INTERNAL_H */

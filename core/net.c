/* net.c: the peer transport. A network thread holds every connection to
 * other nodes; payloads are opaque bytes (the codec is the engine side's).
 * This file: threads, queues, events, peers, heartbeat tick and the API;
 * net_link.c: one connection (opening, reading, writes, closing);
 * net_handshake.c: its handshake and the pair's duplicate-link
 * arbitration; net_frame.h: the frame codec; net_internal.h: the
 * structures they share and who owns each field.
 *
 * THREADS AND QUEUES. acoro_net_start binds the listener, then starts the
 * NETWORK THREAD, which runs its own uv_loop (listener, connections, the
 * tick timer, the `wake` async). The engine thread talks to it only through
 * two mutex-protected FIFO queues:
 *   engine -> net: commands (SEND, CONNECT, CLOSE) + uv_async_send(&wake);
 *   net -> engine: events (UP, DOWN, MSG, CONNECT, WRITABLE, LOG) +
 *     uv_async_send(eng_wake), an async handle on the engine's loop, whose
 *     callback runs the host callbacks ON THE ENGINE THREAD.
 * The engine thread may be busy for seconds: the net thread keeps reading,
 * answering heartbeats and queueing events meanwhile.
 *
 * OWNERSHIP (field by field: net_internal.h's OWNERSHIP TABLE, which
 * tools/tsan checks). Links (TCP connections) and peers belong to the net
 * thread. A peer is on net->peers, a list changed only by the net thread and
 * only under the mutex, so that acoro_net_send (engine thread) can look a peer
 * up under the mutex; its `queued` and `want_writable` are SHARED (mutex). A
 * SEND command carries the message copy; the net thread moves it onto the
 * peer's out queue (per PEER, not per link: a link that loses a duplicate
 * race never carried data) and frees it once copied into a write batch.
 * acoro_net_stop joins the thread, then frees what the queues still hold.
 *
 * FRAMES: 4-byte big-endian length of what follows, 1 type byte, payload.
 * Before authentication only HELLO and PROOF (fixed sizes) and REFUSE (at
 * most 201 bytes of text, sanitised and only logged), length at most 4 KB;
 * after it at most 64 MB + 1. Types (FRAME_MAP): HELLO, PROOF, SELECT (the
 * arbiter chose this link), REFUSE (code byte + text, then close), HEARTBEAT
 * (empty), MSG (a whole message), PART/LAST (pieces of a message over 64 KB,
 * reassembled up to 64 MB before delivery).
 *
 * HANDSHAKE (protocol 3; docs/security.md says what it proves and what
 * not). The KEY is scrypt of the secret, derived once at start. Both sides
 * send HELLO at once (net_internal.h HELLO_*: magic, version major/minor,
 * incarnation, 32-byte random challenge, flags (bit 0: has a secret),
 * location and name in 64-byte NUL-padded fields) and keep the bytes they
 * sent. On the other's HELLO each checks magic, major version, secret flag,
 * "not myself" and that the challenge is not one it issued on any open link
 * (a reflection). The initiator then sends PROOF_I = HMAC-SHA256(key,
 * PROOF_LABEL, 'I', HELLO_I, HELLO_A, TLS binding or zeros); the acceptor
 * checks it (CRYPTO_memcmp) and only then sends PROOF_A (the same with
 * 'A'), or REFUSE(WRONG) and closes; the initiator checks PROOF_A. So the
 * acceptor never computes anything from the key for a client that has not
 * proved it holds it, and a proof made on one link (both HELLOs, so both
 * challenges and identities, and the direction) is worth nothing on any
 * other. Every failure is decided by each side alone, so both log one
 * line. Then the node with the lower (incarnation, location) is the
 * ARBITER of the pair: it takes the link up and sends SELECT, or, when the
 * pair already has a link up, sends REFUSE(DUP) and closes it (an arbiter
 * acceptor sends PROOF_A and its word in one write). The other side takes
 * a link up only on SELECT. So two nodes connecting to each other at once
 * keep exactly one link, and no data ever flows on the other. The whole
 * handshake has a deadline; unauthenticated inbound links are bounded per
 * source and in all (net_hs_admit: the idlest is closed for room). All
 * of it is net_handshake.c's.
 *
 * LIVENESS. Traffic is life: at each heartbeat boundary (every
 * `heartbeat` seconds) an up link on which no frame went out for half a
 * period (written by this thread, or directly by the engine thread) gets a
 * HEARTBEAT frame, so a link carrying messages sends none; any frame
 * received counts as life (bytes read, by this thread or the engine's;
 * never a hand-back of reading); `missed` periods without one, or an EOF
 * or error on the socket, takes the peer down (peer_down once). IDLE
 * LINKS (net_internal.h): a link on which no message went either way for
 * IDLE_AFTER periods heartbeats only every IDLE_FACTOR periods, and its
 * peer is down after `missed` of those: both ends see the same messages,
 * so they switch within a network delay of each other, and the side that
 * switches last still waits longer than the other's last short period.
 * One timer (the tick, every heartbeat / 4 s at most 0.25 s, which looks
 * at up links at the boundaries only) serves every link; its turns and
 * the boundaries fall on multiples of the monotonic
 * clock, so the nodes of a host tick together and a node's idle links get
 * their heartbeats in one burst and take them in one wake-up. At each
 * boundary an idle link gives its read buffers back (IDLE MEMORY): what it
 * keeps is its structures, not 64 KB buffers.
 *
 * WRITES. One uv_write per link at a time, of a batch: control frames
 * first (heartbeats are never stuck behind data), then queued messages in
 * order, coalesced, up to BATCH bytes; messages over CHUNK go as CHUNK-sized
 * pieces, so a 10 MB message holds a heartbeat back by one batch at most.
 *
 * DIRECT WRITES (the round-trip fast path). A send of at most DIRECT_MAX
 * bytes to a peer whose link is idle (net_link.c arm_direct: nothing
 * queued, in flight or still in the command queue) is written by the
 * ENGINE THREAD itself, under the mutex, as one MSG frame with a
 * non-blocking sendmsg to the link's socket (peer->dfd), skipping two
 * thread hand-offs. Order holds because the net thread disarms dfd under
 * the mutex before it writes anything and a queued send disarms it too;
 * a short write leaves the frame's rest in peer->draw, which the net
 * thread writes first. Each direct write disarms dfd; the net thread arms
 * it again when a frame comes in or the link goes idle, so replies go
 * direct while a stream of sends still coalesces into batches. The fd is
 * closed only after net_peer_gone has disarmed it under the mutex.
 *
 * ENGINE READS (net_eread.c, the other half of the fast path): once a
 * plain link's reads end on a frame boundary, the net thread stops reading
 * it and hands a dup of its socket to the engine thread (EV_READ), which
 * polls it on its own loop and delivers small messages at once, skipping
 * the net thread's wake-up and the event queue's. Anything else it meets
 * (a split message, a control frame, EOF, an error) goes back to the net
 * thread with the bytes it read; a busy engine that stops reading has the
 * socket taken back on the tick, so heartbeats still count.
 *
 * DISCOVERY (net_discover.c, optional): UDP pings on a shared port; a node
 * that hears one connects to the sender over TCP (the handshake decides),
 * within DISCOVERY LIMITS (net_internal.h) against forged pings.
 *
 * TLS (net_tls.c, with tls_server/tls_client contexts): every link of the
 * node runs TLS from its first byte; the HELLO/PROOF handshake runs inside
 * it once TLS is open (the TLS handshake is under the same deadline and a
 * 64 KB byte budget). Reads decrypt into the link's rbuf, so frames are
 * parsed as on a plain link; a write batch is sealed just before its
 * uv_write. TLS links never take the DIRECT WRITE or ENGINE READS paths. A
 * plain node and a TLS node refuse each other, each saying why (a TLS node
 * answers a plain HELLO with a plain REFUSE, which is read before
 * authentication).
 *
 * INBOUND FLOW CONTROL. While the engine reads a link it reads only as
 * fast as it delivers, so TCP pushes back on the sender. When the net
 * thread reads (a busy engine had reading taken back, a split message),
 * messages wait in the event queue: past inbound_limit bytes waiting
 * (stats.inbound, all peers), the link that delivered the last one stops
 * reading (link read_paused), and the engine thread, once it has taken
 * the wait below half, sends CMD_RESUME_READ, which restarts every paused
 * link. The sender's socket fills, then its queue, and its sends get
 * EPEERBUSY: memory stays bounded on both sides, as with Erlang's busy
 * distribution port. A paused link is not checked for missed heartbeats
 * (it is not read; the wait is this node's own): its clock restarts on
 * resume.
 *
 * MAILBOX FLOW CONTROL. The same pause, for messages already delivered
 * but not yet received: the host charges each message from a peer to the
 * engine (acoro_mb_charge_next) until it leaves its mailbox. Past
 * mailbox_limit bytes (all mailboxes), a peer that has left another
 * eighth of the limit in mailboxes since (mb_recent), or any peer that
 * delivers past twice the limit, is marked mb_paused (net_mb_check,
 * engine thread) and read no more: the net thread stops its link at its
 * next message (deliver), the engine's reader hands reading back first.
 * Back at half, the engine's drained hook clears every mark and count and
 * sends CMD_RESUME_READ. So the peer that floods is paused, whichever
 * coroutine it fills, and one that sends a little still gets through:
 * mailboxes hold at most twice the limit.
 *
 * SIZE: over 800 lines (about 1,000): 130 of them are this design note, the
 * transport's one description, which the other net files point to. The
 * code is the part of the transport both threads meet in (the queues and
 * their mutex, the event delivery, the peer table, the thread's loop and
 * the engine-side API with the direct-write fast path): kept in one file so
 * that every access to the shared state sits next to the lock rule it
 * follows. The event path (net_post to net_run_events, about 200 lines)
 * is the piece to move out first if it grows.
 */
#include "net_internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- events (NET THREAD posts, ENGINE THREAD delivers) ---- */

ev_t *net_ev_new(int kind, uint64_t peer, const char *text, size_t extra) {
  size_t tl = text ? strlen(text) : 0;
  ev_t *ev = calloc(1, sizeof *ev + tl + 1 + extra);
  if (ev == NULL)
    return NULL;
  ev->kind = kind;
  ev->peer = peer;
  if (text)
    memcpy(ev->text, text, tl);
  return ev;
}

/* OWNERSHIP: the queue takes ev (NULL: an allocation failed; dropped). */
void net_post(acoro_net_t *n, ev_t *ev) {
  if (ev == NULL)
    return;
  uv_mutex_lock(&n->mu);
  if (n->ev_tail)
    n->ev_tail->next = ev;
  else
    n->ev_head = ev;
  n->ev_tail = ev;
  n->posts++;
  uv_mutex_unlock(&n->mu);
  uv_async_send(n->eng_wake);
}

void net_log(acoro_net_t *n, int level, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  ev_t *ev;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ev = net_ev_new(EV_LOG, 0, buf, 0);
  if (ev)
    ev->status = level;
  net_post(n, ev);
}

void net_post_connect(acoro_net_t *n, uint64_t req, int status, uint64_t peer,
                      const char *reason) {
  ev_t *ev = net_ev_new(EV_CONNECT, peer, reason, 0);
  if (ev) {
    ev->req = req;
    ev->status = status;
  }
  net_post(n, ev);
}

/* A MSG event's data is inline (after the empty text) or its own block. */
static void ev_free(ev_t *ev) {
  if (ev->data != ev->text + 1)
    free(ev->data);
  free(ev);
}

void net_free_events(ev_t *ev) {
  while (ev) {
    ev_t *next = ev->next;
    if (ev->kind == EV_READ)
      close(ev->status);
    ev_free(ev);
    ev = next;
  }
}

void net_free_cmds(cmd_t *c) {
  while (c) {
    cmd_t *next = c->next;
    free(c);
    c = next;
  }
}

/* ENGINE THREAD: `taken` bytes of messages were delivered; below half the
 * limit, paused links read again (INBOUND FLOW CONTROL). A failed
 * allocation leaves read_paused set: the next delivery tries again. */
static void inbound_taken(acoro_net_t *n, size_t taken) {
  cmd_t *c = NULL;
  uv_mutex_lock(&n->mu);
  n->stats.inbound -= taken;
  if (n->read_paused && n->stats.inbound <= n->inbound_limit / 2 &&
      (c = calloc(1, sizeof *c)) != NULL) {
    n->read_paused = 0;
    c->kind = CMD_RESUME_READ;
    net_push_cmd(n, c);
  }
  uv_mutex_unlock(&n->mu);
  if (c != NULL)
    uv_async_send(&n->wake);
}

void net_mb_check(acoro_net_t *n, uint64_t peer) {
  acoro_engine_t *e = n->engine;
  size_t last = e->mb_last;
  peer_t *p;
  e->mb_last = 0;
  if (!e->mb_over)
    return;
  uv_mutex_lock(&n->mu);
  for (p = n->peers; p != NULL; p = p->next)
    if (p->id == peer) {
      p->mb_recent += last;
      if (!p->mb_paused && (p->mb_recent >= n->mailbox_limit / 8 ||
                            e->mb_remote >= 2 * n->mailbox_limit)) {
        p->mb_paused = 1;
        n->stats.read_pauses++;
      }
      break;
    }
  uv_mutex_unlock(&n->mu);
}

/* ENGINE THREAD, the engine's drained hook: the mailboxes are back at
 * half mailbox_limit; every peer paused for them reads again. */
static void mb_drained(void *data) {
  acoro_net_t *n = data;
  peer_t *p;
  cmd_t *c = NULL;
  int any = 0;
  uv_mutex_lock(&n->mu);
  for (p = n->peers; p != NULL; p = p->next) {
    p->mb_recent = 0;
    if (p->mb_paused) {
      p->mb_paused = 0;
      any = 1;
    }
  }
  if (any && (c = calloc(1, sizeof *c)) != NULL) {
    c->kind = CMD_RESUME_READ;
    net_push_cmd(n, c);
  }
  uv_mutex_unlock(&n->mu);
  if (c != NULL)
    uv_async_send(&n->wake);
}

/* ENGINE THREAD: runs the host's callbacks for every queued event, in
 * order. The list is taken whole first: callbacks may send. */
static void on_events(uv_async_t *h) {
  acoro_net_t *n = h->data;
  ev_t *ev;
  uv_mutex_lock(&n->mu);
  ev = n->ev_head;
  n->ev_head = n->ev_tail = NULL;
  n->ev_drains++;
  uv_mutex_unlock(&n->mu);
  net_run_events(n, ev);
}

void net_run_events(acoro_net_t *n, ev_t *ev) {
  ev_t *next;
  size_t taken = 0;
  const acoro_net_host_t *cb = &n->cb;
  for (; ev != NULL; ev = next) {
    next = ev->next;
    switch (ev->kind) {
    case EV_UP:
      if (cb->peer_up)
        cb->peer_up(n->cb_data, ev->peer, ev->text,
                    ev->text + strlen(ev->text) + 1, ev->inc);
      break;
    case EV_READ:
      net_eread_start(n, ev); /* takes the fd */
      break;
    case EV_DOWN:
      net_eread_stop_peer(n, ev->peer);
      if (cb->peer_down)
        cb->peer_down(n->cb_data, ev->peer, ev->text);
      break;
    case EV_MSG:
      taken += ev->len;
      if (cb->message)
        cb->message(n->cb_data, ev->peer, ev->data, ev->len);
      net_mb_check(n, ev->peer);
      break;
    case EV_CONNECT:
      if (cb->connect_done)
        cb->connect_done(n->cb_data, ev->req, ev->status, ev->peer,
                         ev->status == 0 ? NULL : ev->text);
      break;
    case EV_WRITABLE:
      if (cb->writable)
        cb->writable(n->cb_data, ev->peer);
      break;
    default:
      if (cb->log)
        cb->log(n->cb_data, ev->status, ev->text);
      break;
    }
    ev_free(ev);
  }
  if (taken > 0)
    inbound_taken(n, taken);
}

/* ---- peers (NET THREAD) ---- */

static peer_t *peer_by_id(acoro_net_t *n, uint64_t id) {
  peer_t *p;
  for (p = n->peers; p != NULL; p = p->next)
    if (p->id == id)
      return p;
  return NULL;
}

peer_t *net_peer_by_key(acoro_net_t *n, uint64_t inc, const char *loc) {
  peer_t *p;
  for (p = n->peers; p != NULL; p = p->next)
    if (p->inc == inc && strcmp(p->location, loc) == 0)
      return p;
  return NULL;
}

peer_t *net_peer_by_location(acoro_net_t *n, const char *loc) {
  peer_t *p;
  for (p = n->peers; p != NULL; p = p->next)
    if (strcmp(p->location, loc) == 0)
      return p;
  return NULL;
}

/* Takes the peer off the list (sends to it fail from now on), tells the
 * engine once, and frees it with what it had queued. */
void net_peer_gone(acoro_net_t *n, peer_t *p, const char *reason) {
  peer_t **pp;
  uv_mutex_lock(&n->mu);
  for (pp = &n->peers; *pp != NULL; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  n->stats.peers--;
  p->dfd = p->idle_fd = -1;
  p->ereading = 0;
  free(p->draw);
  p->draw = NULL;
  free(p->epend);
  p->epend = NULL;
  uv_mutex_unlock(&n->mu);
  net_post(n, net_ev_new(EV_DOWN, p->id, reason, 0));
  if (p->link)
    p->link->peer = NULL;
  net_free_cmds(p->out_head);
  free(p);
}

/* Subtracts written (or dropped) bytes from the peer's queue and tells a
 * sender that was refused once the queue is down to half the limit. */
void net_account(acoro_net_t *n, peer_t *p, size_t bytes) {
  int tell = 0;
  if (p == NULL || bytes == 0)
    return;
  uv_mutex_lock(&n->mu);
  p->queued -= bytes;
  if (p->want_writable && p->queued <= n->busy_limit / 2) {
    p->want_writable = 0;
    tell = 1;
  }
  uv_mutex_unlock(&n->mu);
  if (tell)
    net_post(n, net_ev_new(EV_WRITABLE, p->id, NULL, 0));
}

void net_stat_add(acoro_net_t *n, uint32_t *field, int d) {
  uv_mutex_lock(&n->mu);
  *field += (uint32_t)d;
  uv_mutex_unlock(&n->mu);
}

/* ---- the net thread's loop ---- */

/* Stop: every peer and wait is freed without events; every handle closes
 * (links free themselves in their close callback); uv_run then returns. */
static void shut_down(acoro_net_t *n) {
  link_t *l;
  peer_t *p;
  dupwait_t *d;
  uv_mutex_lock(&n->mu);
  p = n->peers;
  n->peers = NULL;
  uv_mutex_unlock(&n->mu);
  while (p) {
    peer_t *next = p->next;
    net_free_cmds(p->out_head);
    free(p->draw);
    free(p->epend);
    free(p);
    p = next;
  }
  while ((d = n->dupwaits) != NULL) {
    n->dupwaits = d->next;
    free(d);
  }
  for (l = n->links; l != NULL; l = l->next) {
    l->peer = NULL;
    l->closing = 1;
    if (l->gai) {
      uv_cancel((uv_req_t *)l->gai); /* if not running yet: no wait */
      l->gai->data = NULL;
      l->gai = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&l->tcp))
      uv_close((uv_handle_t *)&l->tcp, net_on_link_closed);
  }
  uv_close((uv_handle_t *)&n->listener, NULL);
  uv_close((uv_handle_t *)&n->wake, NULL);
  uv_close((uv_handle_t *)&n->tick, NULL);
  net_discover_close(n);
}

/* CMD_RESUME_READ: every link stopped at inbound_limit reads again, but
 * those still held by MAILBOX FLOW CONTROL; the time it was paused does
 * not count as missed heartbeats. */
static void resume_reads(acoro_net_t *n) {
  link_t *l;
  for (l = n->links; l != NULL; l = l->next)
    if (l->read_paused && !l->closing) {
      int held = 0;
      if (l->peer != NULL) {
        uv_mutex_lock(&n->mu);
        held = l->peer->mb_paused;
        uv_mutex_unlock(&n->mu);
      }
      if (held)
        continue;
      l->read_paused = 0;
      l->last_rx = net_now();
      net_link_resume_read(l, NULL, 0);
    }
}

static void on_wake(uv_async_t *h) {
  acoro_net_t *n = h->data;
  cmd_t *c, *next;
  link_t *l;
  int stopping;
  n->wakes++;
  uv_mutex_lock(&n->mu);
  c = n->cmd_head;
  n->cmd_head = n->cmd_tail = NULL;
  stopping = n->stopping;
  uv_mutex_unlock(&n->mu);
  if (stopping) {
    net_free_cmds(c);
    shut_down(n);
    return;
  }
  for (; c != NULL; c = next) {
    peer_t *p;
    next = c->next;
    c->next = NULL;
    if (c->kind == CMD_SEND) {
      p = peer_by_id(n, c->peer);
      if (p == NULL) {
        free(c); /* went down meanwhile */
        continue;
      }
      if (p->out_tail)
        p->out_tail->next = c;
      else
        p->out_head = c;
      p->out_tail = c;
      continue;
    }
    if (c->kind == CMD_CONNECT) {
      net_connect_to(n, c->data, 1, c->req);
    } else if (c->kind == CMD_DISCOVER) {
      net_discover_ping(n);
    } else if (c->kind == CMD_EREAD_BACK) {
      net_eread_back(n, c->peer);
    } else if (c->kind == CMD_RESUME_READ) {
      resume_reads(n);
    } else if ((p = peer_by_id(n, c->peer)) != NULL && p->link) {
      net_link_close(p->link, 2, 1, "closed by this node");
    }
    free(c);
  }
  /* One write per link for all that came: coalescing. */
  for (l = n->links; l != NULL; l = l->next)
    if (l->state == L_UP)
      net_kick(l);
}

/* At a heartbeat boundary: what the engine thread did on an up link since
 * the last one (its direct writes and the messages it read, seen by their
 * counts and taken as of `now`, at most a period late: a heartbeat may be
 * skipped one period too early, well within `missed` periods), and IDLE
 * MEMORY: the link's read buffer, empty, goes back to the allocator (a
 * read takes a new one, net_rbuf_room), and the engine's (epend, ENGINE
 * READS). */
static void link_look(link_t *l, double now) {
  acoro_net_t *n = l->net;
  peer_t *p = l->peer;
  uint64_t d, m;
  if (l->rlen == 0 && !l->in_asm && l->rbuf != NULL) {
    free(l->rbuf);
    l->rbuf = NULL;
    l->rcap = 0;
  }
  if (p == NULL)
    return;
  uv_mutex_lock(&n->mu);
  d = p->dwrites;
  m = p->emsgs;
  if (p->epend != NULL && p->epend_len == 0) {
    free(p->epend);
    p->epend = NULL;
    p->epend_cap = 0;
  }
  uv_mutex_unlock(&n->mu);
  if (d != l->dwrites_seen)
    l->last_tx = now;
  if (d != l->dwrites_seen || m != l->emsgs_seen)
    l->last_msg = now;
  l->dwrites_seen = d;
  l->emsgs_seen = m;
}

/* An up link at a heartbeat boundary (hb_due: 1, 2 at one of an idle
 * link's too): LIVENESS both ways, IDLE LINKS, IDLE MEMORY, ENGINE READS
 * taken back from a busy engine. Only there, not at every tick: with
 * hundreds of links the ticks between cost more than they find (a frozen
 * peer is seen at most one period later). */
static void tick_up(link_t *l, double now, int hb_due) {
  acoro_net_t *n = l->net;
  int idle;
  double period;
  net_eread_tick(l, now);
  if (l->closing)
    return; /* closed while reading again what the engine had read */
  link_look(l, now);
  idle = now - l->last_msg >= IDLE_AFTER * n->hb;
  period = idle ? IDLE_FACTOR * n->hb : n->hb;
  if (now - l->last_rx > n->missed * period && !l->read_paused) {
    net_link_close(l, 1, 0, "no heartbeat for %.1f s (frozen or unreachable)",
                   now - l->last_rx);
  } else if ((hb_due == 2 || (hb_due == 1 && !idle)) &&
             (now - l->last_tx >= period / 2 || n->missed < 2)) {
    net_ctl_frame(l, F_HEARTBEAT, NULL, 0);
    net_kick(l);
    uv_mutex_lock(&n->mu);
    n->stats.heartbeats_out++;
    uv_mutex_unlock(&n->mu);
  }
}

/* TICKS fall on multiples of tick_s of the monotonic clock, and heartbeat
 * boundaries on multiples of hb: the nodes of a host tick together, so a
 * node's idle links get their heartbeats in one burst and take them in one
 * wake-up, not one each. */
static void on_tick(uv_timer_t *t);

static void tick_again(acoro_net_t *n) {
  uint64_t ms = (uint64_t)(n->tick_s * 1000), now = uv_hrtime() / 1000000;
  uint64_t delay = ms - now % ms;
  if (delay <= ms / 4)
    delay += ms; /* this turn was the boundary's, a little early */
  uv_timer_start(&n->tick, on_tick, delay, 0);
}

static void on_tick(uv_timer_t *t) {
  acoro_net_t *n = t->data;
  double now = net_now();
  link_t *l, *next;
  dupwait_t **pp = &n->dupwaits, *d;
  uint64_t hb_ms = (uint64_t)(n->hb * 1000) > 0 ? (uint64_t)(n->hb * 1000) : 1;
  uint64_t at = uv_hrtime() / 1000000 + (uint64_t)(n->tick_s * 250);
  int hb_due = 0;
  if (at >= n->hb_next) { /* (a turn a little early counts as on it) */
    hb_due = (at / hb_ms) % IDLE_FACTOR == 0 ? 2 : 1;
    n->hb_next = (at / hb_ms + 1) * hb_ms;
  }
  tick_again(n);
  for (l = n->links; l != NULL; l = next) {
    next = l->next;
    if (l->closing) {
      if (l->shutting && now > l->deadline &&
          !uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, net_on_link_closed);
    } else if (l->state != L_UP) {
      /* Anyone can open connections that never finish: an inbound one's
       * timeout is a warning at most once a minute (info otherwise). */
      if (now > l->deadline)
        net_link_close(l,
                       l->outbound || net_quiet_ok(&n->hs_log_at, now) ? 1 : 2,
                       0, "handshake not finished within %g s", n->hs_timeout);
    } else if (hb_due) {
      tick_up(l, now, hb_due); /* (up links: once a heartbeat period) */
    }
  }
  net_discover_tick(n, now);
  while ((d = *pp) != NULL) {
    if (now > d->deadline) {
      *pp = d->next;
      net_post_connect(n, d->req, ACORO_ENOPEER, 0,
                       "duplicate link: the pair's other link did not come up");
      free(d);
    } else {
      pp = &d->next;
    }
  }
}

/* What counts as traffic for SPIN BEFORE BLOCK: commands from the engine
 * and events for it (messages this thread read, links up and down). Not a
 * heartbeat, nor frames the engine thread reads itself: while it serves a
 * link alone, this thread has nothing to wait for. */
static uint64_t traffic(acoro_net_t *n) {
  uint64_t t;
  uv_mutex_lock(&n->mu);
  t = n->posts;
  uv_mutex_unlock(&n->mu);
  return t + n->wakes;
}

/* The net thread's loop, with the engine's SPIN BEFORE BLOCK (engine.c):
 * after a turn that saw traffic, it polls without blocking, yielding
 * between polls, until spin_ns pass with no more traffic, then sleeps. A
 * stream's next command or a reply's frame is then taken without a
 * wake-up; an idle node's thread sleeps between its ticks. */
static void net_thread(void *arg) {
  acoro_net_t *n = arg;
  uint64_t seen, now, until;
  net_discover_ping(n);
  seen = traffic(n);
  while (uv_run(&n->loop, UV_RUN_ONCE) != 0) {
    now = traffic(n);
    if (n->spin_ns == 0 || now == seen)
      continue;
    seen = now;
    until = uv_hrtime() + n->spin_ns;
    do {
      sched_yield();
      if (uv_run(&n->loop, UV_RUN_NOWAIT) == 0)
        return;
      if ((now = traffic(n)) != seen) {
        seen = now;
        until = uv_hrtime() + n->spin_ns;
      }
    } while (uv_hrtime() < until);
  }
}

/* ---- the API (ENGINE THREAD) ---- */

static int listen_on(acoro_net_t *n, int port) {
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  if (strchr(n->host, ':'))
    rc = uv_ip6_addr(n->host, port, (struct sockaddr_in6 *)&ss);
  else
    rc = uv_ip4_addr(n->host, port, (struct sockaddr_in *)&ss);
  if (rc != 0)
    return rc;
  if ((rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&n->listener, 128, net_on_connection)) !=
          0)
    return rc;
  len = sizeof ss;
  if ((rc = uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &len)))
    return rc;
  port = ss.ss_family == AF_INET6
             ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  snprintf(n->location, sizeof n->location,
           strchr(n->host, ':') ? "[%s]:%d" : "%s:%d", n->host, port);
  return 0;
}

static void free_net(acoro_net_t *n) {
  OPENSSL_cleanse(n->key, sizeof n->key);
  free(n);
}

/* KEY: scrypt of the secret (KDF_* in net_internal.h), once at start on
 * the engine thread (about 50 ms and 16 MB, freed at once): every guess
 * of a secret costs an attacker as much, offline too. The salt is fixed
 * (both sides must derive the same key) and names the protocol version. */
static int derive_key(acoro_net_t *n, const char *secret, size_t len) {
  static const unsigned char salt[] = KDF_SALT;
  if (EVP_PBE_scrypt(secret, len, salt, sizeof salt - 1, KDF_N, KDF_R, KDF_P,
                     64u << 20, n->key, KEY_LEN) != 1) {
    ERR_clear_error();
    return ACORO_ENOMEM;
  }
  return 0;
}

int acoro_net_gen_secret(char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  unsigned char r[ACORO_NET_SECRET_BYTES];
  size_t i;
  if (out == NULL || cap < 2 * sizeof r + 1)
    return ACORO_EINVAL;
  if (RAND_bytes(r, sizeof r) != 1) {
    ERR_clear_error();
    return ACORO_EUV;
  }
  for (i = 0; i < sizeof r; i++) {
    out[2 * i] = hex[r[i] >> 4];
    out[2 * i + 1] = hex[r[i] & 15];
  }
  out[2 * sizeof r] = '\0';
  OPENSSL_cleanse(r, sizeof r);
  return 0;
}

static void on_eng_wake_closed(uv_handle_t *h) { free(h); }

/* Everything but the thread is made here, on the engine thread: the net
 * loop is handed to the net thread by uv_thread_create (a barrier) and
 * touched by no one else afterwards. */
int acoro_net_start(acoro_engine_t *e, const acoro_net_opts_t *opts,
                    const acoro_net_host_t *cb, void *cb_data,
                    acoro_net_t **out) {
  static const acoro_net_opts_t none;
  acoro_net_t *n;
  int rc;
  if (e == NULL || out == NULL)
    return ACORO_EINVAL;
  if (opts == NULL)
    opts = &none;
  if ((opts->host && strlen(opts->host) >= FIELD - 8) ||
      (opts->name && strlen(opts->name) >= FIELD) ||
      (opts->ext_location && (strlen(opts->ext_location) >= FIELD ||
                              strrchr(opts->ext_location, ':') == NULL)) ||
      opts->port < 0 || opts->port > 65535 || opts->discover_port < 0 ||
      opts->discover_port > 65535 ||
      (opts->tls_server == NULL) != (opts->tls_client == NULL))
    return ACORO_EINVAL;
  n = calloc(1, sizeof *n);
  if (n == NULL)
    return ACORO_ENOMEM;
  n->engine = e;
  if (cb)
    n->cb = *cb;
  n->cb_data = cb_data;
  n->tls_server = opts->tls_server;
  n->tls_client = opts->tls_client;
  n->no_eread = opts->test_no_engine_reads;
  n->disc_drop = opts->test_drop_pings;
  n->spin_ns = eng_spin_ns(e);
  n->direct_cap = (size_t)-1;
  snprintf(n->host, sizeof n->host, "%s",
           opts->host ? opts->host : "127.0.0.1");
  if (opts->secret) {
    if ((rc = derive_key(n, opts->secret, opts->secret_len)) != 0) {
      free_net(n);
      return rc;
    }
    n->has_secret = 1;
  }
  n->hb = opts->heartbeat > 0 ? opts->heartbeat : 1.0;
  n->missed = opts->missed > 0 ? opts->missed : 4;
  n->announce = opts->announce == 0  ? ANNOUNCE_DEFAULT
                : opts->announce < 0 ? 0
                                     : opts->announce;
  n->hs_timeout = opts->handshake_timeout > 0 ? opts->handshake_timeout : 5.0;
  n->busy_limit =
      opts->busy_limit > 0 ? opts->busy_limit : ACORO_NET_BUSY_DEFAULT;
  n->inbound_limit =
      opts->inbound_limit > 0 ? opts->inbound_limit : ACORO_NET_INBOUND_DEFAULT;
  n->mailbox_limit =
      opts->mailbox_limit > 0 ? opts->mailbox_limit : ACORO_NET_MAILBOX_DEFAULT;
  n->inc = opts->incarnation ? opts->incarnation : acoro_engine_incarnation(e);
  n->vmajor = opts->version_major || opts->version_minor
                  ? opts->version_major
                  : ACORO_NET_VERSION_MAJOR;
  n->vminor = opts->version_major || opts->version_minor
                  ? opts->version_minor
                  : ACORO_NET_VERSION_MINOR;
  n->tick_s = n->hb / 4 < 0.25 ? n->hb / 4 : 0.25;
  if (n->tick_s < 0.005)
    n->tick_s = 0.005;
  n->next_peer = 1;
  n->disc_tokens = DISC_BURST;
  n->disc_refill = net_now();
  if (uv_loop_init(&n->loop) != 0) {
    free_net(n);
    return ACORO_EUV;
  }
  uv_mutex_init(&n->mu);
  uv_tcp_init(&n->loop, &n->listener);
  n->listener.data = n;
  uv_async_init(&n->loop, &n->wake, on_wake);
  n->wake.data = n;
  uv_timer_init(&n->loop, &n->tick);
  n->tick.data = n;
  rc = listen_on(n, opts->port);
  memcpy(n->listen_loc, n->location, FIELD);
  if (opts->ext_location) /* what peers see: HELLO, pings, "myself" */
    snprintf(n->location, sizeof n->location, "%s", opts->ext_location);
  snprintf(n->name, sizeof n->name, "%s",
           opts->name ? opts->name : n->location);
  if (rc == 0 && opts->discover_port > 0) {
    pool_note_use(); /* discovered nodes are resolved on libuv's pool */
    rc = net_discover_start(n, opts->discover_port);
  }
  if (rc == 0 && (n->eng_wake = malloc(sizeof *n->eng_wake)) == NULL)
    rc = ACORO_ENOMEM;
  if (rc == 0 &&
      uv_async_init(acoro_engine_loop(e), n->eng_wake, on_events) != 0) {
    free(n->eng_wake);
    rc = ACORO_EUV;
  }
  if (rc == 0) {
    n->eng_wake->data = n;
    tick_again(n);
    rc = uv_thread_create(&n->thread, net_thread, n);
    if (rc != 0)
      uv_close((uv_handle_t *)n->eng_wake, on_eng_wake_closed);
  }
  if (rc != 0) {
    uv_close((uv_handle_t *)&n->listener, NULL);
    uv_close((uv_handle_t *)&n->wake, NULL);
    uv_close((uv_handle_t *)&n->tick, NULL);
    net_discover_close(n);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
    uv_mutex_destroy(&n->mu);
    free_net(n);
    return rc;
  }
  if (n->has_secret && opts->secret_len < WEAK_SECRET)
    net_log(n, 1,
            "the secret is shorter than %d characters: anyone who gets one "
            "handshake can try guesses offline (acoro --gen-secret prints a "
            "strong one)",
            WEAK_SECRET);
  acoro_mb_set_remote_limit(e, n->mailbox_limit, mb_drained, n);
  *out = n;
  return 0;
}

void acoro_net_stop(acoro_net_t *n) {
  if (n == NULL)
    return;
  acoro_mb_set_remote_limit(n->engine, 0, NULL, NULL);
  uv_mutex_lock(&n->mu);
  n->stopping = 1;
  uv_mutex_unlock(&n->mu);
  uv_async_send(&n->wake);
  uv_thread_join(&n->thread);
  uv_loop_close(&n->loop);
  net_free_cmds(n->cmd_head);
  net_free_events(n->ev_head);
  net_eread_stop_all(n);
  n->eng_wake->data = NULL;
  uv_close((uv_handle_t *)n->eng_wake, on_eng_wake_closed);
  uv_mutex_destroy(&n->mu);
  free_net(n);
}

const char *acoro_net_location(const acoro_net_t *n) { return n->location; }

const char *acoro_net_listen_location(const acoro_net_t *n) {
  return n->listen_loc;
}

uint64_t acoro_net_incarnation(const acoro_net_t *n) { return n->inc; }

void net_push_cmd(acoro_net_t *n, cmd_t *c) {
  if (n->cmd_tail)
    n->cmd_tail->next = c;
  else
    n->cmd_head = c;
  n->cmd_tail = c;
}

/* ENGINE THREAD, mutex held, p->dfd >= 0 and no command queued: writes
 * the message as one MSG frame straight to the link's socket (non-blocking,
 * no SIGPIPE). Returns 1 when the frame is written or its rest handed to the
 * net thread (p->draw; *wake set), 0 when nothing was written (the caller
 * queues the message as usual). Any failure but a short write leaves the
 * error for the net thread's own read or write to find. */
static int direct_write(acoro_net_t *n, peer_t *p, const char *data, size_t len,
                        int *wake) {
  unsigned char hdr[HDR];
  struct iovec iov[2];
  struct msghdr mh;
  ssize_t w;
  size_t total = HDR + len, rest;
  net_frame_header(hdr, F_MSG, len);
  iov[0].iov_base = hdr;
  iov[0].iov_len = HDR;
  iov[1].iov_base = (void *)data;
  iov[1].iov_len = len;
  if (total > n->direct_cap) { /* a test simulating a short write */
    if (n->direct_cap < HDR) {
      iov[0].iov_len = n->direct_cap;
      iov[1].iov_len = 0;
    } else {
      iov[1].iov_len = n->direct_cap - HDR;
    }
  }
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = iov;
  mh.msg_iovlen = iov[1].iov_len ? 2 : 1;
  do
    w = sendmsg(p->dfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (w < 0 && errno == EINTR);
  if (w <= 0) {
    p->dfd = -1; /* full or failing: the net thread takes over */
    return 0;
  }
  n->stats.bytes_out += (uint64_t)w;
  n->stats.writes++;
  p->dfd = -1; /* one direct write per arming (net_link.c arm_direct) */
  p->dwrites++;
  if ((size_t)w == total)
    return 1;
  /* A short write: the rest must go before anything else on the link. */
  rest = total - (size_t)w;
  p->draw = malloc(rest);
  p->draw_len = rest;
  *wake = 1;
  if (p->draw == NULL)
    return 1; /* the net thread sees draw_len without draw: closes the link */
  if ((size_t)w < HDR) {
    memcpy(p->draw, hdr + w, HDR - (size_t)w);
    memcpy(p->draw + HDR - (size_t)w, data, len);
  } else {
    memcpy(p->draw, data + ((size_t)w - HDR), rest);
  }
  return 1;
}

int acoro_net_send(acoro_net_t *n, uint64_t peer, const char *data,
                   size_t len) {
  cmd_t *c;
  peer_t *p;
  if (len > ACORO_NET_MSG_MAX || (data == NULL && len > 0))
    return ACORO_EINVAL;
  if (len <= DIRECT_MAX) {
    int done = 0, wake = 0;
    uv_mutex_lock(&n->mu);
    p = peer_by_id(n, peer);
    if (p != NULL && p->dfd >= 0 && n->cmd_head == NULL)
      done = direct_write(n, p, data, len, &wake);
    uv_mutex_unlock(&n->mu);
    if (wake)
      uv_async_send(&n->wake);
    if (done)
      return 0;
  }
  c = malloc(sizeof *c + len);
  if (c == NULL)
    return ACORO_ENOMEM;
  c->next = NULL;
  c->kind = CMD_SEND;
  c->peer = peer;
  c->len = len;
  c->off = 0;
  if (len)
    memcpy(c->data, data, len);
  uv_mutex_lock(&n->mu);
  p = peer_by_id(n, peer);
  if (p == NULL || p->queued >= n->busy_limit) {
    int rc = p == NULL ? ACORO_ENOPEER : ACORO_EPEERBUSY;
    if (p)
      p->want_writable = 1;
    uv_mutex_unlock(&n->mu);
    free(c);
    return rc;
  }
  p->queued += len;
  p->dfd = p->idle_fd = -1; /* queued behind this one, until net_kick */
  net_push_cmd(n, c);
  uv_mutex_unlock(&n->mu);
  uv_async_send(&n->wake);
  return 0;
}

static int queue_cmd(acoro_net_t *n, int kind, uint64_t peer, uint64_t req,
                     const char *text) {
  size_t tl = text ? strlen(text) : 0;
  cmd_t *c = calloc(1, sizeof *c + tl + 1);
  if (c == NULL)
    return ACORO_ENOMEM;
  c->kind = kind;
  c->peer = peer;
  c->req = req;
  c->len = tl;
  if (text)
    memcpy(c->data, text, tl);
  uv_mutex_lock(&n->mu);
  net_push_cmd(n, c);
  uv_mutex_unlock(&n->mu);
  uv_async_send(&n->wake);
  return 0;
}

int acoro_net_connect(acoro_net_t *n, const char *location, uint64_t request) {
  if (location == NULL || strlen(location) >= FIELD)
    return ACORO_EINVAL;
  pool_note_use(); /* the net thread resolves on libuv's thread pool */
  return queue_cmd(n, CMD_CONNECT, 0, request, location);
}

int acoro_net_discover(acoro_net_t *n) {
  if (n->udp_port == 0)
    return ACORO_EINVAL;
  return queue_cmd(n, CMD_DISCOVER, 0, 0, NULL);
}

int acoro_net_close_peer(acoro_net_t *n, uint64_t peer) {
  int known;
  uv_mutex_lock(&n->mu);
  known = peer_by_id(n, peer) != NULL;
  uv_mutex_unlock(&n->mu);
  if (!known)
    return ACORO_ENOPEER;
  return queue_cmd(n, CMD_CLOSE, peer, 0, NULL);
}

size_t acoro_net_queued(acoro_net_t *n) {
  size_t total = 0;
  peer_t *p;
  uv_mutex_lock(&n->mu);
  for (p = n->peers; p != NULL; p = p->next)
    total += p->queued;
  uv_mutex_unlock(&n->mu);
  return total;
}

void acoro_net_stats(acoro_net_t *n, acoro_net_stats_t *st) {
  uv_mutex_lock(&n->mu);
  *st = n->stats;
  uv_mutex_unlock(&n->mu);
}

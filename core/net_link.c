/* net_link.c: one peer connection on the NETWORK THREAD: opening
 * (accept, resolve, connect), the handshake (HELLO, PROOF, SELECT/REFUSE),
 * reading and checking frames, reassembly, batched writes, closing. */
#include "net_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- links: closing (NET THREAD) ---- */
void net_on_link_closed(uv_handle_t *h) {
  link_t *l = h->data;
  acoro_net_t *n = l->net;
  if (l->prev)
    l->prev->next = l->next;
  else
    n->links = l->next;
  if (l->next)
    l->next->prev = l->prev;
  net_stat_add(n, &n->stats.links, -1);
  net_tls_free(l);
  free(l->rbuf);
  free(l->asm_buf);
  free(l);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  link_t *l = req->data;
  (void)status;
  l->shutting = 0;
  if (!uv_is_closing((uv_handle_t *)&l->tcp))
    uv_close((uv_handle_t *)&l->tcp, net_on_link_closed);
}

typedef struct flush_write_s {
  uv_write_t req;
  char data[];
} flush_write_t;

static void on_flushed(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
}

static const char *link_desc(const link_t *l) {
  return l->their_loc[0] ? l->their_loc : l->addr;
}

/* Closes a link once: logs the reason (NULL: silently), takes its peer down
 * or fails its connect request. graceful: write what is already queued in
 * libuv first (a REFUSE), bounded by the tick's force close. */
void net_link_close(link_t *l, int level, int graceful, const char *fmt, ...) {
  acoro_net_t *n = l->net;
  char reason[300] = "closed";
  if (l->closing)
    return;
  l->closing = 1;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
  }
  if (l->discovered && !l->authed) {
    /* Anyone can announce any port of its own address: a discovered
     * link that failed before the other proved itself is logged at most
     * once a minute, and that location is left alone for a while (not
     * after a proof: a duplicate link of a real pair). */
    double now = net_now();
    net_discover_failed(n, l->addr, now);
    n->disc_failed++;
    if (fmt && level <= 1 && net_quiet_ok(&n->disc_fail_log_at, now)) {
      net_log(n, level,
              "peer %s: %s (discovered; %llu failed discovered links so "
              "far, logged at most once a minute)",
              link_desc(l), reason, (unsigned long long)n->disc_failed);
    }
  } else if (fmt) {
    net_log(n, level, "peer %s: %s", link_desc(l), reason);
  }
  if (l->state < L_UP && !l->outbound)
    n->handshaking--;
  if (l->peer)
    net_peer_gone(n, l->peer, reason);
  else if (l->has_req)
    net_post_connect(n, l->req, ACORO_ENOPEER, 0, reason);
  l->has_req = 0;
  if (l->gai) {
    l->gai->data = NULL;
    l->gai = NULL;
  }
  if (uv_is_closing((uv_handle_t *)&l->tcp))
    return;
  uv_read_stop((uv_stream_t *)&l->tcp);
  l->deadline = net_now() + 2.0; /* for a shutdown that never ends */
  if (graceful && l->state >= L_HELLO) {
    /* Control frames still waiting (a REFUSE behind a write in flight)
     * go out in a write of their own, which the shutdown waits for. On
     * TLS: sealed, with close_notify, or the alert of a failed handshake. */
    char *last = l->ctl, *sealed = NULL;
    size_t last_len = l->ctl_len;
    if (l->tls && net_tls_closing(l, &sealed, &last_len) == 0)
      last = sealed;
    else if (l->tls)
      last_len = 0;
    if (last_len > 0) {
      flush_write_t *fw = malloc(sizeof *fw + last_len);
      uv_buf_t b;
      if (fw != NULL) {
        memcpy(fw->data, last, last_len);
        b = uv_buf_init(fw->data, (unsigned)last_len);
        fw->req.data = fw;
        if (uv_write(&fw->req, (uv_stream_t *)&l->tcp, &b, 1, on_flushed))
          free(fw);
      }
    }
    free(sealed);
    l->ctl_len = 0;
    l->sreq.data = l;
    if (uv_shutdown(&l->sreq, (uv_stream_t *)&l->tcp, on_shutdown) == 0) {
      l->shutting = 1;
      return;
    }
  }
  uv_close((uv_handle_t *)&l->tcp, net_on_link_closed);
}

/* ---- links: writing (NET THREAD) ---- */

void net_ctl_frame(link_t *l, int type, const void *payload, size_t n) {
  unsigned char *p;
  if (l->ctl_len + HDR + n > CTL_MAX)
    return; /* only heartbeats can pile up: one pending is enough */
  p = (unsigned char *)l->ctl + l->ctl_len;
  net_put32(p, (uint32_t)(n + 1));
  p[4] = (unsigned char)type;
  if (n)
    memcpy(p + HDR, payload, n);
  l->ctl_len += HDR + n;
}

void net_on_written(uv_write_t *req, int status) {
  link_t *l = req->data;
  free(l->wbuf);
  l->wbuf = NULL;
  l->writing = 0;
  net_account(l->net, l->peer, l->wdata);
  l->wdata = 0;
  if (status < 0) {
    if (!l->closing)
      net_link_close(l, 1, 0, "write failed: %s", uv_strerror(status));
    return;
  }
  net_kick(l);
}

/* The size of the next piece of message c: all of it if it fits in one
 * frame, else a CHUNK at most. */
static size_t piece_of(const cmd_t *c) {
  size_t left = c->len - c->off;
  return left < CHUNK ? left : CHUNK;
}

/* Mutex held. Lets the engine thread write to the link's socket itself
 * (acoro_net_send) while nothing is pending for its peer here: no write in
 * flight, no control frame, no queued message, no command still to be read
 * (perhaps a send to this peer), no rest of a short direct write. A direct
 * write disarms it: it is armed again when the link goes idle (net_kick)
 * or a frame comes in (on_read), so request-reply traffic goes direct while
 * a stream of sends still coalesces into batches on this thread. Never on
 * a TLS link: a direct write would put plaintext on its socket. */
static void arm_direct(link_t *l) {
  peer_t *p = l->peer;
  uv_os_fd_t fd;
  if (p == NULL || l->tls != NULL || l->state != L_UP || l->closing ||
      l->writing || l->ctl_len > 0 || p->out_head != NULL || p->draw_len > 0 ||
      l->net->cmd_head != NULL)
    return;
  if (uv_fileno((const uv_handle_t *)&l->tcp, &fd) == 0)
    p->dfd = p->idle_fd = fd;
}

/* Starts the next write of a link if none is in flight: control frames,
 * then (once up) the peer's messages in order, up to BATCH bytes. */
void net_kick(link_t *l) {
  acoro_net_t *n = l->net;
  peer_t *p = l->state == L_UP ? l->peer : NULL;
  size_t total = l->ctl_len, data = 0, off;
  cmd_t *c;
  uv_buf_t b;
  unsigned char *w;
  char *raw = NULL;
  size_t raw_len = 0;
  if (l->writing || l->closing || l->state < L_HELLO)
    return;
  if (l->tls && !net_tls_is_open(l)) {
    net_tls_flush(l); /* TLS handshake records; HELLO waits in ctl */
    return;
  }
  if (p) {
    /* The engine thread writes no more directly (p->dfd) from here until
     * this link is idle again; the rest of a short direct write goes first. */
    uv_mutex_lock(&n->mu);
    p->dfd = p->idle_fd = -1;
    raw = p->draw;
    raw_len = p->draw_len;
    p->draw = NULL;
    p->draw_len = 0;
    uv_mutex_unlock(&n->mu);
    if (raw_len > 0 && raw == NULL) {
      net_link_close(l, 0, 0, "out of memory");
      return;
    }
    total += raw_len;
  }
  /* Pass 1: how much goes into this batch. */
  for (c = p ? p->out_head : NULL; c != NULL && total < BATCH; c = c->next) {
    size_t off2 = c->off;
    do {
      size_t k = (c->len - off2) < CHUNK ? c->len - off2 : CHUNK;
      total += HDR + k;
      off2 += k;
    } while (off2 < c->len && total < BATCH);
    if (off2 < c->len)
      break;
  }
  if (total == 0) {
    if (l->tls) {
      net_tls_flush(l); /* records OpenSSL made on its own (tickets) */
      return;
    }
    /* Idle: the engine thread may write to the socket itself, unless a
     * command (perhaps a send to this peer) waits to be read. */
    if (p) {
      uv_mutex_lock(&n->mu);
      arm_direct(l);
      uv_mutex_unlock(&n->mu);
    }
    return;
  }
  w = malloc(total);
  if (w == NULL) {
    free(raw);
    net_link_close(l, 0, 0, "out of memory");
    return;
  }
  off = 0;
  if (raw_len > 0) {
    memcpy(w, raw, raw_len);
    off = raw_len;
    free(raw);
  }
  memcpy(w + off, l->ctl, l->ctl_len);
  off += l->ctl_len;
  l->ctl_len = 0;
  /* Pass 2: fill, consuming the messages that went in whole. */
  while (p && (c = p->out_head) != NULL && off < total) {
    size_t k = piece_of(c);
    int type = (c->off == 0 && k == c->len) ? F_MSG
               : (c->off + k == c->len)     ? F_LAST
                                            : F_PART;
    net_put32(w + off, (uint32_t)(k + 1));
    w[off + 4] = (unsigned char)type;
    memcpy(w + off + HDR, c->data + c->off, k);
    off += HDR + k;
    c->off += k;
    data += k;
    if (c->off == c->len) {
      p->out_head = c->next;
      if (p->out_head == NULL)
        p->out_tail = NULL;
      free(c);
    }
  }
  if (l->tls && net_tls_seal(l, (char **)&w, &off) != 0) {
    free(w);
    net_account(n, p, data);
    return;
  }
  l->wbuf = (char *)w;
  l->wdata = data;
  l->writing = 1;
  l->wreq.data = l;
  b = uv_buf_init((char *)w, (unsigned)off);
  uv_mutex_lock(&n->mu);
  n->stats.bytes_out += off;
  n->stats.writes++;
  uv_mutex_unlock(&n->mu);
  if (uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, net_on_written) != 0) {
    l->writing = 0;
    l->wbuf = NULL;
    free(w);
    net_account(n, p, data);
    net_link_close(l, 1, 0, "write failed");
  }
}

/* ---- handshake (NET THREAD) ---- */

/* Builds this side's HELLO, keeps it (its half of the transcript) and
 * queues it. */
static void send_hello(link_t *l) {
  acoro_net_t *n = l->net;
  unsigned char *h = l->my_hello;
  memset(h, 0, HELLO_LEN);
  memcpy(h + HELLO_MAGIC, MAGIC, 8);
  h[HELLO_MAJOR] = (unsigned char)(n->vmajor >> 8);
  h[HELLO_MAJOR + 1] = (unsigned char)n->vmajor;
  h[HELLO_MINOR] = (unsigned char)(n->vminor >> 8);
  h[HELLO_MINOR + 1] = (unsigned char)n->vminor;
  net_put64(h + HELLO_INC, n->inc);
  memcpy(h + HELLO_CHAL, l->my_chal, CHAL_LEN);
  h[HELLO_FLAGS] = n->has_secret ? 1 : 0;
  memcpy(h + HELLO_LOC, n->location, strlen(n->location));
  memcpy(h + HELLO_NAME, n->name, strlen(n->name));
  net_ctl_frame(l, F_HELLO, h, HELLO_LEN);
}

/* The proofs of both directions over the whole transcript: the label, the
 * direction ('I' initiator, 'A' acceptor), the initiator's HELLO, the
 * acceptor's HELLO (both challenges, incarnations, locations and names, as
 * sent) and, on TLS, the session's exporter value. A proof made for one
 * link, one pair of nodes or one direction is worth nothing anywhere else:
 * no node can be used as an oracle for another link (a reflection). */
static int make_proofs(link_t *l, const unsigned char *theirs) {
  const acoro_net_t *n = l->net;
  enum { LBL = sizeof PROOF_LABEL - 1 };
  unsigned char msg[LBL + 1 + 2 * HELLO_LEN + BINDING_LEN];
  const unsigned char *hi = l->outbound ? l->my_hello : theirs;
  const unsigned char *ha = l->outbound ? theirs : l->my_hello;
  unsigned char *pi = l->outbound ? l->pf_send : l->pf_want;
  unsigned char *pa = l->outbound ? l->pf_want : l->pf_send;
  unsigned int len = PROOF_LEN;
  memset(msg, 0, sizeof msg);
  memcpy(msg, PROOF_LABEL, LBL);
  memcpy(msg + LBL + 1, hi, HELLO_LEN);
  memcpy(msg + LBL + 1 + HELLO_LEN, ha, HELLO_LEN);
  if (l->tls && net_tls_binding(l, msg + LBL + 1 + 2 * HELLO_LEN) != 0)
    return -1;
  msg[LBL] = 'I';
  if (HMAC(EVP_sha256(), n->key, KEY_LEN, msg, sizeof msg, pi, &len) == NULL)
    return -1;
  msg[LBL] = 'A';
  len = PROOF_LEN;
  if (HMAC(EVP_sha256(), n->key, KEY_LEN, msg, sizeof msg, pa, &len) == NULL)
    return -1;
  return 0;
}

/* A challenge this node issued on any link it has open (this one too): a
 * peer that sends one back is replaying this node's own words. */
static int issued_here(const acoro_net_t *n, const unsigned char *chal) {
  const link_t *m;
  for (m = n->links; m != NULL; m = m->next)
    if (m->state >= L_HELLO && memcmp(m->my_chal, chal, CHAL_LEN) == 0)
      return 1;
  return 0;
}

/* Orders nodes by (incarnation, location): the lower one arbitrates. */
static int key_cmp(uint64_t ia, const char *la, uint64_t ib, const char *lb) {
  if (ia != ib)
    return ia < ib ? -1 : 1;
  return strcmp(la, lb);
}

static void resolve_dupwaits(acoro_net_t *n, peer_t *p) {
  dupwait_t **pp = &n->dupwaits, *d;
  while ((d = *pp) != NULL) {
    if (d->inc == p->inc && strcmp(d->location, p->location) == 0) {
      *pp = d->next;
      net_post_connect(n, d->req, 0, p->id, NULL);
      free(d);
    } else {
      pp = &d->next;
    }
  }
}

/* The link carries the pair's traffic from now on: a new peer. */
static void link_up(link_t *l) {
  acoro_net_t *n = l->net;
  peer_t *p = calloc(1, sizeof *p), *old;
  ev_t *ev;
  size_t ll, nl;
  if (p == NULL) {
    net_link_close(l, 0, 0, "out of memory");
    return;
  }
  old = net_peer_by_key(n, l->their_inc, l->their_loc);
  if (old && old->link)
    net_link_close(old->link, 1, 0, "replaced by a new link");
  p->id = n->next_peer++;
  p->dfd = p->idle_fd = -1; /* until net_kick finds the link idle */
  p->inc = l->their_inc;
  memcpy(p->location, l->their_loc, FIELD);
  memcpy(p->name, l->their_name, FIELD);
  p->link = l;
  l->peer = p;
  if (!l->outbound)
    n->handshaking--;
  l->state = L_UP;
  l->last_rx = l->last_hb = net_now();
  uv_mutex_lock(&n->mu);
  p->next = n->peers;
  n->peers = p;
  n->stats.peers++;
  uv_mutex_unlock(&n->mu);
  ll = strlen(p->location);
  nl = strlen(p->name);
  ev = net_ev_new(EV_UP, p->id, p->location, nl + 1);
  if (ev) {
    memcpy(ev->text + ll + 1, p->name, nl);
    ev->inc = p->inc;
  }
  net_post(n, ev);
  net_log(n, 2, "peer %s (%s) up", p->location, p->name);
  if (l->has_req)
    net_post_connect(n, l->req, 0, p->id, NULL);
  l->has_req = 0;
  resolve_dupwaits(n, p);
}

/* This link lost to another link of the same pair. A connect request on it
 * ends with the pair's peer, now or when the chosen link comes up. */
static void link_duplicate(link_t *l) {
  acoro_net_t *n = l->net;
  peer_t *p = net_peer_by_key(n, l->their_inc, l->their_loc);
  if (l->has_req && p) {
    net_post_connect(n, l->req, 0, p->id, NULL);
  } else if (l->has_req) {
    dupwait_t *d = calloc(1, sizeof *d);
    if (d) {
      d->req = l->req;
      d->inc = l->their_inc;
      memcpy(d->location, l->their_loc, FIELD);
      d->deadline = net_now() + n->hs_timeout;
      d->next = n->dupwaits;
      n->dupwaits = d;
    } else {
      net_post_connect(n, l->req, ACORO_ENOMEM, 0, "out of memory");
    }
  }
  l->has_req = 0;
  net_link_close(l, 2, 1,
                 "duplicate link closed (the pair keeps its other one)");
}

/* The other's HELLO: checks it, then the initiator proves itself at once
 * (PROOF_I) and the acceptor waits for that proof. Every refusal here is
 * decided by each side alone, so both log one line. A node dialled on a
 * discovery ping must be at the location the ping named: else whoever sent
 * the ping could relay this node's proof to another node (which would take
 * the relay for this node). */
static void on_hello(link_t *l, const unsigned char *h) {
  acoro_net_t *n = l->net;
  int major = h[HELLO_MAJOR] << 8 | h[HELLO_MAJOR + 1];
  int minor = h[HELLO_MINOR] << 8 | h[HELLO_MINOR + 1];
  int secret = h[HELLO_FLAGS] & 1;
  if (memcmp(h + HELLO_MAGIC, MAGIC, 8) != 0) {
    net_link_close(l, 1, 0, "refused: not an acoro node (bad magic)");
    return;
  }
  net_sanitize(l->their_loc, FIELD, (const char *)h + HELLO_LOC, FIELD);
  net_sanitize(l->their_name, FIELD, (const char *)h + HELLO_NAME, FIELD);
  l->their_inc = net_get64(h + HELLO_INC);
  if (major != n->vmajor) {
    net_link_close(l, 1, 0,
                   "refused: protocol version %d.%d, this node speaks %d.%d",
                   major, minor, n->vmajor, n->vminor);
  } else if (secret != n->has_secret) {
    net_link_close(l, 1, 0, "refused: %s",
                   secret ? "the peer has a secret and this node has none"
                          : "the peer has no secret and this node has one");
  } else if (key_cmp(l->their_inc, l->their_loc, n->inc, n->location) == 0) {
    net_link_close(l, 1, 0, "refused: a connection to this node itself");
  } else if (l->discovered && strcmp(l->their_loc, l->addr) != 0) {
    net_link_close(l, 1, 0,
                   "refused: the node discovered at %s says it is %s (a "
                   "relay?)",
                   l->addr, l->their_loc);
  } else if (issued_here(n, h + HELLO_CHAL)) {
    net_link_close(l, 1, 0,
                   "refused: the peer's challenge is one this node issued "
                   "(a reflected handshake)");
  } else if (make_proofs(l, h) != 0) {
    net_link_close(l, 0, 0, "cannot compute the proofs");
  } else {
    l->state = L_PROOF;
    if (l->outbound) {
      net_ctl_frame(l, F_PROOF, l->pf_send, PROOF_LEN);
      net_kick(l);
    }
  }
}

/* The other's proof checked (both sides are authenticated once each has
 * checked the other's): the arbiter of the pair takes the link up and
 * sends SELECT, or REFUSE(DUP) when the pair has a link up already. */
static void arbitrate(link_t *l) {
  acoro_net_t *n = l->net;
  if (key_cmp(n->inc, n->location, l->their_inc, l->their_loc) > 0) {
    l->state = L_SELECT; /* the other node arbitrates */
    net_kick(l);
    return;
  }
  if (net_peer_by_key(n, l->their_inc, l->their_loc) != NULL) {
    static const char dup[] = "\001duplicate link";
    net_ctl_frame(l, F_REFUSE, dup, sizeof dup - 1);
    net_kick(l);
    link_duplicate(l);
    return;
  }
  net_ctl_frame(l, F_SELECT, NULL, 0);
  link_up(l); /* SELECT is in ctl: it precedes any data */
  net_kick(l);
}

/* The other's proof. The acceptor proves itself only now, once the
 * initiator has: whoever connects without the secret gets nothing computed
 * from it (no offline guessing from an acceptor's proof). A wrong proof
 * is answered with a REFUSE saying so (what a failed online guess learns
 * anyway), so that both sides log why. */
static void on_proof(link_t *l, const unsigned char *theirs) {
  if (CRYPTO_memcmp(l->pf_want, theirs, PROOF_LEN) != 0) {
    static const char wrong[] = "\002wrong secret (proof mismatch)";
    if (!l->outbound) {
      net_ctl_frame(l, F_REFUSE, wrong, sizeof wrong - 1);
      net_kick(l);
    }
    net_link_close(l, 1, 1, "refused: wrong secret (proof mismatch)");
    return;
  }
  l->authed = 1;
  if (!l->outbound)
    net_ctl_frame(l, F_PROOF, l->pf_send, PROOF_LEN);
  OPENSSL_cleanse(l->pf_send, PROOF_LEN);
  arbitrate(l);
}

static void on_refuse(link_t *l, const unsigned char *p, size_t len) {
  char text[REFUSE_TEXT_MAX + 1];
  if (len >= 1 && p[0] == REFUSE_DUP && l->state == L_SELECT) {
    link_duplicate(l);
    return;
  }
  if (len >= 1 && p[0] == REFUSE_WRONG && l->state == L_PROOF) {
    net_link_close(l, 1, 0, "refused: wrong secret (proof mismatch)");
    return;
  }
  net_sanitize(text, sizeof text, len > 1 ? (const char *)p + 1 : "",
               len > 1 ? len - 1 : 0);
  net_link_close(l, 1, 0, "refused by the peer: %s", text);
}

/* ---- links: reading (NET THREAD) ---- */

/* Queues a message for the engine: copied inline into the event, or (a
 * reassembled one) handed over. Past inbound_limit bytes waiting for the
 * engine, or when the engine marked the peer (MAILBOX FLOW CONTROL), this
 * link stops reading (INBOUND FLOW CONTROL in net.c). */
static void deliver(link_t *l, char *data, size_t len, int copy) {
  acoro_net_t *n = l->net;
  ev_t *ev = net_ev_new(EV_MSG, l->peer->id, NULL, copy ? len : 0);
  int over, held;
  if (ev == NULL) {
    if (!copy)
      free(data);
    net_link_close(l, 0, 0, "out of memory");
    return;
  }
  if (copy) {
    ev->data = ev->text + 1;
    memcpy(ev->data, data, len);
  } else {
    ev->data = data;
  }
  ev->len = len;
  uv_mutex_lock(&n->mu);
  n->stats.inbound += len;
  over = n->stats.inbound > n->inbound_limit && !l->read_paused;
  if (over) {
    n->read_paused = 1;
    n->stats.read_pauses++;
  }
  held = l->peer->mb_paused && !l->read_paused;
  uv_mutex_unlock(&n->mu);
  net_post(n, ev);
  if (over || held) {
    l->read_paused = 1;
    uv_read_stop((uv_stream_t *)&l->tcp);
  }
}

static int asm_append(link_t *l, const unsigned char *p, size_t len) {
  if (l->asm_len + len > ACORO_NET_MSG_MAX) {
    net_link_close(l, 1, 0, "malformed: a split message over %u bytes",
                   ACORO_NET_MSG_MAX);
    return -1;
  }
  if (l->asm_len + len > l->asm_cap) {
    size_t cap = l->asm_cap ? l->asm_cap : CHUNK * 4;
    char *nb;
    while (cap < l->asm_len + len)
      cap *= 2;
    if (cap > ACORO_NET_MSG_MAX)
      cap = ACORO_NET_MSG_MAX;
    nb = realloc(l->asm_buf, cap);
    if (nb == NULL) {
      net_link_close(l, 0, 0, "out of memory");
      return -1;
    }
    l->asm_buf = nb;
    l->asm_cap = cap;
  }
  memcpy(l->asm_buf + l->asm_len, p, len);
  l->asm_len += len;
  l->in_asm = 1;
  return 0;
}

/* One complete frame, in the link's state. Anything not expected there
 * closes the link with a reason that names only the type and length. */
static void on_frame(link_t *l, int type, const unsigned char *p, size_t len) {
  switch (l->state) {
  case L_HELLO:
    if (type == F_HELLO && len == HELLO_LEN) {
      on_hello(l, p);
      return;
    }
    /* A node that cannot talk to this one says why (TLS against plain):
     * bounded text, sanitised, only logged. */
    if (type == F_REFUSE && len <= REFUSE_TEXT_MAX + 1) {
      on_refuse(l, p, len);
      return;
    }
    break;
  case L_PROOF:
    if (type == F_PROOF && len == PROOF_LEN) {
      on_proof(l, p);
      return;
    }
    /* The acceptor's answer to a wrong proof. */
    if (type == F_REFUSE && l->outbound && len <= REFUSE_TEXT_MAX + 1) {
      on_refuse(l, p, len);
      return;
    }
    break;
  case L_SELECT:
    if (type == F_SELECT && len == 0) {
      link_up(l);
      return;
    }
    if (type == F_REFUSE && len <= REFUSE_TEXT_MAX + 1) {
      on_refuse(l, p, len);
      return;
    }
    break;
  case L_UP:
    switch (type) {
    case F_HEARTBEAT:
      uv_mutex_lock(&l->net->mu);
      l->net->stats.heartbeats_in++;
      uv_mutex_unlock(&l->net->mu);
      return;
    case F_MSG:
      if (l->in_asm)
        break;
      deliver(l, (char *)p, len, 1);
      return;
    case F_PART:
      asm_append(l, p, len);
      return;
    case F_LAST:
      if (asm_append(l, p, len) == 0) {
        char *whole = l->asm_buf;
        size_t n = l->asm_len;
        l->asm_buf = NULL;
        l->asm_len = l->asm_cap = 0;
        l->in_asm = 0;
        deliver(l, whole, n, 0);
      }
      return;
    case F_REFUSE:
      if (len <= REFUSE_TEXT_MAX + 1) {
        on_refuse(l, p, len);
        return;
      }
      break;
    default:
      break;
    }
    break;
  default:
    break;
  }
  net_link_close(l, 1, 0, "malformed: unexpected frame (type %d, %zu bytes)",
                 type, len);
}

int net_rbuf_room(link_t *l) {
  size_t cap = l->rcap * 2;
  char *nb;
  if (l->rcap - l->rlen >= READ_ROOM)
    return 0;
  if (cap < l->rlen + READ_ROOM)
    cap = l->rlen + READ_ROOM;
  nb = realloc(l->rbuf, cap);
  if (nb == NULL)
    return -1;
  l->rbuf = nb;
  l->rcap = cap;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  link_t *l = h->data;
  (void)suggested;
  if (l->tls) {
    net_tls_raw_buffer(l, buf); /* plaintext goes to rbuf in on_read */
    return;
  }
  if (net_rbuf_room(l) != 0) {
    *buf = uv_buf_init(NULL, 0); /* read fails with UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init(l->rbuf + l->rlen, (unsigned)(l->rcap - l->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  link_t *l = s->data;
  acoro_net_t *n = l->net;
  size_t off = 0;
  uint64_t frames = 0;
  ssize_t raw = nread;
  if (nread < 0) {
    if (l->tls && !net_tls_is_open(l))
      net_tls_ended(l, (int)nread);
    else if (nread == UV_EOF)
      net_link_close(l, 2, 0, "connection closed by the peer");
    else
      net_link_close(l, 1, 0, "connection lost: %s", uv_strerror((int)nread));
    return;
  }
  if (l->tls && nread > 0 &&
      (nread = net_tls_in(l, buf->base, (size_t)nread)) < 0)
    return; /* closed: a TLS failure */
  if (l->tls == NULL && l->state == L_HELLO && l->rlen == 0 && nread >= 2 &&
      (l->rbuf[0] == 0x16 || l->rbuf[0] == 0x15) && l->rbuf[1] == 0x03) {
    /* A TLS record (handshake or alert) where a plain HELLO starts with
     * its length's zero byte: the graceful close lets our HELLO reach the
     * TLS node, which then knows why. */
    net_link_close(l, 1, 1,
                   "refused: the peer uses TLS and this node has no tls "
                   "configured");
    return;
  }
  l->rlen += (size_t)nread;
  if (raw > 0) { /* only bytes from the socket are life: not a resume */
    l->last_rx = net_now();
    l->rx_bytes += (uint64_t)raw;
  }
  while (!l->closing && l->rlen - off >= 4) {
    const unsigned char *f = (const unsigned char *)l->rbuf + off;
    uint32_t flen = net_get32(f);
    uint32_t limit = l->state >= L_SELECT ? FRAME_MAX : PREAUTH_MAX;
    if (flen == 0 || flen > limit) {
      net_link_close(l, 1, 0, "malformed: frame length %u (limit %u%s)", flen,
                     limit,
                     l->state >= L_SELECT ? "" : " before authentication");
      break;
    }
    if (l->rlen - off - 4 < flen)
      break;
    frames++;
    on_frame(l, f[4], f + HDR, flen - 1);
    off += 4 + (size_t)flen;
  }
  uv_mutex_lock(&n->mu);
  n->stats.bytes_in += (uint64_t)raw;
  n->stats.frames_in += frames;
  if (frames > 0)
    arm_direct(l);
  uv_mutex_unlock(&n->mu);
  if (l->closing)
    return;
  if (off > 0) /* (rbuf is NULL while a TLS handshake brings no data) */
    memmove(l->rbuf, l->rbuf + off, l->rlen - off);
  l->rlen -= off;
  if (l->rlen == 0 && l->rcap > 4 * READ_ROOM) {
    free(l->rbuf); /* back to a small buffer after a large frame */
    l->rbuf = NULL;
    l->rcap = 0;
  }
  if (nread > 0) /* not after the engine handed reading back: EOF waits */
    net_eread_handover(l);
}

void net_link_resume_read(link_t *l, char *bytes, size_t len) {
  int rc;
  if (l->closing)
    return;
  if (len > 0) {
    if (l->rcap - l->rlen < len) {
      char *nb = realloc(l->rbuf, l->rlen + len + READ_ROOM);
      if (nb == NULL) {
        net_link_close(l, 0, 0, "out of memory");
        return;
      }
      l->rbuf = nb;
      l->rcap = l->rlen + len + READ_ROOM;
    }
    memcpy(l->rbuf + l->rlen, bytes, len);
    l->rlen += len;
  }
  rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
  if (rc != 0) {
    net_link_close(l, 1, 0, "cannot read: %s", uv_strerror(rc));
    return;
  }
  /* nread 0 (as for EAGAIN): parses what is buffered, frames the engine
   * read but left (a split message, a control frame) first. */
  on_read((uv_stream_t *)&l->tcp, 0, NULL);
}

/* ---- links: opening (NET THREAD) ---- */

static link_t *link_new(acoro_net_t *n, int outbound) {
  link_t *l = calloc(1, sizeof *l);
  if (l == NULL)
    return NULL;
  if (uv_tcp_init(&n->loop, &l->tcp) != 0) {
    free(l);
    return NULL;
  }
  l->tcp.data = l;
  l->net = n;
  l->outbound = outbound;
  l->deadline = net_now() + n->hs_timeout;
  l->last_rx = net_now(); /* (for admit: silent since it opened) */
  l->next = n->links;
  if (n->links)
    n->links->prev = l;
  n->links = l;
  net_stat_add(n, &n->stats.links, 1);
  if (!outbound)
    n->handshaking++;
  return l;
}

/* The socket is connected: send HELLO and read. */
static void link_start(link_t *l) {
  int rc;
  uv_tcp_nodelay(&l->tcp, 1);
  if (RAND_bytes(l->my_chal, CHAL_LEN) != 1) {
    net_link_close(l, 0, 0, "no random bytes for the challenge");
    return;
  }
  l->state = L_HELLO;
  if (l->net->tls_server && net_tls_start(l) != 0)
    return;
  rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
  if (rc != 0) {
    net_link_close(l, 1, 0, "cannot read: %s", uv_strerror(rc));
    return;
  }
  send_hello(l);
  net_kick(l);
}

int net_quiet_ok(double *last, double now) {
  if (*last != 0 && now - *last < QUIET_S)
    return 0;
  *last = now;
  return 1;
}

/* Is m idler than best (NULL: anything is)? A link that never sent a byte
 * before one that did; then the one silent the longest. */
static int idler(const link_t *m, const link_t *best) {
  if (best == NULL)
    return 1;
  if ((m->rx_bytes == 0) != (best->rx_bytes == 0))
    return m->rx_bytes == 0;
  return m->last_rx < best->last_rx;
}

/* UNAUTHENTICATED INBOUND LINKS: the newcomer l (counted already) is
 * admitted; past MAX_HANDSHAKING_PER_SOURCE from its source address, or
 * MAX_HANDSHAKING in all, the idlest unauthenticated inbound link (of
 * that source, or of all) is closed instead. A client holding many idle
 * sockets thus loses its own, oldest first, and a peer that speaks at
 * once gets through. */
static void admit(acoro_net_t *n, link_t *l) {
  link_t *m, *mine = NULL, *any = NULL, *victim;
  int same = 0;
  for (m = n->links; m != NULL; m = m->next) {
    if (m == l || m->outbound || m->closing || m->state >= L_SELECT)
      continue;
    if (strcmp(m->src, l->src) == 0) {
      same++;
      if (idler(m, mine))
        mine = m;
    }
    if (idler(m, any))
      any = m;
  }
  if (same >= MAX_HANDSHAKING_PER_SOURCE)
    victim = mine;
  else if (n->handshaking > MAX_HANDSHAKING)
    victim = any;
  else
    return;
  if (victim == NULL)
    return;
  if (net_quiet_ok(&n->evict_log_at, net_now()))
    net_log(n, 1,
            "%d connections in handshake (%d from %s): closing the idlest "
            "one to admit a new one (logged at most once a minute)",
            n->handshaking, same + 1, l->src);
  net_link_close(victim, 2, 0, NULL); /* (the line above says why) */
}

void net_on_connection(uv_stream_t *server, int status) {
  acoro_net_t *n = server->data;
  link_t *l;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[48] = "?";
  if (status < 0) {
    net_log(n, 1, "accept failed: %s", uv_strerror(status));
    return;
  }
  l = link_new(n, 0);
  if (l == NULL)
    return; /* the connection stays in the backlog; retried next time */
  if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
    net_link_close(l, 1, 0, "accept failed");
    return;
  }
  if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) == 0) {
    int port = 0;
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(l->addr, sizeof l->addr, "%s:%d", ip, port);
  }
  snprintf(l->src, sizeof l->src, "%s", ip);
  admit(n, l);
  l->state = L_HELLO;
  link_start(l);
}

static void on_connected(uv_connect_t *req, int status) {
  link_t *l = req->data;
  if (l->closing)
    return;
  if (status < 0) {
    net_link_close(l, 1, 0, "cannot connect: %s", uv_strerror(status));
    return;
  }
  link_start(l);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  link_t *l = req->data;
  int rc;
  free(req);
  if (l == NULL) { /* the link closed meanwhile */
    uv_freeaddrinfo(res);
    return;
  }
  l->gai = NULL;
  if (status < 0 || res == NULL) {
    net_link_close(l, 1, 0, "cannot resolve: %s", uv_strerror(status));
    uv_freeaddrinfo(res);
    return;
  }
  l->state = L_CONNECTING;
  l->creq.data = l;
  rc = uv_tcp_connect(&l->creq, &l->tcp, res->ai_addr, on_connected);
  uv_freeaddrinfo(res);
  if (rc != 0)
    net_link_close(l, 1, 0, "cannot connect: %s", uv_strerror(rc));
}

/* Splits "host:port" ("[v6]:port" too) into host and port; -1 if bad. */
static int split_location(const char *loc, char *host, size_t hl, int *port) {
  const char *colon = strrchr(loc, ':');
  size_t len;
  char *end;
  long v;
  if (colon == NULL || colon == loc)
    return -1;
  len = (size_t)(colon - loc);
  if (loc[0] == '[' && len >= 2 && loc[len - 1] == ']') {
    loc++;
    len -= 2;
  }
  if (len == 0 || len >= hl)
    return -1;
  memcpy(host, loc, len);
  host[len] = '\0';
  v = strtol(colon + 1, &end, 10);
  if (*end != '\0' || end == colon + 1 || v <= 0 || v > 65535)
    return -1;
  *port = (int)v;
  return 0;
}

/* Opens a link to location; with has_req, connect_done(req) tells the end
 * (at once when a peer at that location is up). */
link_t *net_connect_to(acoro_net_t *n, const char *location, int has_req,
                       uint64_t req) {
  char host[FIELD], port[16];
  int portn;
  peer_t *p = net_peer_by_location(n, location);
  link_t *l;
  struct addrinfo hints;
  if (p != NULL) {
    if (has_req)
      net_post_connect(n, req, 0, p->id, NULL);
    return NULL;
  }
  if (split_location(location, host, sizeof host, &portn) != 0) {
    if (has_req)
      net_post_connect(n, req, ACORO_EINVAL, 0, "not a host:port location");
    return NULL;
  }
  l = link_new(n, 1);
  if (l == NULL || (l->gai = malloc(sizeof *l->gai)) == NULL) {
    if (l)
      net_link_close(l, 0, 0, NULL);
    if (has_req)
      net_post_connect(n, req, ACORO_ENOMEM, 0, "out of memory");
    return NULL;
  }
  l->has_req = has_req;
  l->req = req;
  net_sanitize(l->addr, sizeof l->addr, location, strlen(location));
  snprintf(port, sizeof port, "%d", portn);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  l->gai->data = l;
  if (uv_getaddrinfo(&n->loop, l->gai, on_resolved, host, port, &hints) != 0) {
    free(l->gai);
    l->gai = NULL;
    net_link_close(l, 1, 0, "cannot resolve");
    return NULL;
  }
  return l;
}

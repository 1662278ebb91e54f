/* net_link.c: one peer connection on the NETWORK THREAD: opening
 * (accept, resolve, connect), reading frames (net_frame.h) and handing
 * those of a link in handshake to net_handshake.c, reassembly, batched
 * writes, closing. */
#include "net_internal.h"

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

/* QUIET DIALS. NETWORK THREAD. Whether a failure of a link this node
 * dialled to addr is logged now: the first, one with a new reason, or the
 * same one QUIET_S after the last logged; *quiet gets how many were not
 * logged since (for the line). A retry loop on a peer that is down (every
 * 0.25 s to 8 s, for as long as the node runs) so logs once a minute. */
static int dial_fail_logged(acoro_net_t *n, const char *addr,
                            const char *reason, uint64_t *quiet) {
  struct dial_fail_s *d = NULL, *oldest = &n->dial_fail[0];
  double now = net_now();
  int i;
  for (i = 0; i < DIAL_FAIL_SLOTS; i++) {
    if (strcmp(n->dial_fail[i].addr, addr) == 0) {
      d = &n->dial_fail[i];
      break;
    }
    if (n->dial_fail[i].at < oldest->at)
      oldest = &n->dial_fail[i];
  }
  if (d != NULL && strncmp(d->reason, reason, FIELD - 1) == 0 &&
      now - d->at < QUIET_S) {
    d->quiet++;
    return 0;
  }
  if (d == NULL) {
    d = oldest;
    snprintf(d->addr, sizeof d->addr, "%s", addr);
    d->quiet = 0;
  }
  snprintf(d->reason, sizeof d->reason, "%s", reason);
  d->at = now;
  *quiet = d->quiet;
  d->quiet = 0;
  return 1;
}

/* A link to addr came up: its next failure is news, logged at once. */
void net_dial_up(acoro_net_t *n, const char *addr) {
  int i;
  for (i = 0; i < DIAL_FAIL_SLOTS; i++)
    if (strcmp(n->dial_fail[i].addr, addr) == 0)
      n->dial_fail[i].addr[0] = '\0';
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
     * once a minute, and that location is tried again later or left alone
     * for a while (DISCOVERY LIMITS; not after a proof: a duplicate link
     * of a real pair). */
    double now = net_now();
    net_discover_failed(n, l->addr, l->answered, now);
    n->disc_failed++;
    if (fmt && level <= 1 && net_quiet_ok(&n->disc_fail_log_at, now)) {
      net_log(n, level,
              "peer %s: %s (discovered; %llu failed discovered links so "
              "far, logged at most once a minute)",
              link_desc(l), reason, (unsigned long long)n->disc_failed);
    }
  } else if (fmt && l->outbound && !l->authed) {
    uint64_t quiet = 0;
    if (dial_fail_logged(n, l->addr, reason, &quiet)) {
      if (quiet > 0)
        net_log(n, level,
                "peer %s: %s (failed %llu more times the same way since; "
                "logged at most once a minute)",
                link_desc(l), reason, (unsigned long long)quiet);
      else
        net_log(n, level, "peer %s: %s", link_desc(l), reason);
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
  net_frame_header(p, type, n);
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
    net_frame_header(w + off, type, k);
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
  l->last_tx = net_now();
  if (data > 0 || raw_len > 0)
    l->last_msg = l->last_tx;
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
  l->last_msg = l->last_rx;
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
        net_hs_refuse(l, p, len);
        return;
      }
      break;
    default:
      break;
    }
    break;
  default: /* in handshake (net_handshake.c) */
    if (net_hs_frame(l, type, p, len))
      return;
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
    net_frame_t f;
    uint32_t flen = 0, limit = net_frame_limit(l->state >= L_SELECT);
    int got = net_frame_parse((const unsigned char *)l->rbuf + off,
                              l->rlen - off, limit, &f, &flen);
    if (got == NET_FRAME_BAD) {
      net_link_close(l, 1, 0, "malformed: frame length %u (limit %u%s)", flen,
                     limit,
                     l->state >= L_SELECT ? "" : " before authentication");
      break;
    }
    if (got == NET_FRAME_SHORT)
      break;
    frames++;
    on_frame(l, f.type, f.payload, f.plen);
    off += f.size;
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
  if (net_hs_begin(l) != 0) {
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
  net_hs_hello(l);
  net_kick(l);
}

int net_quiet_ok(double *last, double now) {
  if (*last != 0 && now - *last < QUIET_S)
    return 0;
  *last = now;
  return 1;
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
  net_hs_admit(n, l);
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

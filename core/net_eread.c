/* net_eread.c: ENGINE READS, the receive half of the round-trip fast path
 * (net.c's top comment has the whole design; DIRECT WRITES are the send
 * half). Without it every message received crosses two thread wake-ups:
 * the net thread wakes on the socket, reads, queues an event and wakes the
 * engine thread. With it, an idle plain link's socket is read by the
 * engine thread itself, on its own loop, and a message is delivered in the
 * same turn that reads it.
 *
 * HAND-OVER (net thread, net_eread_handover): when a read of a plain, up
 * link ends on a frame boundary (nothing partial, no split message being
 * reassembled), the net thread stops reading it, marks the peer ereading
 * (under the mutex, with a new generation) and posts EV_READ with a dup of
 * the socket (a dup: the net thread may close its fd at any time, and the
 * engine's poll must never watch a number that was reused). The EV_READ
 * comes after every MSG event already posted, so order holds.
 *
 * ENGINE READS (engine thread, on_readable): under the mutex, checks that
 * the hand-over still stands, takes the queued events (delivered first:
 * they are older than what it reads), recv()s into the peer's epend after
 * the partial frame left there last time, and keeps the whole MSG and
 * HEARTBEAT frames at the front; the rest stays in epend, under the mutex,
 * so the net thread can take it back at any time. Then it delivers. Any
 * frame it does not handle (PART/LAST of a split message, REFUSE, anything
 * malformed or over CHUNK), EOF or an error hands reading back
 * (CMD_EREAD_BACK): the net thread re-reads those bytes first (epend), then
 * the socket, and does what it always did. A reply sent from a delivery
 * goes direct: the engine arms dfd again from idle_fd as on_read does.
 *
 * BUSY ENGINE (net thread, net_eread_tick): the engine's reads count as
 * life for heartbeats (erx); when the engine has read nothing for two
 * heartbeats (fewer if `missed` is small), the net thread takes reading
 * back (ereading = 0 under the mutex: the engine's next turn sees it and
 * stops), and hands it over again only once the engine has drained its
 * events since: a busy engine thread does not make a live peer look dead.
 *
 * Only plain TCP links: a TLS link's bytes go through its TLS state on the
 * net thread (link_plain). */
#include "net_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the net thread's half ---- */

/* Links the engine thread may read: plain TCP, not TLS (its state lives
 * on the net thread). */
static int link_plain(const link_t *l) { return l->tls == NULL; }

void net_eread_handover(link_t *l) {
  acoro_net_t *n = l->net;
  peer_t *p = l->peer;
  uv_os_fd_t fd;
  int fd2, busy;
  ev_t *ev;
  if (n->no_eread || !link_plain(l) || p == NULL || l->state != L_UP ||
      l->closing || l->eread || l->read_paused || l->rlen != 0 || l->in_asm)
    return;
  uv_mutex_lock(&n->mu);
  busy = (l->reclaimed && n->ev_drains == l->reclaim_drains) || p->mb_paused;
  uv_mutex_unlock(&n->mu);
  if (busy || uv_fileno((const uv_handle_t *)&l->tcp, &fd) != 0)
    return;
  fd2 = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (fd2 < 0)
    return; /* out of fds: the net thread keeps reading */
  ev = net_ev_new(EV_READ, p->id, NULL, 0);
  if (ev == NULL) {
    close(fd2);
    return;
  }
  uv_read_stop((uv_stream_t *)&l->tcp);
  l->eread = 1;
  l->reclaimed = 0;
  uv_mutex_lock(&n->mu);
  p->ereading = 1;
  ev->req = ++p->egen;
  p->erx = net_now();
  uv_mutex_unlock(&n->mu);
  ev->status = fd2;
  net_post(n, ev);
}

/* Reads on the net thread again, the bytes the engine left first. */
static void take_back(link_t *l) {
  acoro_net_t *n = l->net;
  peer_t *p = l->peer;
  char *b;
  size_t len;
  uv_mutex_lock(&n->mu);
  p->ereading = 0;
  b = p->epend;
  len = p->epend_len;
  p->epend = NULL;
  p->epend_len = p->epend_cap = 0;
  uv_mutex_unlock(&n->mu);
  l->eread = 0;
  net_link_resume_read(l, b, len);
  free(b);
}

void net_eread_tick(link_t *l, double now) {
  acoro_net_t *n = l->net;
  peer_t *p = l->peer;
  double limit = n->missed >= 4 ? 2 * n->hb : n->missed * n->hb / 2;
  int back = 0;
  if (!l->eread || p == NULL)
    return;
  uv_mutex_lock(&n->mu);
  if (p->erx > l->last_rx)
    l->last_rx = p->erx;
  if (!p->ereading) {
    back = 1; /* handed back; its command is on the way (or was lost) */
  } else if (now - p->erx > limit) {
    back = 1; /* a busy engine thread */
    l->reclaimed = 1;
    l->reclaim_drains = n->ev_drains;
  }
  uv_mutex_unlock(&n->mu);
  if (back)
    take_back(l);
}

void net_eread_back(acoro_net_t *n, uint64_t peer) {
  peer_t *p;
  for (p = n->peers; p != NULL; p = p->next)
    if (p->id == peer)
      break;
  if (p != NULL && p->link != NULL && p->link->eread && !p->link->closing)
    take_back(p->link);
}

/* ---- the engine thread's half ---- */

typedef struct ereader_s {
  uv_poll_t poll; /* data = the reader */
  struct ereader_s *next;
  acoro_net_t *n;
  uint64_t peer, gen;
  int fd, stopped;
  char *buf; /* whole frames taken out of epend, delivered unlocked */
  size_t cap;
} ereader_t;

static void on_reader_closed(uv_handle_t *h) {
  ereader_t *r = h->data;
  close(r->fd);
  free(r->buf);
  free(r);
}

static void reader_stop(acoro_net_t *n, ereader_t *r) {
  ereader_t **pp;
  if (r->stopped)
    return;
  r->stopped = 1;
  for (pp = &n->readers; *pp != NULL; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  uv_poll_stop(&r->poll);
  uv_close((uv_handle_t *)&r->poll, on_reader_closed);
}

/* Mutex held: reading goes back to the net thread. 1 if it must be woken. */
static int hand_back_locked(acoro_net_t *n, peer_t *p) {
  cmd_t *c = calloc(1, sizeof *c);
  p->ereading = 0;
  if (c == NULL)
    return 0; /* the tick finds ereading 0 and takes reading back */
  c->kind = CMD_EREAD_BACK;
  c->peer = p->id;
  net_push_cmd(n, c);
  return 1;
}

static peer_t *live_peer(acoro_net_t *n, const ereader_t *r) {
  peer_t *p;
  for (p = n->peers; p != NULL; p = p->next)
    if (p->id == r->peer)
      return p->ereading && p->egen == r->gen ? p : NULL;
  return NULL;
}

/* Mutex held: room for EREAD_ROOM more bytes in epend. */
static int epend_room(peer_t *p) {
  char *nb;
  if (p->epend_cap - p->epend_len >= EREAD_ROOM)
    return 1;
  nb = realloc(p->epend, p->epend_len + EREAD_ROOM);
  if (nb == NULL)
    return 0;
  p->epend = nb;
  p->epend_cap = p->epend_len + EREAD_ROOM;
  return 1;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  ereader_t *r = h->data;
  acoro_net_t *n = r->n;
  peer_t *p;
  ev_t *evs;
  ssize_t got = 0;
  size_t off = 0, pos;
  uint32_t frames = 0, hbs = 0;
  int back = 0, wake = 0;
  (void)events;
  uv_mutex_lock(&n->mu);
  if ((p = live_peer(n, r)) == NULL) {
    uv_mutex_unlock(&n->mu);
    reader_stop(n, r); /* taken back, or the peer is gone */
    return;
  }
  /* Events queued before this read are older than what it reads. */
  evs = n->ev_head;
  n->ev_head = n->ev_tail = NULL;
  n->ev_drains++;
  if (status < 0 || p->mb_paused || !epend_room(p)) {
    back = 1; /* (MAILBOX FLOW CONTROL: the net thread stops the link) */
  } else {
    do
      got = recv(r->fd, p->epend + p->epend_len, p->epend_cap - p->epend_len,
                 MSG_DONTWAIT);
    while (got < 0 && errno == EINTR);
    if (got > 0) {
      p->epend_len += (size_t)got;
      n->stats.bytes_in += (uint64_t)got;
      p->erx = net_now();
    } else if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      back = 1; /* EOF or an error: the net thread reads it and closes */
    }
  }
  /* The whole frames this thread handles, from the front. */
  while (p->epend_len - off >= 4) {
    net_frame_t f;
    uint32_t flen;
    int parsed =
        net_frame_parse((const unsigned char *)p->epend + off,
                        p->epend_len - off, EREAD_PAYLOAD_MAX + 1, &f, &flen);
    if (parsed == NET_FRAME_SHORT)
      break;
    if (parsed == NET_FRAME_BAD) {
      back = 1;
      break;
    }
    if (f.type == F_HEARTBEAT && f.plen == 0) {
      hbs++;
    } else if (f.type != F_MSG) {
      back = 1;
      break;
    }
    frames++;
    off += f.size;
  }
  if (off > r->cap) {
    char *nb = realloc(r->buf, off);
    if (nb == NULL) {
      off = frames = hbs = 0; /* all of it goes back to the net thread */
      back = 1;
    } else {
      r->buf = nb;
      r->cap = off;
    }
  }
  if (off > 0) {
    memcpy(r->buf, p->epend, off);
    memmove(p->epend, p->epend + off, p->epend_len - off);
    p->epend_len -= off;
    n->stats.frames_in += frames;
    n->stats.heartbeats_in += hbs;
    p->emsgs += frames - hbs;
    /* A frame came in, as in on_read: a reply may go direct. */
    if (p->draw_len == 0 && n->cmd_head == NULL)
      p->dfd = p->idle_fd;
  }
  if (back)
    wake = hand_back_locked(n, p);
  uv_mutex_unlock(&n->mu);
  if (wake)
    uv_async_send(&n->wake);
  net_run_events(n, evs);
  /* A callback may have stopped the net (and this reader): then n is gone
   * and nothing more is delivered. */
  for (pos = 0; pos < off && !r->stopped;) {
    const unsigned char *f = (const unsigned char *)r->buf + pos;
    uint32_t flen = net_get32(f);
    if (f[4] == F_MSG && n->cb.message) {
      n->cb.message(n->cb_data, r->peer, (const char *)f + HDR, flen - 1);
      if (!r->stopped)
        net_mb_check(n, r->peer);
    }
    pos += 4 + (size_t)flen;
  }
  if (back)
    reader_stop(n, r);
}

void net_eread_start(acoro_net_t *n, ev_t *ev) {
  ereader_t *r;
  int fd = ev->status, wake = 0;
  net_eread_stop_peer(n, ev->peer); /* an older hand-over's reader */
  r = calloc(1, sizeof *r);
  if (r != NULL &&
      uv_poll_init_socket(acoro_engine_loop(n->engine), &r->poll, fd) == 0) {
    r->poll.data = r;
    r->n = n;
    r->peer = ev->peer;
    r->gen = ev->req;
    r->fd = fd;
    r->next = n->readers;
    n->readers = r;
    if (uv_poll_start(&r->poll, UV_READABLE, on_readable) == 0)
      return;
    reader_stop(n, r); /* closes fd */
  } else {
    free(r);
    close(fd);
  }
  /* Cannot poll it: reading goes straight back. */
  uv_mutex_lock(&n->mu);
  {
    ereader_t probe;
    peer_t *p;
    probe.peer = ev->peer;
    probe.gen = ev->req;
    if ((p = live_peer(n, &probe)) != NULL)
      wake = hand_back_locked(n, p);
  }
  uv_mutex_unlock(&n->mu);
  if (wake)
    uv_async_send(&n->wake);
}

void net_eread_stop_peer(acoro_net_t *n, uint64_t peer) {
  ereader_t *r = n->readers, *next;
  for (; r != NULL; r = next) {
    next = r->next;
    if (r->peer == peer)
      reader_stop(n, r);
  }
}

void net_eread_stop_all(acoro_net_t *n) {
  while (n->readers != NULL)
    reader_stop(n, n->readers);
}

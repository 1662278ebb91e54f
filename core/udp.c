/* udp.c: UDP sockets: datagrams received in the background into a bounded
 * queue that a coroutine waits on, and sends to numeric addresses at once
 * or to names resolved without blocking the loop. ENGINE THREAD ONLY. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DGRAM_MAX 65536

typedef struct dgram_s {
  struct dgram_s *next;
  struct sockaddr_storage from;
  size_t len;
  char data[];
} dgram_t;

/* A send to a name: resolution, then the send, then the sender is told (if
 * it still waits: u->spending is this request). Holds a socket reference. */
typedef struct udp_send_s {
  uv_getaddrinfo_t gai;
  uv_udp_send_t send;
  acoro_udp_t *u;
  int port;
  size_t len;
  char data[];
} udp_send_t;

/* OWNERSHIP: refs = the open handle's (dropped in the close callback) + the
 * host's (acoro_udp_release) + one per send in flight. */
struct acoro_udp_s {
  io_obj_t io;
  uv_udp_t h;
  int family;
  dgram_t *head, *tail;
  uint32_t count;
  uint64_t dropped;
  char *rbuf; /* libuv receives here; each datagram is then copied */
  int rstatus;
  int sstatus;
  udp_send_t *spending; /* the send whose result the waiting sender wants */
  acoro_io_wait_t rwait, swait;
};

/* The waiting sender gave up (timeout, interrupt): the send goes on, and its
 * result is dropped. */
static void cancel_send(acoro_io_wait_t *w) {
  acoro_udp_t *u = w->data;
  u->spending = NULL;
}

static void udp_free(io_obj_t *o) {
  acoro_udp_t *u = (acoro_udp_t *)o;
  dgram_t *d;
  while ((d = u->head) != NULL) {
    u->head = d->next;
    free(d);
  }
  free(u->rbuf);
  free(u);
}

static void udp_close_io(io_obj_t *o) { acoro_udp_close((acoro_udp_t *)o); }

static const io_type_t udp_type = {udp_close_io, udp_free};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  acoro_udp_t *u = h->data;
  (void)suggested;
  if (u->rbuf == NULL)
    u->rbuf = malloc(DGRAM_MAX);
  /* NULL: libuv reports UV_ENOBUFS, and the datagram is lost. */
  *buf = uv_buf_init(u->rbuf, u->rbuf != NULL ? DGRAM_MAX : 0);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  acoro_udp_t *u = h->data;
  dgram_t *d;
  (void)flags; /* UV_UDP_PARTIAL: the datagram is kept, cut at 64 KB */
  if (nread < 0 || addr == NULL)
    return; /* errors on a datagram socket are the datagram's, not ours */
  if (u->count >= ACORO_UDP_QUEUE) {
    u->dropped++;
    return;
  }
  d = malloc(sizeof *d + (size_t)nread);
  if (d == NULL) {
    u->dropped++;
    return;
  }
  d->next = NULL;
  memset(&d->from, 0, sizeof d->from);
  memcpy(&d->from, addr,
         addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  d->len = (size_t)nread;
  memcpy(d->data, buf->base, (size_t)nread);
  if (u->tail != NULL)
    u->tail->next = d;
  else
    u->head = d;
  u->tail = d;
  u->count++;
  acoro_io_done(&u->rwait);
}

int acoro_udp_bind(acoro_engine_t *e, const char *host, int port, int flags,
                   acoro_udp_t **out) {
  struct sockaddr_storage addr;
  acoro_udp_t *u;
  int rc;
  if (port < 0 || port > 65535)
    return UV_EINVAL;
  memset(&addr, 0, sizeof addr);
  rc = addr_local(host, port, SOCK_DGRAM, &addr);
  if (rc != 0)
    return rc;
  u = calloc(1, sizeof *u);
  if (u == NULL)
    return UV_ENOMEM;
  rc = uv_udp_init(&e->loop, &u->h);
  if (rc != 0) {
    free(u);
    return rc;
  }
  io_init(&u->io, e, &udp_type, 2);
  u->h.data = u;
  u->family = addr.ss_family;
  u->rwait.cancel = io_cancel_nothing;
  u->swait.cancel = cancel_send;
  u->swait.data = u;
  io_link(&u->io);
  rc = uv_udp_bind(&u->h, (const struct sockaddr *)&addr,
                   (flags & ACORO_UDP_REUSE) ? UV_UDP_REUSEADDR : 0);
  if (rc == 0 && (flags & ACORO_UDP_BROADCAST))
    rc = uv_udp_set_broadcast(&u->h, 1);
  if (rc == 0)
    rc = uv_udp_recv_start(&u->h, on_alloc, on_recv);
  if (rc != 0) {
    acoro_udp_release(u);
    return rc;
  }
  *out = u;
  return 0;
}

int acoro_udp_recv(acoro_co_t *co, acoro_udp_t *u, double timeout) {
  int rc;
  if (u->head != NULL || !u->io.open || u->rstatus != 0)
    return 1;
  rc = acoro_io_wait(co, &u->rwait, timeout);
  return rc < 0 ? rc : 0;
}

int acoro_udp_next(acoro_udp_t *u, const char **data, size_t *len, char *host,
                   size_t hostlen, int *port) {
  dgram_t *d = u->head;
  if (d == NULL)
    return 0;
  *data = d->data;
  *len = d->len;
  if (addr_name(&d->from, host, hostlen, port) != 0) {
    if (hostlen > 0)
      host[0] = '\0';
    *port = 0;
  }
  return 1;
}

void acoro_udp_pop(acoro_udp_t *u) {
  dgram_t *d = u->head;
  if (d == NULL)
    return;
  u->head = d->next;
  if (u->head == NULL)
    u->tail = NULL;
  u->count--;
  free(d);
}

int acoro_udp_recv_status(const acoro_udp_t *u) {
  if (!u->io.open)
    return UV_ECANCELED;
  return u->rstatus;
}

uint64_t acoro_udp_dropped(const acoro_udp_t *u) { return u->dropped; }

/* Sending. */

static void send_done(udp_send_t *r, int status) {
  acoro_udp_t *u = r->u;
  if (u->spending == r) {
    u->spending = NULL;
    u->sstatus = status;
    acoro_io_done(&u->swait);
  }
  free(r);
  io_unref(&u->io);
}

static void on_sent(uv_udp_send_t *req, int status) {
  send_done(req->data, status);
}

static udp_send_t *send_new(acoro_udp_t *u, const char *data, size_t len,
                            int port) {
  udp_send_t *r = malloc(sizeof *r + len);
  if (r == NULL)
    return NULL;
  r->u = u;
  r->port = port;
  r->len = len;
  memcpy(r->data, data, len);
  r->gai.data = r;
  r->send.data = r;
  return r;
}

static int send_start(udp_send_t *r, const struct sockaddr *addr) {
  uv_buf_t buf = uv_buf_init(r->data, (unsigned)r->len);
  return uv_udp_send(&r->send, &r->u->h, &buf, 1, addr, on_sent);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  udp_send_t *r = req->data;
  acoro_udp_t *u = r->u;
  struct addrinfo *a;
  if (status == 0 && !u->io.open)
    status = UV_ECANCELED;
  if (status == 0) {
    status = UV_EADDRNOTAVAIL;
    for (a = res; a != NULL; a = a->ai_next) {
      if (a->ai_family == AF_INET)
        ((struct sockaddr_in *)a->ai_addr)->sin_port = htons((uint16_t)r->port);
      else if (a->ai_family == AF_INET6)
        ((struct sockaddr_in6 *)a->ai_addr)->sin6_port =
            htons((uint16_t)r->port);
      else
        continue;
      status = send_start(r, a->ai_addr);
      break;
    }
  }
  if (res != NULL)
    uv_freeaddrinfo(res);
  if (status != 0)
    send_done(r, status);
}

int acoro_udp_send(acoro_co_t *co, acoro_udp_t *u, const char *data, size_t len,
                   const char *host, int port, double timeout) {
  struct sockaddr_storage addr;
  udp_send_t *r;
  int rc;
  if (!u->io.open)
    return ACORO_ECLOSED;
  if (port < 0 || port > 65535 || host == NULL)
    return ACORO_EINVAL;
  memset(&addr, 0, sizeof addr);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) == 0) {
    /* Numeric: the kernel takes it now, or (rarely) it is queued after the
     * sends libuv holds, in order; either way the sender goes on. */
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    rc = uv_udp_try_send(&u->h, &buf, 1, (const struct sockaddr *)&addr);
    if (rc >= 0) {
      u->sstatus = 0;
      return 1;
    }
    if (rc == UV_EAGAIN || rc == UV_ENOSYS) {
      r = send_new(u, data, len, port);
      rc =
          r == NULL ? UV_ENOMEM : send_start(r, (const struct sockaddr *)&addr);
      if (rc == 0) {
        u->io.refs++;
        u->sstatus = 0;
        return 1;
      }
      free(r);
    }
    u->sstatus = rc;
    return ACORO_EIO;
  }
  /* A name: resolved for the socket's address family, then sent. One
   * coroutine waits for a resolution at a time (a send to an address, above,
   * never waits, so it goes on meanwhile). */
  if (u->swait.co != NULL)
    return u->swait.co == co ? ACORO_ESTATE : ACORO_EWAITING;
  r = send_new(u, data, len, port);
  if (r == NULL) {
    u->sstatus = UV_ENOMEM;
    return ACORO_EIO;
  }
  {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = u->family;
    hints.ai_socktype = SOCK_DGRAM;
    rc = uv_getaddrinfo(&u->io.engine->loop, &r->gai, on_resolved, host, NULL,
                        &hints);
  }
  if (rc != 0) {
    free(r);
    u->sstatus = rc;
    return ACORO_EIO;
  }
  u->io.refs++;
  rc = acoro_io_wait(co, &u->swait, timeout);
  if (rc < 0)
    return rc; /* the send goes on, unwatched */
  u->spending = r;
  return 0;
}

int acoro_udp_send_status(const acoro_udp_t *u) { return u->sstatus; }

int acoro_udp_name(acoro_udp_t *u, char *host, size_t len, int *port) {
  struct sockaddr_storage a;
  int n = sizeof a, rc;
  if (!u->io.open)
    return ACORO_ECLOSED;
  rc = uv_udp_getsockname(&u->h, (struct sockaddr *)&a, &n);
  return rc != 0 ? rc : addr_name(&a, host, len, port);
}

/* Closes the socket: queued datagrams stay readable until release; waiters
 * wake (the reader to find receiving ended, the sender ECANCELED). */
void acoro_udp_close(acoro_udp_t *u) {
  if (!io_unlink(&u->io))
    return;
  uv_udp_recv_stop(&u->h);
  if (u->spending != NULL) {
    u->spending = NULL;
    u->sstatus = UV_ECANCELED;
  }
  acoro_io_done(&u->rwait);
  acoro_io_done(&u->swait);
  uv_close((uv_handle_t *)&u->h, io_on_close);
}

void acoro_udp_release(acoro_udp_t *u) { io_release((io_obj_t *)u); }

int acoro_udp_is_open(const acoro_udp_t *u) { return u->io.open; }

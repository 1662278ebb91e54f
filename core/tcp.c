/* tcp.c: TCP connections (name resolution and connect, each address in
 * turn) and listening servers whose accept a coroutine waits for.
 * ENGINE THREAD ONLY. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connect in progress. OWNERSHIP: two references, the host's (until
 * acoro_connect_free) and libuv's (until resolution and connect are over),
 * so either may go first. */
struct acoro_connect_s {
  acoro_engine_t *engine;
  uv_getaddrinfo_t gai;
  uv_connect_t req;
  struct addrinfo *ai, *next; /* addresses, and the one to try next */
  acoro_stream_t *s;          /* the stream being connected, then the result */
  int status;                 /* 0 connected, < 0 libuv error */
  int busy;                   /* libuv still has it */
  int host_gone;
  acoro_io_wait_t wait;
};

static void connect_unref_libuv(acoro_connect_t *c) {
  c->busy = 0;
  if (c->ai != NULL) {
    uv_freeaddrinfo(c->ai);
    c->ai = NULL;
  }
  if (c->host_gone) {
    acoro_stream_release(c->s);
    free(c);
  } else {
    acoro_io_done(&c->wait);
  }
}

static void try_next(acoro_connect_t *c);

static void on_connect(uv_connect_t *req, int status) {
  acoro_connect_t *c = req->data;
  if (status == 0 && !c->host_gone) {
    c->status = 0;
    connect_unref_libuv(c);
    return;
  }
  acoro_stream_release(c->s); /* this address failed (or nobody waits) */
  c->s = NULL;
  c->status = status;
  if (c->host_gone || c->next == NULL)
    connect_unref_libuv(c);
  else
    try_next(c);
}

static void try_next(acoro_connect_t *c) {
  while (c->next != NULL) {
    struct addrinfo *a = c->next;
    acoro_stream_t *s;
    int rc;
    c->next = a->ai_next;
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
      continue;
    s = stream_new(c->engine);
    if (s == NULL) {
      c->status = UV_ENOMEM;
      break;
    }
    rc = uv_tcp_init(&c->engine->loop, &s->u.tcp);
    if (rc != 0) {
      stream_discard(s);
      c->status = rc;
      break;
    }
    stream_opened(s);
    c->s = s;
    c->req.data = c;
    rc = uv_tcp_connect(&c->req, &s->u.tcp, a->ai_addr, on_connect);
    if (rc == 0)
      return;
    acoro_stream_release(s);
    c->s = NULL;
    c->status = rc;
  }
  connect_unref_libuv(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  acoro_connect_t *c = req->data;
  c->ai = c->next = res;
  if (status < 0 || c->host_gone) {
    c->status = status < 0 ? status : UV_ECANCELED;
    connect_unref_libuv(c);
    return;
  }
  c->status = UV_EADDRNOTAVAIL; /* if no address is usable */
  try_next(c);
}

int acoro_tcp_connect(acoro_engine_t *e, const char *host, int port,
                      acoro_connect_t **out) {
  acoro_connect_t *c;
  struct addrinfo hints;
  char service[16];
  int rc;
  if (port < 0 || port > 65535)
    return ACORO_EINVAL;
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return ACORO_ENOMEM;
  c->engine = e;
  c->wait.cancel = io_cancel_nothing;
  c->gai.data = c;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(service, sizeof service, "%d", port);
  pool_note_use(); /* resolution runs on libuv's thread pool */
  rc = uv_getaddrinfo(&e->loop, &c->gai, on_resolved, host, service, &hints);
  if (rc != 0) {
    free(c);
    return rc;
  }
  c->busy = 1;
  *out = c;
  return 0;
}

int acoro_connect_wait(acoro_co_t *co, acoro_connect_t *c, double timeout) {
  int rc;
  if (!c->busy)
    return 1;
  rc = acoro_io_wait(co, &c->wait, timeout);
  return rc < 0 ? rc : 0;
}

int acoro_connect_result(acoro_connect_t *c, acoro_stream_t **out) {
  if (c->busy)
    return UV_EAGAIN;
  if (c->status != 0)
    return c->status;
  *out = c->s;
  c->s = NULL;
  return 0;
}

void acoro_connect_free(acoro_connect_t *c) {
  if (c == NULL)
    return;
  if (c->busy) {
    /* libuv ends it; uv_cancel stops a resolution not yet started. */
    c->host_gone = 1;
    uv_cancel((uv_req_t *)&c->gai);
    return;
  }
  acoro_stream_release(c->s);
  free(c);
}

/* Servers. A connection the kernel completed waits in the backlog until a
 * coroutine accepts it: when nobody accepts, libuv holds the one it took
 * and stops polling, so an idle server queues nothing in user space. */
struct acoro_server_s {
  io_obj_t io; /* refs: the open handle's and the host's */
  uv_tcp_t tcp;
  int pending; /* connections announced and not yet accepted */
  int status;  /* a listen error, reported by the next accept */
  acoro_io_wait_t wait;
};

static void server_free(io_obj_t *o) { free(o); }

static void server_close_io(io_obj_t *o) {
  acoro_server_close((acoro_server_t *)o);
}

static const io_type_t server_type = {server_close_io, server_free};

static void on_connection(uv_stream_t *h, int status) {
  acoro_server_t *srv = h->data;
  if (status < 0)
    srv->status = status;
  else
    srv->pending++;
  acoro_io_done(&srv->wait);
}

int acoro_tcp_listen(acoro_engine_t *e, const char *host, int port, int backlog,
                     acoro_server_t **out) {
  struct sockaddr_storage addr;
  acoro_server_t *srv;
  int rc;
  if (port < 0 || port > 65535)
    return ACORO_EINVAL;
  rc = addr_local(host, port, SOCK_STREAM, &addr);
  if (rc != 0)
    return rc;
  srv = calloc(1, sizeof *srv);
  if (srv == NULL)
    return ACORO_ENOMEM;
  io_init(&srv->io, e, &server_type, 2);
  srv->wait.cancel = io_cancel_nothing;
  rc = uv_tcp_init(&e->loop, &srv->tcp);
  if (rc != 0) {
    free(srv);
    return rc;
  }
  srv->tcp.data = srv;
  io_link(&srv->io);
  rc = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->tcp, backlog > 0 ? backlog : 128,
                   on_connection);
  if (rc != 0) {
    acoro_server_release(srv);
    return rc;
  }
  *out = srv;
  return 0;
}

int acoro_tcp_accept(acoro_co_t *co, acoro_server_t *srv, double timeout,
                     acoro_stream_t **out) {
  acoro_stream_t *s;
  int rc;
  if (!srv->io.open)
    return ACORO_ECLOSED;
  if (srv->pending == 0) {
    if (srv->status != 0) { /* reported once */
      rc = srv->status;
      srv->status = 0;
      return rc;
    }
    rc = acoro_io_wait(co, &srv->wait, timeout);
    return rc < 0 ? rc : 0;
  }
  srv->pending--;
  s = stream_new(srv->io.engine);
  if (s == NULL)
    return ACORO_ENOMEM;
  rc = uv_tcp_init(&srv->io.engine->loop, &s->u.tcp);
  if (rc != 0) {
    stream_discard(s);
    return rc;
  }
  stream_opened(s);
  rc = uv_accept((uv_stream_t *)&srv->tcp, &s->u.stream);
  if (rc != 0) {
    acoro_stream_release(s);
    return rc;
  }
  *out = s;
  return 1;
}

/* Stops listening; an accept that waits returns (ECLOSED on its retry). */
void acoro_server_close(acoro_server_t *srv) {
  if (!io_unlink(&srv->io))
    return;
  acoro_io_done(&srv->wait);
  uv_close((uv_handle_t *)&srv->tcp, io_on_close);
}

void acoro_server_release(acoro_server_t *srv) { io_release((io_obj_t *)srv); }

int acoro_server_is_open(const acoro_server_t *srv) { return srv->io.open; }

int acoro_tcp_name(acoro_stream_t *s, int peer, char *host, size_t len,
                   int *port) {
  struct sockaddr_storage a;
  int n = sizeof a, rc;
  if (!s->io.open)
    return ACORO_ECLOSED;
  if (s->u.handle.type != UV_TCP)
    return ACORO_EINVAL;
  rc = peer ? uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&a, &n)
            : uv_tcp_getsockname(&s->u.tcp, (struct sockaddr *)&a, &n);
  return rc != 0 ? rc : addr_name(&a, host, len, port);
}

int acoro_server_name(acoro_server_t *srv, char *host, size_t len, int *port) {
  struct sockaddr_storage a;
  int n = sizeof a, rc;
  if (!srv->io.open)
    return ACORO_ECLOSED;
  rc = uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&a, &n);
  return rc != 0 ? rc : addr_name(&a, host, len, port);
}

int acoro_tcp_nodelay(acoro_stream_t *s, int on) {
  if (!s->io.open)
    return ACORO_ECLOSED;
  if (s->u.handle.type != UV_TCP)
    return ACORO_EINVAL;
  return uv_tcp_nodelay(&s->u.tcp, on);
}

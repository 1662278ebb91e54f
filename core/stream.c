/* stream.c: byte streams (TCP connections, pipes, terminals) that
 * coroutines read and write as if they blocked: a read buffer filled by
 * libuv, one waiting reader and one waiting writer, and optional TLS (tls.c)
 * between the socket and the buffer.
 *
 * OWNERSHIP: a stream is malloc'd and counted: one reference for the open
 * libuv handle (dropped in the close callback), one for the host (dropped by
 * acoro_stream_release), one per write in flight. The memory goes with the
 * last one, so a host may keep its pointer after the engine closed every
 * handle (acoro_engine_free) and only then release it. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct write_req_s {
  uv_write_t req;
  acoro_stream_t *s;
  size_t len;
  char data[]; /* a copy of what the kernel did not take at once */
} write_req_t;

static void stream_free(io_obj_t *o) {
  acoro_stream_t *s = (acoro_stream_t *)o;
  tls_free(s);
  rd_free(&s->rd);
  free(s);
}

static void stream_close_io(io_obj_t *o) {
  acoro_stream_close((acoro_stream_t *)o);
}

static const io_type_t stream_type = {stream_close_io, stream_free};

static void stream_consumed(acoro_reader_t *r, size_t n);

acoro_stream_t *stream_new(acoro_engine_t *e) {
  acoro_stream_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  io_init(&s->io, e, &stream_type, 2); /* the handle (once open), the host */
  s->rwait.cancel = io_cancel_nothing;
  s->wwait.cancel = io_cancel_nothing;
  s->rdelim = -1;
  s->rd.consumed = stream_consumed;
  s->u.handle.data = s;
  return s;
}

/* Frees a stream whose handle could not be initialised. */
void stream_discard(acoro_stream_t *s) { free(s); }

void stream_opened(acoro_stream_t *s) {
  s->u.handle.data = s;
  io_link(&s->io);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  acoro_stream_t *s = h->data;
  (void)suggested;
  if (s->tls != NULL) {
    tls_raw_buffer(s, buf);
    return;
  }
  if (rd_reserve(&s->rd, READ_CHUNK, READ_CHUNK) != 0) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init(s->rd.buf + s->rd.pos + s->rd.len,
                     (unsigned)(s->rd.cap - s->rd.pos - s->rd.len));
}

static void read_stop(acoro_stream_t *s) {
  if (s->reading) {
    uv_read_stop(&s->u.stream);
    s->reading = 0;
  }
}

/* Wakes the reader if it has what it wants; stops reading when enough is
 * buffered and nobody waits for more (the peer is then held back by TCP). */
void stream_readable(acoro_stream_t *s) {
  if (s->rwait.co != NULL && rd_has(&s->rd, s->rmin, s->rdelim))
    acoro_io_done(&s->rwait);
  if (s->rd.status != 0 ||
      (s->rwait.co == NULL && s->rd.len >= READ_HIGH_WATER))
    read_stop(s);
}

/* Reading ended (EOF or an error): the reader learns it, and so does a
 * writer for errors (a reset connection takes both directions). */
void stream_read_ended(acoro_stream_t *s, int status) {
  if (s->rd.status == 0)
    s->rd.status = status;
  read_stop(s);
  if (s->tls != NULL)
    tls_read_ended(s, status);
  if (status != UV_EOF && s->wwait.co != NULL) {
    s->wstatus = status;
    acoro_io_done(&s->wwait);
  }
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  acoro_stream_t *s = h->data;
  if (nread > 0) {
    if (s->tls != NULL)
      tls_feed(s, buf->base, (size_t)nread);
    else
      s->rd.len += (size_t)nread;
  } else if (nread < 0) {
    stream_read_ended(s, (int)nread);
  }
  stream_readable(s);
}

int stream_read_start(acoro_stream_t *s) {
  int rc;
  if (s->reading || s->rd.status != 0 || !s->io.open)
    return 0;
  rc = uv_read_start(&s->u.stream, on_alloc, on_read);
  if (rc != 0) {
    s->rd.status = rc;
    return rc;
  }
  s->reading = 1;
  return 0;
}

int acoro_stream_read(acoro_co_t *co, acoro_stream_t *s, size_t min, int delim,
                      double timeout) {
  int rc;
  if (!s->io.open)
    return ACORO_ECLOSED;
  if (s->rwait.co != NULL)
    return s->rwait.co == co ? ACORO_ESTATE : ACORO_EWAITING;
  s->rmin = min > 0 ? min : 1;
  s->rdelim = delim;
  if (s->tls != NULL)
    tls_pump(s); /* after rmin is set: see tls_pump */
  if (rd_has(&s->rd, s->rmin, s->rdelim))
    return 1;
  rc = stream_read_start(s);
  if (rc != 0)
    return 1; /* the caller sees the failure in acoro_stream_read_status */
  rc = acoro_io_wait(co, &s->rwait, timeout);
  return rc < 0 ? rc : 0;
}

acoro_reader_t *acoro_stream_reader(acoro_stream_t *s) { return &s->rd; }

/* Room again: reading goes on in the background (and for TLS, the
 * plaintext OpenSSL holds moves into the buffer). */
static void stream_consumed(acoro_reader_t *r, size_t n) {
  acoro_stream_t *s =
      (acoro_stream_t *)((char *)r - offsetof(acoro_stream_t, rd));
  (void)n;
  if (s->io.open && s->rd.status == 0 && s->rd.len < READ_HIGH_WATER) {
    if (s->tls != NULL)
      tls_pump(s);
    stream_read_start(s);
  }
}

/* Writes. */

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  acoro_stream_t *s = w->s;
  s->wqueued -= w->len;
  if (status < 0 && s->wstatus == 0)
    s->wstatus = status;
  if (s->wwait.co != NULL && (s->wqueued == 0 || status < 0))
    acoro_io_done(&s->wwait);
  free(w);
  io_unref(&s->io);
}

/* Hands `len` bytes to the kernel: what it does not take at once is copied
 * and queued. Returns 0 or a libuv error. */
int stream_raw_write(acoro_stream_t *s, const char *data, size_t len) {
  write_req_t *w;
  uv_buf_t buf;
  int rc;
  if (len == 0)
    return 0;
  if (s->wqueued == 0) { /* nothing queued: order is kept */
    buf = uv_buf_init((char *)data, (unsigned)len);
    rc = uv_try_write(&s->u.stream, &buf, 1);
    if (rc >= 0) {
      data += rc;
      len -= (size_t)rc;
      if (len == 0)
        return 0;
    } else if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
      return rc;
    }
  }
  w = malloc(sizeof *w + len);
  if (w == NULL)
    return UV_ENOMEM;
  memcpy(w->data, data, len);
  w->s = s;
  w->len = len;
  buf = uv_buf_init(w->data, (unsigned)len);
  rc = uv_write(&w->req, &s->u.stream, &buf, 1, on_write);
  if (rc != 0) {
    free(w);
    return rc;
  }
  s->io.refs++;
  s->wqueued += len;
  return 0;
}

int acoro_stream_write(acoro_co_t *co, acoro_stream_t *s, const char *data,
                       size_t len, double timeout) {
  int rc;
  if (!s->io.open)
    return ACORO_ECLOSED;
  if (s->wwait.co != NULL)
    return s->wwait.co == co ? ACORO_ESTATE : ACORO_EWAITING;
  if (s->wstatus != 0)
    return ACORO_EIO;
  rc =
      s->tls != NULL ? tls_write(s, data, len) : stream_raw_write(s, data, len);
  if (rc != 0) {
    s->wstatus = rc;
    return ACORO_EIO;
  }
  if (s->wqueued == 0)
    return 1;
  rc = acoro_io_wait(co, &s->wwait, timeout);
  return rc < 0 ? rc : 0;
}

int acoro_stream_write_status(const acoro_stream_t *s) {
  if (s->wstatus != 0)
    return s->wstatus;
  return s->wqueued == 0 ? 0 : UV_EAGAIN;
}

size_t acoro_stream_write_queued(const acoro_stream_t *s) { return s->wqueued; }

/* Closing. */

void acoro_stream_close(acoro_stream_t *s) {
  if (!s->io.open)
    return;
  if (s->tls != NULL)
    tls_close_notify(s);
  io_unlink(&s->io);
  read_stop(s);
  if (s->rd.status == 0)
    s->rd.status = UV_ECANCELED;
  if (s->wstatus == 0)
    s->wstatus = UV_ECANCELED;
  acoro_io_done(&s->rwait);
  acoro_io_done(&s->wwait);
  tls_wake(s);
  if (!uv_is_closing(&s->u.handle))
    uv_close(&s->u.handle, io_on_close);
}

void acoro_stream_release(acoro_stream_t *s) { io_release((io_obj_t *)s); }

int acoro_stream_is_open(const acoro_stream_t *s) { return s->io.open; }

/* A stream over an fd the process already has (stdin, a socket from
 * elsewhere): a terminal, a pipe or a TCP socket. A regular file is not a
 * stream (ACORO_EINVAL): the host reads it as a file. */
int acoro_stream_open_fd(acoro_engine_t *e, int fd, acoro_stream_t **out) {
  acoro_stream_t *s;
  uv_loop_t *loop = &e->loop;
  int rc;
  uv_handle_type t = uv_guess_handle(fd);
  if (t != UV_TTY && t != UV_NAMED_PIPE && t != UV_TCP)
    return ACORO_EINVAL;
  s = stream_new(e);
  if (s == NULL)
    return ACORO_ENOMEM;
  if (t == UV_TTY) {
    rc = uv_tty_init(loop, &s->u.tty, fd, 0);
  } else if (t == UV_NAMED_PIPE) {
    rc = uv_pipe_init(loop, &s->u.pipe, 0);
    if (rc == 0 && (rc = uv_pipe_open(&s->u.pipe, fd)) != 0) {
      stream_opened(s);
      acoro_stream_release(s);
      return rc;
    }
  } else {
    rc = uv_tcp_init(loop, &s->u.tcp);
    if (rc == 0 && (rc = uv_tcp_open(&s->u.tcp, fd)) != 0) {
      stream_opened(s);
      acoro_stream_release(s);
      return rc;
    }
  }
  if (rc != 0) {
    stream_discard(s);
    return rc;
  }
  stream_opened(s);
  *out = s;
  return 0;
}

/* A pipe stream not yet connected to anything, for uv_spawn's stdio. */
int acoro_stream_new_pipe(acoro_engine_t *e, acoro_stream_t **out) {
  acoro_stream_t *s = stream_new(e);
  int rc;
  if (s == NULL)
    return ACORO_ENOMEM;
  rc = uv_pipe_init(&e->loop, &s->u.pipe, 0);
  if (rc != 0) {
    stream_discard(s);
    return rc;
  }
  stream_opened(s);
  *out = s;
  return 0;
}

uv_stream_t *acoro_stream_handle(acoro_stream_t *s) { return &s->u.stream; }

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

int acoro_stream_shutdown(acoro_stream_t *s) {
  uv_shutdown_t *req;
  int rc;
  if (!s->io.open)
    return ACORO_ECLOSED;
  req = malloc(sizeof *req);
  if (req == NULL)
    return ACORO_ENOMEM;
  rc = uv_shutdown(req, &s->u.stream, on_shutdown);
  if (rc != 0)
    free(req);
  return rc;
}

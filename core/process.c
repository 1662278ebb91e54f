/* process.c: child processes (uv_spawn) whose stdio may be pipes read and
 * written as acoro streams, and whose exit a coroutine can wait for.
 * ENGINE THREAD ONLY. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* OWNERSHIP: two references, the open uv_process_t's (dropped in its close
 * callback, which follows the exit at once: libuv has reaped the child by
 * then) and the host's (acoro_process_release). Either may go first: a
 * child the host let go of keeps its handle, unreferenced so that it does
 * not keep the loop alive, until it exits and is reaped. */
struct acoro_process_s {
  io_obj_t io; /* open: spawned and not yet exited (the handle is open) */
  uv_process_t h;
  int pid;
  int exited; /* the exit was seen (not set when the engine went first) */
  int64_t exit_status;
  int term_signal;
  acoro_io_wait_t wait;
};

static void process_free(io_obj_t *o) { free(o); }

/* Closes the handle of a child that exited (or whose engine goes). */
static void close_handle(acoro_process_t *p) {
  if (!io_unlink(&p->io))
    return;
  uv_close((uv_handle_t *)&p->h, io_on_close);
}

static void on_child_exit(uv_process_t *h, int64_t exit_status,
                          int term_signal) {
  acoro_process_t *p = h->data;
  p->exited = 1;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  close_handle(p);
  acoro_io_done(&p->wait);
}

/* The engine is going: the handle closes (the child runs on, and is
 * reaped by whoever inherits it). A waiter is woken. */
static void process_close_io(io_obj_t *o) {
  acoro_process_t *p = (acoro_process_t *)o;
  close_handle(p);
  acoro_io_done(&p->wait);
}

static const io_type_t process_type = {process_close_io, process_free};

static int stdio_of(const acoro_stdio_t *in, uv_stdio_container_t *c,
                    int child_reads) {
  switch (in->kind) {
  case ACORO_STDIO_INHERIT:
    c->flags = UV_INHERIT_FD;
    c->data.fd = -1; /* set by the caller: the same fd number */
    return 0;
  case ACORO_STDIO_NULL:
    c->flags = UV_IGNORE; /* libuv opens /dev/null for fds 0-2 */
    return 0;
  case ACORO_STDIO_PIPE:
    c->flags =
        (uv_stdio_flags)(UV_CREATE_PIPE |
                         (child_reads ? UV_READABLE_PIPE : UV_WRITABLE_PIPE));
    c->data.stream = acoro_stream_handle(in->stream);
    return 0;
  case ACORO_STDIO_STREAM:
    if (in->stream == NULL || !acoro_stream_is_open(in->stream))
      return UV_EBADF;
    c->flags = UV_INHERIT_STREAM;
    c->data.stream = acoro_stream_handle(in->stream);
    return 0;
  case ACORO_STDIO_FD:
    if (in->fd < 0)
      return UV_EBADF;
    c->flags = UV_INHERIT_FD;
    c->data.fd = in->fd;
    return 0;
  default:
    return UV_EINVAL;
  }
}

/* On failure every pipe made here is released again and stdio[i].stream
 * of a PIPE is left NULL. */
int acoro_process_spawn(acoro_engine_t *e, char **args, char **env,
                        const char *cwd, acoro_stdio_t stdio[3],
                        acoro_process_t **out) {
  uv_process_options_t opts;
  uv_stdio_container_t c[3];
  acoro_process_t *p;
  int i, rc = 0;
  if (args == NULL || args[0] == NULL)
    return UV_EINVAL;
  for (i = 0; i < 3; i++)
    if (stdio[i].kind == ACORO_STDIO_PIPE)
      stdio[i].stream = NULL;
  p = calloc(1, sizeof *p);
  if (p == NULL)
    return UV_ENOMEM;
  for (i = 0; i < 3 && rc == 0; i++) {
    if (stdio[i].kind == ACORO_STDIO_PIPE) {
      int r = acoro_stream_new_pipe(e, &stdio[i].stream);
      if (r != 0) {
        stdio[i].stream = NULL;
        rc = r == ACORO_ENOMEM ? UV_ENOMEM : r;
        break;
      }
    }
    rc = stdio_of(&stdio[i], &c[i], i == 0);
    if (rc == 0 && c[i].flags == UV_INHERIT_FD && c[i].data.fd < 0)
      c[i].data.fd = i;
  }
  if (rc == 0) {
    memset(&opts, 0, sizeof opts);
    opts.exit_cb = on_child_exit;
    opts.file = args[0];
    opts.args = args;
    opts.env = env;
    opts.cwd = cwd;
    opts.stdio_count = 3;
    opts.stdio = c;
    io_init(&p->io, e, &process_type, 1);
    p->wait.cancel = io_cancel_nothing;
    p->h.data = p;
    rc = uv_spawn(&e->loop, &p->h, &opts);
    if (rc != 0) {
      /* The handle was initialised all the same: it must be closed. */
      uv_close((uv_handle_t *)&p->h, io_on_close);
      p = NULL;
    }
  } else {
    free(p);
    p = NULL;
  }
  if (rc != 0) {
    for (i = 0; i < 3; i++) {
      if (stdio[i].kind == ACORO_STDIO_PIPE && stdio[i].stream != NULL) {
        acoro_stream_release(stdio[i].stream);
        stdio[i].stream = NULL;
      }
    }
    return rc;
  }
  p->io.refs = 2; /* the handle's and the host's */
  p->pid = p->h.pid;
  io_link(&p->io);
  *out = p;
  return 0;
}

int acoro_process_wait(acoro_co_t *co, acoro_process_t *p, double timeout) {
  int rc;
  if (!p->io.open)
    return 1;
  rc = acoro_io_wait(co, &p->wait, timeout);
  return rc < 0 ? rc : 0;
}

int acoro_process_status(const acoro_process_t *p, int64_t *exit_status,
                         int *term_signal) {
  if (!p->exited)
    return 0;
  if (exit_status != NULL)
    *exit_status = p->exit_status;
  if (term_signal != NULL)
    *term_signal = p->term_signal;
  return 1;
}

int acoro_process_pid(const acoro_process_t *p) { return p->pid; }

/* Only while the handle is open: after the exit the pid may be another
 * process's already. */
int acoro_process_kill(acoro_process_t *p, int signum) {
  if (!p->io.open)
    return UV_ESRCH;
  return uv_process_kill(&p->h, signum);
}

void acoro_process_release(acoro_process_t *p) {
  if (p == NULL)
    return;
  if (p->io.open)
    uv_unref((uv_handle_t *)&p->h);
  io_unref(&p->io);
}

/* pool.c: work on libuv's thread pool that a coroutine waits for, and the
 * pool's size. The work function runs on a pool thread and must touch
 * nothing of the engine; everything else here is ENGINE THREAD ONLY. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

/* OWNERSHIP: two references, the host's (acoro_work_release) and libuv's
 * (until the after-work callback), so that a coroutine that stopped
 * waiting (terminated, timed out) can let go while a pool thread still
 * runs the work. */
struct acoro_work_s {
  uv_work_t req;
  void (*run)(void *data);
  void (*free_data)(void *data);
  void *data;
  uint32_t refs;
  uint8_t done;
  acoro_io_wait_t wait;
};

static void cancel_nothing(acoro_io_wait_t *w) { (void)w; }

static void work_unref(acoro_work_t *w) {
  if (--w->refs > 0)
    return;
  if (w->free_data != NULL)
    w->free_data(w->data);
  free(w);
}

/* THREAD POOL: runs on a worker thread. */
static void on_work(uv_work_t *req) {
  acoro_work_t *w = req->data;
  w->run(w->data);
}

static void on_after_work(uv_work_t *req, int status) {
  acoro_work_t *w = req->data;
  (void)status; /* UV_ECANCELED never happens: nothing calls uv_cancel */
  w->done = 1;
  acoro_io_done(&w->wait);
  work_unref(w);
}

int acoro_work_submit(acoro_engine_t *e, void (*run)(void *data),
                      void (*free_data)(void *data), void *data,
                      acoro_work_t **out) {
  acoro_work_t *w;
  int rc;
  if (run == NULL || out == NULL)
    return ACORO_EINVAL;
  w = calloc(1, sizeof *w);
  if (w == NULL)
    return ACORO_ENOMEM;
  w->run = run;
  w->free_data = free_data;
  w->data = data;
  w->refs = 2;
  w->wait.cancel = cancel_nothing;
  w->req.data = w;
  pool_note_use();
  rc = uv_queue_work(&e->loop, &w->req, on_work, on_after_work);
  if (rc != 0) {
    free(w); /* the caller still owns data */
    return rc;
  }
  *out = w;
  return 0;
}

int acoro_work_wait(acoro_co_t *co, acoro_work_t *w, double timeout) {
  int rc;
  if (w->done)
    return 1;
  rc = acoro_io_wait(co, &w->wait, timeout);
  return rc < 0 ? rc : 0;
}

int acoro_work_done(const acoro_work_t *w) { return w->done; }
void *acoro_work_data(const acoro_work_t *w) { return w->data; }

void acoro_work_release(acoro_work_t *w) {
  if (w != NULL)
    work_unref(w);
}

/* libuv reads UV_THREADPOOL_SIZE once, when its pool first starts, and
 * clamps it to 1..1024 (default 4). */
int acoro_pool_size(int n) {
  const char *v;
  long size;
  if (n > 0) {
    char buf[16];
    if (pool_was_used())
      return ACORO_ESTATE;
    if (n > 1024)
      n = 1024;
    snprintf(buf, sizeof buf, "%d", n);
    if (setenv("UV_THREADPOOL_SIZE", buf, 1) != 0)
      return ACORO_ENOMEM;
    return n;
  }
  v = getenv("UV_THREADPOOL_SIZE");
  size = v != NULL ? strtol(v, NULL, 10) : 4;
  if (size < 1)
    size = 1;
  if (size > 1024)
    size = 1024;
  return (int)size;
}

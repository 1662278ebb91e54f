/* host.c: an engine driven by a host's own libuv loop. The engine keeps its
 * loop (its deadlock check and acoro_engine_run_once need one of their
 * own) and nests it in the host's the way libuv embeds a loop in another
 * (Electron nests Node's so): a poll handle on the engine loop's backend
 * fd, a timer for its next timeout, a prepare handle that steps the engine
 * before the host's loop blocks, and an idle handle that keeps that loop
 * from blocking while coroutines are ready. The four are referenced only
 * while a coroutine that is not a daemon lives and could still be woken,
 * so daemons alone never keep the host's loop alive. */
#include "internal.h"

#include <stdlib.h>

struct attach_s {
  acoro_engine_t *e; /* NULL once detached */
  uv_poll_t poll;
  uv_timer_t timer;
  uv_prepare_t prepare;
  uv_idle_t idle;
  void (*on_stop)(void *data, int code);
  void *stop_data;
  int nclosing;
};

static void step(struct attach_s *a);
static void on_idle(uv_idle_t *h) { (void)h; }
static void on_timer(uv_timer_t *h) { step(h->data); }

static void set_ref(uv_handle_t *h, int on) {
  if (on)
    uv_ref(h);
  else
    uv_unref(h);
}

/* After every step: what the host's loop must do for the engine next. */
static void rearm(struct attach_s *a) {
  acoro_engine_t *e = a->e;
  int timeout = acoro_engine_timeout(e);
  int keep =
      e->nalive_nondaemon > 0 && (eng_has_ready(e) || uv_loop_alive(&e->loop));
  if (timeout == 0)
    uv_idle_start(&a->idle, on_idle);
  else
    uv_idle_stop(&a->idle);
  if (timeout > 0)
    uv_timer_start(&a->timer, on_timer, (uint64_t)timeout, 0);
  else
    uv_timer_stop(&a->timer);
  set_ref((uv_handle_t *)&a->poll, keep);
  set_ref((uv_handle_t *)&a->prepare, keep);
  set_ref((uv_handle_t *)&a->idle, keep);
  set_ref((uv_handle_t *)&a->timer, keep);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  step(h->data);
}

static void on_prepare(uv_prepare_t *h) { step(h->data); }

static void step(struct attach_s *a) {
  acoro_engine_t *e = a->e;
  int rc;
  if (e == NULL || e->running)
    return;
  e->running = 1;
  rc = eng_step(e, 0);
  e->running = 0;
  if (rc < 0 && rc != ACORO_EDEADLK && a->on_stop != NULL)
    a->on_stop(a->stop_data, rc);
  if (a->e != NULL) /* on_stop may have detached it */
    rearm(a);
}

int acoro_engine_attach(acoro_engine_t *e, struct uv_loop_s *loop,
                        void (*on_stop)(void *data, int code), void *data) {
  struct attach_s *a;
  if (e == NULL || loop == NULL || loop == &e->loop)
    return ACORO_EINVAL;
  if (e->attached != NULL || e->running)
    return ACORO_EBUSY;
  a = calloc(1, sizeof *a);
  if (a == NULL)
    return ACORO_ENOMEM;
  if (uv_poll_init(loop, &a->poll, uv_backend_fd(&e->loop)) != 0) {
    free(a);
    return ACORO_EUV;
  }
  uv_timer_init(loop, &a->timer);
  uv_prepare_init(loop, &a->prepare);
  uv_idle_init(loop, &a->idle);
  a->poll.data = a->timer.data = a->prepare.data = a->idle.data = a;
  a->e = e;
  a->on_stop = on_stop;
  a->stop_data = data;
  e->attached = a;
  uv_poll_start(&a->poll, UV_READABLE, on_poll);
  uv_prepare_start(&a->prepare, on_prepare);
  rearm(a);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  struct attach_s *a = h->data;
  if (--a->nclosing == 0)
    free(a);
}

/* The handles close on the host's loop, the next time it runs; the
 * engine is free to go at once. */
void host_detach(acoro_engine_t *e) {
  struct attach_s *a = e->attached;
  if (a == NULL)
    return;
  e->attached = NULL;
  a->e = NULL;
  a->nclosing = 4;
  uv_close((uv_handle_t *)&a->poll, on_closed);
  uv_close((uv_handle_t *)&a->timer, on_closed);
  uv_close((uv_handle_t *)&a->prepare, on_closed);
  uv_close((uv_handle_t *)&a->idle, on_closed);
}

void acoro_engine_detach(acoro_engine_t *e) {
  if (e != NULL)
    host_detach(e);
}

/* call.c: host calls, the work a coroutine waits for while the host does
 * it, completed from the engine thread or any other. */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>

/* OWNERSHIP: two references, the waiter's (acoro_call_release) and the
 * completer's (given up by acoro_call_complete), so that either side may
 * go first: a coroutine that stopped waiting (timeout, throw, terminate)
 * lets go while a host thread still works, and a completion arriving then
 * frees the result unread. refs and the flags are atomic because the
 * waiter may let go on the engine thread while the completer, on its own
 * thread, is deciding whether to bother. Everything else belongs to the
 * engine thread; the result crosses to it through the post queue's mutex. */
struct acoro_call_s {
  post_node_t post; /* first: the completion's trip to the engine thread */
  acoro_engine_t *engine;
  acoro_io_wait_t wait;
  void (*free_result)(void *result);
  void *result;
  int status;
  uint8_t done; /* ENGINE THREAD: the completion arrived */
  atomic_uint refs;
  atomic_int cancelled, completed;
  void (*on_cancel)(void *data);
  void *cancel_data;
};

static void call_unref(acoro_call_t *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  if (c->result != NULL && c->free_result != NULL)
    c->free_result(c->result);
  free(c);
}

/* ENGINE THREAD: the completion arrives. */
static void on_complete(acoro_engine_t *e, post_node_t *n);

int acoro_call_new(acoro_engine_t *e, void (*free_result)(void *result),
                   acoro_call_t **out) {
  acoro_call_t *c;
  if (e == NULL || out == NULL)
    return ACORO_EINVAL;
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return ACORO_ENOMEM;
  c->engine = e;
  c->post.run = on_complete;
  c->free_result = free_result;
  c->wait.cancel = io_cancel_nothing;
  atomic_init(&c->refs, 2);
  atomic_init(&c->cancelled, 0);
  atomic_init(&c->completed, 0);
  /* A coroutine waiting for the host is not deadlocked. */
  post_hold(e, 1);
  *out = c;
  return 0;
}

static void on_complete(acoro_engine_t *e, post_node_t *n) {
  acoro_call_t *c = (acoro_call_t *)n;
  c->done = 1;
  post_hold(e, -1);
  acoro_io_done(&c->wait);
  call_unref(c);
}

int acoro_call_complete(acoro_call_t *c, int status, void *result) {
  int expected = 0;
  if (c == NULL)
    return ACORO_EINVAL;
  if (!atomic_compare_exchange_strong(&c->completed, &expected, 1))
    return ACORO_ESTATE;
  int rc;
  c->status = status;
  c->result = result;
  rc = post_push(c->engine, &c->post);
  if (rc != 0) /* the engine is closed: nobody will take it */
    call_unref(c);
  return rc;
}

int acoro_call_cancelled(const acoro_call_t *c) {
  return atomic_load(&((acoro_call_t *)c)->cancelled);
}

int acoro_call_wait(acoro_co_t *co, acoro_call_t *c, double timeout) {
  int rc;
  if (c->done)
    return 1;
  if (atomic_load(&c->cancelled))
    return ACORO_ESTATE;
  rc = acoro_io_wait(co, &c->wait, timeout);
  return rc < 0 ? rc : 0;
}

int acoro_call_done(const acoro_call_t *c) { return c->done; }

int acoro_call_status(const acoro_call_t *c) { return c->status; }

void *acoro_call_result(const acoro_call_t *c) {
  return c->done ? c->result : NULL;
}

void acoro_call_on_cancel(acoro_call_t *c, void (*fn)(void *data), void *data) {
  c->on_cancel = fn;
  c->cancel_data = data;
}

void acoro_call_cancel(acoro_call_t *c) {
  int expected = 0;
  if (c == NULL || c->done)
    return;
  if (!atomic_compare_exchange_strong(&c->cancelled, &expected, 1))
    return;
  /* A coroutine still waiting wakes as if completed and finds it
   * cancelled: nothing may wait on memory the waiter is letting go. */
  acoro_io_done(&c->wait);
  if (c->on_cancel != NULL)
    c->on_cancel(c->cancel_data);
}

void acoro_call_release(acoro_call_t *c) {
  if (c == NULL)
    return;
  acoro_call_cancel(c);
  call_unref(c);
}

/* post.c: functions that any thread queues for the engine thread (a host's
 * workers, completions of host calls), and the holds that keep the engine's
 * loop alive while such work may still come. */
#include "internal.h"

#include <stdlib.h>

/* The queue is a list under one mutex: each push is a few stores, so two
 * threads posting a million times a second contend little, and FIFO order
 * under the lock keeps every thread's own order. A push onto an empty
 * queue sends the wake-up; the engine takes the whole list at once, so
 * uv_async_send runs once per batch, not per post. */
static void on_post(uv_async_t *h) {
  acoro_engine_t *e = h->data;
  post_node_t *n;
  uv_mutex_lock(&e->post_mu);
  n = e->post_head;
  e->post_head = e->post_tail = NULL;
  uv_mutex_unlock(&e->post_mu);
  while (n != NULL) {
    post_node_t *next = n->next;
    n->run(e, n);
    n = next;
  }
}

int post_init(acoro_engine_t *e) {
  if (uv_mutex_init(&e->post_mu) != 0)
    return ACORO_EUV;
  if (uv_async_init(&e->loop, &e->post_async, on_post) != 0) {
    uv_mutex_destroy(&e->post_mu);
    return ACORO_EUV;
  }
  e->post_async.data = e;
  /* Only holds keep the loop alive: an engine nobody posts to must still
   * see that its coroutines are deadlocked. */
  uv_unref((uv_handle_t *)&e->post_async);
  return 0;
}

int post_push(acoro_engine_t *e, post_node_t *n) {
  int wake;
  n->next = NULL;
  uv_mutex_lock(&e->post_mu);
  if (e->post_closed) {
    uv_mutex_unlock(&e->post_mu);
    return ACORO_ECLOSED;
  }
  wake = e->post_head == NULL;
  if (e->post_tail != NULL)
    e->post_tail->next = n;
  else
    e->post_head = n;
  e->post_tail = n;
  /* Sent under the lock, so that post_close, which takes it, knows no
   * sender is still on its way to the handle: once acoro_engine_free has
   * closed the loop, a late send would write to a closed fd (libuv aborts).
   * Sent while the engine may be taking the list: at worst one wake-up
   * finds it empty. */
  if (wake)
    uv_async_send(&e->post_async);
  uv_mutex_unlock(&e->post_mu);
  return 0;
}

/* acoro_engine_free: what was accepted still runs, once, and nothing more
 * is accepted. */
void post_close(acoro_engine_t *e) {
  uv_mutex_lock(&e->post_mu);
  e->post_closed = 1;
  uv_mutex_unlock(&e->post_mu);
  on_post(&e->post_async);
}

void post_destroy(acoro_engine_t *e) { uv_mutex_destroy(&e->post_mu); }

void post_hold(acoro_engine_t *e, int delta) {
  uint32_t was = e->holds;
  e->holds = (uint32_t)((int64_t)e->holds + delta);
  if (was == 0 && e->holds > 0)
    uv_ref((uv_handle_t *)&e->post_async);
  else if (was > 0 && e->holds == 0)
    uv_unref((uv_handle_t *)&e->post_async);
}

typedef struct {
  post_node_t node;
  void (*fn)(acoro_engine_t *e, void *data);
  void *data;
} fn_post_t;

static void run_fn(acoro_engine_t *e, post_node_t *n) {
  fn_post_t *p = (fn_post_t *)n;
  p->fn(e, p->data);
  free(p);
}

int acoro_engine_post(acoro_engine_t *e,
                      void (*fn)(acoro_engine_t *e, void *data), void *data) {
  fn_post_t *p;
  int rc;
  if (e == NULL || fn == NULL)
    return ACORO_EINVAL;
  p = malloc(sizeof *p);
  if (p == NULL)
    return ACORO_ENOMEM;
  p->node.run = run_fn;
  p->fn = fn;
  p->data = data;
  rc = post_push(e, &p->node);
  if (rc != 0)
    free(p);
  return rc;
}

int acoro_engine_hold(acoro_engine_t *e, int delta) {
  if (delta < 0 && (uint32_t)-delta > e->holds)
    return ACORO_EINVAL;
  post_hold(e, delta);
  return (int)e->holds;
}

/* wait.c: how coroutines wait and are woken: timed waits (their deadlines
 * in the engine's timers, timer.c), joins, deliveries, yields and
 * interrupts. */
#include "internal.h"

#include <math.h>

/* Arms co's deadline `timeout` seconds from NOW (the real clock: the
 * loop's cached time may be older) in the engine's timers (timer.c). */
static int arm_timer(acoro_co_t *co, double timeout) {
  acoro_engine_t *e = co->engine;
  int rc;
  if (timeout > 1e9)
    timeout = 1e9; /* about 31 years: forever enough, and no overflow */
  rc = tm_add(&e->timers, co, uv_hrtime() + (uint64_t)ceil(timeout * 1e9));
  if (rc == 0 && co->tm_slot == 1)
    tm_arm(e); /* the new first deadline */
  return rc;
}

static int state_of_wait(int kind) {
  switch (kind) {
  case ACORO_WAIT_RECEIVE:
    return ACORO_STATE_RECEIVING;
  case ACORO_WAIT_IO:
    return ACORO_STATE_WAITING_IO;
  default:
    return ACORO_STATE_SUSPENDED;
  }
}

int acoro_co_wait(acoro_co_t *co, int kind, double timeout) {
  if (co->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  if (kind <= ACORO_WAIT_NONE || kind > ACORO_WAIT_OTHER || isnan(timeout))
    return ACORO_EINVAL;
  /* Already queued, or already waiting: the host has lost track of its
   * coroutine (the Lua binding: a wait made from a nested plain coroutine). */
  if (co->queued || co->wait_kind != ACORO_WAIT_NONE)
    return ACORO_ESTATE;
  if (timeout >= 0) {
    int rc = arm_timer(co, timeout);
    if (rc != 0)
      return rc;
  }
  co->wait_kind = (uint8_t)kind;
  co->state = (uint8_t)state_of_wait(kind);
  return 0;
}

/* Undoes the bookkeeping of co's wait: timer, join list, delivery. */
void wait_cancel(acoro_co_t *co) {
  if (co->tm_slot != 0) {
    int first = co->tm_slot == 1;
    tm_remove(&co->engine->timers, co);
    if (first)
      tm_arm(co->engine);
  }
  if (co->wait_kind == ACORO_WAIT_JOIN && co->wait_target != NULL) {
    acoro_co_t **p = &co->wait_target->joiners;
    while (*p != NULL && *p != co)
      p = &(*p)->wait_next;
    if (*p == co)
      *p = co->wait_next;
  } else if (co->wait_kind == ACORO_WAIT_DELIVER && co->wait_key != 0) {
    mb_node_t *n = mb_node(co->engine, co->wait_key);
    if (n != NULL && n->notify == co)
      n->notify = NULL;
  } else if (co->wait_kind == ACORO_WAIT_IO && co->io_wait != NULL) {
    /* The I/O object learns that nobody waits any more. */
    acoro_io_wait_t *w = co->io_wait;
    co->io_wait = NULL;
    w->co = NULL;
    if (w->cancel != NULL)
      w->cancel(w);
  }
  if (co->wait_target != NULL) {
    acoro_co_release(co->wait_target);
    co->wait_target = NULL;
  }
  co->wait_next = NULL;
  co->wait_key = 0;
  co->wait_kind = ACORO_WAIT_NONE;
}

int acoro_co_wake(acoro_co_t *co, int kind, int reason) {
  if (co->state == ACORO_STATE_DEAD || co->wait_kind == ACORO_WAIT_NONE)
    return 0;
  if (kind != ACORO_WAIT_ANY && kind != co->wait_kind)
    return 0;
  wait_cancel(co);
  eng_ready(co->engine, co, reason);
  return 1;
}

int acoro_co_yield(acoro_co_t *co) {
  if (co->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  if (co->queued || co->wait_kind != ACORO_WAIT_NONE)
    return ACORO_ESTATE; /* the host lost track: see acoro_co_wait */
  eng_ready(co->engine, co, ACORO_WAKE_YIELD);
  return 0;
}

int acoro_co_interrupt(acoro_co_t *co) {
  if (co->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  if (co->state == ACORO_STATE_RUNNING)
    return 0;
  if (co->queued) {
    co->wake_reason = ACORO_WAKE_INTERRUPT;
    return 1;
  }
  return acoro_co_wake(co, ACORO_WAIT_ANY, ACORO_WAKE_INTERRUPT);
}

int acoro_co_join(acoro_co_t *co, acoro_co_t *target, double timeout) {
  int rc;
  if (target == co)
    return ACORO_EINVAL;
  if (target->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  rc = acoro_co_wait(co, ACORO_WAIT_JOIN, timeout);
  if (rc != 0)
    return rc;
  acoro_co_retain(target);
  co->wait_target = target;
  co->wait_next = target->joiners;
  target->joiners = co;
  return 0;
}

int acoro_deliver_wait(acoro_co_t *co, acoro_co_t *to, uint32_t key,
                       double timeout) {
  mb_node_t *n = mb_node(co->engine, key);
  int rc;
  if (n == NULL)
    return ACORO_EINVAL;
  if (to->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  rc = acoro_co_wait(co, ACORO_WAIT_DELIVER, timeout);
  if (rc != 0)
    return rc;
  acoro_co_retain(to);
  co->wait_target = to;
  co->wait_key = key;
  n->notify = co;
  return 0;
}

int acoro_co_sleep(acoro_co_t *co, double seconds) {
  return acoro_co_wait(co, ACORO_WAIT_SLEEP, seconds);
}

int acoro_io_wait(acoro_co_t *co, acoro_io_wait_t *w, double timeout) {
  int rc;
  if (w->co != NULL)
    return w->co == co ? ACORO_ESTATE : ACORO_EWAITING;
  rc = acoro_co_wait(co, ACORO_WAIT_IO, timeout);
  if (rc != 0)
    return rc;
  co->io_wait = w;
  w->co = co;
  return 0;
}

int acoro_io_done(acoro_io_wait_t *w) {
  acoro_co_t *co = w->co;
  if (co == NULL)
    return 0;
  w->co = NULL;
  co->io_wait = NULL; /* completed: no cancel */
  return acoro_co_wake(co, ACORO_WAIT_IO, ACORO_WAKE_RESUME);
}

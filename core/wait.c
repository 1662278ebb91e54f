/* wait.c: how coroutines wait and are woken: timed waits on libuv timers,
 * joins, deliveries, yields and interrupts. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* Timers. libuv counts whole milliseconds and wakes its poll up to a
 * millisecond after the one it aimed at, so a timer armed for the due
 * millisecond would be late by about 1 ms on average, 2 ms at worst. acoro
 * aims the libuv timer at the millisecond the deadline falls in, and a
 * timer that fires before its deadline (in that last millisecond) moves to
 * the spin list: while the list is not empty an idle handle keeps the loop
 * polling without blocking, and each turn wakes whoever is due. Lateness is
 * then one loop turn, at the price of spinning for under a millisecond. A
 * wait never ends early. */

static void spin_remove(acoro_co_t *co) {
  acoro_engine_t *e = co->engine;
  uint32_t i;
  for (i = 0; i < e->nspin; i++) {
    if (e->spin[i] != co)
      continue;
    e->spin[i] = e->spin[--e->nspin];
    break;
  }
  co->spinning = 0;
  if (e->nspin == 0)
    uv_idle_stop(&e->spin_idle);
}

static void on_spin(uv_idle_t *h) {
  acoro_engine_t *e = h->data;
  uint64_t now = uv_hrtime();
  uint32_t i;
  /* Backwards: a wake removes the entry by moving the last one into its
   * place, and that one has been looked at already. */
  for (i = e->nspin; i-- > 0;) {
    acoro_co_t *co = e->spin[i];
    if (now >= co->due_ns)
      acoro_co_wake(co, ACORO_WAIT_ANY, ACORO_WAKE_TIMEOUT);
  }
}

static void on_timeout(uv_timer_t *t) {
  acoro_co_t *co = t->data;
  acoro_engine_t *e = co->engine;
  if (uv_hrtime() >= co->due_ns) {
    acoro_co_wake(co, ACORO_WAIT_ANY, ACORO_WAKE_TIMEOUT);
    return;
  }
  if (e->nspin == e->capspin) {
    uint32_t cap = e->capspin ? e->capspin * 2 : 64;
    acoro_co_t **p = realloc(e->spin, cap * sizeof *p);
    if (p == NULL) { /* no memory: fall back to a 1 ms timer */
      uv_timer_start(t, on_timeout, 1, 0);
      return;
    }
    e->spin = p;
    e->capspin = cap;
  }
  e->spin[e->nspin++] = co;
  co->spinning = 1;
  if (e->nspin == 1)
    uv_idle_start(&e->spin_idle, on_spin);
}

void wait_init(acoro_engine_t *e) {
  uv_idle_init(&e->loop, &e->spin_idle);
  e->spin_idle.data = e;
}

/* Arms co's timer for `timeout` seconds from NOW (the real clock: the
 * loop's cached time may be older). libuv's timer is absolute in its
 * millisecond loop time: it fires once loop time reaches the millisecond
 * in which the deadline falls. */
static int arm_timer(acoro_co_t *co, double timeout) {
  acoro_engine_t *e = co->engine;
  uint64_t now = uv_hrtime(), base, ms;
  if (co->timer == NULL) {
    co->timer = malloc(sizeof *co->timer);
    if (co->timer == NULL)
      return ACORO_ENOMEM;
    uv_timer_init(&e->loop, co->timer);
    co->timer->data = co;
  }
  if (timeout > 1e9)
    timeout = 1e9; /* about 31 years: forever enough, and no overflow */
  co->due_ns = now + (uint64_t)ceil(timeout * 1e9);
  base = uv_now(&e->loop) * 1000000;
  ms = co->due_ns > base ? (co->due_ns - base) / 1000000 : 0;
  uv_timer_start(co->timer, on_timeout, ms, 0);
  return 0;
}

static void free_timer(uv_handle_t *h) { free(h); }

void wait_close_timer(acoro_co_t *co) {
  if (co->timer != NULL) {
    co->timer->data = NULL;
    uv_close((uv_handle_t *)co->timer, free_timer);
    co->timer = NULL;
  }
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
  if (co->timer != NULL)
    uv_timer_stop(co->timer);
  if (co->spinning)
    spin_remove(co);
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

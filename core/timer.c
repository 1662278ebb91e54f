/* timer.c: the deadlines of timed waits. One 4-ary min-heap per engine, of
 * entries {deadline, sequence, coroutine} in one array, driven by one libuv
 * timer aimed at the earliest deadline. */
#include "internal.h"

#include <stdlib.h>

/* WHY NOT A LIBUV TIMER PER WAIT. 100,000 sleepers made 100,000 nodes in
 * libuv's heap, linked by pointers (a cache miss per level on each firing,
 * ~17 levels), each a handle allocated on the first timed wait and closed
 * through the loop at the coroutine's end. Here an entry is 24 bytes in an
 * array that only grows (no allocation per wait once it is large enough),
 * four children share a cache line or two, and a coroutine knows its slot,
 * so a wait cancelled early (a message before the timeout) leaves the heap
 * in O(log n) without a search. Equal deadlines fire in the order they were
 * armed (the sequence number), so the order of wake-ups is deterministic. */
#define ARITY 4
#define CAP_MIN 64

static int before(const tm_entry_t *a, const tm_entry_t *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(tm_heap_t *h, uint32_t i, tm_entry_t ent) {
  h->v[i] = ent;
  ent.co->tm_slot = i + 1;
}

static void sift_up(tm_heap_t *h, uint32_t i, tm_entry_t ent) {
  while (i > 0) {
    uint32_t p = (i - 1) / ARITY;
    if (!before(&ent, &h->v[p]))
      break;
    place(h, i, h->v[p]);
    i = p;
  }
  place(h, i, ent);
}

static void sift_down(tm_heap_t *h, uint32_t i, tm_entry_t ent) {
  for (;;) {
    uint32_t c = i * ARITY + 1, best = c, end;
    if (c >= h->n)
      break;
    end = h->n - c > ARITY ? c + ARITY : h->n;
    for (c++; c < end; c++)
      if (before(&h->v[c], &h->v[best]))
        best = c;
    if (!before(&h->v[best], &ent))
      break;
    place(h, i, h->v[best]);
    i = best;
  }
  place(h, i, ent);
}

int tm_add(tm_heap_t *h, acoro_co_t *co, uint64_t due) {
  tm_entry_t ent;
  if (co->tm_slot != 0)
    tm_remove(h, co);
  if (h->n == h->cap) {
    uint32_t cap = h->cap ? h->cap * 2 : CAP_MIN;
    tm_entry_t *v;
    if (cap <= h->cap || cap > UINT32_MAX / 2)
      return ACORO_ENOMEM;
    v = realloc(h->v, (size_t)cap * sizeof *v);
    if (v == NULL)
      return ACORO_ENOMEM;
    h->v = v;
    h->cap = cap;
  }
  ent.due = due;
  ent.seq = h->seq++;
  ent.co = co;
  sift_up(h, h->n++, ent);
  return 0;
}

void tm_remove(tm_heap_t *h, acoro_co_t *co) {
  uint32_t i = co->tm_slot;
  tm_entry_t last;
  if (i-- == 0)
    return;
  co->tm_slot = 0;
  last = h->v[--h->n];
  if (i == h->n)
    return;
  /* The last entry fills the hole: it may belong above or below it. */
  if (i > 0 && before(&last, &h->v[(i - 1) / ARITY]))
    sift_up(h, i, last);
  else
    sift_down(h, i, last);
}

acoro_co_t *tm_first(const tm_heap_t *h, uint64_t *due) {
  if (h->n == 0)
    return NULL;
  if (due != NULL)
    *due = h->v[0].due;
  return h->v[0].co;
}

void tm_free(tm_heap_t *h) {
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}

/* DRIVING THE HEAP (ENGINE THREAD ONLY). libuv counts whole milliseconds
 * and wakes its poll up to a millisecond after the one it aimed at, so a
 * timer armed for the due millisecond would be late by about 1 ms on
 * average, 2 ms at worst. The engine's timer is aimed at the millisecond
 * the earliest deadline falls in; once that millisecond has come and the
 * deadline has not (on uv_hrtime's clock), an idle handle keeps the loop
 * polling without blocking and each turn wakes whoever is due. Lateness is
 * then one loop turn, at the price of spinning for under a millisecond. A
 * wait never ends early: nobody is woken before uv_hrtime reaches its
 * deadline. With no deadline left neither the timer nor the idle handle is
 * active (the prepare handle below is unreferenced), so timers no longer
 * pending never keep the loop alive (the deadlock check). */
static void on_timer(uv_timer_t *t) { tm_expire(t->data); }

static void on_spin(uv_idle_t *h) { tm_expire(h->data); }

static void spin_start(acoro_engine_t *e) {
  if (!e->tm_spinning) {
    uv_idle_start(&e->spin_idle, on_spin);
    e->tm_spinning = 1;
  }
  /* A 0 ms libuv timer restarted from its own callback would run again in
   * the same timer phase: the idle handle does the waiting. */
  uv_timer_stop(&e->tm_timer);
  e->tm_aimed = UINT64_MAX;
}

/* Before each poll that may block. The poll sleeps (timer's millisecond -
 * loop time at the turn's start) ms from whenever it is called: begun late
 * in a millisecond, it slept past the deadline by up to a millisecond (1 %
 * of 100,000 sleepers were 1.0-1.5 ms late). If it could, the timer is set
 * for the whole milliseconds left on uv_hrtime's clock, or the rest is spun
 * out. An attached engine's or a foreign loop's steps are NOWAIT (their
 * host sleeps for acoro_engine_timeout), and are left as they were. */
static void on_prepare(uv_prepare_t *p) {
  acoro_engine_t *e = p->data;
  uint64_t due, now, ms;
  int t;
  if (e->in_uv_run != 2 || e->tm_spinning || tm_first(&e->timers, &due) == NULL)
    return;
  t = uv_backend_timeout(&e->loop); /* the poll's, computed after this */
  now = uv_hrtime();
  if (t <= 0 || now + (uint64_t)t * 1000000 <= due)
    return;
  ms = due > now ? (due - now) / 1000000 : 0;
  if (ms == 0) {
    spin_start(e);
    return;
  }
  uv_timer_start(&e->tm_timer, on_timer, ms, 0);
  e->tm_aimed = uv_now(&e->loop) + ms;
}

void tm_arm(acoro_engine_t *e) {
  uint64_t due, base, ms;
  if (tm_first(&e->timers, &due) == NULL) {
    if (e->tm_spinning) {
      uv_idle_stop(&e->spin_idle);
      e->tm_spinning = 0;
    }
    uv_timer_stop(&e->tm_timer);
    e->tm_aimed = UINT64_MAX;
    return;
  }
  base = uv_now(&e->loop);
  ms = due / 1000000 > base ? due / 1000000 - base : 0;
  if (ms == 0) { /* its millisecond has come: spin it out */
    spin_start(e);
    return;
  }
  if (e->tm_spinning) {
    uv_idle_stop(&e->spin_idle);
    e->tm_spinning = 0;
  }
  if (e->tm_aimed != base + ms) {
    uv_timer_start(&e->tm_timer, on_timer, ms, 0);
    e->tm_aimed = base + ms;
  }
}

void tm_expire(acoro_engine_t *e) {
  uint64_t now = uv_hrtime(), due;
  acoro_co_t *co;
  /* Called by the libuv timer, which fired, or by the idle handle while the
   * timer is stopped: either way it is not aimed any more. */
  e->tm_aimed = UINT64_MAX;
  while ((co = tm_first(&e->timers, &due)) != NULL && due <= now) {
    tm_remove(&e->timers, co);
    acoro_co_wake(co, ACORO_WAIT_ANY, ACORO_WAKE_TIMEOUT);
  }
  tm_arm(e);
}

void tm_init(acoro_engine_t *e) {
  uv_timer_init(&e->loop, &e->tm_timer);
  uv_idle_init(&e->loop, &e->spin_idle);
  uv_prepare_init(&e->loop, &e->tm_prepare);
  e->tm_timer.data = e;
  e->spin_idle.data = e;
  e->tm_prepare.data = e;
  uv_prepare_start(&e->tm_prepare, on_prepare);
  uv_unref((uv_handle_t *)&e->tm_prepare);
  e->tm_aimed = UINT64_MAX;
}

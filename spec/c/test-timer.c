/* test-timer.c: the engine's timers (core/timer.c): the heap alone on
 * records that only carry a slot, then timed waits through the engine. */
#include "internal.h"
#include "test.h"

#include <string.h>
#include <uv.h>

/* A small deterministic generator: the same sequence on every run. */
static uint64_t lcg = 88172645463325252ull;
static uint64_t next_rand(void) {
  lcg ^= lcg << 13;
  lcg ^= lcg >> 7;
  lcg ^= lcg << 17;
  return lcg;
}

/* Every entry sits below its parent, and every record knows its slot. */
static void check_heap(const tm_heap_t *h) {
  uint32_t i;
  for (i = 0; i < h->n; i++) {
    ASSERT_EQ(h->v[i].co->tm_slot, i + 1);
    if (i > 0) {
      const tm_entry_t *p = &h->v[(i - 1) / 4], *c = &h->v[i];
      ASSERT_TRUE(p->due < c->due || (p->due == c->due && p->seq < c->seq));
    }
  }
}

/* Takes the first entry out; returns its record. */
static acoro_co_t *pop(tm_heap_t *h, uint64_t *due) {
  acoro_co_t *co = tm_first(h, due);
  ASSERT_TRUE(co != NULL);
  tm_remove(h, co);
  ASSERT_EQ(co->tm_slot, 0);
  return co;
}

TEST(timer_heap_orders_by_deadline_then_arming) {
  static const uint64_t dues[] = {50, 10, 30, 10, 20, 50, 10, 40, 30, 0};
  enum { N = sizeof dues / sizeof dues[0] };
  acoro_co_t *cos = calloc(N, sizeof *cos);
  tm_heap_t h;
  uint64_t due, last = 0;
  int i, last_i = -1;
  memset(&h, 0, sizeof h);
  ASSERT_TRUE(tm_first(&h, &due) == NULL);
  for (i = 0; i < N; i++) {
    ASSERT_EQ(tm_add(&h, &cos[i], dues[i]), 0);
    check_heap(&h);
  }
  for (i = 0; i < N; i++) {
    int k = (int)(pop(&h, &due) - cos);
    ASSERT_EQ(due, dues[k]);
    ASSERT_INT(due, >=, last);
    if (due == last) /* equal deadlines: in the order they were armed */
      ASSERT_INT(k, >, last_i);
    last = due;
    last_i = k;
    check_heap(&h);
  }
  ASSERT_TRUE(tm_first(&h, NULL) == NULL);
  tm_free(&h);
  free(cos);
}

TEST(timer_heap_equal_deadlines_fire_first_in_first_out) {
  enum { N = 1000 };
  acoro_co_t *cos = calloc(N, sizeof *cos);
  tm_heap_t h;
  int i;
  memset(&h, 0, sizeof h);
  for (i = 0; i < N; i++)
    ASSERT_EQ(tm_add(&h, &cos[i], 7), 0);
  /* Cancelled and armed again: it goes behind the others. */
  tm_remove(&h, &cos[0]);
  ASSERT_EQ(tm_add(&h, &cos[0], 7), 0);
  for (i = 1; i < N; i++)
    ASSERT_PTR_EQ(pop(&h, NULL), &cos[i]);
  ASSERT_PTR_EQ(pop(&h, NULL), &cos[0]);
  tm_free(&h);
  free(cos);
}

TEST(timer_heap_cancel_anywhere_keeps_the_rest_in_order) {
  enum { N = 2000 };
  acoro_co_t *cos = calloc(N, sizeof *cos);
  tm_heap_t h;
  uint64_t due, last = 0;
  int i, left = 0;
  memset(&h, 0, sizeof h);
  for (i = 0; i < N; i++)
    ASSERT_EQ(tm_add(&h, &cos[i], next_rand() % 500), 0);
  for (i = 0; i < N; i += 3) {
    tm_remove(&h, &cos[i]);
    ASSERT_EQ(cos[i].tm_slot, 0);
    tm_remove(&h, &cos[i]); /* not in: nothing */
    check_heap(&h);
  }
  for (i = 0; i < N; i++)
    left += cos[i].tm_slot != 0;
  ASSERT_EQ(left, N - (N + 2) / 3);
  ASSERT_EQ(h.n, (uint32_t)left);
  while (tm_first(&h, NULL) != NULL) {
    int k = (int)(pop(&h, &due) - cos);
    ASSERT_TRUE(k % 3 != 0);
    ASSERT_INT(due, >=, last);
    last = due;
  }
  tm_free(&h);
  free(cos);
}

/* 100,000 records armed, cancelled and armed again in random order, with
 * deadlines from 0 to the far future; then every one comes out in order. */
TEST(timer_heap_many_timers_and_far_future) {
  enum { N = 100000 };
  acoro_co_t *cos = calloc(N, sizeof *cos);
  uint64_t *dues = calloc(N, sizeof *dues);
  tm_heap_t h;
  uint64_t due, last = 0, seen = 0;
  int i;
  memset(&h, 0, sizeof h);
  for (i = 0; i < 3 * N; i++) {
    int k = (int)(next_rand() % N);
    if (cos[k].tm_slot != 0 && next_rand() % 2 == 0) {
      tm_remove(&h, &cos[k]);
      continue;
    }
    switch (next_rand() % 4) {
    case 0:
      dues[k] = UINT64_MAX - next_rand() % 3; /* far future */
      break;
    case 1:
      dues[k] = next_rand() % 16; /* many equal */
      break;
    default:
      dues[k] = next_rand();
    }
    ASSERT_EQ(tm_add(&h, &cos[k], dues[k]), 0); /* in already: moved */
  }
  check_heap(&h);
  while (tm_first(&h, NULL) != NULL) {
    int k = (int)(pop(&h, &due) - cos);
    ASSERT_EQ(due, dues[k]);
    ASSERT_INT(due >= last, ==, 1);
    last = due;
    seen++;
  }
  ASSERT_INT(seen, >, N / 4);
  ASSERT_EQ(h.n, 0);
  tm_free(&h);
  free(cos);
  free(dues);
}

/* Through the engine: coroutines with pseudo-random timeouts wake in the
 * order of their deadlines, each at or after its deadline. The engine reads
 * the clock itself: its deadline for k lies between deadline_lo[k] and
 * deadline_hi[k] (the clock read just before and just after the call plus
 * the timeout), however long the test is preempted between them. */
enum { NSLEEP = 5000 };
static uint64_t deadline_lo[NSLEEP], deadline_hi[NSLEEP], woke_at[NSLEEP];
static int wake_order[NSLEEP], nwoke;

static void timed_sleeper(acoro_co_t *co, int reason, void *arg) {
  int k = (int)(intptr_t)arg;
  if (reason == ACORO_WAKE_START) {
    double d = (double)(next_rand() % 30000) * 1e-6; /* 0 to 30 ms */
    deadline_lo[k] = uv_hrtime() + (uint64_t)(d * 1e9);
    ASSERT_EQ(acoro_co_sleep(co, d), 0);
    deadline_hi[k] = uv_hrtime() + (uint64_t)(d * 1e9);
    return;
  }
  ASSERT_EQ(reason, ACORO_WAKE_TIMEOUT);
  woke_at[k] = uv_hrtime();
  wake_order[nwoke++] = k;
  acoro_co_exit(co, 0);
}

TEST(timed_waits_wake_in_deadline_order_never_early) {
  acoro_engine_t *e = test_engine();
  int i;
  for (i = 0; i < NSLEEP; i++)
    acoro_co_release(test_spawn(e, timed_sleeper, (void *)(intptr_t)i));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(nwoke, NSLEEP);
  for (i = 0; i < NSLEEP; i++) {
    int k = wake_order[i];
    ASSERT_INT(woke_at[k], >=, deadline_lo[k]);
    /* the one woken before k had a deadline no later than k's */
    if (i > 0)
      ASSERT_INT(deadline_hi[k], >=, deadline_lo[wake_order[i - 1]]);
  }
  ASSERT_TRUE(tm_first(&e->timers, NULL) == NULL);
  acoro_engine_free(e);
}

/* A wait woken before its timeout takes its deadline out: the timer neither
 * fires later nor keeps the loop alive (the deadlock is seen at once, not
 * after the 30 s timeout, which the runner's 20 s alarm would end). */
static int cancel_reasons[2], ncancel;

static void receive_with_timeout(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    ASSERT_EQ(acoro_co_wait(co, ACORO_WAIT_RECEIVE, 30), 0);
    ASSERT_EQ(co->tm_slot, 1);
    return;
  }
  cancel_reasons[ncancel++] = reason;
  ASSERT_EQ(co->tm_slot, 0);
  ASSERT_TRUE(acoro_mb_shift(co) != 0);
  /* Again, for ever: nobody will send. */
  ASSERT_EQ(acoro_co_wait(co, ACORO_WAIT_RECEIVE, -1), 0);
}

static void send_to(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  ASSERT_TRUE(acoro_send(arg, 1) != 0);
  acoro_co_exit(co, 0);
}

TEST(timer_cancelled_by_a_wake_neither_fires_nor_keeps_the_loop) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *r = test_spawn(e, receive_with_timeout, NULL);
  uint64_t t0 = uv_hrtime();
  acoro_co_release(test_spawn(e, send_to, r));
  ASSERT_EQ(acoro_engine_run(e), ACORO_EDEADLK);
  ASSERT_INT(uv_hrtime() - t0, <, (uint64_t)10 * 1000000000);
  ASSERT_EQ(ncancel, 1);
  ASSERT_EQ(cancel_reasons[0], ACORO_WAKE_MESSAGE);
  ASSERT_EQ(acoro_engine_timeout(e), -1); /* nothing armed */
  acoro_co_exit(r, 0);
  acoro_co_release(r);
  acoro_engine_free(e);
}

/* A far-future timeout (beyond the 1e9 s cap) is armed, reported by
 * acoro_engine_timeout as a long wait, and cancelled by a wake. */
static int far_reason;

static void far_sleeper(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    ASSERT_EQ(acoro_co_sleep(co, 1e300), 0);
    return;
  }
  far_reason = reason;
  acoro_co_exit(co, 0);
}

TEST(far_future_timer_waits_and_cancels) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *far = test_spawn(e, far_sleeper, NULL);
  int i;
  for (i = 0; i < 10 && tm_first(&e->timers, NULL) == NULL; i++)
    ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), 1);
  ASSERT_PTR_EQ(tm_first(&e->timers, NULL), far);
  /* A turn of the loop takes in the handles the first step started. */
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), 1);
  ASSERT_INT(acoro_engine_timeout(e), >, 1000000); /* over 1000 s */
  ASSERT_EQ(acoro_co_wake(far, ACORO_WAIT_ANY, ACORO_WAKE_RESUME), 1);
  ASSERT_TRUE(tm_first(&e->timers, NULL) == NULL);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(far_reason, ACORO_WAKE_RESUME);
  acoro_co_release(far);
  acoro_engine_free(e);
}

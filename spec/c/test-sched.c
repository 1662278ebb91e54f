/* test-sched.c: the ready queue, waits, timers, joins and interrupts. */
#include "internal.h"
#include "test.h"

#include <uv.h>

static int order[16], norder;

static void record_and_exit(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  order[norder++] = (int)(intptr_t)arg;
  acoro_co_exit(co, 0);
}

TEST(ready_queue_is_fifo) {
  acoro_engine_t *e = test_engine();
  int i;
  for (i = 0; i < 5; i++)
    acoro_co_release(test_spawn(e, record_and_exit, (void *)(intptr_t)i));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(norder, 5);
  for (i = 0; i < 5; i++)
    ASSERT_EQ(order[i], i);
  acoro_engine_free(e);
}

/* Yields twice, recording each turn, then ends. */
static void yielder(acoro_co_t *co, int reason, void *arg) {
  order[norder++] = (int)(intptr_t)arg;
  if (reason == ACORO_WAKE_START || test_resumes(co) < 3)
    acoro_co_yield(co);
  else
    acoro_co_exit(co, 0);
}

TEST(yield_goes_behind_ready) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *a = test_spawn(e, yielder, (void *)1);
  acoro_co_t *b = test_spawn(e, yielder, (void *)2);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(norder, 6);
  ASSERT_EQ(order[0], 1);
  ASSERT_EQ(order[1], 2);
  ASSERT_EQ(order[2], 1);
  ASSERT_EQ(order[3], 2);
  ASSERT_EQ(acoro_co_state(a), ACORO_STATE_DEAD);
  acoro_co_release(a);
  acoro_co_release(b);
  acoro_engine_free(e);
}

static uint64_t t_start, t_woke;
static int woke_reason;

static void sleeper(acoro_co_t *co, int reason, void *arg) {
  if (reason == ACORO_WAKE_START) {
    t_start = uv_hrtime();
    ASSERT_EQ(acoro_co_wait(co, ACORO_WAIT_SLEEP, *(double *)arg), 0);
    ASSERT_EQ(acoro_co_state(co), ACORO_STATE_SUSPENDED);
    return;
  }
  t_woke = uv_hrtime();
  woke_reason = reason;
  acoro_co_exit(co, 0);
}

TEST(timed_wait_never_ends_early) {
  static double d = 0.0123;
  int i;
  for (i = 0; i < 5; i++) {
    acoro_engine_t *e = test_engine();
    acoro_co_release(test_spawn(e, sleeper, &d));
    ASSERT_EQ(acoro_engine_run(e), 0);
    ASSERT_EQ(woke_reason, ACORO_WAKE_TIMEOUT);
    ASSERT_INT(t_woke - t_start, >=, (uint64_t)(d * 1e9));
    ASSERT_INT(t_woke - t_start, <, (uint64_t)(5 * 1e9));
    acoro_engine_free(e);
  }
}

TEST(wait_zero_timeout_wakes_next_turn) {
  static double d = 0;
  acoro_engine_t *e = test_engine();
  acoro_co_release(test_spawn(e, sleeper, &d));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(woke_reason, ACORO_WAKE_TIMEOUT);
  acoro_engine_free(e);
}

static acoro_co_t *join_target;
static int join_reason;

static void joiner(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    ASSERT_EQ(acoro_co_join(co, join_target, -1), 0);
    return;
  }
  join_reason = reason;
  acoro_co_exit(co, 0);
}

static void exit_after_yield(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START)
    acoro_co_yield(co);
  else
    acoro_co_exit(co, 0);
}

TEST(join_wakes_on_exit) {
  acoro_engine_t *e = test_engine();
  join_target = test_spawn(e, exit_after_yield, NULL);
  acoro_co_release(test_spawn(e, joiner, NULL));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(join_reason, ACORO_WAKE_EXIT);
  acoro_co_release(join_target);
  acoro_engine_free(e);
}

static void join_dead(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  ASSERT_EQ(acoro_co_join(co, arg, 1.0), ACORO_EDEAD);
  ASSERT_EQ(acoro_co_join(co, co, 1.0), ACORO_EINVAL);
  acoro_co_exit(co, 0);
}

TEST(join_of_dead_is_edead) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *dead = test_spawn(e, record_and_exit, NULL);
  acoro_co_release(test_spawn(e, join_dead, dead));
  ASSERT_EQ(acoro_engine_run(e), 0);
  acoro_co_release(dead);
  acoro_engine_free(e);
}

static int seen_reason;

static void wait_forever(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    acoro_co_wait(co, ACORO_WAIT_SUSPEND, -1);
    return;
  }
  seen_reason = reason;
  acoro_co_exit(co, 0);
}

static void interrupter(acoro_co_t *co, int reason, void *arg) {
  acoro_co_t *target = arg;
  (void)reason;
  /* Made ready by a wake, then interrupted before it runs: it sees the
   * interrupt, which is what the host has pending for it. */
  ASSERT_EQ(acoro_co_wake(target, ACORO_WAIT_SUSPEND, ACORO_WAKE_RESUME), 1);
  ASSERT_EQ(acoro_co_wake(target, ACORO_WAIT_SUSPEND, ACORO_WAKE_RESUME), 0);
  ASSERT_EQ(acoro_co_interrupt(target), 1);
  ASSERT_EQ(acoro_co_interrupt(co), 0); /* running: nothing to wake */
  acoro_co_exit(co, 0);
}

TEST(interrupt_overrides_ready_reason) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *t = test_spawn(e, wait_forever, NULL);
  acoro_co_release(test_spawn(e, interrupter, t));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(seen_reason, ACORO_WAKE_INTERRUPT);
  ASSERT_EQ(acoro_co_interrupt(t), ACORO_EDEAD);
  acoro_co_release(t);
  acoro_engine_free(e);
}

/* Regression: the joiner's reference to its target was never released when
 * the target ended, so the record (and the engine) were never freed. */
TEST(join_releases_target) {
  acoro_engine_t *e = test_engine();
  join_target = test_spawn(e, exit_after_yield, NULL);
  acoro_co_release(test_spawn(e, joiner, NULL));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(join_target->refs, 1); /* only the creator's is left */
  acoro_co_release(join_target);
  ASSERT_EQ(e->nrecords, 0);
  acoro_engine_free(e);
}

/* A timer that is already due when the engine enters libuv's loop fires
 * before libuv polls: the coroutine it made ready must run at once, not
 * after the poll's wait for the next event (here a 30 s timer). To get
 * there: a libuv turn without timers at its end (NOWAIT) whose callbacks
 * take longer than the 1 ms sleep, then a turn that may block (ONCE). */
static uint64_t due_start, due_woke;
static int slow_checks;

static void short_sleeper(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    due_start = uv_hrtime();
    ASSERT_EQ(acoro_co_sleep(co, 0.001), 0);
    return;
  }
  due_woke = uv_hrtime();
  acoro_co_exit(co, 0);
}

static void long_sleeper(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START)
    ASSERT_EQ(acoro_co_sleep(co, 30), 0);
  else
    acoro_co_exit(co, 0);
}

static void slow_check(uv_check_t *h) {
  uint64_t until = uv_hrtime() + 20 * 1000000;
  (void)h;
  if (slow_checks++ > 0)
    return;
  while (uv_hrtime() < until) /* the sleeper's timer falls due meanwhile */
    ;
}

TEST(timer_due_before_poll_does_not_block) {
  static uv_check_t check;
  acoro_engine_t *e = test_engine();
  acoro_co_t *d;
  acoro_co_release(test_spawn(e, short_sleeper, NULL));
  d = test_spawn(e, long_sleeper, NULL);
  acoro_co_set_daemon(d, 1);
  acoro_co_release(d);
  uv_check_init(acoro_engine_loop(e), &check);
  uv_check_start(&check, slow_check);
  uv_unref((uv_handle_t *)&check);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_INT(due_woke - due_start, <, (uint64_t)(5 * 1e9));
  acoro_engine_free(e);
}

/* A coroutine whose timer fired runs before the coroutines that were
 * already ready (the due queue): a burst of 2000 coroutines starting must
 * not make it wait for the whole burst. The sleeper starts first and sleeps
 * 0 s, the burst follows; the timer fires at the engine's first libuv turn,
 * after RUN_BUDGET coroutines. */
static int burst_ran, sleeper_saw = -1, sleeper_reason;

static void burst_one(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  (void)arg;
  burst_ran++;
  acoro_co_exit(co, 0);
}

static void zero_sleeper(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    ASSERT_EQ(acoro_co_wait(co, ACORO_WAIT_SLEEP, 0.0), 0);
    return;
  }
  sleeper_saw = burst_ran;
  sleeper_reason = reason;
  acoro_co_exit(co, 0);
}

TEST(timed_out_runs_before_a_burst_of_ready_work) {
  acoro_engine_t *e = test_engine();
  int i;
  acoro_co_release(test_spawn(e, zero_sleeper, NULL));
  for (i = 0; i < 2000; i++)
    acoro_co_release(test_spawn(e, burst_one, NULL));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(burst_ran, 2000);
  ASSERT_EQ(sleeper_reason, ACORO_WAKE_TIMEOUT);
  ASSERT_INT(sleeper_saw, >=, 0);
  ASSERT_INT(sleeper_saw, <,
             1000); /* about RUN_BUDGET; 2000 if it queued behind */
  acoro_engine_free(e);
}

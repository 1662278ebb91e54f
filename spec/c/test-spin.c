/* test-spin.c: spin before block: the setter and the environment, and the
 * run loop's endings, wake-ups and deadlock check with the spin on. */
#include "test.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

TEST(spin_setter_reads_sets_and_refuses) {
  acoro_engine_t *e;
  unsetenv("ACORO_SPIN_US");
  e = test_engine();
  ASSERT_EQ(acoro_engine_set_spin(e, -1), 20); /* the default */
  ASSERT_EQ(acoro_engine_set_spin(e, 0), 20);
  ASSERT_EQ(acoro_engine_set_spin(e, -1), 0);
  ASSERT_EQ(acoro_engine_set_spin(e, 1000), 0);
  ASSERT_EQ(acoro_engine_set_spin(e, 1001), ACORO_EINVAL);
  ASSERT_EQ(acoro_engine_set_spin(e, -2), ACORO_EINVAL);
  ASSERT_EQ(acoro_engine_set_spin(NULL, 0), ACORO_EINVAL);
  ASSERT_EQ(acoro_engine_set_spin(e, -1), 1000);
  acoro_engine_free(e);
}

static int spin_from(const char *value) {
  acoro_engine_t *e;
  int us;
  setenv("ACORO_SPIN_US", value, 1);
  e = test_engine();
  us = acoro_engine_set_spin(e, -1);
  acoro_engine_free(e);
  unsetenv("ACORO_SPIN_US");
  return us;
}

TEST(spin_from_the_environment) {
  ASSERT_EQ(spin_from("0"), 0);
  ASSERT_EQ(spin_from("7"), 7);
  ASSERT_EQ(spin_from("1000"), 1000);
  /* Anything else keeps the default. */
  ASSERT_EQ(spin_from(""), 20);
  ASSERT_EQ(spin_from("5000"), 20);
  ASSERT_EQ(spin_from("-3"), 20);
  ASSERT_EQ(spin_from("12us"), 20);
}

/* Sleeps `*arg` times for 2 ms, then ends. */
static void step_sleeper(acoro_co_t *co, int reason, void *arg) {
  int *left = arg;
  (void)reason;
  if ((*left)-- > 0)
    acoro_co_sleep(co, 0.002);
  else
    acoro_co_exit(co, 0);
}

TEST(spinning_run_ends_and_sees_deadlock) {
  static const int spins[] = {0, 20, 1000};
  for (size_t i = 0; i < sizeof spins / sizeof spins[0]; i++) {
    acoro_engine_t *e = test_engine();
    int left = 5;
    acoro_co_t *co;
    ASSERT_TRUE(acoro_engine_set_spin(e, spins[i]) >= 0);
    co = test_spawn(e, step_sleeper, &left);
    ASSERT_EQ(acoro_engine_run(e), 0);
    ASSERT_EQ(left, -1);
    ASSERT_EQ(acoro_co_state(co), ACORO_STATE_DEAD);
    acoro_co_release(co);
    /* A receiver nobody can reach, right after activity: the spin must
     * not hide the deadlock, in run and in run-once. */
    co = test_spawn(e, test_step_receive, NULL);
    ASSERT_EQ(acoro_engine_run(e), ACORO_EDEADLK);
    ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_ONCE), ACORO_EDEADLK);
    acoro_co_release(co);
    acoro_engine_free(e);
  }
}

/* POSTS WHILE SPINNING: a host thread posts messages one at a time, each
 * after the previous one was taken; the engine thread spins between them
 * (the longest window) or sleeps, and must take every one. */
#define NPOSTS 2000
typedef struct {
  acoro_engine_t *e;
  acoro_co_t *receiver;
  atomic_int taken;
} poster_t;

static void deliver(acoro_engine_t *e, void *data) {
  poster_t *p = data;
  (void)e;
  ASSERT_TRUE(acoro_send(p->receiver, 1) != 0);
}

/* One post at a time, each waited for. The wait yields the CPU: a poster
 * spinning flat out starves the engine thread on a loaded machine with few
 * cores (under ASan, 2,000 round trips once took longer than the bound). */
static void poster_main(void *arg) {
  poster_t *p = arg;
  uint64_t end = uv_hrtime() + 60000000000ull;
  for (int i = 0; i < NPOSTS; i++) {
    ASSERT_EQ(acoro_engine_post(p->e, deliver, p), 0);
    while (atomic_load(&p->taken) <= i && uv_hrtime() < end)
      sched_yield();
  }
}

static void step_take(acoro_co_t *co, int reason, void *arg) {
  poster_t *p = arg;
  (void)reason;
  while (acoro_mb_shift(co) != 0)
    atomic_fetch_add(&p->taken, 1);
  if (atomic_load(&p->taken) >= NPOSTS)
    acoro_co_exit(co, 0);
  else
    acoro_co_wait(co, ACORO_WAIT_RECEIVE, -1);
}

TEST(spinning_engine_takes_posts) {
  static const int spins[] = {0, 1000};
  for (size_t i = 0; i < sizeof spins / sizeof spins[0]; i++) {
    poster_t p = {0};
    uv_thread_t th;
    p.e = test_engine();
    ASSERT_TRUE(acoro_engine_set_spin(p.e, spins[i]) >= 0);
    atomic_init(&p.taken, 0);
    p.receiver = test_spawn(p.e, step_take, &p);
    ASSERT_EQ(acoro_engine_hold(p.e, 1), 1);
    ASSERT_EQ(uv_thread_create(&th, poster_main, &p), 0);
    for (uint64_t end = uv_hrtime() + 60000000000ull;
         acoro_co_state(p.receiver) != ACORO_STATE_DEAD && uv_hrtime() < end;)
      ASSERT_TRUE(acoro_engine_run_once(p.e, ACORO_RUN_ONCE) >= 0);
    uv_thread_join(&th);
    ASSERT_EQ(atomic_load(&p.taken), NPOSTS);
    ASSERT_EQ(acoro_co_state(p.receiver), ACORO_STATE_DEAD);
    ASSERT_EQ(acoro_engine_hold(p.e, -1), 0);
    acoro_co_release(p.receiver);
    acoro_engine_free(p.e);
  }
}

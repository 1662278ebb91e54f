/* test-engine.c: run-loop endings, monitors, restart, record lifetime. */
#include "test.h"

#include <signal.h>
#include <string.h>

TEST(daemons_do_not_keep_run_alive) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *d = test_spawn(e, test_step_receive, NULL);
  ASSERT_EQ(acoro_co_set_daemon(d, 1), 0);
  acoro_co_release(test_spawn(e, test_step_exit, NULL));
  ASSERT_EQ(acoro_engine_alive(e, 1), 1);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(acoro_engine_alive(e, 1), 0);
  ASSERT_EQ(acoro_engine_alive(e, 0), 1);
  ASSERT_EQ(acoro_co_state(d), ACORO_STATE_RECEIVING);
  acoro_co_release(d);
  acoro_engine_free(e); /* ends the daemon */
}

TEST(deadlock_is_reported) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, test_step_receive, NULL);
  ASSERT_EQ(acoro_engine_run(e), ACORO_EDEADLK);
  ASSERT_EQ(acoro_co_exit(co, 0), 0);
  ASSERT_EQ(acoro_co_exit(co, 0), ACORO_EDEAD);
  ASSERT_EQ(acoro_engine_run(e), 0);
  acoro_co_release(co);
  acoro_engine_free(e);
}

static void stopper(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  (void)arg;
  acoro_engine_stop(acoro_co_engine(co), ACORO_EINTR);
  acoro_co_yield(co);
}

TEST(stop_returns_code) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, stopper, NULL);
  ASSERT_EQ(acoro_engine_run(e), ACORO_EINTR);
  ASSERT_EQ(acoro_co_state(co), ACORO_STATE_READY);
  acoro_co_exit(co, 0);
  acoro_co_release(co);
  acoro_engine_free(e);
}

/* Raises SIGUSR1 at its start, then waits (a timer keeps the loop alive). */
static void raise_usr1(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    raise(SIGUSR1);
    acoro_co_wait(co, ACORO_WAIT_SUSPEND, 5);
    return;
  }
  acoro_co_exit(co, 0);
}

TEST(signal_stop_ends_the_run_and_says_which) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, raise_usr1, NULL);
  ASSERT_EQ(acoro_engine_signal(e, 0, ACORO_SIGNAL_STOP), ACORO_EINVAL);
  ASSERT_EQ(acoro_engine_signal(e, SIGUSR1, 7), ACORO_EINVAL);
  ASSERT_EQ(acoro_engine_signal(e, SIGUSR1, ACORO_SIGNAL_STOP),
            ACORO_SIGNAL_DEFAULT);
  ASSERT_EQ(acoro_engine_run(e), ACORO_EINTR);
  ASSERT_EQ(acoro_engine_stop_signal(e), SIGUSR1);
  ASSERT_EQ(acoro_engine_signal(e, SIGUSR1, ACORO_SIGNAL_DEFAULT),
            ACORO_SIGNAL_STOP);
  acoro_co_exit(co, 0);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(acoro_engine_stop_signal(e), 0); /* reset as each run starts */
  acoro_co_release(co);
  acoro_engine_free(e);
}

/* The waiter: raises SIGUSR2 twice, waits; woken, takes what is queued. */
static void usr2_waiter(acoro_co_t *co, int reason, void *arg) {
  int *got = arg;
  acoro_engine_t *e = acoro_co_engine(co);
  if (reason == ACORO_WAKE_START) {
    acoro_engine_signal_waiter(e, co);
    raise(SIGUSR2);
    raise(SIGUSR2);
    acoro_co_wait(co, ACORO_WAIT_OTHER, 5);
    return;
  }
  got[0] = reason;
  got[1] = acoro_engine_signal_take(e);
  got[2] = acoro_engine_signal_take(e);
  acoro_engine_signal_waiter(e, NULL);
  acoro_co_exit(co, 0);
}

TEST(signal_queue_wakes_the_waiter_and_repeats_count_once) {
  acoro_engine_t *e = test_engine();
  int got[3] = {-1, -1, -1};
  acoro_co_t *co;
  ASSERT_EQ(acoro_engine_signal(e, SIGUSR2, ACORO_SIGNAL_QUEUE),
            ACORO_SIGNAL_DEFAULT);
  co = test_spawn(e, usr2_waiter, got);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(got[0], ACORO_WAKE_RESUME);
  ASSERT_EQ(got[1], SIGUSR2);
  ASSERT_EQ(got[2], 0);
  ASSERT_EQ(acoro_signum("term"), SIGTERM);
  ASSERT_EQ(acoro_signum("hup"), SIGHUP);
  ASSERT_EQ(acoro_signum("kill"), 0);
  acoro_co_release(co);
  acoro_engine_free(e); /* closes the handle: SIGUSR2's default again */
}

TEST(monitors_are_kept_in_order) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, test_step_exit, NULL);
  acoro_co_t *w1 = test_spawn(e, test_step_exit, NULL);
  acoro_co_t *w2 = test_spawn(e, test_step_exit, NULL);
  ASSERT_EQ(acoro_co_monitor(co, w1), 0);
  ASSERT_EQ(acoro_co_monitor(co, w2), 0);
  ASSERT_EQ(acoro_co_monitor(co, w1), 0); /* once */
  ASSERT_EQ(acoro_co_monitor(co, NULL), ACORO_EINVAL);
  ASSERT_EQ(acoro_co_monitor_count(co), 2);
  ASSERT_PTR_EQ(acoro_co_monitor_at(co, 0), w1);
  ASSERT_PTR_EQ(acoro_co_monitor_at(co, 1), w2);
  ASSERT_PTR_EQ(acoro_co_monitor_at(co, 2), NULL);
  ASSERT_EQ(acoro_engine_run(e), 0);
  acoro_co_release(w1); /* still held by co's monitor list */
  acoro_co_release(w2);
  acoro_co_release(co);
  acoro_engine_free(e);
}

static void keep_mail_exit(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START && test_resumes(co) == 1) {
    acoro_co_exit(co, 1);
    return;
  }
  ASSERT_EQ(acoro_mb_count(co), 1);
  acoro_co_exit(co, 0);
}

TEST(restart_keeps_id_and_mailbox) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, keep_mail_exit, NULL);
  uint64_t id = acoro_co_id(co);
  ASSERT_TRUE(acoro_send(co, 5) != 0);
  ASSERT_EQ(acoro_co_restart(co), ACORO_ESTATE);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(acoro_co_state(co), ACORO_STATE_DEAD);
  ASSERT_EQ(acoro_mb_count(co), 1);
  ASSERT_PTR_EQ(acoro_find(e, id), NULL);
  ASSERT_EQ(acoro_co_restart(co), 0);
  ASSERT_PTR_EQ(acoro_find(e, id), co);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(test_resumes(co), 2);
  ASSERT_EQ(acoro_co_id(co), id);
  acoro_co_release(co);
  acoro_engine_free(e);
}

TEST(records_outlive_engine_free) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, test_step_receive, NULL);
  ASSERT_EQ(acoro_engine_run(e), ACORO_EDEADLK);
  ASSERT_TRUE(acoro_send(co, 1) != 0);
  acoro_engine_free(e); /* co is ended; its record stays until released */
  ASSERT_EQ(acoro_co_state(co), ACORO_STATE_DEAD);
  ASSERT_EQ(acoro_send(co, 1), 0);
  acoro_co_release(co); /* frees the engine too */
}

TEST(strerror_names_every_code) {
  int code;
  for (code = -1; code >= -10; code--)
    ASSERT_TRUE(strcmp(acoro_strerror(code), "unknown error") != 0);
  ASSERT_EQ(strcmp(acoro_strerror(1), "unknown error"), 0);
  ASSERT_EQ(strcmp(acoro_state_name(ACORO_STATE_RECEIVING), "receiving"), 0);
}

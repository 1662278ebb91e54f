/* test-mailbox.c: message order, selective take, delivery notification. */
#include "test.h"

static void idle_exit(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  (void)arg;
  acoro_co_exit(co, 1);
}

TEST(mailbox_fifo_and_selective_take) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, idle_exit, NULL);
  uint32_t k1 = acoro_send(co, 10), k2 = acoro_send(co, 20),
           k3 = acoro_send(co, 30);
  ASSERT_TRUE(k1 && k2 && k3);
  ASSERT_EQ(acoro_mb_count(co), 3);
  ASSERT_EQ(acoro_mb_first(co), k1);
  ASSERT_EQ(acoro_mb_next(co, k1), k2);
  ASSERT_EQ(acoro_mb_take(co, k2), 0);
  ASSERT_EQ(acoro_mb_take(co, k2), ACORO_EINVAL);
  ASSERT_EQ(acoro_mb_next(co, k1), k3);
  ASSERT_EQ(acoro_mb_data(co, k1), 10);
  ASSERT_EQ(acoro_mb_shift(co), k1);
  ASSERT_EQ(acoro_mb_data(co, acoro_mb_first(co)), 30);
  ASSERT_EQ(acoro_mb_shift(co), k3);
  ASSERT_EQ(acoro_mb_shift(co), 0);
  ASSERT_EQ(acoro_mb_count(co), 0);
  /* Freed keys are reused: the pool does not grow with traffic. */
  ASSERT_TRUE(acoro_send(co, 1) <= 3);
  ASSERT_EQ(acoro_engine_run(e), 0);
  acoro_co_release(co);
  acoro_engine_free(e);
}

static int wakes;

static void receiver(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_MESSAGE)
    wakes++;
  while (acoro_mb_shift(co) != 0)
    ;
  if (wakes == 1) {
    acoro_co_exit(co, 0);
    return;
  }
  ASSERT_EQ(acoro_mb_wait(co), 0);
  ASSERT_EQ(acoro_co_state(co), ACORO_STATE_RECEIVING);
}

static void sender(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  ASSERT_TRUE(acoro_send(arg, 1) != 0);
  ASSERT_TRUE(acoro_send(arg, 2) != 0);
  acoro_co_exit(co, 0);
}

TEST(send_wakes_receiver_once) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *r = test_spawn(e, receiver, NULL);
  acoro_co_release(test_spawn(e, sender, r));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(wakes, 1);
  ASSERT_EQ(test_resumes(r), 2);
  acoro_co_release(r);
  acoro_engine_free(e);
}

TEST(send_to_dead_is_refused) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, idle_exit, NULL);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(acoro_send(co, 1), 0);
  acoro_co_release(co);
  acoro_engine_free(e);
}

static int deliver_result;

static void deliverer(acoro_co_t *co, int reason, void *arg) {
  if (reason == ACORO_WAKE_START) {
    uint32_t key = acoro_send(arg, 7);
    ASSERT_EQ(acoro_deliver_wait(co, arg, key, 5.0), 0);
    return;
  }
  deliver_result = reason;
  acoro_co_exit(co, 0);
}

static void taker(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START) {
    acoro_co_yield(co); /* let the deliverer queue its message first */
    return;
  }
  ASSERT_TRUE(acoro_mb_shift(co) != 0);
  acoro_co_exit(co, 0);
}

TEST(deliver_wakes_sender_when_taken) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *t = test_spawn(e, taker, NULL);
  acoro_co_release(test_spawn(e, deliverer, t));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(deliver_result, ACORO_WAKE_DELIVERED);
  acoro_co_release(t);
  acoro_engine_free(e);
}

static void dier(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START)
    acoro_co_yield(co);
  else
    acoro_co_exit(co, 0); /* drops the delivered message unread */
}

TEST(deliver_to_dying_receiver_reports_dead) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *t = test_spawn(e, dier, NULL);
  acoro_co_release(test_spawn(e, deliverer, t));
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(deliver_result, ACORO_WAKE_DEAD);
  acoro_co_release(t);
  acoro_engine_free(e);
}

TEST(mailbox_limit_drops_newest_and_counts) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, idle_exit, NULL);
  acoro_co_set_mailbox_limit(co, 2);
  ASSERT_EQ(acoro_co_mailbox_limit(co), 2);
  ASSERT_TRUE(acoro_send(co, 1) != 0);
  ASSERT_TRUE(acoro_send(co, 2) != 0);
  ASSERT_EQ(acoro_send(co, 3), 0);
  ASSERT_EQ(acoro_co_mailbox_dropped(co), 1);
  ASSERT_EQ(acoro_mb_count(co), 2);
  /* Past the limit anyway: a monitor's notice. */
  ASSERT_TRUE(acoro_send_always(co, 4) != 0);
  ASSERT_EQ(acoro_mb_count(co), 3);
  /* The oldest stay, in order; taking one makes room for one. */
  ASSERT_EQ(acoro_mb_data(co, acoro_mb_shift(co)), 1);
  ASSERT_EQ(acoro_mb_data(co, acoro_mb_shift(co)), 2);
  ASSERT_TRUE(acoro_send(co, 5) != 0);
  ASSERT_EQ(acoro_co_mailbox_dropped(co), 1);
  ASSERT_EQ(acoro_engine_run(e), 0);
  acoro_co_release(co);
  acoro_engine_free(e);
}

static int drained_calls;
static void on_drained(void *data) {
  (void)data;
  drained_calls++;
}

TEST(mailbox_bytes_from_peers_over_limit_until_half) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, idle_exit, NULL);
  uint32_t k[4];
  int i;
  acoro_mb_set_remote_limit(e, 300, on_drained, NULL);
  acoro_send(co, 0); /* not charged: not from a peer */
  for (i = 0; i < 4; i++) {
    acoro_mb_charge_next(e, 100);
    k[i] = acoro_send(co, (uint64_t)i + 1);
    ASSERT_TRUE(k[i] != 0);
  }
  ASSERT_EQ(acoro_mb_remote_bytes(e), 400);
  ASSERT_EQ(acoro_mb_remote_over(e), 1);
  /* A charge is for one message: the next send is not charged. */
  acoro_send(co, 9);
  ASSERT_EQ(acoro_mb_remote_bytes(e), 400);
  /* 400 -> 300 -> 200: still over (above half); 100: drained, once. */
  ASSERT_EQ(acoro_mb_take(co, k[0]), 0);
  ASSERT_EQ(acoro_mb_take(co, k[1]), 0);
  ASSERT_EQ(acoro_mb_remote_over(e), 1);
  ASSERT_EQ(drained_calls, 0);
  ASSERT_EQ(acoro_mb_take(co, k[2]), 0);
  ASSERT_EQ(acoro_mb_remote_over(e), 0);
  ASSERT_EQ(drained_calls, 1);
  /* Dropped with the mailbox: uncharged too. */
  acoro_mb_clear(co);
  ASSERT_EQ(acoro_mb_remote_bytes(e), 0);
  ASSERT_EQ(drained_calls, 1);
  acoro_mb_set_remote_limit(e, 0, NULL, NULL);
  ASSERT_EQ(acoro_engine_run(e), 0);
  acoro_co_release(co);
  acoro_engine_free(e);
}

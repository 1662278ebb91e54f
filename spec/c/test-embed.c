/* test-embed.c: the engine driven by a host: run-once steps, an engine on
 * the host's libuv loop, posts from host threads, host calls completed on
 * other threads and cancelled by their waiters. */
#include "net_support.h" /* LEAK_CHECK */
#include "test.h"

#include <dlfcn.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

/* Releases a coroutine of test_spawn with its task: these tests check
 * leaks. */
static void release_task(acoro_co_t *co) {
  free(acoro_co_host_ptr(co));
  acoro_co_release(co);
}

/* A coroutine that sleeps `*arg` times for 5 ms, then ends. */
static void step_sleeper(acoro_co_t *co, int reason, void *arg) {
  int *left = arg;
  (void)reason;
  if ((*left)-- > 0)
    acoro_co_sleep(co, 0.005);
  else
    acoro_co_exit(co, 0);
}

TEST(run_once_nowait_steps_until_done) {
  acoro_engine_t *e = test_engine();
  int left = 3, calls = 0, rc;
  uint64_t end = uv_hrtime() + 5000000000ull;
  acoro_co_t *co = test_spawn(e, step_sleeper, &left);
  ASSERT_EQ(acoro_engine_timeout(e), 0); /* ready: no sleeping */
  ASSERT_TRUE(acoro_engine_backend_fd(e) >= 0);
  while ((rc = acoro_engine_run_once(e, ACORO_RUN_NOWAIT)) == 1 &&
         uv_hrtime() < end) {
    int t = acoro_engine_timeout(e);
    /* a sleeper's timer (5 ms from a loop time that may lag), never "for
     * ever" */
    ASSERT_TRUE(t >= 0 && t <= 1000);
    calls++;
  }
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(left, -1);
  ASSERT_TRUE(calls >= 3);
  ASSERT_EQ(acoro_co_state(co), ACORO_STATE_DEAD);
  /* Nothing left: a step is a no-op, and the host may sleep for ever. */
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), 0);
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_ONCE), 0);
  ASSERT_EQ(acoro_engine_timeout(e), -1);
  ASSERT_EQ(acoro_engine_run_once(e, 7), ACORO_EINVAL);
  release_task(co);
  acoro_engine_free(e);
  LEAK_CHECK();
}

/* Sleeps 50 ms once, then ends. */
static void step_long_sleeper(acoro_co_t *co, int reason, void *arg) {
  (void)arg;
  if (reason == ACORO_WAKE_START)
    acoro_co_sleep(co, 0.05);
  else
    acoro_co_exit(co, 0);
}

TEST(run_once_once_blocks_for_the_timer_and_reports_deadlock) {
  acoro_engine_t *e = test_engine();
  int rc, steps = 0;
  acoro_co_t *co = test_spawn(e, step_long_sleeper, NULL), *stuck;
  while ((rc = acoro_engine_run_once(e, ACORO_RUN_ONCE)) == 1 &&
         steps < 1000000)
    steps++;
  ASSERT_EQ(rc, 0);
  /* 50 ms of sleep: spinning would take tens of thousands of steps; ONCE
   * blocks but for the timer's last millisecond, which the engine spins
   * (wait.c's timers) */
  ASSERT_TRUE(steps < 20000);
  stuck = test_spawn(e, test_step_receive, NULL);
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_ONCE), ACORO_EDEADLK);
  /* A hold (a host thread may post) is not a deadlock. */
  ASSERT_EQ(acoro_engine_hold(e, 1), 1);
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), 1);
  ASSERT_EQ(acoro_engine_hold(e, -1), 0);
  ASSERT_EQ(acoro_engine_hold(e, -1), ACORO_EINVAL);
  acoro_co_exit(stuck, 0);
  release_task(stuck);
  release_task(co);
  acoro_engine_free(e);
  LEAK_CHECK();
}

static void step_stop(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  (void)arg;
  acoro_engine_stop(acoro_co_engine(co), ACORO_EINTR);
  acoro_co_exit(co, 0);
}

TEST(run_once_returns_the_stop_code_once) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *d = test_spawn(e, test_step_receive, NULL), *s, *r;
  acoro_co_set_daemon(d, 1);
  s = test_spawn(e, step_stop, NULL);
  r = test_spawn(e, test_step_receive, NULL);
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), ACORO_EINTR);
  /* The stop took effect before r ran: it runs now. */
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), ACORO_EDEADLK);
  ASSERT_EQ(acoro_co_state(r), ACORO_STATE_RECEIVING);
  acoro_co_exit(r, 0);
  release_task(r);
  release_task(s);
  release_task(d);
  acoro_engine_free(e);
  LEAK_CHECK();
}

/* The host's loop, its own repeating timer, and an engine attached. */
typedef struct {
  int host_ticks;
  uv_timer_t tick;
} host_t;

static void on_host_tick(uv_timer_t *t) {
  host_t *h = t->data;
  if (++h->host_ticks == 3)
    uv_timer_stop(t);
}

TEST(attached_engine_runs_inside_the_hosts_loop) {
  uv_loop_t loop;
  host_t h = {0};
  acoro_engine_t *e = test_engine();
  int left = 4;
  acoro_co_t *co = test_spawn(e, step_sleeper, &left), *daemon;
  int dleft = 1000000;
  daemon = test_spawn(e, step_sleeper, &dleft);
  acoro_co_set_daemon(daemon, 1);
  ASSERT_EQ(uv_loop_init(&loop), 0);
  uv_timer_init(&loop, &h.tick);
  h.tick.data = &h;
  uv_timer_start(&h.tick, on_host_tick, 1, 1);
  ASSERT_EQ(acoro_engine_attach(e, &loop, NULL, NULL), 0);
  ASSERT_EQ(acoro_engine_attach(e, &loop, NULL, NULL), ACORO_EBUSY);
  ASSERT_EQ(acoro_engine_run(e), ACORO_EBUSY);
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), ACORO_EBUSY);
  /* The host's uv_run returns once its timer is done and the non-daemon
   * coroutine has ended: the sleeping daemon does not keep it alive. */
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(h.host_ticks, 3);
  ASSERT_EQ(left, -1);
  ASSERT_EQ(acoro_co_state(co), ACORO_STATE_DEAD);
  ASSERT_TRUE(dleft < 1000000 - 1); /* the daemon ran meanwhile */
  release_task(co);
  release_task(daemon);
  acoro_engine_free(e); /* detaches: its handles close on the next run */
  uv_close((uv_handle_t *)&h.tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  LEAK_CHECK();
}

/* Posts from host threads: each thread sends its numbered messages to a
 * receiver, which checks every thread's order. */
#define POSTERS 4
#define PER_POSTER 25000

typedef struct {
  acoro_engine_t *e;
  acoro_co_t *to;
  int thread;
} poster_t;

typedef struct {
  acoro_co_t *to;
  uint64_t msg;
} post_msg_t;

static void deliver(acoro_engine_t *e, void *data) {
  post_msg_t *m = data;
  (void)e;
  ASSERT_TRUE(acoro_send(m->to, m->msg) != 0);
  free(m);
}

static void poster_main(void *arg) {
  poster_t *p = arg;
  int i;
  for (i = 0; i < PER_POSTER; i++) {
    post_msg_t *m = malloc(sizeof *m);
    ASSERT_TRUE(m != NULL);
    m->to = p->to;
    m->msg = ((uint64_t)p->thread << 32) | (uint64_t)i;
    ASSERT_EQ(acoro_engine_post(p->e, deliver, m), 0);
  }
}

typedef struct {
  uint32_t next[POSTERS];
  int got;
} receiver_t;

static void step_order(acoro_co_t *co, int reason, void *arg) {
  receiver_t *r = arg;
  uint32_t k;
  (void)reason;
  while ((k = acoro_mb_first(co)) != 0) {
    uint64_t m = acoro_mb_data(co, k);
    int t = (int)(m >> 32);
    ASSERT_EQ(acoro_mb_take(co, k), 0);
    ASSERT_TRUE(t >= 0 && t < POSTERS);
    ASSERT_EQ((uint32_t)m, r->next[t]);
    r->next[t]++;
    r->got++;
  }
  if (r->got == POSTERS * PER_POSTER) {
    acoro_engine_hold(acoro_co_engine(co), -1);
    acoro_co_exit(co, 0);
    return;
  }
  acoro_mb_wait(co);
}

/* One poster's messages: ends once it has them all (the poster releases
 * the hold). */
static void step_order_one(acoro_co_t *co, int reason, void *arg) {
  receiver_t *r = arg;
  uint32_t k;
  (void)reason;
  while ((k = acoro_mb_first(co)) != 0) {
    uint64_t m = acoro_mb_data(co, k);
    ASSERT_EQ(acoro_mb_take(co, k), 0);
    ASSERT_EQ((uint32_t)m, r->next[0]);
    r->next[0]++;
    r->got++;
  }
  if (r->got == PER_POSTER) {
    acoro_co_exit(co, 0);
    return;
  }
  acoro_mb_wait(co);
}

static void release_hold_fn(acoro_engine_t *e, void *data) {
  (void)data;
  acoro_engine_hold(e, -1);
}

TEST(posts_from_threads_lose_nothing_and_keep_each_threads_order) {
  acoro_engine_t *e = test_engine();
  receiver_t r = {{0}, 0};
  acoro_co_t *co = test_spawn(e, step_order, &r);
  poster_t p[POSTERS];
  uv_thread_t th[POSTERS];
  int i;
  acoro_engine_hold(e, 1); /* the receiver waits for the threads */
  for (i = 0; i < POSTERS; i++) {
    p[i].e = e;
    p[i].to = co;
    p[i].thread = i;
    ASSERT_EQ(uv_thread_create(&th[i], poster_main, &p[i]), 0);
  }
  ASSERT_EQ(acoro_engine_run(e), 0);
  for (i = 0; i < POSTERS; i++)
    uv_thread_join(&th[i]);
  ASSERT_EQ(r.got, POSTERS * PER_POSTER);
  release_task(co);
  acoro_engine_free(e);
  LEAK_CHECK();
}

static int ran_at_free;
static void count_run(acoro_engine_t *e, void *data) {
  (void)e;
  (void)data;
  ran_at_free++;
}

TEST(posts_queued_before_free_still_run) {
  acoro_engine_t *e = test_engine();
  ASSERT_EQ(acoro_engine_post(e, count_run, NULL), 0);
  ASSERT_EQ(acoro_engine_post(e, count_run, NULL), 0);
  ASSERT_EQ(acoro_engine_post(NULL, count_run, NULL), ACORO_EINVAL);
  acoro_engine_free(e);
  ASSERT_EQ(ran_at_free, 2);
  LEAK_CHECK();
}

/* A post racing acoro_engine_free: the poster's wake-up (uv_async_send) is
 * held up by the wrapper below until the engine is freed, or 300 ms at
 * most. Free must not get past the queue while a send is still on its way:
 * after free the loop is closed, and libuv aborts on a send to it. The
 * wrapper replaces libuv's for this program (the core is linked in). */
static atomic_int hold_send;
static int send_saw_free; /* under hs_mu */
static uv_mutex_t hs_mu;
static uv_cond_t hs_cond;
static int hs_in_send, hs_freed;
static int (*real_async_send)(uv_async_t *h);
static uv_once_t real_once = UV_ONCE_INIT;

static void find_real_async_send(void) {
  *(void **)&real_async_send = dlsym(RTLD_NEXT, "uv_async_send");
}

int uv_async_send(uv_async_t *h) {
  uv_once(&real_once, find_real_async_send);
  if (atomic_exchange(&hold_send, 0)) {
    int freed;
    uv_mutex_lock(&hs_mu);
    hs_in_send = 1;
    uv_cond_signal(&hs_cond);
    if (!hs_freed)
      (void)uv_cond_timedwait(&hs_cond, &hs_mu, 300 * 1000000ull);
    freed = send_saw_free = hs_freed;
    uv_mutex_unlock(&hs_mu);
    if (freed) /* the loop is closed: the real send would abort */
      return 0;
  }
  return real_async_send(h);
}

static void late_poster(void *arg) {
  (void)acoro_engine_post(arg, count_run, NULL);
}

TEST(free_waits_for_a_post_still_sending) {
  acoro_engine_t *e = test_engine();
  /* a record the test holds keeps the engine's memory past free */
  acoro_co_t *co = test_spawn(e, test_step_receive, NULL);
  uv_thread_t th;
  ASSERT_EQ(uv_mutex_init(&hs_mu), 0);
  ASSERT_EQ(uv_cond_init(&hs_cond), 0);
  ran_at_free = 0;
  atomic_store(&hold_send, 1);
  ASSERT_EQ(uv_thread_create(&th, late_poster, e), 0);
  uv_mutex_lock(&hs_mu);
  while (!hs_in_send)
    uv_cond_wait(&hs_cond, &hs_mu);
  uv_mutex_unlock(&hs_mu);
  acoro_engine_free(e);
  uv_mutex_lock(&hs_mu);
  hs_freed = 1;
  uv_cond_signal(&hs_cond);
  uv_mutex_unlock(&hs_mu);
  uv_thread_join(&th);
  ASSERT_EQ(send_saw_free, 0);
  ASSERT_EQ(ran_at_free, 1);
  release_task(co);
  uv_cond_destroy(&hs_cond);
  uv_mutex_destroy(&hs_mu);
  LEAK_CHECK();
}

/* Host calls. A worker thread completes the call after the coroutine has
 * started waiting; another coroutine keeps running meanwhile. */
static atomic_int results_freed;
static void free_result(void *p) {
  atomic_fetch_add(&results_freed, 1);
  free(p);
}

typedef struct {
  acoro_call_t *call;
  uv_sem_t go; /* the waiter waits: complete now */
  int status;
} worker_t;

static void worker_main(void *arg) {
  worker_t *w = arg;
  int *v = malloc(sizeof *v);
  ASSERT_TRUE(v != NULL);
  *v = 42;
  uv_sem_wait(&w->go);
  ASSERT_EQ(acoro_call_complete(w->call, w->status, v), 0);
}

typedef struct {
  worker_t *w;
  double timeout;
  int outcome; /* 1 completed, 2 timed out, 3 cancelled by the engine */
  int value;
} caller_t;

static void step_caller(acoro_co_t *co, int reason, void *arg) {
  caller_t *c = arg;
  int rc;
  if (reason == ACORO_WAKE_TIMEOUT) {
    c->outcome = 2;
    acoro_call_release(c->w->call); /* cancels; the worker still completes */
    uv_sem_post(&c->w->go);
    acoro_co_exit(co, 0);
    return;
  }
  rc = acoro_call_wait(co, c->w->call, c->timeout);
  if (rc == 0) {
    /* With a timeout, the worker completes only after it passed. */
    if (reason == ACORO_WAKE_START && c->timeout < 0)
      uv_sem_post(&c->w->go);
    return;
  }
  ASSERT_EQ(rc, 1);
  ASSERT_EQ(acoro_call_status(c->w->call), c->w->status);
  c->value = *(int *)acoro_call_result(c->w->call);
  c->outcome = 1;
  acoro_call_release(c->w->call);
  acoro_co_exit(co, 0);
}

static void step_counter(acoro_co_t *co, int reason, void *arg) {
  caller_t *c = arg;
  (void)reason;
  if (c->outcome == 0)
    acoro_co_yield(co);
  else
    acoro_co_exit(co, 0);
}

static void run_call(double timeout, int *outcome, int *value) {
  acoro_engine_t *e = test_engine();
  worker_t w;
  caller_t c = {&w, timeout, 0, 0};
  uv_thread_t th;
  acoro_co_t *a, *b;
  w.status = -7;
  uv_sem_init(&w.go, 0);
  ASSERT_EQ(acoro_call_new(e, free_result, &w.call), 0);
  ASSERT_EQ(uv_thread_create(&th, worker_main, &w), 0);
  a = test_spawn(e, step_caller, &c);
  b = test_spawn(e, step_counter, &c);
  /* The pending call keeps run going until the worker completes. */
  ASSERT_EQ(acoro_engine_run(e), 0);
  uv_thread_join(&th);
  ASSERT_TRUE(test_resumes(b) >= 2); /* the other coroutine was not held */
  *outcome = c.outcome;
  *value = c.value;
  release_task(a);
  release_task(b);
  acoro_engine_free(e);
  uv_sem_destroy(&w.go);
}

TEST(call_completed_on_a_host_thread_wakes_only_its_waiter) {
  int outcome, value;
  run_call(-1, &outcome, &value);
  ASSERT_EQ(outcome, 1);
  ASSERT_EQ(value, 42);
  ASSERT_EQ(atomic_load(&results_freed), 1);
  LEAK_CHECK();
}

TEST(call_timed_out_then_completed_frees_the_result_unread) {
  int outcome, value;
  run_call(0.001, &outcome, &value);
  ASSERT_EQ(outcome, 2);
  ASSERT_EQ(atomic_load(&results_freed), 1);
  LEAK_CHECK();
}

static int cancels;
static void on_cancel(void *data) {
  (void)data;
  cancels++;
}

TEST(call_released_by_its_waiter_cancels_once_then_completion_frees) {
  acoro_engine_t *e = test_engine();
  acoro_call_t *c;
  acoro_co_t *co = test_spawn(e, test_step_exit, NULL);
  int *v = malloc(sizeof *v);
  ASSERT_EQ(acoro_call_new(e, free_result, &c), 0);
  acoro_call_on_cancel(c, on_cancel, NULL);
  ASSERT_TRUE(v != NULL);
  ASSERT_EQ(acoro_engine_run_once(e, ACORO_RUN_NOWAIT), 0);
  /* A waiter that ends lets go of the call: it is cancelled once. */
  acoro_call_release(c); /* the waiter's reference */
  ASSERT_EQ(cancels, 1);
  ASSERT_EQ(acoro_call_cancelled(c), 1);
  ASSERT_EQ(acoro_call_complete(c, 0, v), 0);
  acoro_engine_run_once(e, ACORO_RUN_NOWAIT); /* the completion arrives */
  ASSERT_EQ(atomic_load(&results_freed), 1);
  release_task(co);
  acoro_engine_free(e);
  LEAK_CHECK();
}

/* A foreign event loop (here poll(2)) that sleeps on the backend fd for
 * acoro_engine_timeout, then steps the engine. */
TEST(foreign_loop_sleeps_on_backend_fd_and_timeout) {
  acoro_engine_t *e = test_engine();
  int left = 3, rc, polls = 0;
  acoro_co_t *co = test_spawn(e, step_sleeper, &left);
  uint64_t end = uv_hrtime() + 5000000000ull;
  while ((rc = acoro_engine_run_once(e, ACORO_RUN_NOWAIT)) == 1 &&
         uv_hrtime() < end) {
    struct pollfd p = {acoro_engine_backend_fd(e), POLLIN, 0};
    int t = acoro_engine_timeout(e);
    ASSERT_TRUE(t >= -1);
    ASSERT_TRUE(t != -1); /* a sleeper: its timer bounds the wait */
    ASSERT_TRUE(poll(&p, 1, t) >= 0);
    polls++;
  }
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(left, -1);
  ASSERT_TRUE(polls >= 3 && polls < 1000); /* slept, did not spin */
  release_task(co);
  acoro_engine_free(e);
  LEAK_CHECK();
}

/* Posts from a host thread into an engine attached to the host's loop: the
 * receiver's wake-ups come through the host's uv_run. */
static void attached_poster(void *arg) {
  poster_t *p = arg;
  poster_main(p);
  acoro_engine_post(p->e, release_hold_fn, NULL);
}

TEST(attached_engine_takes_posts_from_a_host_thread) {
  uv_loop_t loop;
  acoro_engine_t *e = test_engine();
  receiver_t r = {{0}, 0};
  acoro_co_t *co = test_spawn(e, step_order_one, &r);
  poster_t p = {e, co, 0};
  uv_thread_t th;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  ASSERT_EQ(acoro_engine_attach(e, &loop, NULL, NULL), 0);
  acoro_engine_hold(e, 1); /* released by the poster's last post */
  ASSERT_EQ(uv_thread_create(&th, attached_poster, &p), 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once the receiver has all */
  uv_thread_join(&th);
  ASSERT_EQ(r.got, PER_POSTER);
  ASSERT_EQ(acoro_co_state(co), ACORO_STATE_DEAD);
  release_task(co);
  acoro_engine_free(e);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  LEAK_CHECK();
}

/* engine.c: the engine object, its ready queue and the run loop that
 * alternates between resuming ready coroutines and polling libuv. */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How many coroutines run between two polls of the loop while some are
 * ready: large enough that a poll (a syscall) is cheap next to the work,
 * small enough that I/O and timers are served within a fraction of a ms. */
#define RUN_BUDGET 128

/* SPIN BEFORE BLOCK. Waking a thread asleep in epoll_wait costs far more
 * than the work of a small message when the wake-up must reach another,
 * halted CPU (tens of µs on a VM: an IPI and the CPU's way out of idle).
 * So after running coroutines, the engine first polls without blocking
 * for up to spin_ns, yielding the CPU between polls (so a peer process or
 * thread on the same CPU runs rather than waits), and only then sleeps:
 * a reply that comes back within the window is taken without any wake-up.
 * Only after activity and bounded, so an idle engine still sleeps.
 * ACORO_SPIN_US (environment, read at acoro_engine_new) or
 * acoro_engine_set_spin set the window; the network thread of a node
 * started afterwards uses the same. */
#define SPIN_DEFAULT_US 20
#define SPIN_MAX_US 1000

static uint64_t spin_from_env(void) {
  const char *v = getenv("ACORO_SPIN_US");
  char *end;
  long us;
  if (v == NULL || *v == '\0')
    return (uint64_t)SPIN_DEFAULT_US * 1000;
  errno = 0;
  us = strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || us < 0 || us > SPIN_MAX_US)
    return (uint64_t)SPIN_DEFAULT_US * 1000;
  return (uint64_t)us * 1000;
}

int acoro_engine_set_spin(acoro_engine_t *e, int usec) {
  int prev;
  if (e == NULL || usec < -1 || usec > SPIN_MAX_US)
    return ACORO_EINVAL;
  prev = (int)(e->spin_ns / 1000);
  if (usec >= 0)
    e->spin_ns = (uint64_t)usec * 1000;
  return prev;
}

uint64_t eng_spin_ns(const acoro_engine_t *e) { return e->spin_ns; }

void eng_log(acoro_engine_t *e, int level, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  if (e->host.log == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  e->host.log(e->host_data, level, buf);
}

/* Appends `co` to a ready queue with `reason` (once: a queued coroutine
 * keeps its place, only the reason changes). Coroutines whose timer fired
 * go to the due queue, which runs first: a burst of ready work (100,000
 * coroutines starting) must not make every timer that falls due meanwhile
 * late by the whole burst. Timers cannot starve the rest: each fires once
 * per wait, and only as the clock moves. */
static void on_wake_idle(uv_idle_t *h) { (void)h; }

/* Runs one turn of libuv (NOWAIT or ONCE), noting that callbacks run now
 * and whether its poll may block (timer.c's check before the poll). */
static void uv_turn(acoro_engine_t *e, uv_run_mode mode) {
  e->in_uv_run = mode == UV_RUN_NOWAIT ? 1 : 2;
  uv_run(&e->loop, mode);
  e->in_uv_run = 0;
  if (e->wake_idle_active) {
    uv_idle_stop(&e->wake_idle);
    e->wake_idle_active = 0;
  }
}

void eng_ready(acoro_engine_t *e, acoro_co_t *co, int reason) {
  acoro_co_t **head = &e->ready_head, **tail = &e->ready_tail;
  co->wake_reason = (uint8_t)reason;
  if (co->state != ACORO_STATE_RUNNING)
    co->state = ACORO_STATE_READY;
  if (co->queued)
    return;
  if (reason == ACORO_WAKE_TIMEOUT) {
    head = &e->due_head;
    tail = &e->due_tail;
  }
  co->queued = 1;
  co->ready_next = NULL;
  if (*tail)
    (*tail)->ready_next = co;
  else
    *head = co;
  *tail = co;
  /* Made ready by a libuv callback: libuv must not block in its poll before
   * returning to the engine. It runs due timers before polling and computes
   * the poll's timeout afterwards, from timers and active idle handles only
   * (a timer that made a coroutine ready there would otherwise leave it
   * waiting for the next event: seen as 1 ms sleeps taking 20 s). */
  if (e->in_uv_run && !e->wake_idle_active) {
    uv_idle_start(&e->wake_idle, on_wake_idle);
    e->wake_idle_active = 1;
  }
}

static int unlink_from(acoro_co_t **head, acoro_co_t **tail, acoro_co_t *co) {
  acoro_co_t *prev = NULL, *it;
  for (it = *head; it != NULL; prev = it, it = it->ready_next) {
    if (it != co)
      continue;
    if (prev)
      prev->ready_next = it->ready_next;
    else
      *head = it->ready_next;
    if (*tail == it)
      *tail = prev;
    return 1;
  }
  return 0;
}

/* Removes `co` from its ready queue (it ended while queued). O(n), rare. */
void eng_unready(acoro_engine_t *e, acoro_co_t *co) {
  if (!co->queued)
    return;
  if (!unlink_from(&e->due_head, &e->due_tail, co))
    unlink_from(&e->ready_head, &e->ready_tail, co);
  co->queued = 0;
  co->ready_next = NULL;
}

static acoro_co_t *pop_ready(acoro_engine_t *e) {
  acoro_co_t *co;
  if (e->due_head != NULL) {
    co = e->due_head;
    e->due_head = co->ready_next;
    if (e->due_head == NULL)
      e->due_tail = NULL;
  } else {
    co = e->ready_head;
    e->ready_head = co->ready_next;
    if (e->ready_head == NULL)
      e->ready_tail = NULL;
  }
  co->queued = 0;
  co->ready_next = NULL;
  return co;
}

static uint64_t random_incarnation(void) {
  uint64_t v = 0;
  if (uv_random(NULL, NULL, &v, sizeof v, 0, NULL) != 0 || v == 0)
    v = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32);
  return v;
}

/* A write to a pipe or socket whose reader is gone raises SIGPIPE, whose
 * default action kills the process: the engine wants EPIPE from the write
 * instead (as Node and Python do). An embedder's own handler is kept.
 * libuv resets signals to their defaults in the children it spawns. */
static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

int acoro_engine_new(const acoro_host_t *host, void *host_data,
                     acoro_engine_t **out) {
  acoro_engine_t *e;
  if (host == NULL || host->resume == NULL || out == NULL)
    return ACORO_EINVAL;
  e = calloc(1, sizeof *e);
  if (e == NULL)
    return ACORO_ENOMEM;
  if (uv_loop_init(&e->loop) != 0) {
    free(e);
    return ACORO_EUV;
  }
  e->host = *host;
  e->host_data = host_data;
  e->next_id = 1;
  e->incarnation = random_incarnation();
  e->spin_ns = spin_from_env();
  tm_init(e);
  uv_idle_init(&e->loop, &e->wake_idle);
  if (post_init(e) != 0) {
    uv_close((uv_handle_t *)&e->wake_idle, NULL);
    uv_close((uv_handle_t *)&e->spin_idle, NULL);
    uv_close((uv_handle_t *)&e->tm_timer, NULL);
    uv_close((uv_handle_t *)&e->tm_prepare, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
    free(e);
    return ACORO_EUV;
  }
  ignore_sigpipe();
  *out = e;
  return 0;
}

static void free_handle(uv_handle_t *h) { free(h); }

/* Handles an embedder left open are closed but not freed: they are its own. */
static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Ends every record still alive, closes every handle (embedder handles
 * included: the loop is the engine's) and frees the engine, or leaves that
 * to the last record the host still holds. */
void acoro_engine_free(acoro_engine_t *e) {
  if (e == NULL)
    return;
  assert(e->current == NULL);
  host_detach(e);
  post_close(e);
  while (e->live != NULL) {
    acoro_co_t *co = e->live;
    acoro_co_exit(co, 0);
  }
  /* Records still referenced by the host outlive the engine only as
   * dangling handles; the host must release them first. */
  for (int i = 1; i < ENG_NSIG; i++) {
    if (e->sig[i]) {
      uv_close((uv_handle_t *)e->sig[i], free_handle);
      e->sig[i] = NULL;
    }
  }
  acoro_engine_signal_waiter(e, NULL);
  io_close_all(e);
  uv_walk(&e->loop, close_any, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  uv_loop_close(&e->loop);
  e->freeing = 1;
  if (e->nrecords == 0)
    eng_destroy(e);
}

/* OWNERSHIP: records the host still holds keep the engine's memory (their
 * mailboxes live in its pool); the last one to go frees it. */
void eng_destroy(acoro_engine_t *e) {
  post_destroy(e);
  mb_pool_free(e);
  reg_free(e);
  tm_free(&e->timers);
  free(e);
}

/* Runs up to RUN_BUDGET ready coroutines, each until it waits, yields or
 * ends. A coroutine made ready meanwhile goes to the tail. */
static void run_ready(acoro_engine_t *e) {
  int budget = RUN_BUDGET;
  while ((e->ready_head != NULL || e->due_head != NULL) && budget-- > 0 &&
         e->stop_code == 0) {
    acoro_co_t *co = pop_ready(e);
    e->spin_due = 1;
    co->state = ACORO_STATE_RUNNING;
    e->current = co;
    acoro_co_retain(co);
    e->host.resume(e->host_data, co);
    e->current = NULL;
    /* The host returned without waiting, yielding or ending: a yield. */
    if (co->state == ACORO_STATE_RUNNING) {
      eng_ready(e, co, co->queued ? co->wake_reason : ACORO_WAKE_YIELD);
      co->state = ACORO_STATE_READY;
    }
    acoro_co_release(co);
  }
}

/* Before a blocking turn: if coroutines ran since the last one, polls
 * without blocking (yielding between polls) until one is ready, the run
 * must stop or end, or spin_ns passed. Returns 1 when the blocking turn
 * is no longer needed. */
static int spin(acoro_engine_t *e) {
  uint64_t until;
  if (!e->spin_due || e->spin_ns == 0)
    return 0;
  e->spin_due = 0;
  until = uv_hrtime() + e->spin_ns;
  do {
    sched_yield();
    uv_turn(e, UV_RUN_NOWAIT);
    if (e->ready_head != NULL || e->due_head != NULL || e->stop_code != 0 ||
        !uv_loop_alive(&e->loop))
      return 1;
  } while (uv_hrtime() < until);
  return 0;
}

int acoro_engine_run(acoro_engine_t *e) {
  int rc = 0;
  if (e->running || e->attached != NULL)
    return ACORO_EBUSY;
  e->running = 1;
  e->stop_code = 0;
  e->stop_signal = 0;
  for (;;) {
    if (e->stop_code != 0) {
      rc = e->stop_code;
      break;
    }
    if (e->ready_head != NULL || e->due_head != NULL) {
      run_ready(e);
      if (e->nalive_nondaemon == 0 && e->stop_code == 0)
        break;
      uv_turn(e, UV_RUN_NOWAIT);
      continue;
    }
    if (e->nalive_nondaemon == 0)
      break;
    if (!uv_loop_alive(&e->loop)) {
      rc = ACORO_EDEADLK;
      break;
    }
    if (!spin(e))
      uv_turn(e, UV_RUN_ONCE);
  }
  e->stop_code = 0;
  e->running = 0;
  return rc;
}

int eng_has_ready(const acoro_engine_t *e) {
  return e->ready_head != NULL || e->due_head != NULL;
}

/* One step of a host-driven engine: libuv's events (waiting for one when
 * `block` and nothing is ready), then one budget of ready coroutines. The
 * poll comes first so that a frame's step sees what arrived since the last
 * frame; coroutines made ready by the step run in the next one. Returns
 * acoro_engine_run_once's value. */
int eng_step(acoro_engine_t *e, int block) {
  int rc;
  if (!block || eng_has_ready(e) || e->nalive_nondaemon == 0)
    uv_turn(e, UV_RUN_NOWAIT);
  else if (!spin(e))
    uv_turn(e, UV_RUN_ONCE);
  run_ready(e);
  if (e->stop_code != 0) {
    rc = e->stop_code;
    e->stop_code = 0;
    return rc;
  }
  if (e->nalive_nondaemon == 0)
    return 0;
  if (!eng_has_ready(e) && !uv_loop_alive(&e->loop))
    return ACORO_EDEADLK;
  return 1;
}

int acoro_engine_run_once(acoro_engine_t *e, int mode) {
  int rc;
  if (mode == ACORO_RUN_DEFAULT)
    return acoro_engine_run(e);
  if (mode != ACORO_RUN_ONCE && mode != ACORO_RUN_NOWAIT)
    return ACORO_EINVAL;
  if (e->running || e->attached != NULL)
    return ACORO_EBUSY;
  e->running = 1;
  rc = eng_step(e, mode == ACORO_RUN_ONCE);
  e->running = 0;
  return rc;
}

int acoro_engine_timeout(acoro_engine_t *e) {
  if (eng_has_ready(e))
    return 0;
  /* libuv says 0 for a loop with nothing alive (its run would return at
   * once); a host would spin on that. */
  if (!uv_loop_alive(&e->loop))
    return -1;
  return uv_backend_timeout(&e->loop);
}

int acoro_engine_backend_fd(acoro_engine_t *e) {
  return uv_backend_fd(&e->loop);
}

void *acoro_engine_host_data(const acoro_engine_t *e) { return e->host_data; }

void acoro_engine_stop(acoro_engine_t *e, int code) {
  e->stop_code = code < 0 ? code : ACORO_EINTR;
  uv_stop(&e->loop);
}

/* A stop signal that comes again before the engine took the first (its
 * loop never turned: a script in a loop that never yields) ends the process
 * with the signal's default action, as a second Ctrl-C is expected to.
 * libuv's own handler only writes to a pipe that the loop reads, so this one
 * is put in front of it and calls it. Process-wide, as signals are. */
/* Lock-free atomics (async-signal-safe): the handler runs on whichever
 * thread the kernel picks, the network thread's included. */
static atomic_int stop_mode[ENG_NSIG], stop_pending[ENG_NSIG];
static struct sigaction libuv_action[ENG_NSIG];

static void on_signal_raw(int signum) {
  if (atomic_exchange(&stop_pending[signum], 1) &&
      atomic_load(&stop_mode[signum])) {
    signal(signum, SIG_DFL);
    raise(signum);
    return;
  }
  if (libuv_action[signum].sa_flags & SA_SIGINFO)
    libuv_action[signum].sa_sigaction(signum, NULL, NULL);
  else if (libuv_action[signum].sa_handler != SIG_DFL &&
           libuv_action[signum].sa_handler != SIG_IGN)
    libuv_action[signum].sa_handler(signum);
}

/* After uv_signal_start: puts on_signal_raw in front of libuv's handler
 * (once: libuv installs its handler for the first watcher of a signal). */
static void chain_signal(int signum) {
  struct sigaction cur, sa;
  if (sigaction(signum, NULL, &cur) != 0 || cur.sa_handler == on_signal_raw)
    return;
  libuv_action[signum] = cur;
  sa = cur;
  sa.sa_flags &= ~SA_SIGINFO;
  sa.sa_handler = on_signal_raw;
  sigaction(signum, &sa, NULL);
}

/* ENGINE THREAD ONLY (a libuv signal callback). STOP ends the run; QUEUE
 * notes the signal and wakes the host's waiter, which takes it. */
static void on_signal(uv_signal_t *h, int signum) {
  acoro_engine_t *e = h->data;
  atomic_store(&stop_pending[signum], 0);
  if (e->sig_mode[signum] == ACORO_SIGNAL_QUEUE) {
    e->sig_queued |= (uint64_t)1 << signum;
    if (e->sig_waiter != NULL)
      acoro_co_wake(e->sig_waiter, ACORO_WAIT_OTHER, ACORO_WAKE_RESUME);
    return;
  }
  e->stop_signal = signum;
  acoro_engine_stop(e, ACORO_EINTR);
}

int acoro_engine_signal(acoro_engine_t *e, int signum, int mode) {
  int prev;
  if (signum <= 0 || signum >= ENG_NSIG || mode < ACORO_SIGNAL_DEFAULT ||
      mode > ACORO_SIGNAL_QUEUE)
    return ACORO_EINVAL;
  prev = e->sig_mode[signum];
  if (mode == ACORO_SIGNAL_DEFAULT) {
    /* Closing the handle gives the signal its default action back. */
    if (e->sig[signum] != NULL) {
      uv_close((uv_handle_t *)e->sig[signum], free_handle);
      e->sig[signum] = NULL;
    }
    e->sig_queued &= ~((uint64_t)1 << signum);
  } else if (e->sig[signum] == NULL) {
    uv_signal_t *h = malloc(sizeof *h);
    if (h == NULL)
      return ACORO_ENOMEM;
    if (uv_signal_init(&e->loop, h) != 0) {
      free(h);
      return ACORO_EUV;
    }
    h->data = e;
    if (uv_signal_start(h, on_signal, signum) != 0) {
      uv_close((uv_handle_t *)h, free_handle);
      return ACORO_EUV;
    }
    /* A signal watcher alone must not keep the engine from ending or from
     * seeing a deadlock. */
    uv_unref((uv_handle_t *)h);
    e->sig[signum] = h;
    chain_signal(signum);
  }
  e->sig_mode[signum] = (uint8_t)mode;
  atomic_store(&stop_mode[signum], mode == ACORO_SIGNAL_STOP);
  atomic_store(&stop_pending[signum], 0);
  return prev;
}

int acoro_engine_catch_sigint(acoro_engine_t *e) {
  int rc = acoro_engine_signal(e, SIGINT, ACORO_SIGNAL_STOP);
  return rc < 0 ? rc : 0;
}

int acoro_engine_signal_take(acoro_engine_t *e) {
  for (int i = 1; i < ENG_NSIG; i++) {
    if (e->sig_queued & ((uint64_t)1 << i)) {
      e->sig_queued &= ~((uint64_t)1 << i);
      return i;
    }
  }
  return 0;
}

void acoro_engine_signal_waiter(acoro_engine_t *e, acoro_co_t *co) {
  if (co != NULL)
    acoro_co_retain(co);
  if (e->sig_waiter != NULL)
    acoro_co_release(e->sig_waiter);
  e->sig_waiter = co;
}

int acoro_engine_stop_signal(const acoro_engine_t *e) { return e->stop_signal; }

int acoro_signum(const char *name) {
  static const struct {
    const char *name;
    int num;
  } names[] = {{"int", SIGINT},   {"term", SIGTERM}, {"hup", SIGHUP},
               {"usr1", SIGUSR1}, {"usr2", SIGUSR2}, {"quit", SIGQUIT}};
  for (size_t i = 0; name != NULL && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i].name) == 0)
      return names[i].num;
  return 0;
}

uv_loop_t *acoro_engine_loop(acoro_engine_t *e) { return &e->loop; }

uint64_t acoro_engine_incarnation(const acoro_engine_t *e) {
  return e->incarnation;
}

uint32_t acoro_engine_alive(const acoro_engine_t *e, int nondaemon_only) {
  return nondaemon_only ? e->nalive_nondaemon : e->nalive;
}

acoro_co_t *acoro_engine_next_co(acoro_engine_t *e, acoro_co_t *prev) {
  if (prev == NULL)
    return e->live;
  return prev->live_next;
}

acoro_co_t *acoro_current(acoro_engine_t *e) { return e->current; }

double acoro_now(acoro_engine_t *e) {
  (void)e;
  return (double)uv_hrtime() * 1e-9;
}

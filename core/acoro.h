/* acoro.h: the public C API of the acoro engine (libacoro).
 *
 * The engine runs many coroutines on one thread over a libuv loop. It knows a
 * coroutine as a record (id, state, mailbox, timer, monitors, name); running
 * the coroutine's code is the host's job, done through the acoro_host_t vtable.
 * The Lua binding is one host; a C program can be another.
 *
 * Errors: functions return 0 (or a value) on success and a negative ACORO_E*
 * code on failure; acoro_strerror() names it. ACORO_E* codes (-2001 ...) never
 * collide with libuv's (negative errno values, -3000s, -4000s), which the I/O
 * calls return for failures of the I/O itself; acoro_strerror names both. The
 * library never prints and never exits: messages go through acoro_host_t.log.
 *
 * THREADS: every function here is ENGINE THREAD ONLY (the thread that runs
 * acoro_engine_run), unless its comment says otherwise.
 *
 * The whole header is also given to LuaJIT's ffi.cdef (lua/acoro/cdef.lua):
 * the build preprocesses it with ACORO_CDEF defined (no system headers, no
 * attributes), so the Lua hot paths, the error codes Lua names
 * (ffi.C.ACORO_E*) and this header cannot drift. Keep what the preprocessor
 * leaves to C declarations LuaJIT parses: no inline code, no attributes but
 * through ACORO_API.
 *
 * SIZE: over 800 lines on purpose: the one public header (as libuv's uv.h),
 * each declaration with its contract, in sections by subject (errors, the
 * engine, hosts, coroutines, mailboxes and names, I/O, wire values, the
 * peer transport); a host reads one file.
 */
#ifndef ACORO_H
#define ACORO_H

#ifndef ACORO_CDEF /* LuaJIT's FFI knows size_t and the intN_t types */
#include <stddef.h>
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(ACORO_CDEF)
#define ACORO_API __attribute__((visibility("default")))
#else
#define ACORO_API
#endif

#define ACORO_VERSION_MAJOR 0
#define ACORO_VERSION_MINOR 1
#define ACORO_VERSION_PATCH 0
#define ACORO_VERSION_STRING "0.1.0"

/* --- Errors -------------------------------------------------------------- */

/* Error codes: XX(name, value, message). */
#define ACORO_ERRNO_MAP(XX)                                                    \
  XX(EINVAL, -2001, "invalid argument")                                        \
  XX(ENOMEM, -2002, "out of memory")                                           \
  XX(EDEAD, -2003, "coroutine has ended")                                      \
  XX(ESTATE, -2004, "coroutine is not in a state that allows this")            \
  XX(EEXIST, -2005, "name is already registered")                              \
  XX(ENOENT, -2006, "no such name")                                            \
  XX(EDEADLK, -2007,                                                           \
     "every coroutine left waits for something that cannot come")              \
  XX(EINTR, -2008, "interrupted")                                              \
  XX(EBUSY, -2009, "engine is already running")                                \
  XX(EUV, -2010, "event loop failure")                                         \
  XX(EWAITING, -2011, "another coroutine is already waiting on this object")   \
  XX(ECLOSED, -2012, "object is closed")                                       \
  XX(EIO, -2013, "I/O failed (see the object's status)")                       \
  XX(ETLS, -2014, "TLS failed (see acoro_stream_tls_error)")                   \
  XX(EWIRE, -2015, "malformed or oversize message (see the reason)")           \
  XX(ENOPEER, -2020, "no such peer, or the peer is down")                      \
  XX(EPEERBUSY, -2021, "the peer's outgoing queue is full: wait for writable")

/* Error codes as an enum, from the map. */
enum {
#define ACORO_ERRNO_ENUM(name, value, msg) ACORO_##name = (value),
  ACORO_ERRNO_MAP(ACORO_ERRNO_ENUM)
#undef ACORO_ERRNO_ENUM
};
/* The message of an ACORO_E* or a libuv error code. */
ACORO_API const char *acoro_strerror(int err);

/* --- The engine ---------------------------------------------------------- */

typedef struct acoro_engine_s acoro_engine_t;
typedef struct acoro_co_s acoro_co_t;

/* The host: how the engine asks its embedder to act. */
typedef struct acoro_host_s {
  /* Run `co` until it waits, yields or ends. The reason it was made ready is
   * acoro_co_wake_reason(co). The host must, before returning, have called
   * acoro_co_wait, acoro_co_yield or acoro_co_exit for `co`; if it did none,
   * the engine treats it as a yield. Required. */
  void (*resume)(void *host_data, acoro_co_t *co);
  /* A message is dropped unread (its receiver ended or was freed). Optional. */
  void (*drop)(void *host_data, uint64_t data);
  /* A log line from the engine; level is 0 error, 1 warning, 2 info. Optional.
   */
  void (*log)(void *host_data, int level, const char *msg);
} acoro_host_t;

/* Engine lifecycle. acoro_engine_new also ignores SIGPIPE (unless the
 * process has a handler of its own): a write to a gone reader fails with
 * EPIPE instead of killing the process. */
ACORO_API int acoro_engine_new(const acoro_host_t *host, void *host_data,
                               acoro_engine_t **out);

/* Frees the engine and every record left; no coroutine may be running. */
ACORO_API void acoro_engine_free(acoro_engine_t *e);
/* Runs ready coroutines and the loop until no non-daemon coroutine is left
 * (returns 0), acoro_engine_stop was called (returns its code), or every
 * coroutine left waits with nothing armed that could wake it (ACORO_EDEADLK).
 */
ACORO_API int acoro_engine_run(acoro_engine_t *e);
/* SIGINT then stops the engine with ACORO_EINTR instead of killing the process
 * (acoro_engine_signal(e, SIGINT, ACORO_SIGNAL_STOP)). */
ACORO_API int acoro_engine_catch_sigint(acoro_engine_t *e);
/* Signals. acoro_engine_signal(e, signum, mode) sets what a signal does, and
 * returns the previous mode (or a negative code): DEFAULT the process's own
 * action (no handler); STOP acoro_engine_run returns ACORO_EINTR soon, and
 * acoro_engine_stop_signal tells which signal it was (0: none, reset as each
 * run starts); QUEUE the signal is queued (one bit per signal: repeats before
 * a take count once) for acoro_engine_signal_take, which returns a queued
 * signal number or 0, and the coroutine set with acoro_engine_signal_waiter
 * (retained; NULL: none) is woken if it waits (ACORO_WAIT_OTHER, RESUME).
 * The libuv handles are unreferenced: a watched signal alone keeps no run
 * going. acoro_signum("term") is SIGTERM's number ("int", "hup", "usr1",
 * "usr2" too; 0 for any other name). */
enum { ACORO_SIGNAL_DEFAULT, ACORO_SIGNAL_STOP, ACORO_SIGNAL_QUEUE };
ACORO_API int acoro_engine_signal(acoro_engine_t *e, int signum, int mode);
ACORO_API int acoro_engine_signal_take(acoro_engine_t *e);
ACORO_API void acoro_engine_signal_waiter(acoro_engine_t *e, acoro_co_t *co);
ACORO_API int acoro_engine_stop_signal(const acoro_engine_t *e);
ACORO_API int acoro_signum(const char *name);
/* The libuv loop, to add handles of the embedder's own. */
ACORO_API struct uv_loop_s *acoro_engine_loop(acoro_engine_t *e);
ACORO_API uint64_t acoro_engine_incarnation(const acoro_engine_t *e);
/* Number of coroutines alive: all of them, and those that are not daemons. */
ACORO_API uint32_t acoro_engine_alive(const acoro_engine_t *e,
                                      int nondaemon_only);
/* Iterates the live coroutines: first with NULL, then with the previous one. */
ACORO_API acoro_co_t *acoro_engine_next_co(acoro_engine_t *e, acoro_co_t *prev);

/* acoro_current: the coroutine the engine is running now, NULL outside a
 * resume. acoro_now: monotonic seconds. */
ACORO_API acoro_co_t *acoro_current(acoro_engine_t *e);
ACORO_API double acoro_now(acoro_engine_t *e);
/* Makes acoro_engine_run return `code` (negative) soon. */
ACORO_API void acoro_engine_stop(acoro_engine_t *e, int code);

/* --- Hosts: driving the engine, posts, host calls ------------------------ */

/* Spin before block: after running coroutines, acoro_engine_run (and
 * acoro_engine_run_once in ONCE mode) polls for events without blocking for
 * up to `usec` microseconds, yielding the CPU between polls, before it
 * sleeps; so does a node's network thread after traffic. A message answered
 * within the window then costs no thread wake-up (tens of microseconds when
 * the waker is on another CPU), at the price of that much CPU after each
 * burst of work; an idle engine sleeps as before, and an engine attached to
 * a host's loop never spins. 0 turns it off (an embedder that counts its CPU
 * or shares its core); -1 only reads it. The default is 20, or the
 * environment's ACORO_SPIN_US (0 to 1000) when the engine is made; a node's
 * network thread takes the engine's value when the node starts. Returns the
 * previous value, or ACORO_EINVAL outside -1..1000. ENGINE THREAD ONLY. */
ACORO_API int acoro_engine_set_spin(acoro_engine_t *e, int usec);

/* Driving the engine a step at a time (a frame loop, a foreign event loop).
 * acoro_engine_run_once with libuv's modes: DEFAULT is acoro_engine_run;
 * NOWAIT takes libuv's pending events without blocking, then runs one
 * batch of ready coroutines (what they make ready runs at the next call);
 * ONCE does the same but, when no coroutine is ready and a non-daemon one
 * lives, first blocks until an event comes. Returns 1 while non-daemon
 * coroutines live, 0 once none does, the code of acoro_engine_stop, or
 * ACORO_EDEADLK (non-daemons live, none is ready, nothing could wake one).
 * acoro_engine_timeout: how long (ms) the host may sleep before calling
 * again, 0 when coroutines are ready, -1 for as long as it likes (until
 * the backend fd is readable). acoro_engine_backend_fd: an fd that becomes
 * readable when the engine has events (epoll's, to watch from a foreign
 * loop). The values match uv_run_mode's. */
enum { ACORO_RUN_DEFAULT, ACORO_RUN_ONCE, ACORO_RUN_NOWAIT };
ACORO_API int acoro_engine_run_once(acoro_engine_t *e, int mode);
ACORO_API int acoro_engine_timeout(acoro_engine_t *e);
ACORO_API int acoro_engine_backend_fd(acoro_engine_t *e);
/* The host_data given to acoro_engine_new. */
ACORO_API void *acoro_engine_host_data(const acoro_engine_t *e);

/* An engine on a host's libuv loop: the host runs its loop (uv_run) and
 * the engine runs inside it. The engine's own loop is nested in the
 * host's through its backend fd, so acoro_engine_loop's handles (and the
 * engine's I/O) are served by the host's uv_run; the handles acoro adds
 * to the host's loop keep it alive only while a non-daemon coroutine
 * lives and could still be woken (daemons alone never do). on_stop(data,
 * code), if not NULL, is told of acoro_engine_stop's code. While attached,
 * acoro_engine_run and run_once return ACORO_EBUSY. detach (or
 * acoro_engine_free) takes the engine off; its handles close the next time
 * the host's loop runs, which must happen before uv_loop_close. */
ACORO_API int acoro_engine_attach(acoro_engine_t *e, struct uv_loop_s *loop,
                                  void (*on_stop)(void *data, int code),
                                  void *data);
ACORO_API void acoro_engine_detach(acoro_engine_t *e);

/* Posts: acoro_engine_post queues fn(e, data) to run on the engine thread
 * (from a libuv callback of its loop) and wakes it. ANY THREAD. Posts run
 * in the order they were queued, so each thread's keep their order.
 * Returns 0, ACORO_ENOMEM, or ACORO_ECLOSED once acoro_engine_free began
 * (posts queued before it still run, during it). Threads must stop
 * posting before acoro_engine_free returns.
 * acoro_engine_hold(e, +1/-1): while holds are taken, the engine's loop
 * stays alive (acoro_engine_run waits for posts instead of reporting
 * ACORO_EDEADLK); a host takes one while its threads may post. Returns the
 * count, or ACORO_EINVAL below zero. ENGINE THREAD ONLY. */
ACORO_API int acoro_engine_post(acoro_engine_t *e,
                                void (*fn)(acoro_engine_t *e, void *data),
                                void *data);
ACORO_API int acoro_engine_hold(acoro_engine_t *e, int delta);

/* Host calls: work a coroutine waits for while the host does it, on any
 * thread. The engine side (ENGINE THREAD): acoro_call_new makes one (it
 * holds the engine's loop alive until completed); acoro_call_wait makes
 * `co` wait for it as acoro_fsop_wait does (1 done, 0 waiting,
 * ACORO_ESTATE once cancelled); done/status/result read the completion;
 * acoro_call_cancel gives up waiting (a waiter is woken, on_cancel(data)
 * called once, acoro_call_cancelled says 1 from then on); release gives
 * up the waiter's reference (cancelling if not done). The completer's
 * side (ANY THREAD): acoro_call_complete(c, status, result) hands over the
 * result (freed with free_result, on the engine thread or, once the engine
 * is closed, on the caller's) and gives up the completer's reference: c
 * must not be touched after it, even if it fails (ACORO_ECLOSED: the
 * engine is closed; ACORO_ESTATE: completed already). acoro_call_cancelled
 * tells a completer that nobody waits any more (it still completes).
 * OWNERSHIP: one reference each; the call goes when both are given up. */
typedef struct acoro_call_s acoro_call_t;
ACORO_API int acoro_call_new(acoro_engine_t *e,
                             void (*free_result)(void *result),
                             acoro_call_t **out);
ACORO_API int acoro_call_wait(acoro_co_t *co, acoro_call_t *c, double timeout);
ACORO_API int acoro_call_done(const acoro_call_t *c);
ACORO_API int acoro_call_status(const acoro_call_t *c);
ACORO_API void *acoro_call_result(const acoro_call_t *c);
ACORO_API void acoro_call_on_cancel(acoro_call_t *c, void (*fn)(void *data),
                                    void *data);
ACORO_API void acoro_call_cancel(acoro_call_t *c);
ACORO_API void acoro_call_release(acoro_call_t *c);
ACORO_API int acoro_call_complete(acoro_call_t *c, int status, void *result);
ACORO_API int acoro_call_cancelled(const acoro_call_t *c);

/* --- Coroutines ---------------------------------------------------------- */

/* Coroutine states as the API reports them: XX(name, lua_name). */
#define ACORO_STATE_MAP(XX)                                                    \
  XX(READY, "ready")                                                           \
  XX(RUNNING, "running")                                                       \
  XX(SUSPENDED, "suspended")                                                   \
  XX(RECEIVING, "receiving")                                                   \
  XX(WAITING_IO, "waiting_io")                                                 \
  XX(DEAD, "dead")

/* clang-format off */
/* States, in the order of ACORO_STATE_MAP. */
enum {
  ACORO_STATE_READY, ACORO_STATE_RUNNING, ACORO_STATE_SUSPENDED,
  ACORO_STATE_RECEIVING, ACORO_STATE_WAITING_IO, ACORO_STATE_DEAD
};
/* What a waiting coroutine waits for. Sleep, suspend, join and deliver all
 * report the state SUSPENDED; receive RECEIVING; io WAITING_IO. */
enum {
  ACORO_WAIT_NONE, ACORO_WAIT_SLEEP, ACORO_WAIT_SUSPEND, ACORO_WAIT_RECEIVE,
  ACORO_WAIT_JOIN, ACORO_WAIT_DELIVER, ACORO_WAIT_IO, ACORO_WAIT_OTHER,
  ACORO_WAIT_ANY = 255
};
/* Why a coroutine was made ready; the host hands it to the resumed code.
 * START first run; YIELD its turn again; RESUME woken by acoro_co_wake;
 * MESSAGE a message came while it waited in RECEIVE; TIMEOUT its wait timed
 * out; EXIT the coroutine it joined ended; DELIVERED its delivered message was
 * taken; DEAD the receiver of its delivery ended; INTERRUPT the host has
 * something pending for it (acoro_co_interrupt). */
enum {
  ACORO_WAKE_NONE, ACORO_WAKE_START, ACORO_WAKE_YIELD, ACORO_WAKE_RESUME,
  ACORO_WAKE_MESSAGE, ACORO_WAKE_TIMEOUT, ACORO_WAKE_EXIT,
  ACORO_WAKE_DELIVERED, ACORO_WAKE_DEAD, ACORO_WAKE_INTERRUPT
};
/* clang-format on */
/* The Lua name of a state ("ready", ...). */
ACORO_API const char *acoro_state_name(int state);

/* Coroutine records: created READY (they run with ACORO_WAKE_START once the
 * engine gets to them). OWNERSHIP: the engine holds one reference while the
 * coroutine lives; the creator gets another, released with acoro_co_release.
 * A dead record keeps id, name and (if asked) its mailbox until the last
 * reference goes. */
ACORO_API int acoro_co_new(acoro_engine_t *e, int daemon, acoro_co_t **out);
ACORO_API void acoro_co_retain(acoro_co_t *co);
ACORO_API void acoro_co_release(acoro_co_t *co);
ACORO_API acoro_engine_t *acoro_co_engine(const acoro_co_t *co);
ACORO_API int acoro_co_wake_reason(const acoro_co_t *co);
/* The host's handle on the coroutine: an integer and a pointer of its own. */
ACORO_API void acoro_co_set_host(acoro_co_t *co, int ref, void *ptr);
ACORO_API void *acoro_co_host_ptr(const acoro_co_t *co);
/* Makes a dead coroutine ready to start again (a restart), keeping its id,
 * name and mailbox; ACORO_ESTATE unless it is dead. */
ACORO_API int acoro_co_restart(acoro_co_t *co);

/* A record's fields. The id is unique in this engine's life (never reused);
 * with acoro_engine_incarnation it is unique across processes. host_ref and
 * flags belong to the host: the engine only stores them. */
ACORO_API uint64_t acoro_co_id(const acoro_co_t *co);
ACORO_API int acoro_co_state(const acoro_co_t *co);
ACORO_API int acoro_co_wait_kind(const acoro_co_t *co);
ACORO_API int acoro_co_host_ref(const acoro_co_t *co);
ACORO_API int acoro_co_flags(const acoro_co_t *co);
ACORO_API void acoro_co_set_flags(acoro_co_t *co, int flags);
ACORO_API int acoro_co_is_daemon(const acoro_co_t *co);
ACORO_API int acoro_co_set_daemon(acoro_co_t *co, int daemon);
ACORO_API const char *acoro_co_name(const acoro_co_t *co);

/* Scheduling. The running coroutine calls acoro_co_wait (wait for `kind`,
 * timeout in seconds, < 0 for none), acoro_co_yield (run again after the
 * others that are ready) or acoro_co_exit, and then its host yields it.
 * acoro_co_wake makes a coroutine waiting for `kind` (or ACORO_WAIT_ANY)
 * ready with `reason`: 1 if it did, 0 if the coroutine was not so waiting.
 * acoro_co_interrupt makes a waiting coroutine ready with INTERRUPT, or turns
 * the reason of a ready one into INTERRUPT (0 if running, ACORO_EDEAD).
 * acoro_co_join waits for `target` to end (EXIT) and acoro_deliver_wait for
 * the message `key` sent to `to` to be taken (DELIVERED) or `to` to end (DEAD);
 * after a TIMEOUT the message is still queued unless taken meanwhile: the
 * host decides whether to take it back. acoro_co_exit ends a
 * coroutine (not necessarily the running one): its wait is cancelled, its
 * joiners woken, its name unregistered; its messages are dropped unless
 * `keep_mailbox`. None of these calls back into the host. */
ACORO_API int acoro_co_wait(acoro_co_t *co, int kind, double timeout);
ACORO_API int acoro_co_wake(acoro_co_t *co, int kind, int reason);
ACORO_API int acoro_co_yield(acoro_co_t *co);
ACORO_API int acoro_co_interrupt(acoro_co_t *co);
ACORO_API int acoro_co_join(acoro_co_t *co, acoro_co_t *target, double timeout);
ACORO_API int acoro_deliver_wait(acoro_co_t *co, acoro_co_t *to, uint32_t key,
                                 double timeout);
ACORO_API int acoro_co_exit(acoro_co_t *co, int keep_mailbox);

/* --- Mailboxes, monitors and names --------------------------------------- */

/* Mailboxes. A message is a 64-bit value the host interprets, found by a
 * nonzero key that stays valid until the message is taken or dropped (a host
 * may index its own storage by key). acoro_send queues at the tail and wakes
 * a receiver; it returns the key, or 0 when `to` is dead or its mailbox is
 * full. acoro_mb_shift takes the head (0 when empty); first/next walk the
 * queue in order; acoro_mb_take takes any queued message. Taking a
 * delivered message wakes its sender.
 * MAILBOX LIMIT: acoro_co_set_mailbox_limit(co, n) (0: none, the default)
 * makes acoro_send drop the newest message once n are queued: it returns
 * 0 and counts the drop (acoro_co_mailbox_dropped; the first drop is
 * logged). acoro_send_always queues past the limit (monitor notices). */
ACORO_API uint32_t acoro_send(acoro_co_t *to, uint64_t data);
ACORO_API uint32_t acoro_send_always(acoro_co_t *to, uint64_t data);
ACORO_API void acoro_co_set_mailbox_limit(acoro_co_t *co, uint32_t n);
ACORO_API uint32_t acoro_co_mailbox_limit(const acoro_co_t *co);
ACORO_API uint64_t acoro_co_mailbox_dropped(const acoro_co_t *co);
ACORO_API uint32_t acoro_mb_shift(acoro_co_t *co);
ACORO_API uint32_t acoro_mb_first(const acoro_co_t *co);
ACORO_API uint32_t acoro_mb_next(const acoro_co_t *co, uint32_t key);
ACORO_API uint32_t acoro_mb_count(const acoro_co_t *co);
ACORO_API uint64_t acoro_mb_data(const acoro_co_t *co, uint32_t key);
ACORO_API int acoro_mb_take(acoro_co_t *co, uint32_t key);
/* Drops every queued message (the host's drop hook sees each). */
ACORO_API void acoro_mb_clear(acoro_co_t *co);
/* Changes whenever acoro_mb_take removes a message: a walk of the queue
 * that paused (to wait) is stale if it changed, as keys may be reused. */
ACORO_API uint32_t acoro_mb_gen(const acoro_co_t *co);
/* acoro_co_wait(co, ACORO_WAIT_RECEIVE, -1) with one argument: fewer Lua
 * stack slots at the call in the hot receive loop. */
ACORO_API int acoro_mb_wait(acoro_co_t *co);
/* acoro_co_wait(co, ACORO_WAIT_SLEEP, seconds), likewise. */
ACORO_API int acoro_co_sleep(acoro_co_t *co, double seconds);

/* MESSAGES FROM PEERS (the engine's share of node-wide flow control).
 * acoro_mb_charge_next(e, bytes): the next message queued by acoro_send on
 * this thread came from a peer and holds about `bytes` of memory (0: the
 * next one does not); the net's message callback sets it around one
 * delivery. Charged bytes are counted engine-wide until the message is
 * taken or dropped. Past the limit (acoro_mb_set_remote_limit, 0: none)
 * acoro_mb_remote_over says 1 until the count is back at half the limit,
 * when `drained(data)` is called once (on the thread taking the message:
 * the engine's). acoro_mb_remote_bytes: the bytes charged now. */
ACORO_API void acoro_mb_charge_next(acoro_engine_t *e, size_t bytes);
ACORO_API void acoro_mb_set_remote_limit(acoro_engine_t *e, size_t limit,
                                         void (*drained)(void *data),
                                         void *data);
ACORO_API int acoro_mb_remote_over(const acoro_engine_t *e);
ACORO_API size_t acoro_mb_remote_bytes(const acoro_engine_t *e);

/* Monitors (the engine keeps the list; the host tells the watchers) and the
 * local name registry. A name is unique among live coroutines. */
ACORO_API int acoro_co_monitor(acoro_co_t *co, acoro_co_t *watcher);
ACORO_API uint32_t acoro_co_monitor_count(const acoro_co_t *co);
ACORO_API acoro_co_t *acoro_co_monitor_at(const acoro_co_t *co, uint32_t i);
ACORO_API int acoro_co_set_name(acoro_co_t *co, const char *name);
ACORO_API int acoro_register(acoro_co_t *co, const char *name);
ACORO_API int acoro_unregister(acoro_co_t *co);
ACORO_API acoro_co_t *acoro_locate(acoro_engine_t *e, const char *name);
ACORO_API acoro_co_t *acoro_find(acoro_engine_t *e, uint64_t id);

/* --- I/O ----------------------------------------------------------------- */

/* I/O waits. An I/O object (a stream, a request) embeds one acoro_io_wait_t
 * per operation a coroutine can wait for, zeroed, with `cancel` set.
 * acoro_io_wait makes `co` wait for it (state WAITING_IO; timeout in
 * seconds, < 0 for none): ACORO_EWAITING if another coroutine already waits
 * on `w`. The object calls acoro_io_done when the operation completes: the
 * waiter becomes ready with ACORO_WAKE_RESUME (returns 1; 0 if nobody
 * waited). If the wait ends any other way (timeout, interrupt, the
 * coroutine ends), the engine calls w->cancel(w) with w->co already NULL,
 * so that the object forgets its waiter; cancel must not call the host. */
typedef struct acoro_io_wait_s acoro_io_wait_t;
struct acoro_io_wait_s {
  acoro_co_t *co; /* the waiter, NULL when none */
  void (*cancel)(acoro_io_wait_t *w);
  void *data; /* the object's own */
};
ACORO_API int acoro_io_wait(acoro_co_t *co, acoro_io_wait_t *w, double timeout);
ACORO_API int acoro_io_done(acoro_io_wait_t *w);

/* Read buffers (reader.c): a stream and a file each have one, filled in
 * the background (a stream) or by acoro_file_fill (a file). buffered
 * points at the unread bytes; consume drops the first n of them (a stream
 * then reads on, a file's position moves past them); status is 0 while
 * more may come, then UV_EOF or a libuv error; find gives the length of
 * the bytes up to and with the first `delim` byte among the first `max`
 * unread ones, searching from offset `from` (0: none there). */
typedef struct acoro_reader_s acoro_reader_t;
ACORO_API size_t acoro_reader_buffered(const acoro_reader_t *r,
                                       const char **data);
ACORO_API void acoro_reader_consume(acoro_reader_t *r, size_t n);
ACORO_API int acoro_reader_status(const acoro_reader_t *r);
ACORO_API size_t acoro_reader_find(const acoro_reader_t *r, int delim,
                                   size_t from, size_t max);

/* Streams: TCP connections, pipes and terminals, read and written by
 * coroutines (stream.c). Calls that may wait return 1 when done at once, 0
 * when `co` now waits (WAITING_IO; the host yields it and, once it is
 * woken, looks at the stream again), or a negative ACORO_E* code for a
 * misuse (ECLOSED, EWAITING: another coroutine waits already). Outcomes of
 * the I/O itself are libuv error codes (UV_EOF, UV_ECONNRESET, ...).
 * OWNERSHIP: the creator holds the stream until acoro_stream_release, which
 * also closes it; closing wakes its waiters. */
typedef struct acoro_stream_s acoro_stream_t;
typedef struct acoro_connect_s acoro_connect_t;
typedef struct acoro_server_s acoro_server_t;
typedef struct acoro_tls_ctx_s acoro_tls_ctx_t;

/* Reading: wait until at least `min` bytes are buffered in the stream's
 * reader, or a `delim` byte (-1 for none) is, or reading has ended. */
ACORO_API int acoro_stream_read(acoro_co_t *co, acoro_stream_t *s, size_t min,
                                int delim, double timeout);
ACORO_API acoro_reader_t *acoro_stream_reader(acoro_stream_t *s);
/* Writing: all of data is taken (copied if the kernel does not take it at
 * once); the writer waits until it is written. ACORO_EIO when writing
 * failed (now or before): write_status says why. After a timeout the bytes
 * still go out; write_queued counts them. */
ACORO_API int acoro_stream_write(acoro_co_t *co, acoro_stream_t *s,
                                 const char *data, size_t len, double timeout);
ACORO_API int acoro_stream_write_status(const acoro_stream_t *s);
ACORO_API size_t acoro_stream_write_queued(const acoro_stream_t *s);
/* Half-close (no more writes; the peer reads EOF). */
ACORO_API int acoro_stream_shutdown(acoro_stream_t *s);
ACORO_API void acoro_stream_close(acoro_stream_t *s);
ACORO_API void acoro_stream_release(acoro_stream_t *s);
ACORO_API int acoro_stream_is_open(const acoro_stream_t *s);
/* A stream over a terminal, pipe or socket fd (ACORO_EINVAL for a regular
 * file), and an unconnected pipe for a child process's stdio. */
ACORO_API int acoro_stream_open_fd(acoro_engine_t *e, int fd,
                                   acoro_stream_t **out);
ACORO_API int acoro_stream_new_pipe(acoro_engine_t *e, acoro_stream_t **out);
ACORO_API struct uv_stream_s *acoro_stream_handle(acoro_stream_t *s);

/* TLS (tls.c, OpenSSL). A context holds certificates and the verification
 * policy: clients verify the server (against `ca`, or the system's CAs)
 * unless verify is 0; a server asks for client certificates when given a
 * `ca` and verify. On failure NULL and a message in err. starttls begins
 * the handshake on an open stream (server_name: the name a client checks
 * the certificate against, and sends as SNI); handshake waits for its end
 * (ACORO_ETLS if it failed: acoro_stream_tls_error says why). Reads and
 * writes on a TLS stream carry plaintext; a failed session ends reading
 * with UV_EPROTO. */
ACORO_API acoro_tls_ctx_t *acoro_tls_ctx_new(int server, const char *cert,
                                             const char *key, const char *ca,
                                             int verify, char *err,
                                             size_t errlen);
ACORO_API void acoro_tls_ctx_free(acoro_tls_ctx_t *ctx);
ACORO_API int acoro_stream_starttls(acoro_stream_t *s, acoro_tls_ctx_t *ctx,
                                    int server, const char *server_name);
ACORO_API int acoro_stream_handshake(acoro_co_t *co, acoro_stream_t *s,
                                     double timeout);
ACORO_API const char *acoro_stream_tls_error(const acoro_stream_t *s);
ACORO_API int acoro_stream_is_tls(const acoro_stream_t *s);

/* TCP (tcp.c). connect resolves `host` (without blocking the loop) and
 * tries each address in turn; connect_wait waits for the end, and
 * connect_result hands over the stream or gives the libuv error. The
 * request is the host's until acoro_connect_free (which may come first:
 * the connection is then dropped). listen binds (address reuse on) and
 * listens; accept gives the next connection (1), or waits (0). */
ACORO_API int acoro_tcp_connect(acoro_engine_t *e, const char *host, int port,
                                acoro_connect_t **out);
ACORO_API int acoro_connect_wait(acoro_co_t *co, acoro_connect_t *c,
                                 double timeout);
ACORO_API int acoro_connect_result(acoro_connect_t *c, acoro_stream_t **out);
ACORO_API void acoro_connect_free(acoro_connect_t *c);
ACORO_API int acoro_tcp_listen(acoro_engine_t *e, const char *host, int port,
                               int backlog, acoro_server_t **out);
ACORO_API int acoro_tcp_accept(acoro_co_t *co, acoro_server_t *srv,
                               double timeout, acoro_stream_t **out);
ACORO_API void acoro_server_close(acoro_server_t *srv);
ACORO_API void acoro_server_release(acoro_server_t *srv);
ACORO_API int acoro_server_is_open(const acoro_server_t *srv);
ACORO_API int acoro_server_name(acoro_server_t *srv, char *host, size_t len,
                                int *port);
/* The local (peer = 0) or remote address of a TCP stream. */
ACORO_API int acoro_tcp_name(acoro_stream_t *s, int peer, char *host,
                             size_t len, int *port);
ACORO_API int acoro_tcp_nodelay(acoro_stream_t *s, int on);

/* UDP (udp.c). bind binds to host (numeric, "*" or a name resolved once)
 * and port (0: any) with the ACORO_UDP_* flags and starts receiving: up to
 * ACORO_UDP_QUEUE datagrams wait for a reader, later ones are dropped
 * (counted by acoro_udp_dropped). recv returns 1 when a datagram is queued
 * or receiving has ended (recv_status: 0, a libuv error, or ECANCELED once
 * closed), 0 when `co` now waits. next looks at the oldest datagram (1, or
 * 0 for none): its bytes stay valid until pop. send sends to a numeric
 * address at once (1) or, for a name, resolves it without blocking the
 * loop and sends then (0: `co` waits; one such send at a time, else
 * ACORO_EWAITING); ACORO_EIO when it failed: send_status says why.
 * OWNERSHIP: the caller holds the socket until acoro_udp_release. */
typedef struct acoro_udp_s acoro_udp_t;
#define ACORO_UDP_REUSE 1
#define ACORO_UDP_BROADCAST 2
#define ACORO_UDP_QUEUE 1024
ACORO_API int acoro_udp_bind(acoro_engine_t *e, const char *host, int port,
                             int flags, acoro_udp_t **out);
ACORO_API int acoro_udp_recv(acoro_co_t *co, acoro_udp_t *u, double timeout);
ACORO_API int acoro_udp_next(acoro_udp_t *u, const char **data, size_t *len,
                             char *host, size_t hostlen, int *port);
ACORO_API void acoro_udp_pop(acoro_udp_t *u);
ACORO_API int acoro_udp_recv_status(const acoro_udp_t *u);
ACORO_API uint64_t acoro_udp_dropped(const acoro_udp_t *u);
ACORO_API int acoro_udp_send(acoro_co_t *co, acoro_udp_t *u, const char *data,
                             size_t len, const char *host, int port,
                             double timeout);
ACORO_API int acoro_udp_send_status(const acoro_udp_t *u);
ACORO_API int acoro_udp_name(acoro_udp_t *u, char *host, size_t len, int *port);
ACORO_API void acoro_udp_close(acoro_udp_t *u);
ACORO_API void acoro_udp_release(acoro_udp_t *u);
ACORO_API int acoro_udp_is_open(const acoro_udp_t *u);

/* Processes (process.c, uv_spawn). Each of the child's stdin, stdout and
 * stderr is inherited, /dev/null, a new pipe (PIPE: spawn stores a stream
 * the caller owns in stream, to release with acoro_stream_release), an open
 * stream of the caller's (STREAM: the child gets its fd; the caller keeps
 * it) or an fd of the caller's (FD). args is the NULL-terminated argv
 * (args[0] the program, found on PATH), env NULL-terminated "K=V" strings
 * (NULL: this process's), cwd NULL for this one's. spawn returns 0 or a
 * libuv error (UV_ENOENT: no such program). wait returns 1 once the child
 * has exited, 0 when `co` now waits for it (WAITING_IO), or ACORO_EWAITING
 * (another coroutine waits). status gives the exit code and the signal
 * that ended it (0 if none). kill returns 0 or a libuv error (UV_ESRCH
 * once the child has exited). The child is reaped when it exits whether or
 * not anybody waits. OWNERSHIP: the caller holds the process until
 * acoro_process_release; a child still running then is no longer waited
 * for by the loop (it is reaped all the same). */
typedef struct acoro_process_s acoro_process_t;
enum {
  ACORO_STDIO_INHERIT,
  ACORO_STDIO_NULL,
  ACORO_STDIO_PIPE,
  ACORO_STDIO_STREAM,
  ACORO_STDIO_FD
};
typedef struct acoro_stdio_s {
  int kind;
  int fd;
  acoro_stream_t *stream;
} acoro_stdio_t;
ACORO_API int acoro_process_spawn(acoro_engine_t *e, char **args, char **env,
                                  const char *cwd, acoro_stdio_t stdio[3],
                                  acoro_process_t **out);
ACORO_API int acoro_process_wait(acoro_co_t *co, acoro_process_t *p,
                                 double timeout);
ACORO_API int acoro_process_status(const acoro_process_t *p,
                                   int64_t *exit_status, int *term_signal);
ACORO_API int acoro_process_pid(const acoro_process_t *p);
ACORO_API int acoro_process_kill(acoro_process_t *p, int signum);
ACORO_API void acoro_process_release(acoro_process_t *p);

/* Files and file-system calls (fs.c), run on libuv's thread pool so that
 * the engine thread never blocks. Each call is an operation (acoro_fsop_t)
 * that completes later: acoro_fsop_wait returns 1 when it is done, or 0
 * when `co` now waits for it (WAITING_IO; woken when it completes). A
 * request cannot be cancelled once running: a host that stops waiting (a
 * timeout) releases the operation, which finishes and frees itself (a file
 * it opened is closed). Results are libuv error codes (< 0) or, for files,
 * bytes (read, write) or the new position (seek).
 * A file runs its operations one at a time in the order asked, keeps a read
 * buffer (fill asks for at least `want` more bytes; acoro_file_reader gives
 * it, as acoro_stream_reader a stream's) and a position of its own: that of
 * the first unread buffered byte, which consume advances. A write drops the
 * buffer and writes at the position (at the end with O_APPEND).
 * OWNERSHIP: the host holds each operation until acoro_fsop_release and
 * each file until acoro_file_release (which closes it if open); passing
 * NULL for `out` queues an operation nobody waits for. */
typedef struct acoro_file_s acoro_file_t;
typedef struct acoro_fsop_s acoro_fsop_t;
typedef struct acoro_fs_stat_s {
  int64_t size, nlink;
  int mode; /* st_mode: type and permission bits */
  double mtime, atime, ctime;
  int64_t uid;      /* the owner's user id */
  int64_t ino, dev; /* which file it is (compare an fstat with an lstat) */
} acoro_fs_stat_t;
enum {
  ACORO_FS_OPEN = 1,
  ACORO_FS_STAT,
  ACORO_FS_UNLINK,
  ACORO_FS_RENAME,
  ACORO_FS_MKDIR,
  ACORO_FS_RMDIR,
  ACORO_FS_SCANDIR,
  ACORO_FS_LSTAT, /* as STAT, of a symbolic link itself */
  ACORO_FS_CHMOD, /* mode: the permission bits */
  ACORO_FS_STATFS /* the file system holding path: acoro_fsop_statfs */
};
/* flags: open(2)'s (UV_FS_O_*) for OPEN; mode: for OPEN, MKDIR and CHMOD. */
ACORO_API int acoro_fs_start(acoro_engine_t *e, int kind, const char *path,
                             const char *path2, int flags, int mode,
                             acoro_fsop_t **out);
/* Sets a path's access and modification times (seconds since the epoch;
 * ACORO_EINVAL unless finite and within +-1e15). */
ACORO_API int acoro_fs_utime(acoro_engine_t *e, const char *path, double atime,
                             double mtime, acoro_fsop_t **out);
ACORO_API int acoro_fsop_wait(acoro_co_t *co, acoro_fsop_t *op, double timeout);
ACORO_API int acoro_fsop_done(const acoro_fsop_t *op);
ACORO_API int64_t acoro_fsop_result(const acoro_fsop_t *op);
ACORO_API int acoro_fsop_stat(const acoro_fsop_t *op, acoro_fs_stat_t *st);
/* STATFS: bytes available to an unprivileged user, and the size in all. */
ACORO_API int acoro_fsop_statfs(const acoro_fsop_t *op, uint64_t *avail,
                                uint64_t *total);
/* SCANDIR: the next name (1), or 0 at the end; valid until the next call. */
ACORO_API int acoro_fsop_next_name(acoro_fsop_t *op, const char **name);
/* OPEN: hands over the opened file (once). */
ACORO_API int acoro_fsop_file(acoro_fsop_t *op, acoro_file_t **out);
ACORO_API void acoro_fsop_release(acoro_fsop_t *op);
ACORO_API int acoro_file_fill(acoro_file_t *f, size_t want, acoro_fsop_t **out);
/* Fills the buffer with the rest of a regular file: one fstat, reads into
 * one buffer until EOF (one chunk, as acoro_file_fill, on anything else). */
ACORO_API int acoro_file_fill_all(acoro_file_t *f, acoro_fsop_t **out);
ACORO_API int acoro_file_write(acoro_file_t *f, const char *data, size_t len,
                               acoro_fsop_t **out);
/* whence: 0 from the start, 1 from the position, 2 from the end. */
ACORO_API int acoro_file_seek(acoro_file_t *f, int whence, int64_t offset,
                              acoro_fsop_t **out);
ACORO_API int acoro_file_close(acoro_file_t *f, acoro_fsop_t **out);
/* On the open descriptor (fchmod, futimens, fstat), queued after the file's
 * earlier operations: mode 0..07777; times finite seconds since the epoch
 * (ACORO_EINVAL otherwise); acoro_fsop_stat reads an fstat's result. */
ACORO_API int acoro_file_chmod(acoro_file_t *f, int mode, acoro_fsop_t **out);
ACORO_API int acoro_file_utime(acoro_file_t *f, double atime, double mtime,
                               acoro_fsop_t **out);
ACORO_API int acoro_file_stat(acoro_file_t *f, acoro_fsop_t **out);
/* Under a directory opened as a file d (OPEN with UV_FS_O_DIRECTORY):
 * openat, mkdirat, fstatat, renameat (both names in d) and unlinkat
 * (rmdir: AT_REMOVEDIR) of one name in d, never following a symbolic link
 * at that name (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW: a link where a directory
 * is opened gives UV_ELOOP or UV_ENOTDIR), so that a directory others may
 * write is used without the races of paths: a name must be one component,
 * not "", "." or ".." (ACORO_EINVAL). Queued as d's operations; an open's
 * file comes from acoro_fsop_file, an lstat's from acoro_fsop_stat. */
ACORO_API int acoro_dir_open(acoro_file_t *d, const char *name, int flags,
                             int mode, acoro_fsop_t **out);
ACORO_API int acoro_dir_mkdir(acoro_file_t *d, const char *name, int mode,
                              acoro_fsop_t **out);
ACORO_API int acoro_dir_lstat(acoro_file_t *d, const char *name,
                              acoro_fsop_t **out);
ACORO_API int acoro_dir_rename(acoro_file_t *d, const char *from,
                               const char *to, acoro_fsop_t **out);
ACORO_API int acoro_dir_unlink(acoro_file_t *d, const char *name, int rmdir,
                               acoro_fsop_t **out);
ACORO_API acoro_reader_t *acoro_file_reader(acoro_file_t *f);
ACORO_API int64_t acoro_file_tell(const acoro_file_t *f);
ACORO_API int acoro_file_is_open(const acoro_file_t *f);
ACORO_API void acoro_file_release(acoro_file_t *f);
/* A file over an fd the process has (a regular file as stdin): reads use
 * the fd's own offset; seek fails with UV_ESPIPE; closing leaves the fd. */
ACORO_API int acoro_file_from_fd(acoro_engine_t *e, int fd, acoro_file_t **out);

/* Work on the thread pool (pool.c): run(data) is called on a pool thread,
 * then the work is done; free_data(data) is called on the engine thread
 * when the last reference goes. acoro_work_wait as acoro_fsop_wait.
 * OWNERSHIP: the host holds the work until acoro_work_release, libuv until
 * it is done: either may go first (a coroutine that waited can end).
 * acoro_pool_size: libuv's pool size (UV_THREADPOOL_SIZE, read once by
 * libuv when the pool first starts); n > 0 sets it, ACORO_ESTATE once the
 * pool may have started (this process used it for files, work or name
 * resolution). */
typedef struct acoro_work_s acoro_work_t;
ACORO_API int acoro_work_submit(acoro_engine_t *e, void (*run)(void *data),
                                void (*free_data)(void *data), void *data,
                                acoro_work_t **out);
ACORO_API int acoro_work_wait(acoro_co_t *co, acoro_work_t *w, double timeout);
ACORO_API int acoro_work_done(const acoro_work_t *w);
ACORO_API void *acoro_work_data(const acoro_work_t *w);
ACORO_API void acoro_work_release(acoro_work_t *w);
ACORO_API int acoro_pool_size(int n);

/* --- Wire values --------------------------------------------------------- */

/* Wire values (wire.c): the MessagePack frames peers exchange (docs/design.md,
 * "Wire and trust"). acoro_wire_check validates ONE MessagePack value at the
 * start of buf in place: iteratively (a fixed stack, no recursion), allocating
 * nothing, reading no byte past buf + len. Every declared str/bin/ext length
 * is checked against the bytes left, every array/map count too (each element
 * needs at least one byte) before anything is trusted; nesting deeper than
 * limits->max_depth (at most ACORO_WIRE_DEPTH_CAP) and a value longer than
 * limits->max_bytes are refused. Returns 0 with *used = the value's length
 * (bytes after it are the caller's business), or ACORO_EWIRE with *used =
 * the offset of the offending header and, if reason is not NULL, a
 * sanitised reason (no input bytes, only numbers) such as "array of
 * 4294967295 elements in 9 bytes left (at byte 0)". After a 0 a decoder may
 * trust every declared length and count. ANY THREAD (pure function). */
#define ACORO_WIRE_MAX_BYTES (64u << 20) /* a frame after authentication */
#define ACORO_WIRE_PREAUTH_BYTES 4096u   /* a frame before it */
#define ACORO_WIRE_MAX_DEPTH 64
#define ACORO_WIRE_DEPTH_CAP 256
/* What one decoded message may build, in bytes of Lua values as the
 * decoder estimates them (core.wire's DECODE BUDGET): 4 x a frame. */
#define ACORO_WIRE_MAX_EXPAND (256u << 20)
typedef struct acoro_wire_limits_s {
  size_t max_bytes;
  int max_depth; /* containers open at once; 0 allows only scalars */
} acoro_wire_limits_t;
ACORO_API int acoro_wire_check(const char *buf, size_t len,
                               const acoro_wire_limits_t *limits, size_t *used,
                               char *reason, size_t reason_len);

/* --- The peer transport -------------------------------------------------- */

/* The peer transport (net.c): a NETWORK THREAD with a libuv loop of its own
 * listens for and holds the connections to other nodes, runs their
 * handshake (mutual HMAC-SHA256 proofs over the whole handshake, keyed by
 * scrypt of a shared secret; docs/security.md),
 * heartbeats, framing, coalescing and splitting. Payloads are opaque bytes.
 * It talks to the engine thread through two queues; its events come back
 * ON THE ENGINE THREAD, from the engine's loop, through acoro_net_host_t.
 * A peer is one authenticated node (incarnation, location) while its link
 * is up: its id (nonzero) is never reused, so a node that comes back (a
 * restart, a reconnection) is a new peer with a new id.
 * THREADS: every acoro_net_* call is ENGINE THREAD ONLY except
 * acoro_net_stats. The net must be stopped before acoro_engine_free, and
 * never from inside one of its own callbacks. While it runs, its async
 * handle keeps the engine's loop alive (peers may wake coroutines), so
 * acoro_engine_run does not report ACORO_EDEADLK. */
typedef struct acoro_net_s acoro_net_t;
/* 3: the handshake proves the whole transcript, the acceptor proves last
 * and the key is derived from the secret with scrypt (not compatible with
 * 2). */
#define ACORO_NET_VERSION_MAJOR 3
#define ACORO_NET_VERSION_MINOR 0
/* Random bytes in a secret made by acoro_net_gen_secret. */
#define ACORO_NET_SECRET_BYTES 32
/* Longest message (bytes) acoro_net_send takes; longer: ACORO_EINVAL. */
#define ACORO_NET_MSG_MAX (64u * 1024 * 1024)
/* Options; zero fields take the defaults. host: numeric listen address
 * (default 127.0.0.1); port 0 picks a free one; name (default: the
 * location) and host at most 63 bytes; secret of secret_len bytes (NULL:
 * none: such a node peers only with nodes that have none); heartbeat
 * seconds (1) and missed heartbeats before a peer is down (4) (a link
 * with no message either way for 8 heartbeats heartbeats every 5, and
 * its peer is down after missed * 5);
 * handshake_timeout seconds (5); busy_limit bytes queued to one peer before
 * sends are refused with ACORO_EPEERBUSY (4 MB); incarnation (the engine's;
 * with the location it names this node); version_major/minor (this
 * build's; tests set others); discover_port: the UDP port of discovery
 * pings (0: no discovery; see acoro_net_discover); inbound_limit bytes of
 * received messages waiting for the engine thread (all peers together)
 * past which the net thread stops reading the peer that sent the last one
 * until the engine has taken the wait below half (16 MB): TCP then slows
 * that sender, whose sends become ACORO_EPEERBUSY in turn; mailbox_limit
 * bytes of messages from peers held in mailboxes (the engine's MESSAGES
 * FROM PEERS count, charged by the host) past which each peer that
 * delivers one more is read no more until the mailboxes are back at half
 * (64 MB; net.c's MAILBOX FLOW CONTROL). */
/* The defaults of busy_limit, inbound_limit and mailbox_limit (bytes). */
#define ACORO_NET_BUSY_DEFAULT (4u << 20)
#define ACORO_NET_INBOUND_DEFAULT (16u << 20)
#define ACORO_NET_MAILBOX_DEFAULT (64u << 20)
typedef struct acoro_net_opts_s {
  const char *host;
  int port;
  const char *name;
  const char *secret;
  size_t secret_len;
  double heartbeat;
  int missed;
  double handshake_timeout;
  size_t busy_limit;
  uint64_t incarnation;
  int version_major, version_minor;
  int discover_port;
  size_t inbound_limit;
  size_t mailbox_limit;
  /* TLS on every peer link (net_tls.c), both or neither (else EINVAL):
   * tls_server for inbound links, tls_client for outbound ones, made with
   * acoro_tls_ctx_new (server 1 / 0) with this node's cert and key (the
   * client's for mutual authentication), ca and verify. A client context
   * that verifies also checks the peer's certificate names the host of
   * the location connected to (DNS or IP entry). OWNERSHIP: the caller's,
   * alive until acoro_net_stop. A node with TLS refuses plain nodes and
   * the other way round; the secret's HMAC handshake runs inside TLS. */
  acoro_tls_ctx_t *tls_server, *tls_client;
  /* "host:port" where peers reach this node when that is not the listener
   * (behind NAT or a tunnel that forwards there): the node's location, in
   * its HELLO and its discovery pings, which acoro_net_location returns
   * (the listener's is acoro_net_listen_location). NULL: the listener's.
   * Under 64 bytes with a port, else EINVAL. */
  const char *ext_location;
  /* TESTS ONLY (spec/c/test-net.c), 0 in real use: 1 keeps every link's
   * reading on the network thread (no engine reads, core/net_eread.c), to
   * test that path alone. */
  int test_no_engine_reads;
  /* With discover_port: the longest interval, in seconds, between the
   * node's discovery pings after the one at start (0: 60; < 0: none but
   * that one and acoro_net_discover's). They come after 0.5 s, then at
   * doubling intervals up to it, each jittered by +-25%, so that a ping
   * lost or sent before a node listened is made up for. */
  double announce;
  /* TESTS ONLY (spec/node_mesh_spec.lua), 0 in real use: the first this
   * many discovery pings heard are ignored, as if lost on the way. */
  int test_drop_pings;
} acoro_net_opts_t;
/* Callbacks, all optional, all called on the engine thread. peer_up: a peer
 * passed the handshake; peer_down: it went (once per peer; reason says
 * why); message: a whole message from it (data valid during the call);
 * connect_done: the end of acoro_net_connect (status 0 and the peer, or a
 * negative code and a reason); writable: a peer that refused a send with
 * ACORO_EPEERBUSY takes sends again; log: level 0 error, 1 warning, 2 info,
 * one line (peer-supplied text in it is sanitised). */
typedef struct acoro_net_host_s {
  void (*peer_up)(void *data, uint64_t peer, const char *location,
                  const char *name, uint64_t incarnation);
  void (*peer_down)(void *data, uint64_t peer, const char *reason);
  void (*message)(void *data, uint64_t peer, const char *msg, size_t len);
  void (*connect_done)(void *data, uint64_t request, int status, uint64_t peer,
                       const char *reason);
  void (*writable)(void *data, uint64_t peer);
  void (*log)(void *data, int level, const char *line);
} acoro_net_host_t;
/* Counters, for tests and monitoring (ANY THREAD). links: TCP connections
 * open (handshaking, up or closing); peers: peers up; writes: socket
 * writes (each a batch of coalesced frames); inbound: bytes of messages
 * waiting for the engine thread now; read_pauses: times reading a peer
 * stopped at inbound_limit; heartbeats_out: heartbeats sent (none on a
 * link that carried a write within the heartbeat interval). */
typedef struct acoro_net_stats_s {
  uint32_t links, peers;
  uint64_t heartbeats_in, frames_in, bytes_in, bytes_out, writes;
  uint64_t inbound, read_pauses;
  uint64_t heartbeats_out;
} acoro_net_stats_t;
/* start: binds and listens (errors: libuv's, at once), then starts the
 * thread. OWNERSHIP: the caller holds the net until acoro_net_stop, which
 * joins the thread and frees everything; events not yet delivered are
 * dropped (no peer_down for the peers still up). */
ACORO_API int acoro_net_start(acoro_engine_t *e, const acoro_net_opts_t *opts,
                              const acoro_net_host_t *cb, void *cb_data,
                              acoro_net_t **out);
ACORO_API void acoro_net_stop(acoro_net_t *net);
/* The node's "host:port": ext_location if given, else the listener's;
 * valid until acoro_net_stop. */
ACORO_API const char *acoro_net_location(const acoro_net_t *net);
/* "host:port" of the listener (the location without ext_location). */
ACORO_API const char *acoro_net_listen_location(const acoro_net_t *net);
ACORO_API uint64_t acoro_net_incarnation(const acoro_net_t *net);
/* Queues a copy of data for the peer (order kept per peer): 0, ACORO_ENOPEER
 * (unknown or down), ACORO_EPEERBUSY (over busy_limit: wait for writable),
 * ACORO_EINVAL (over ACORO_NET_MSG_MAX), ACORO_ENOMEM. */
ACORO_API int acoro_net_send(acoro_net_t *net, uint64_t peer, const char *data,
                             size_t len);
/* Connects to "host:port"; connect_done(request, ...) tells the end, only
 * once the handshake succeeded or failed (at once with the peer when one at
 * that location is up). */
ACORO_API int acoro_net_connect(acoro_net_t *net, const char *location,
                                uint64_t request);
/* Closes the peer's link (peer_down follows); ACORO_ENOPEER if unknown. */
ACORO_API int acoro_net_close_peer(acoro_net_t *net, uint64_t peer);
ACORO_API void acoro_net_stats(acoro_net_t *net, acoro_net_stats_t *st);
/* Bytes given to acoro_net_send and not yet written to a socket, over the
 * peers up (ANY THREAD): 0 once everything sent is in the kernel's hands. */
ACORO_API size_t acoro_net_queued(acoro_net_t *net);
/* Discovery (with discover_port): a UDP ping carrying only magic, version,
 * incarnation, location and name goes to the broadcast address of every
 * IPv4 interface that is up (only 127.255.255.255 when the node listens
 * on loopback) at start, again now and then (acoro_net_opts_t announce)
 * and at each call; a node that hears one from a node it has no link to
 * connects to it, at once or, for the other node of the pair, a little
 * later if no link came meanwhile (peer_up follows, no connect_done). Nodes
 * of one host share the port (address reuse). The ping proves nothing: the
 * TCP handshake does, and the node dialled must answer with the location
 * its ping named. Connects to discovered nodes are rate-limited (32, then
 * 8 a second: the others wait their turn); one that failed after the other
 * side's HELLO is tried again (0.25 s doubling to 8 s, jittered, 8 times),
 * any other failure leaves that location alone for 30 s; refusals are
 * logged at most once a minute (docs/security.md). ACORO_EINVAL without a
 * discover_port. */
ACORO_API int acoro_net_discover(acoro_net_t *net);
/* A strong shared secret: ACORO_NET_SECRET_BYTES random bytes (OpenSSL's
 * RAND_bytes) as lowercase hex, NUL-terminated, in out (cap at least
 * 2 * ACORO_NET_SECRET_BYTES + 1, else ACORO_EINVAL). ANY THREAD. */
ACORO_API int acoro_net_gen_secret(char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* ACORO_H */

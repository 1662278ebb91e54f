/* acoro.h: the public C API of the acoro engine (libacoro).
 *
 * The engine runs many coroutines on one thread over a libuv loop. It knows a
 * coroutine as a record (id, state, mailbox, timer, monitors, name); running
 * the coroutine's code is the host's job, done through the acoro_host_t vtable.
 * The Lua binding is one host; a C program can be another.
 *
 * Errors: functions return 0 (or a value) on success and a negative ACORO_E*
 * code on failure; acoro_strerror() names it. The library never prints and
 * never exits: messages go through acoro_host_t.log.
 *
 * THREADS: every function here is ENGINE THREAD ONLY (the thread that runs
 * acoro_engine_run), unless its comment says otherwise.
 *
 * The block between ACORO_FFI_BEGIN and ACORO_FFI_END is also read by the
 * build and given verbatim to LuaJIT's ffi.cdef (lua/acoro/cdef.lua), so the
 * Lua hot paths and this header cannot drift: keep it to plain C declarations.
 */
#ifndef ACORO_H
#define ACORO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ACORO_API __attribute__((visibility("default")))
#else
#define ACORO_API
#endif

#define ACORO_VERSION_MAJOR 0
#define ACORO_VERSION_MINOR 1
#define ACORO_VERSION_PATCH 0
#define ACORO_VERSION_STRING "0.1.0"

/* Error codes: XX(name, value, message). */
#define ACORO_ERRNO_MAP(XX)                                                    \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOMEM, -2, "out of memory")                                              \
  XX(EDEAD, -3, "coroutine has ended")                                         \
  XX(ESTATE, -4, "coroutine is not in a state that allows this")               \
  XX(EEXIST, -5, "name is already registered")                                 \
  XX(ENOENT, -6, "no such name")                                               \
  XX(EDEADLK, -7, "every coroutine left waits for something that cannot come") \
  XX(EINTR, -8, "interrupted")                                                 \
  XX(EBUSY, -9, "engine is already running")                                   \
  XX(EUV, -10, "event loop failure")

/* Coroutine states as the API reports them: XX(name, lua_name). */
#define ACORO_STATE_MAP(XX)                                                    \
  XX(READY, "ready")                                                           \
  XX(RUNNING, "running")                                                       \
  XX(SUSPENDED, "suspended")                                                   \
  XX(RECEIVING, "receiving")                                                   \
  XX(WAITING_IO, "waiting_io")                                                 \
  XX(DEAD, "dead")

/* clang-format off */
/* ACORO_FFI_BEGIN */
typedef struct acoro_engine_s acoro_engine_t;
typedef struct acoro_co_s acoro_co_t;

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

/* Engine-wide. acoro_current: the coroutine the engine is running now, NULL
 * outside a resume. acoro_now: monotonic seconds. */
ACORO_API acoro_co_t *acoro_current(acoro_engine_t *e);
ACORO_API double acoro_now(acoro_engine_t *e);
ACORO_API const char *acoro_strerror(int err);
ACORO_API const char *acoro_state_name(int state);
/* Makes acoro_engine_run return `code` (negative) soon. */
ACORO_API void acoro_engine_stop(acoro_engine_t *e, int code);

/* Coroutine records. The id is unique in this engine's life (never reused);
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
ACORO_API int acoro_deliver_wait(acoro_co_t *co, acoro_co_t *to, uint32_t key, double timeout);
ACORO_API int acoro_co_exit(acoro_co_t *co, int keep_mailbox);

/* Mailboxes. A message is a 64-bit value the host interprets, found by a
 * nonzero key that stays valid until the message is taken or dropped (a host
 * may index its own storage by key). acoro_send queues at the tail and wakes
 * a receiver; it returns the key, or 0 when `to` is dead. acoro_mb_shift takes
 * the head (0 when empty); first/next walk the queue in order; acoro_mb_take
 * takes any queued message. Taking a delivered message wakes its sender. */
ACORO_API uint32_t acoro_send(acoro_co_t *to, uint64_t data);
ACORO_API uint32_t acoro_mb_shift(acoro_co_t *co);
ACORO_API uint32_t acoro_mb_first(const acoro_co_t *co);
ACORO_API uint32_t acoro_mb_next(const acoro_co_t *co, uint32_t key);
ACORO_API uint32_t acoro_mb_count(const acoro_co_t *co);
ACORO_API uint64_t acoro_mb_data(const acoro_co_t *co, uint32_t key);
ACORO_API int acoro_mb_take(acoro_co_t *co, uint32_t key);
/* Changes whenever acoro_mb_take removes a message: a walk of the queue
 * that paused (to wait) is stale if it changed, as keys may be reused. */
ACORO_API uint32_t acoro_mb_gen(const acoro_co_t *co);
/* acoro_co_wait(co, ACORO_WAIT_RECEIVE, -1) with one argument: fewer Lua
 * stack slots at the call in the hot receive loop. */
ACORO_API int acoro_mb_wait(acoro_co_t *co);
/* acoro_co_wait(co, ACORO_WAIT_SLEEP, seconds), likewise. */
ACORO_API int acoro_co_sleep(acoro_co_t *co, double seconds);

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
/* ACORO_FFI_END */
/* clang-format on */

/* Error codes as an enum, from the map. */
enum {
#define ACORO_ERRNO_ENUM(name, value, msg) ACORO_##name = (value),
  ACORO_ERRNO_MAP(ACORO_ERRNO_ENUM)
#undef ACORO_ERRNO_ENUM
};

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

/* Engine lifecycle. */
ACORO_API int acoro_engine_new(const acoro_host_t *host, void *host_data,
                               acoro_engine_t **out);
/* Frees the engine and every record left; no coroutine may be running. */
ACORO_API void acoro_engine_free(acoro_engine_t *e);
/* Runs ready coroutines and the loop until no non-daemon coroutine is left
 * (returns 0), acoro_engine_stop was called (returns its code), or every
 * coroutine left waits with nothing armed that could wake it (ACORO_EDEADLK).
 */
ACORO_API int acoro_engine_run(acoro_engine_t *e);
/* SIGINT then stops the engine with ACORO_EINTR instead of killing the process.
 */
ACORO_API int acoro_engine_catch_sigint(acoro_engine_t *e);
/* The libuv loop, to add handles of the embedder's own. */
ACORO_API struct uv_loop_s *acoro_engine_loop(acoro_engine_t *e);
ACORO_API uint64_t acoro_engine_incarnation(const acoro_engine_t *e);
/* Number of coroutines alive: all of them, and those that are not daemons. */
ACORO_API uint32_t acoro_engine_alive(const acoro_engine_t *e,
                                      int nondaemon_only);
/* Iterates the live coroutines: first with NULL, then with the previous one. */
ACORO_API acoro_co_t *acoro_engine_next_co(acoro_engine_t *e, acoro_co_t *prev);

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
/* Drops every queued message (the host's drop hook sees each). */
ACORO_API void acoro_mb_clear(acoro_co_t *co);

#ifdef __cplusplus
}
#endif
#endif /* ACORO_H */

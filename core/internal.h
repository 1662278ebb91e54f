/* internal.h: the engine's private structures, shared by the files of core/.
 * Nothing here is part of the public API; embedders include acoro.h only. */
#ifndef ACORO_INTERNAL_H
#define ACORO_INTERNAL_H

#include "acoro.h"

#include <stdbool.h>
#include <uv.h>

/* A queued message. Messages live in one pool per engine and are linked by
 * index (key = index + 1, so 0 means none): the pool can grow by realloc
 * without invalidating anything, and a free message costs no malloc. */
typedef struct mb_node_s {
  uint64_t data;
  uint32_t next, prev; /* keys; free list uses next */
  acoro_co_t *notify;  /* sender waiting in deliver, or NULL */
  uint32_t charged;    /* bytes counted in the engine's mb_remote */
} mb_node_t;

/* An open-addressing table of coroutine pointers (linear probing, backward
 * shift deletion), keyed by whatever the owner hashes: ids or names. */
typedef struct cotab_s {
  acoro_co_t **slots;
  uint32_t mask; /* capacity - 1; capacity is a power of two */
  uint32_t count;
} cotab_t;

/* I/O OBJECTS (ioobj.c). Streams, servers, UDP sockets, child processes
 * and files begin with this head (their first member, as libuv's handles
 * begin with UV_HANDLE_FIELDS): one list of the engine's open objects, one
 * reference count, one close path and one close-all. The type says how an
 * object closes (waiters wake, its libuv handle closes; it must call
 * io_unlink) and how its memory goes at the last reference.
 * OWNERSHIP: refs counts the host's reference, the open libuv handle's
 * (dropped by io_on_close) and whatever else the type says (writes, sends,
 * queued file operations); io_unref frees at 0. ENGINE THREAD ONLY. */
typedef struct io_obj_s io_obj_t;
typedef struct io_type_s {
  void (*close)(io_obj_t *o);
  void (*free)(io_obj_t *o);
} io_type_t;
struct io_obj_s {
  acoro_engine_t *engine;
  const io_type_t *type;
  io_obj_t *io_next, *io_prev; /* the engine's open objects */
  uint32_t refs;
  uint8_t open; /* on the engine's list: not closed yet */
};

/* TIMERS (timer.c): the deadlines of timed waits, a min-heap in one array.
 * A coroutine in it knows its slot (tm_slot, index + 1; 0: not in it). */
typedef struct tm_entry_s {
  uint64_t due; /* on uv_hrtime's clock */
  uint64_t seq; /* order of arming: equal deadlines fire first in, first out */
  acoro_co_t *co;
} tm_entry_t;
typedef struct tm_heap_s {
  tm_entry_t *v;
  uint32_t n, cap;
  uint64_t seq;
} tm_heap_t;

/* A post (post.c): one function for the engine thread, queued by any
 * thread. run gets the node and owns it from then on. */
typedef struct post_node_s post_node_t;
struct post_node_s {
  post_node_t *next;
  void (*run)(acoro_engine_t *e, post_node_t *n);
};

struct acoro_co_s {
  acoro_engine_t *engine;
  uint64_t id;
  acoro_co_t *ready_next;            /* ready queue */
  acoro_co_t *live_next, *live_prev; /* every live coroutine */
  acoro_co_t *wait_target;           /* JOIN: target; DELIVER: receiver */
  acoro_co_t *joiners; /* coroutines joining this one, via wait_next */
  acoro_co_t *wait_next;
  acoro_io_wait_t *io_wait; /* IO: what it waits for */
  uint32_t tm_slot;         /* in the engine's timers: index + 1, or 0 */
  char *name;
  acoro_co_t **monitors; /* watchers, each retained */
  uint32_t nmonitors, capmonitors;
  void *host_ptr;
  int host_ref;
  uint32_t refs;
  uint32_t mb_head, mb_tail, mb_count;
  uint32_t wait_key; /* DELIVER: the message's key */
  uint32_t mb_gen;   /* bumped when a message leaves other than by shift */
  uint32_t mb_limit; /* MAILBOX LIMIT: 0 for none */
  uint64_t mb_dropped;
  uint8_t state, wait_kind, wake_reason, daemon;
  uint8_t queued;     /* on the ready queue */
  uint8_t registered; /* in the name table */
  uint8_t reregister; /* was registered when it ended: restart registers */
  int host_flags;
};

/* Signal numbers the engine can watch: 1 to ENG_NSIG - 1. */
#define ENG_NSIG 32

struct acoro_engine_s {
  uv_loop_t loop;
  acoro_host_t host;
  void *host_data;
  acoro_co_t *ready_head, *ready_tail;
  acoro_co_t *due_head, *due_tail; /* woken by their timer: run first */
  /* TIMERS (timer.c): the deadlines, one libuv timer aimed at the first
   * one's millisecond (tm_aimed: that millisecond, UINT64_MAX when not
   * armed), and the idle handle that spins out its last millisecond. */
  tm_heap_t timers;
  uv_timer_t tm_timer;
  uv_prepare_t tm_prepare; /* before each poll: could it oversleep? */
  uint64_t tm_aimed;
  uv_idle_t spin_idle; /* active while tm_spinning */
  uint8_t tm_spinning;
  uv_idle_t wake_idle; /* active while a callback made a coroutine ready */
  uint8_t in_uv_run;   /* in uv_run: 1 NOWAIT, 2 a turn whose poll may block */
  uint8_t wake_idle_active;
  /* SPIN BEFORE BLOCK (engine.c): how long the loop polls without blocking
   * after running coroutines (0: never), and whether it ran any since its
   * last sleep. */
  uint64_t spin_ns;
  uint8_t spin_due;
  acoro_co_t *current;
  acoro_co_t *live;
  uint64_t next_id;
  uint64_t incarnation;
  uint32_t nalive, nalive_nondaemon;
  int running;
  int stop_code;    /* nonzero: acoro_engine_run returns it */
  mb_node_t *nodes; /* message pool */
  uint32_t nnodes, capnodes, free_key;
  /* MESSAGES FROM PEERS (acoro.h): bytes charged to queued messages, the
   * limit, the charge of the next send, that of the last charged one (the
   * net reads it after each delivery) and the hook called at half. */
  size_t mb_remote, mb_remote_limit, mb_charge, mb_last;
  int mb_over;
  void (*mb_drained)(void *data);
  void *mb_drained_data;
  cotab_t by_id, by_name;
  /* The id index is built at the first lookup by id and kept from then on:
   * a program that never looks a coroutine up by its id (most of them) pays
   * no table insert and removal per coroutine, which with 100,000 of them
   * are a cache miss each. */
  int by_id_on;
  /* SIGNALS (engine.c): a handle per signal watched, by number, its mode,
   * the queued ones (bit signum), the coroutine woken for them, and the
   * signal that stopped the last run. */
  uv_signal_t *sig[ENG_NSIG];
  uint8_t sig_mode[ENG_NSIG];
  uint64_t sig_queued;
  acoro_co_t *sig_waiter;
  int stop_signal;
  io_obj_t *io_open; /* open I/O objects, closed by acoro_engine_free */
  int io_closed;     /* acoro_engine_free closed them: no new files */
  uint32_t nrecords; /* records not yet freed, dead ones included */
  int freeing;       /* acoro_engine_free called: free at nrecords 0 */
  /* POSTS (post.c): functions other threads queue for the engine thread,
   * under post_mu, woken by post_async; holds keep the loop alive for
   * them (acoro_engine_hold, and each host call not yet completed). */
  uv_async_t post_async;
  uv_mutex_t post_mu;
  post_node_t *post_head, *post_tail;
  int post_closed;
  uint32_t holds;
  struct attach_s *attached; /* host.c: on a host's loop, or NULL */
};

/* A read buffer (reader.c), the one streams and files share. The unread
 * bytes are buf[pos, pos + len); consumed(r, n) is the owner's hook, called
 * after n bytes were consumed (a stream reads on, a file moves its
 * position). */
struct acoro_reader_s {
  char *buf;
  size_t pos, len, cap;
  size_t scan; /* bytes of a delimiter search already looked at */
  int status;  /* 0 while more may come, then UV_EOF or a libuv error */
  void (*consumed)(acoro_reader_t *r, size_t n);
};

/* Reading stops once this much is buffered and nobody waits for more. */
#define READ_HIGH_WATER (256 * 1024)
/* Room asked of the read buffer before each socket read. */
#define READ_CHUNK (64 * 1024)

typedef struct tls_s tls_t;

/* A byte stream (stream.c). */
struct acoro_stream_s {
  io_obj_t io; /* first: see I/O OBJECTS, and stream.c's OWNERSHIP */
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } u;
  uint8_t reading;
  acoro_reader_t rd;
  size_t rmin; /* the waiting reader wants this many bytes ... */
  int rdelim;  /* ... or this byte (-1: none) */
  acoro_io_wait_t rwait, wwait;
  int wstatus;    /* the first write error, sticky */
  size_t wqueued; /* bytes handed to libuv and not yet written */
  tls_t *tls;     /* NULL unless TLS (tls.c) */
};

/* engine.c */
void eng_log(acoro_engine_t *e, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void eng_ready(acoro_engine_t *e, acoro_co_t *co, int reason);
void eng_unready(acoro_engine_t *e, acoro_co_t *co);
uint64_t eng_spin_ns(const acoro_engine_t *e);

/* wait.c */
void wait_cancel(acoro_co_t *co);

/* timer.c. The heap: tm_add puts co in with its deadline (ACORO_ENOMEM
 * when the array cannot grow), tm_remove takes it out (nothing if it is
 * not in), tm_first gives the earliest (NULL when empty) and its deadline,
 * tm_free the array. The engine's driving of it: tm_init at the engine's
 * start; tm_arm after the first deadline changed (aims the libuv timer or
 * spins, or stops both when empty); tm_expire wakes every coroutine due by
 * uv_hrtime, then aims again. */
int tm_add(tm_heap_t *h, acoro_co_t *co, uint64_t due);
void tm_remove(tm_heap_t *h, acoro_co_t *co);
acoro_co_t *tm_first(const tm_heap_t *h, uint64_t *due);
void tm_free(tm_heap_t *h);
void tm_init(acoro_engine_t *e);
void tm_arm(acoro_engine_t *e);
void tm_expire(acoro_engine_t *e);

/* mailbox.c */
void mb_drop_all(acoro_co_t *co);
void mb_pool_free(acoro_engine_t *e);
mb_node_t *mb_node(acoro_engine_t *e, uint32_t key);

/* registry.c */
int reg_add_id(acoro_engine_t *e, acoro_co_t *co);
void reg_remove_id(acoro_engine_t *e, acoro_co_t *co);
void reg_remove_name(acoro_engine_t *e, acoro_co_t *co);
void reg_free(acoro_engine_t *e);

/* addr.c */
int addr_local(const char *host, int port, int socktype,
               struct sockaddr_storage *out);
int addr_name(const struct sockaddr_storage *a, char *host, size_t len,
              int *port);

/* ioobj.c (I/O OBJECTS above). io_init: the head of a new object, not
 * open yet; io_link: open (on the engine's list); io_unlink: off the list,
 * 0 if it was not open (a close path starts with it); io_release: the
 * host's release (close, then drop its reference); io_on_close: a
 * uv_close callback dropping the handle's reference (h->data is the
 * object); io_close_all: acoro_engine_free closes every open object. */
void io_init(io_obj_t *o, acoro_engine_t *e, const io_type_t *type,
             uint32_t refs);
void io_link(io_obj_t *o);
int io_unlink(io_obj_t *o);
void io_unref(io_obj_t *o);
void io_release(io_obj_t *o);
void io_on_close(uv_handle_t *h);
void io_close_all(acoro_engine_t *e);
void io_cancel_nothing(acoro_io_wait_t *w);

/* reader.c. rd_reserve: room for `want` more bytes at the tail (growing by
 * doubling from `chunk`); rd_append copies n bytes there; rd_has: the
 * buffer holds min bytes or a delim byte (-1: none; the search resumes at
 * scan), or reading ended; rd_reset drops the unread bytes and the status;
 * rd_free the memory. */
int rd_reserve(acoro_reader_t *r, size_t want, size_t chunk);
int rd_append(acoro_reader_t *r, const char *p, size_t n, size_t chunk);
int rd_has(acoro_reader_t *r, size_t min, int delim);
void rd_reset(acoro_reader_t *r);
void rd_free(acoro_reader_t *r);

/* stream.c */
acoro_stream_t *stream_new(acoro_engine_t *e);
void stream_opened(acoro_stream_t *s);
void stream_discard(acoro_stream_t *s);
int stream_read_start(acoro_stream_t *s);
void stream_read_ended(acoro_stream_t *s, int status);
void stream_readable(acoro_stream_t *s);
int stream_raw_write(acoro_stream_t *s, const char *data, size_t len);

/* tls.c */
void tls_pump(acoro_stream_t *s);
void tls_feed(acoro_stream_t *s, const char *data, size_t n);
void tls_raw_buffer(acoro_stream_t *s, uv_buf_t *buf);
int tls_write(acoro_stream_t *s, const char *data, size_t len);
void tls_close_notify(acoro_stream_t *s);
void tls_read_ended(acoro_stream_t *s, int status);
void tls_wake(acoro_stream_t *s);
void tls_free(acoro_stream_t *s);
/* Shared with net_tls.c (the peer links' TLS, on the network thread). */
typedef struct ssl_st SSL;
typedef struct bio_st BIO;
SSL *tls_ssl_new(acoro_tls_ctx_t *ctx, int server, const char *server_name,
                 BIO **rbio, BIO **wbio);
void tls_reason(SSL *ssl, char *buf, size_t len);

/* fs.c; pool_note_use: something was handed to libuv's thread pool (its
 * size is fixed from then on). */
void pool_note_use(void);
int pool_was_used(void);

/* coro.c */
void co_free(acoro_co_t *co);

/* post.c. post_init/post_close at the engine's start and end (close runs
 * what is still queued); post_push queues n (ANY THREAD; ACORO_ECLOSED
 * once closed); post_hold changes the holds by delta (ENGINE THREAD). */
int post_init(acoro_engine_t *e);
void post_close(acoro_engine_t *e);
void post_destroy(acoro_engine_t *e);
int post_push(acoro_engine_t *e, post_node_t *n);
void post_hold(acoro_engine_t *e, int delta);

/* engine.c: one turn of a host-driven engine (acoro_engine_run_once's
 * NOWAIT), for host.c; and whether coroutines are ready. */
int eng_step(acoro_engine_t *e, int block);
int eng_has_ready(const acoro_engine_t *e);

/* host.c: acoro_engine_free detaches from the host's loop. */
void host_detach(acoro_engine_t *e);

/* engine.c, once the engine is closed and its last record gone. */
void eng_destroy(acoro_engine_t *e);

#endif /* ACORO_INTERNAL_H */

/* coro.c: coroutine records: creation, reference counts, the end of a
 * coroutine (and its restart), daemon accounting, monitors and accessors. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int acoro_co_new(acoro_engine_t *e, int daemon, acoro_co_t **out) {
  acoro_co_t *co = calloc(1, sizeof *co);
  if (co == NULL)
    return ACORO_ENOMEM;
  co->engine = e;
  e->nrecords++;
  co->id = e->next_id++;
  co->refs = 2; /* the engine's (while alive) and the creator's */
  co->daemon = daemon ? 1 : 0;
  co->host_ref = -1;
  if (reg_add_id(e, co) != 0) {
    e->nrecords--;
    free(co);
    return ACORO_ENOMEM;
  }
  co->live_next = e->live;
  if (e->live)
    e->live->live_prev = co;
  e->live = co;
  e->nalive++;
  if (!co->daemon)
    e->nalive_nondaemon++;
  eng_ready(e, co, ACORO_WAKE_START);
  *out = co;
  return 0;
}

void acoro_co_retain(acoro_co_t *co) { co->refs++; }

void acoro_co_release(acoro_co_t *co) {
  if (--co->refs == 0)
    co_free(co);
}

static void drop_monitors(acoro_co_t *co) {
  uint32_t i, n = co->nmonitors;
  co->nmonitors = 0;
  for (i = 0; i < n; i++)
    acoro_co_release(co->monitors[i]);
}

/* OWNERSHIP: called when the last reference goes; the record is dead (the
 * engine's own reference lasts while it lives). */
void co_free(acoro_co_t *co) {
  acoro_engine_t *e = co->engine;
  mb_drop_all(co);
  drop_monitors(co);
  free(co->monitors);
  free(co->name);
  free(co);
  if (--e->nrecords == 0 && e->freeing)
    eng_destroy(e);
}

/* Ends `co`: cancels its wait, wakes its joiners and the senders of its
 * deliveries, unregisters it and drops its engine reference. The host has
 * already done what it must (results, monitors); the record lives on while
 * the host holds references. */
int acoro_co_exit(acoro_co_t *co, int keep_mailbox) {
  acoro_engine_t *e = co->engine;
  acoro_co_t *j;
  if (co->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  wait_cancel(co);
  eng_unready(e, co);
  co->state = ACORO_STATE_DEAD;
  co->wait_kind = ACORO_WAIT_NONE;
  while ((j = co->joiners) != NULL) {
    co->joiners = j->wait_next;
    j->wait_next = NULL;
    j->wait_target = NULL;
    acoro_co_release(co); /* the joiner's; the engine's still holds it */
    acoro_co_wake(j, ACORO_WAIT_JOIN, ACORO_WAKE_EXIT);
  }
  if (!keep_mailbox)
    mb_drop_all(co);
  else {
    /* Senders waiting on a delivery to a dead coroutine learn it now. */
    uint32_t k;
    for (k = co->mb_head; k != 0; k = mb_node(e, k)->next) {
      mb_node_t *n = mb_node(e, k);
      if (n->notify != NULL) {
        acoro_co_wake(n->notify, ACORO_WAIT_DELIVER, ACORO_WAKE_DEAD);
        n->notify = NULL;
      }
    }
  }
  co->reregister = co->registered;
  if (co->registered)
    reg_remove_name(e, co);
  /* Watchers are told by the host before this; their references go now
   * (a cycle of monitors would keep both records for ever), except for a
   * coroutine kept restartable: its watchers may restart it. */
  if (!keep_mailbox)
    drop_monitors(co);
  reg_remove_id(e, co);
  if (co->live_prev)
    co->live_prev->live_next = co->live_next;
  else
    e->live = co->live_next;
  if (co->live_next)
    co->live_next->live_prev = co->live_prev;
  co->live_next = co->live_prev = NULL;
  e->nalive--;
  if (!co->daemon)
    e->nalive_nondaemon--;
  acoro_co_release(co);
  return 0;
}

int acoro_co_restart(acoro_co_t *co) {
  acoro_engine_t *e = co->engine;
  if (co->state != ACORO_STATE_DEAD)
    return ACORO_ESTATE;
  if (reg_add_id(e, co) != 0)
    return ACORO_ENOMEM;
  acoro_co_retain(co);
  co->live_next = e->live;
  if (e->live)
    e->live->live_prev = co;
  e->live = co;
  e->nalive++;
  if (!co->daemon)
    e->nalive_nondaemon++;
  co->state = ACORO_STATE_READY;
  eng_ready(e, co, ACORO_WAKE_START);
  /* It gets its name back unless another coroutine has taken it. */
  if (co->reregister && co->name != NULL && acoro_locate(e, co->name) == NULL) {
    char *name = co->name;
    co->name = NULL;
    acoro_register(co, name);
    free(name);
  }
  co->reregister = 0;
  return 0;
}

int acoro_co_set_daemon(acoro_co_t *co, int daemon) {
  acoro_engine_t *e = co->engine;
  daemon = daemon ? 1 : 0;
  if (co->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  if (co->daemon != daemon) {
    if (daemon)
      e->nalive_nondaemon--;
    else
      e->nalive_nondaemon++;
    co->daemon = (uint8_t)daemon;
  }
  return 0;
}

int acoro_co_monitor(acoro_co_t *co, acoro_co_t *watcher) {
  uint32_t i;
  if (watcher == NULL)
    return ACORO_EINVAL;
  for (i = 0; i < co->nmonitors; i++)
    if (co->monitors[i] == watcher)
      return 0;
  if (co->nmonitors == co->capmonitors) {
    uint32_t cap = co->capmonitors ? co->capmonitors * 2 : 2;
    acoro_co_t **m = realloc(co->monitors, cap * sizeof *m);
    if (m == NULL)
      return ACORO_ENOMEM;
    co->monitors = m;
    co->capmonitors = cap;
  }
  acoro_co_retain(watcher);
  co->monitors[co->nmonitors++] = watcher;
  return 0;
}

uint32_t acoro_co_monitor_count(const acoro_co_t *co) { return co->nmonitors; }

acoro_co_t *acoro_co_monitor_at(const acoro_co_t *co, uint32_t i) {
  return i < co->nmonitors ? co->monitors[i] : NULL;
}

int acoro_co_set_name(acoro_co_t *co, const char *name) {
  char *copy = NULL;
  if (co->registered)
    return ACORO_ESTATE;
  if (name != NULL && (copy = strdup(name)) == NULL)
    return ACORO_ENOMEM;
  free(co->name);
  co->name = copy;
  return 0;
}

uint64_t acoro_co_id(const acoro_co_t *co) { return co->id; }
int acoro_co_state(const acoro_co_t *co) { return co->state; }
int acoro_co_wait_kind(const acoro_co_t *co) { return co->wait_kind; }
int acoro_co_wake_reason(const acoro_co_t *co) { return co->wake_reason; }
int acoro_co_host_ref(const acoro_co_t *co) { return co->host_ref; }
void *acoro_co_host_ptr(const acoro_co_t *co) { return co->host_ptr; }
int acoro_co_flags(const acoro_co_t *co) { return co->host_flags; }
void acoro_co_set_flags(acoro_co_t *co, int flags) { co->host_flags = flags; }
int acoro_co_is_daemon(const acoro_co_t *co) { return co->daemon; }
const char *acoro_co_name(const acoro_co_t *co) { return co->name; }
acoro_engine_t *acoro_co_engine(const acoro_co_t *co) { return co->engine; }

void acoro_co_set_host(acoro_co_t *co, int ref, void *ptr) {
  co->host_ref = ref;
  co->host_ptr = ptr;
}

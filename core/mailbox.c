/* mailbox.c: per-coroutine message queues over one engine-wide pool of
 * message nodes: FIFO order, selective take, delivery notification, the
 * per-coroutine MAILBOX LIMIT and the count of bytes held by messages from
 * peers (MESSAGES FROM PEERS in acoro.h). ENGINE THREAD ONLY. */
#include "internal.h"

#include <stdlib.h>

mb_node_t *mb_node(acoro_engine_t *e, uint32_t key) {
  if (key == 0 || key > e->nnodes)
    return NULL;
  return &e->nodes[key - 1];
}

static uint32_t node_alloc(acoro_engine_t *e) {
  uint32_t key = e->free_key;
  if (key != 0) {
    e->free_key = e->nodes[key - 1].next;
    return key;
  }
  if (e->nnodes == e->capnodes) {
    uint32_t cap = e->capnodes ? e->capnodes * 2 : 256;
    mb_node_t *n;
    if (cap > UINT32_MAX / 2)
      return 0;
    n = realloc(e->nodes, (size_t)cap * sizeof *n);
    if (n == NULL)
      return 0;
    e->nodes = n;
    e->capnodes = cap;
  }
  return ++e->nnodes;
}

static void node_free(acoro_engine_t *e, uint32_t key) {
  mb_node_t *n = &e->nodes[key - 1];
  n->notify = NULL;
  n->prev = 0;
  n->next = e->free_key;
  e->free_key = key;
}

/* A message past co's MAILBOX LIMIT: dropped, counted, logged the first
 * time. */
static uint32_t drop_newest(acoro_co_t *co) {
  if (co->mb_dropped++ == 0)
    eng_log(co->engine, 1,
            "mailbox of coroutine %llu full (limit %u): dropping new "
            "messages",
            (unsigned long long)co->id, (unsigned)co->mb_limit);
  co->engine->mb_charge = 0;
  return 0;
}

/* HOT PATH: one pool slot, a link, and a wake-up if the receiver waits.
 * A charge set by acoro_mb_charge_next goes with this message. */
static uint32_t queue(acoro_co_t *to, uint64_t data) {
  acoro_engine_t *e = to->engine;
  uint32_t key;
  mb_node_t *n;
  if (to->state == ACORO_STATE_DEAD)
    return 0;
  key = node_alloc(e);
  if (key == 0)
    return 0;
  n = &e->nodes[key - 1];
  n->data = data;
  n->next = 0;
  n->prev = to->mb_tail;
  n->notify = NULL;
  n->charged = 0;
  if (e->mb_charge != 0) {
    n->charged =
        e->mb_charge > UINT32_MAX ? UINT32_MAX : (uint32_t)e->mb_charge;
    e->mb_charge = 0;
    e->mb_last = n->charged;
    e->mb_remote += n->charged;
    if (e->mb_remote_limit != 0 && e->mb_remote > e->mb_remote_limit)
      e->mb_over = 1;
  }
  if (to->mb_tail)
    e->nodes[to->mb_tail - 1].next = key;
  else
    to->mb_head = key;
  to->mb_tail = key;
  to->mb_count++;
  if (to->wait_kind == ACORO_WAIT_RECEIVE)
    acoro_co_wake(to, ACORO_WAIT_RECEIVE, ACORO_WAKE_MESSAGE);
  return key;
}

uint32_t acoro_send(acoro_co_t *to, uint64_t data) {
  if (to->mb_limit != 0 && to->mb_count >= to->mb_limit &&
      to->state != ACORO_STATE_DEAD)
    return drop_newest(to);
  return queue(to, data);
}

uint32_t acoro_send_always(acoro_co_t *to, uint64_t data) {
  return queue(to, data);
}

void acoro_co_set_mailbox_limit(acoro_co_t *co, uint32_t n) {
  co->mb_limit = n;
}

uint32_t acoro_co_mailbox_limit(const acoro_co_t *co) { return co->mb_limit; }

uint64_t acoro_co_mailbox_dropped(const acoro_co_t *co) {
  return co->mb_dropped;
}

void acoro_mb_charge_next(acoro_engine_t *e, size_t bytes) {
  e->mb_charge = bytes;
}

void acoro_mb_set_remote_limit(acoro_engine_t *e, size_t limit,
                               void (*drained)(void *data), void *data) {
  e->mb_remote_limit = limit;
  e->mb_drained = drained;
  e->mb_drained_data = data;
  e->mb_over = limit != 0 && e->mb_remote > limit;
}

int acoro_mb_remote_over(const acoro_engine_t *e) { return e->mb_over; }

size_t acoro_mb_remote_bytes(const acoro_engine_t *e) { return e->mb_remote; }

/* A charged message left its queue: back at half the limit, the peers
 * paused for it may send again. */
static void uncharge(acoro_engine_t *e, uint32_t bytes) {
  e->mb_remote -= bytes;
  if (e->mb_over && e->mb_remote <= e->mb_remote_limit / 2) {
    e->mb_over = 0;
    if (e->mb_drained)
      e->mb_drained(e->mb_drained_data);
  }
}

/* Unlinks `key` from co's queue; wakes its sender if it was delivered. */
static void unlink_node(acoro_co_t *co, uint32_t key, int taken) {
  acoro_engine_t *e = co->engine;
  mb_node_t *n = &e->nodes[key - 1];
  if (n->prev)
    e->nodes[n->prev - 1].next = n->next;
  else
    co->mb_head = n->next;
  if (n->next)
    e->nodes[n->next - 1].prev = n->prev;
  else
    co->mb_tail = n->prev;
  co->mb_count--;
  if (n->charged != 0) {
    uncharge(e, n->charged);
    n->charged = 0;
  }
  if (n->notify != NULL) {
    acoro_co_t *sender = n->notify;
    n->notify = NULL;
    acoro_co_wake(sender, ACORO_WAIT_DELIVER,
                  taken ? ACORO_WAKE_DELIVERED : ACORO_WAKE_DEAD);
  }
  node_free(e, key);
}

/* HOT PATH. The key is free once this returns; the host reads its own
 * storage for it before sending anything else. */
uint32_t acoro_mb_shift(acoro_co_t *co) {
  uint32_t key = co->mb_head;
  if (key != 0)
    unlink_node(co, key, 1);
  return key;
}

int acoro_mb_wait(acoro_co_t *co) {
  return acoro_co_wait(co, ACORO_WAIT_RECEIVE, -1);
}

uint32_t acoro_mb_first(const acoro_co_t *co) { return co->mb_head; }

uint32_t acoro_mb_next(const acoro_co_t *co, uint32_t key) {
  mb_node_t *n = mb_node(co->engine, key);
  return n ? n->next : 0;
}

uint32_t acoro_mb_count(const acoro_co_t *co) { return co->mb_count; }

uint64_t acoro_mb_data(const acoro_co_t *co, uint32_t key) {
  mb_node_t *n = mb_node(co->engine, key);
  return n ? n->data : 0;
}

int acoro_mb_take(acoro_co_t *co, uint32_t key) {
  uint32_t k;
  /* The key must be in this queue: walk it (selective receive has just
   * found it by walking, and queues that are searched are short). */
  for (k = co->mb_head; k != 0 && k != key; k = co->engine->nodes[k - 1].next)
    ;
  if (k == 0)
    return ACORO_EINVAL;
  unlink_node(co, key, 1);
  co->mb_gen++;
  return 0;
}

uint32_t acoro_mb_gen(const acoro_co_t *co) { return co->mb_gen; }

/* Drops every queued message: the host's drop hook sees each, waiting
 * senders learn the receiver is gone. */
void mb_drop_all(acoro_co_t *co) {
  acoro_engine_t *e = co->engine;
  while (co->mb_head != 0) {
    uint32_t key = co->mb_head;
    uint64_t data = e->nodes[key - 1].data;
    unlink_node(co, key, 0);
    if (e->host.drop)
      e->host.drop(e->host_data, data);
  }
}

void acoro_mb_clear(acoro_co_t *co) { mb_drop_all(co); }

void mb_pool_free(acoro_engine_t *e) {
  free(e->nodes);
  e->nodes = NULL;
  e->nnodes = e->capnodes = e->free_key = 0;
}

/* registry.c: the engine's two indexes of live coroutines, by id and by
 * registered name, as open-addressing tables of record pointers. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef uint64_t (*key_fn)(const acoro_co_t *co);

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  while (*s)
    h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
  return mix64(h);
}

static uint64_t id_key(const acoro_co_t *co) { return mix64(co->id); }
static uint64_t name_key(const acoro_co_t *co) { return hash_str(co->name); }

static int tab_grow(cotab_t *t, key_fn key) {
  uint32_t cap = t->slots ? (t->mask + 1) * 2 : 64, i;
  acoro_co_t **slots = calloc(cap, sizeof *slots);
  if (slots == NULL)
    return ACORO_ENOMEM;
  if (t->slots != NULL) {
    for (i = 0; i <= t->mask; i++) {
      acoro_co_t *co = t->slots[i];
      uint32_t j;
      if (co == NULL)
        continue;
      for (j = (uint32_t)key(co) & (cap - 1); slots[j] != NULL;
           j = (j + 1) & (cap - 1))
        ;
      slots[j] = co;
    }
    free(t->slots);
  }
  t->slots = slots;
  t->mask = cap - 1;
  return 0;
}

static int tab_add(cotab_t *t, acoro_co_t *co, key_fn key) {
  uint32_t j;
  /* At most half full: probe runs stay short (ids and names are hashed
   * by a mixer, so occupied slots do not bunch up). */
  if (t->slots == NULL || (t->count + 1) * 2 > t->mask + 1) {
    int rc = tab_grow(t, key);
    if (rc != 0)
      return rc;
  }
  for (j = (uint32_t)key(co) & t->mask; t->slots[j] != NULL;
       j = (j + 1) & t->mask)
    ;
  t->slots[j] = co;
  t->count++;
  return 0;
}

/* Backward-shift deletion: later entries of the probe run move up so that
 * lookups never need tombstones. */
static void tab_remove(cotab_t *t, acoro_co_t *co, key_fn key) {
  uint32_t i, j;
  if (t->slots == NULL)
    return;
  for (i = (uint32_t)key(co) & t->mask; t->slots[i] != co;
       i = (i + 1) & t->mask)
    if (t->slots[i] == NULL)
      return;
  t->slots[i] = NULL;
  t->count--;
  for (j = (i + 1) & t->mask; t->slots[j] != NULL; j = (j + 1) & t->mask) {
    acoro_co_t *m = t->slots[j];
    uint32_t home = (uint32_t)key(m) & t->mask;
    /* m may move to the hole at i unless its home lies in (i, j]. */
    if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
      t->slots[i] = m;
      t->slots[j] = NULL;
      i = j;
    }
  }
}

int reg_add_id(acoro_engine_t *e, acoro_co_t *co) {
  return e->by_id_on ? tab_add(&e->by_id, co, id_key) : 0;
}

void reg_remove_id(acoro_engine_t *e, acoro_co_t *co) {
  if (e->by_id_on)
    tab_remove(&e->by_id, co, id_key);
}

/* The first lookup by id indexes every live coroutine (the live list holds
 * exactly the records the index must); out of memory, it stays off. */
static int index_ids(acoro_engine_t *e) {
  acoro_co_t *co;
  for (co = e->live; co != NULL; co = co->live_next)
    if (tab_add(&e->by_id, co, id_key) != 0) {
      free(e->by_id.slots);
      memset(&e->by_id, 0, sizeof e->by_id);
      return ACORO_ENOMEM;
    }
  e->by_id_on = 1;
  return 0;
}

void reg_remove_name(acoro_engine_t *e, acoro_co_t *co) {
  tab_remove(&e->by_name, co, name_key);
  co->registered = 0;
}

void reg_free(acoro_engine_t *e) {
  free(e->by_id.slots);
  free(e->by_name.slots);
  memset(&e->by_id, 0, sizeof e->by_id);
  memset(&e->by_name, 0, sizeof e->by_name);
}

acoro_co_t *acoro_find(acoro_engine_t *e, uint64_t id) {
  cotab_t *t = &e->by_id;
  uint32_t j;
  if (!e->by_id_on && index_ids(e) != 0)
    return NULL;
  if (t->slots == NULL)
    return NULL;
  for (j = (uint32_t)mix64(id) & t->mask; t->slots[j] != NULL;
       j = (j + 1) & t->mask)
    if (t->slots[j]->id == id)
      return t->slots[j];
  return NULL;
}

acoro_co_t *acoro_locate(acoro_engine_t *e, const char *name) {
  cotab_t *t = &e->by_name;
  uint32_t j;
  if (t->slots == NULL || name == NULL)
    return NULL;
  for (j = (uint32_t)hash_str(name) & t->mask; t->slots[j] != NULL;
       j = (j + 1) & t->mask)
    if (strcmp(t->slots[j]->name, name) == 0)
      return t->slots[j];
  return NULL;
}

/* Registers `co` under `name` (NULL: its current name). Registering again
 * under another name moves it. */
int acoro_register(acoro_co_t *co, const char *name) {
  acoro_engine_t *e = co->engine;
  acoro_co_t *other;
  int rc;
  if (co->state == ACORO_STATE_DEAD)
    return ACORO_EDEAD;
  if (name == NULL)
    name = co->name;
  if (name == NULL || *name == '\0')
    return ACORO_EINVAL;
  other = acoro_locate(e, name);
  if (other == co)
    return 0;
  if (other != NULL)
    return ACORO_EEXIST;
  if (co->registered)
    reg_remove_name(e, co);
  if (co->name == NULL || strcmp(co->name, name) != 0) {
    rc = acoro_co_set_name(co, name);
    if (rc != 0)
      return rc;
  }
  rc = tab_add(&e->by_name, co, name_key);
  if (rc == 0)
    co->registered = 1;
  return rc;
}

int acoro_unregister(acoro_co_t *co) {
  if (!co->registered)
    return ACORO_ENOENT;
  reg_remove_name(co->engine, co);
  return 0;
}

/* ioobj.c: what every I/O object of the engine shares (internal.h's I/O
 * OBJECTS): the engine's list of open objects, the reference count, the
 * close callback of their libuv handles and the close-all of
 * acoro_engine_free. ENGINE THREAD ONLY. */
#include "internal.h"

void io_cancel_nothing(acoro_io_wait_t *w) { (void)w; }

void io_init(io_obj_t *o, acoro_engine_t *e, const io_type_t *type,
             uint32_t refs) {
  o->engine = e;
  o->type = type;
  o->io_next = o->io_prev = NULL;
  o->refs = refs;
  o->open = 0;
}

void io_link(io_obj_t *o) {
  acoro_engine_t *e = o->engine;
  o->open = 1;
  o->io_prev = NULL;
  o->io_next = e->io_open;
  if (e->io_open != NULL)
    e->io_open->io_prev = o;
  e->io_open = o;
}

int io_unlink(io_obj_t *o) {
  if (!o->open)
    return 0;
  o->open = 0;
  if (o->io_prev != NULL)
    o->io_prev->io_next = o->io_next;
  else
    o->engine->io_open = o->io_next;
  if (o->io_next != NULL)
    o->io_next->io_prev = o->io_prev;
  o->io_next = o->io_prev = NULL;
  return 1;
}

void io_unref(io_obj_t *o) {
  if (--o->refs == 0)
    o->type->free(o);
}

/* The host lets go (NULL: nothing): the object closes, and goes with
 * its last reference. The object is its head (the head comes first). */
void io_release(io_obj_t *o) {
  if (o == NULL)
    return;
  o->type->close(o);
  io_unref(o);
}

/* The object's libuv handle has closed: its reference goes. */
void io_on_close(uv_handle_t *h) { io_unref(h->data); }

/* The engine is going: every open object closes, newest first (the host
 * may release its pointers later, without touching the engine); files
 * opened from now on close at once. A close that left its object on the
 * list would loop: the object is taken off here all the same. */
void io_close_all(acoro_engine_t *e) {
  e->io_closed = 1;
  while (e->io_open != NULL) {
    io_obj_t *o = e->io_open;
    o->type->close(o);
    io_unlink(o);
  }
}

/* error.c: names of error codes and states, generated from the maps in
 * acoro.h so that the tables cannot disagree with the enums. */
#include "internal.h"

const char *acoro_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define ERR_CASE(name, value, msg)                                             \
  case ACORO_##name:                                                           \
    return #name ": " msg;
    ACORO_ERRNO_MAP(ERR_CASE)
#undef ERR_CASE
  default: /* libuv's codes (the I/O calls') */
    return err < 0 ? uv_strerror(err) : "unknown error";
  }
}

static const char *const state_names[] = {
#define STATE_NAME(name, lname) lname,
    ACORO_STATE_MAP(STATE_NAME)
#undef STATE_NAME
};

/* The FFI-visible enum is written out by hand (ffi.cdef takes no macros):
 * these checks tie it to the map. */
#define STATE_CHECK(name, lname)                                               \
  _Static_assert(ACORO_STATE_##name >= 0 &&                                    \
                     ACORO_STATE_##name <                                      \
                         (int)(sizeof state_names / sizeof state_names[0]),    \
                 "state enum out of range");
ACORO_STATE_MAP(STATE_CHECK)
#undef STATE_CHECK
_Static_assert(ACORO_STATE_READY == 0 && ACORO_STATE_DEAD == 5,
               "state enum must follow ACORO_STATE_MAP's order");

const char *acoro_state_name(int state) {
  if (state < 0 || state >= (int)(sizeof state_names / sizeof state_names[0]))
    return "unknown";
  return state_names[state];
}

/* test-registry.c: ids, the id index and the name registry. */
#include "test.h"

#include <string.h>

TEST(ids_never_reused) {
  acoro_engine_t *e = test_engine();
  uint64_t last = 0;
  int i;
  for (i = 0; i < 1000; i++) {
    acoro_co_t *co = test_spawn(e, test_step_exit, NULL);
    ASSERT_INT(acoro_co_id(co), >, last);
    last = acoro_co_id(co);
    acoro_co_release(co);
    if (i % 100 == 0)
      ASSERT_EQ(acoro_engine_run(e), 0);
  }
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_TRUE(acoro_engine_incarnation(e) != 0);
  acoro_engine_free(e);
}

/* Many inserts and removals in mixed order: every live id stays findable
 * (backward-shift deletion must keep probe runs intact). */
TEST(find_by_id_after_many_removals) {
  enum { N = 5000 };
  static acoro_co_t *cos[N];
  acoro_engine_t *e = test_engine();
  int i;
  for (i = 0; i < N; i++)
    cos[i] = test_spawn(e, test_step_exit, NULL);
  for (i = 0; i < N; i += 3)
    acoro_co_exit(cos[i], 0);
  for (i = 0; i < N; i++) {
    acoro_co_t *found = acoro_find(e, acoro_co_id(cos[i]));
    if (i % 3 == 0)
      ASSERT_PTR_EQ(found, NULL);
    else
      ASSERT_PTR_EQ(found, cos[i]);
  }
  ASSERT_EQ(acoro_engine_alive(e, 0), N - (N + 2) / 3);
  ASSERT_EQ(acoro_engine_run(e), 0);
  for (i = 0; i < N; i++) {
    ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(cos[i])), NULL);
    acoro_co_release(cos[i]);
  }
  acoro_engine_free(e);
}

/* The id index is built at the first lookup and kept from then on: ids
 * spawned, ended and restarted after it stay right, including through the
 * backward shifts of many removals. */
TEST(find_by_id_index_kept_after_first_lookup) {
  enum { N = 5000 };
  static acoro_co_t *cos[N];
  acoro_engine_t *e = test_engine();
  acoro_co_t *early = test_spawn(e, test_step_exit, NULL);
  int i;
  ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(early)), early); /* builds it */
  ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(early) + 1), NULL);
  for (i = 0; i < N; i++)
    cos[i] = test_spawn(e, test_step_exit, NULL);
  for (i = 0; i < N; i += 3)
    acoro_co_exit(cos[i], 0);
  for (i = 0; i < N; i++)
    ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(cos[i])),
                  i % 3 == 0 ? NULL : cos[i]);
  ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(early)), early);
  ASSERT_EQ(acoro_co_restart(cos[0]), 0);
  ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(cos[0])), cos[0]);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(early)), NULL);
  for (i = 0; i < N; i++) {
    ASSERT_PTR_EQ(acoro_find(e, acoro_co_id(cos[i])), NULL);
    acoro_co_release(cos[i]);
  }
  acoro_co_release(early);
  acoro_engine_free(e);
}

TEST(register_locate_unregister) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *co = test_spawn(e, test_step_exit, NULL);
  ASSERT_PTR_EQ(acoro_locate(e, "server"), NULL);
  ASSERT_EQ(acoro_register(co, NULL), ACORO_EINVAL);
  ASSERT_EQ(acoro_register(co, "server"), 0);
  ASSERT_EQ(strcmp(acoro_co_name(co), "server"), 0);
  ASSERT_PTR_EQ(acoro_locate(e, "server"), co);
  ASSERT_EQ(acoro_register(co, "server"), 0);
  ASSERT_EQ(acoro_register(co, "other"), 0); /* moves */
  ASSERT_PTR_EQ(acoro_locate(e, "server"), NULL);
  ASSERT_PTR_EQ(acoro_locate(e, "other"), co);
  ASSERT_EQ(acoro_unregister(co), 0);
  ASSERT_EQ(acoro_unregister(co), ACORO_ENOENT);
  ASSERT_PTR_EQ(acoro_locate(e, "other"), NULL);
  ASSERT_EQ(acoro_engine_run(e), 0);
  acoro_co_release(co);
  acoro_engine_free(e);
}

TEST(register_name_taken) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *a = test_spawn(e, test_step_exit, NULL);
  acoro_co_t *b = test_spawn(e, test_step_exit, NULL);
  ASSERT_EQ(acoro_register(a, "x"), 0);
  ASSERT_EQ(acoro_register(b, "x"), ACORO_EEXIST);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(acoro_register(a, "x"), ACORO_EDEAD);
  acoro_co_release(a);
  acoro_co_release(b);
  acoro_engine_free(e);
}

TEST(exit_unregisters) {
  acoro_engine_t *e = test_engine();
  acoro_co_t *a = test_spawn(e, test_step_exit, NULL);
  acoro_co_t *b = test_spawn(e, test_step_exit, NULL);
  int i;
  char name[32];
  for (i = 0; i < 200; i++) { /* grow the name table past its first size */
    acoro_co_t *c = test_spawn(e, test_step_exit, NULL);
    snprintf(name, sizeof name, "n%d", i);
    ASSERT_EQ(acoro_register(c, name), 0);
    acoro_co_release(c);
  }
  ASSERT_EQ(acoro_register(a, "svc"), 0);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_PTR_EQ(acoro_locate(e, "svc"), NULL);
  ASSERT_PTR_EQ(acoro_locate(e, "n7"), NULL);
  ASSERT_EQ(acoro_register(b, "svc"), ACORO_EDEAD);
  acoro_co_release(a);
  acoro_co_release(b);
  acoro_engine_free(e);
}

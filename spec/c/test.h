/* test.h: a small libuv-style test harness for the core: typed asserts
 * that print both sides, one test per process (see runner.c). */
#ifndef ACORO_TEST_H
#define ACORO_TEST_H

#include "acoro.h"

#include <stdio.h>
#include <stdlib.h>

#define ASSERT_INT(a, op, b)                                                   \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (!(a_ op b_)) {                                                         \
      fprintf(stderr, "%s:%d: assertion failed: %s %s %s (%lld vs %lld)\n",    \
              __FILE__, __LINE__, #a, #op, #b, a_, b_);                        \
      abort();                                                                 \
    }                                                                          \
  } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT(a, ==, b)
#define ASSERT_PTR_EQ(a, b) ASSERT_INT((uintptr_t)(a), ==, (uintptr_t)(b))
#define ASSERT_TRUE(x) ASSERT_INT(!!(x), ==, 1)

/* A C host: each coroutine is a step function called on every resume. */
typedef void (*step_fn)(acoro_co_t *co, int reason, void *arg);
typedef struct {
  step_fn step;
  void *arg;
  int resumes;
} test_task_t;

acoro_engine_t *test_engine(void);
acoro_co_t *test_spawn(acoro_engine_t *e, step_fn step, void *arg);
int test_resumes(acoro_co_t *co);
/* Steps shared by the tests: end at once; wait for a message for ever. */
void test_step_exit(acoro_co_t *co, int reason, void *arg);
void test_step_receive(acoro_co_t *co, int reason, void *arg);

#define TEST(name)                                                             \
  void test_##name(void);                                                      \
  void test_##name(void)
#endif

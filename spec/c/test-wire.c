/* test-wire.c: acoro_wire_check on well-formed values and on the hostile
 * set (declared lengths and counts beyond the bytes, deep nesting, odd
 * maps, truncation, random bytes). Every input is copied into a buffer of
 * exactly its size, so a read past the end trips ASan. */
#include "test.h"

#include <string.h>

static const acoro_wire_limits_t lim64 = {ACORO_WIRE_MAX_BYTES,
                                          ACORO_WIRE_MAX_DEPTH};

/* Checks len bytes of s from an exact-size heap copy. */
static int check(const char *s, size_t len, const acoro_wire_limits_t *lim,
                 size_t *used, char *reason, size_t reason_len) {
  char *copy = malloc(len ? len : 1);
  int rc;
  ASSERT_TRUE(copy != NULL);
  memcpy(copy, s, len);
  rc = acoro_wire_check(copy, len, lim, used, reason, reason_len);
  free(copy);
  return rc;
}

#define ASSERT_REASON(s, len, want)                                            \
  do {                                                                         \
    char reason_[128];                                                         \
    size_t used_ = 0;                                                          \
    ASSERT_EQ(check(s, len, &lim64, &used_, reason_, sizeof reason_),          \
              ACORO_EWIRE);                                                    \
    if (strcmp(reason_, want) != 0) {                                          \
      fprintf(stderr, "%s:%d: reason \"%s\", expected \"%s\"\n", __FILE__,     \
              __LINE__, reason_, want);                                        \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* Every kind of value, as one array of 22 elements. */
static const char every_kind[] =
    "\xdc\x00\x16"                             /* array16 of 22 */
    "\x00\x7f\xe0\xc0\xc2\xc3"                 /* fixints, nil, bools */
    "\xcc\xff\xcd\xff\xff\xce\x00\x00\x00\x01" /* uint 8/16/32 */
    "\xcf\x00\x00\x00\x00\x00\x00\x00\x01"     /* uint 64 */
    "\xd0\x80\xd1\x80\x00\xd2\x80\x00\x00\x00" /* int 8/16/32 */
    "\xca\x3f\xc0\x00\x00"                     /* float 32 */
    "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"     /* float 64 */
    "\xa3"
    "abc"
    "\xd9\x01"
    "x"
    "\xc4\x02"
    "\x00\x01"     /* strs, bin */
    "\xd4\x05\x00" /* fixext 1 */
    "\xc7\x02\x05"
    "ab" /* ext 8 */
    "\x82\xa1"
    "k"
    "\x01\x02\x90"          /* map {k:1, 2:[]} */
    "\xde\x00\x01\x01\x80"; /* map16 {1:{}} */

TEST(wire_check_accepts_every_kind) {
  size_t used = 0, len = sizeof every_kind - 1;
  char reason[64];
  ASSERT_EQ(check(every_kind, len, &lim64, &used, reason, sizeof reason), 0);
  ASSERT_EQ(used, len);
  ASSERT_EQ(reason[0], '\0');
  /* bytes after the value are left to the caller */
  ASSERT_EQ(check("\x01\x02\x03", 3, &lim64, &used, NULL, 0), 0);
  ASSERT_EQ(used, 1);
  /* NULL limits mean 64 MB and depth 64 */
  ASSERT_EQ(acoro_wire_check("\x91\x01", 2, NULL, &used, NULL, 0), 0);
  ASSERT_EQ(used, 2);
}

TEST(wire_check_truncated_every_prefix) {
  size_t n, len = sizeof every_kind - 1, used;
  for (n = 0; n < len; n++) {
    used = (size_t)-1;
    ASSERT_EQ(check(every_kind, n, &lim64, &used, NULL, 0), ACORO_EWIRE);
    ASSERT_TRUE(used <= n);
  }
  ASSERT_EQ(acoro_wire_check(NULL, 0, &lim64, &used, NULL, 0), ACORO_EWIRE);
}

TEST(wire_check_declared_lengths_beyond_the_bytes) {
  ASSERT_REASON("\xdb\xff\xff\xff\xff", 5,
                "str of 4294967295 bytes in 0 bytes left (at byte 0)");
  ASSERT_REASON("\xc6\xff\xff\xff\xff"
                "abc",
                8, "bin of 4294967295 bytes in 3 bytes left (at byte 0)");
  ASSERT_REASON("\xc9\xff\xff\xff\xff\x01", 6,
                "ext of 4294967295 bytes in 0 bytes left (at byte 0)");
  ASSERT_REASON("\x91\xa5"
                "abc",
                5, "str of 5 bytes in 3 bytes left (at byte 1)");
  ASSERT_REASON("\xcb\x00\x00", 3,
                "truncated: byte 0xcb needs 8 bytes, 2 left (at byte 0)");
  ASSERT_REASON("\xdb\xff", 2,
                "truncated: a 4-byte length field with 1 bytes left "
                "(at byte 0)");
}

TEST(wire_check_declared_counts_beyond_the_bytes) {
  ASSERT_REASON("\xdd\xff\xff\xff\xff\x01\x01\x01\x01\x01\x01\x01\x01\x01", 14,
                "array of 4294967295 elements in 9 bytes left (at byte 0)");
  ASSERT_REASON("\xdf\xff\xff\xff\xff", 5,
                "map of 4294967295 pairs in 0 bytes left (at byte 0)");
  ASSERT_REASON("\xdc\x00\x03\x01\x01", 5,
                "array of 3 elements in 2 bytes left (at byte 0)");
}

TEST(wire_check_map_with_odd_count) {
  /* {1:2, 3:?}: 4 items declared, 3 there */
  ASSERT_REASON("\x82\x01\x02\x03", 4,
                "map of 2 pairs in 3 bytes left (at byte 0)");
  /* inside an array whose second element is then missing */
  ASSERT_REASON("\x92\x82\x01\x02\x03\x04", 6,
                "truncated: 1 more value(s) expected at depth 1 (at byte 6)");
}

TEST(wire_check_100000_nested_arrays) {
  size_t n = 100000, used = 0;
  char *s = malloc(n + 1), reason[96];
  ASSERT_TRUE(s != NULL);
  memset(s, 0x91, n);
  s[n] = 0x01;
  ASSERT_EQ(acoro_wire_check(s, n + 1, &lim64, &used, reason, sizeof reason),
            ACORO_EWIRE);
  ASSERT_EQ(used, 64);
  ASSERT_EQ(strcmp(reason, "nesting deeper than 64 (at byte 64)"), 0);
  /* 64 deep is fine; an empty 65th array is still too deep */
  s[64] = 0x01;
  ASSERT_EQ(acoro_wire_check(s, 65, &lim64, &used, NULL, 0), 0);
  s[64] = (char)0x90;
  ASSERT_EQ(acoro_wire_check(s, 65, &lim64, &used, NULL, 0), ACORO_EWIRE);
  free(s);
}

TEST(wire_check_depth_limits) {
  acoro_wire_limits_t flat = {1024, 0}, huge = {1u << 20, 100000};
  size_t n = 1000, used;
  char *s = malloc(n + 1);
  ASSERT_TRUE(s != NULL);
  ASSERT_EQ(check("\x05", 1, &flat, &used, NULL, 0), 0);
  ASSERT_EQ(check("\x90", 1, &flat, &used, NULL, 0), ACORO_EWIRE);
  /* a depth beyond the cap is the cap */
  memset(s, 0x91, n);
  s[n] = 0x01;
  ASSERT_EQ(acoro_wire_check(s, n + 1, &huge, &used, NULL, 0), ACORO_EWIRE);
  ASSERT_EQ(used, ACORO_WIRE_DEPTH_CAP);
  ASSERT_EQ(acoro_wire_check(s + n - ACORO_WIRE_DEPTH_CAP,
                             ACORO_WIRE_DEPTH_CAP + 1, &huge, &used, NULL, 0),
            0);
  free(s);
}

TEST(wire_check_size_limit) {
  acoro_wire_limits_t small = {ACORO_WIRE_PREAUTH_BYTES, 8};
  size_t n = ACORO_WIRE_PREAUTH_BYTES + 100, used;
  char *s = malloc(n), reason[96];
  ASSERT_TRUE(s != NULL);
  memset(s, 'a', n);
  /* a str that fits the buffer but not the limit */
  s[0] = (char)0xda;
  s[1] = (char)((n - 3) >> 8);
  s[2] = (char)(n - 3);
  ASSERT_EQ(acoro_wire_check(s, n, &small, &used, reason, sizeof reason),
            ACORO_EWIRE);
  ASSERT_EQ(strcmp(reason, "value longer than the limit of 4096 bytes "
                           "(at byte 0)"),
            0);
  ASSERT_EQ(acoro_wire_check(s, n, &lim64, &used, NULL, 0), 0);
  ASSERT_EQ(used, n);
  /* an array of many 1-byte values crossing the limit */
  s[0] = (char)0xdc;
  memset(s + 3, 0x01, n - 3);
  ASSERT_EQ(acoro_wire_check(s, n, &small, &used, reason, sizeof reason),
            ACORO_EWIRE);
  ASSERT_EQ(strncmp(reason, "value longer than the limit", 27), 0);
  /* exactly at the limit is fine */
  s[1] = (char)((ACORO_WIRE_PREAUTH_BYTES - 3) >> 8);
  s[2] = (char)(ACORO_WIRE_PREAUTH_BYTES - 3);
  ASSERT_EQ(acoro_wire_check(s, n, &small, &used, NULL, 0), 0);
  ASSERT_EQ(used, ACORO_WIRE_PREAUTH_BYTES);
  free(s);
}

TEST(wire_check_reserved_byte_and_short_reason) {
  char reason[8];
  size_t used;
  ASSERT_REASON("\x92\x01\xc1", 3, "reserved byte 0xc1 (at byte 2)");
  /* a reason buffer too small is cut, still terminated */
  ASSERT_EQ(check("\xc1", 1, &lim64, &used, reason, sizeof reason),
            ACORO_EWIRE);
  ASSERT_EQ(strlen(reason), sizeof reason - 1);
  ASSERT_EQ(strcmp(acoro_strerror(ACORO_EWIRE),
                   "EWIRE: malformed or oversize message (see the reason)"),
            0);
}

/* A small deterministic generator (no rand(): same bytes everywhere). */
static uint32_t next_rand(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

TEST(wire_check_random_bytes) {
  uint32_t seed = 6, i;
  char buf[64];
  int ok = 0;
  for (i = 0; i < 200000; i++) {
    size_t len = next_rand(&seed) % sizeof buf, j, used = 0;
    char reason[96];
    int rc;
    for (j = 0; j < len; j++) /* biased to headers that declare lengths */
      buf[j] = (char)(j % 3 == 0 ? 0x80 + next_rand(&seed) % 0x80
                                 : next_rand(&seed));
    rc = check(buf, len, &lim64, &used, reason, sizeof reason);
    ASSERT_TRUE(rc == 0 || rc == ACORO_EWIRE);
    ASSERT_TRUE(used <= len);
    ok += rc == 0;
  }
  ASSERT_TRUE(ok > 0);
}

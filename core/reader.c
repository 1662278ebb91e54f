/* reader.c: the read buffer that streams (stream.c, tls.c) and files
 * (fs.c) share: the unread bytes, where a delimiter search stopped, and how
 * reading ended. The owner fills it; the host reads it through the
 * acoro_reader_* calls. ENGINE THREAD ONLY. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int rd_reserve(acoro_reader_t *r, size_t want, size_t chunk) {
  if (r->cap - r->pos - r->len >= want)
    return 0;
  if (r->pos > 0) { /* slide the unread bytes to the front */
    memmove(r->buf, r->buf + r->pos, r->len);
    r->pos = 0;
    if (r->cap - r->len >= want)
      return 0;
  }
  {
    size_t cap = r->cap ? r->cap : chunk;
    char *p;
    while (cap - r->len < want)
      cap *= 2;
    p = realloc(r->buf, cap);
    if (p == NULL)
      return ACORO_ENOMEM;
    r->buf = p;
    r->cap = cap;
  }
  return 0;
}

int rd_append(acoro_reader_t *r, const char *p, size_t n, size_t chunk) {
  if (rd_reserve(r, n, chunk) != 0)
    return ACORO_ENOMEM;
  memcpy(r->buf + r->pos + r->len, p, n);
  r->len += n;
  return 0;
}

/* A search for the delimiter resumes where the last one stopped. */
int rd_has(acoro_reader_t *r, size_t min, int delim) {
  if (r->status != 0 || r->len >= min)
    return 1;
  if (delim >= 0 && r->scan < r->len) {
    if (memchr(r->buf + r->pos + r->scan, delim, r->len - r->scan))
      return 1;
    r->scan = r->len;
  }
  return 0;
}

void rd_reset(acoro_reader_t *r) {
  r->pos = r->len = r->scan = 0;
  r->status = 0;
}

void rd_free(acoro_reader_t *r) {
  free(r->buf);
  r->buf = NULL;
  r->pos = r->len = r->cap = r->scan = 0;
}

size_t acoro_reader_buffered(const acoro_reader_t *r, const char **data) {
  if (data != NULL)
    *data = r->buf != NULL ? r->buf + r->pos : "";
  return r->len;
}

void acoro_reader_consume(acoro_reader_t *r, size_t n) {
  if (n > r->len)
    n = r->len;
  r->pos += n;
  r->len -= n;
  r->scan = r->scan > n ? r->scan - n : 0;
  if (r->len == 0)
    r->pos = 0;
  if (r->consumed != NULL)
    r->consumed(r, n);
}

int acoro_reader_status(const acoro_reader_t *r) { return r->status; }

size_t acoro_reader_find(const acoro_reader_t *r, int delim, size_t from,
                         size_t max) {
  const char *p = r->buf != NULL ? r->buf + r->pos : "", *d;
  size_t look = max < r->len ? max : r->len;
  if (from >= look)
    return 0;
  d = memchr(p + from, delim, look - from);
  return d != NULL ? (size_t)(d - p) + 1 : 0;
}

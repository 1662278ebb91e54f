/* lhttp.c: the C half of acoro.http: HTTP/1.1 requests parsed by Node's
 * http_parser (Debian's libhttp-parser), with the limits a server needs
 * enforced while the bytes arrive, so that an oversized or endless request
 * is refused before it is buffered. Lua never pattern-matches the raw
 * request.
 *
 * The parser is called through LuaJIT's FFI (acoro.http declares these
 * functions and acoro_http_out_t in its cdef; keep the two in step): a
 * classic C call per read cost twice as much, in the call itself and in
 * the strings it had to intern ("done", the method, the version).
 *   acoro_http_new(max_header, max_body) -> parser (NULL: no memory);
 *   acoro_http_free(parser);
 *   acoro_http_execute(parser, data, len, out) -> ACORO_HTTP_MORE (all
 *     consumed, the request unfinished), _CONTINUE (the same, and the
 *     client waits for "100 Continue": once per request), _DONE (one
 *     request is complete: out holds its parts until the next call; the
 *     parser stops there, so that the bytes of a pipelined next one are
 *     left to the caller), _ERROR (out->status 400, 413 or 431, out->why)
 *     or _NOMEM; out->consumed in every case;
 *   acoro_http_method(code) -> the method's name.
 * core.http.query(s) -> the table of a query string (classic: it makes a
 * table, and only requests with a query string need it). */
#include "lbind.h"

#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *p;
  size_t len, cap;
} hbuf_t;

/* A header is two spans of hdrs: its lower-cased name and its value. */
typedef struct {
  size_t name, name_len, value, value_len;
} hspan_t;

typedef struct {
  http_parser hp;
  hbuf_t url, body, hdrs, path; /* path: the decoded path, when it had a % */
  hspan_t *spans;
  size_t nspans, cap_spans;
  size_t header_bytes, max_header, max_body;
  int in_value; /* the last header callback was a value's */
  int done;     /* message complete */
  int status;   /* our refusal (413, 431), 0 for none */
  int expect;   /* Expect: 100-continue seen, not yet reported */
  int oom;
} hp_t;

static int hbuf_add(hp_t *h, hbuf_t *b, const char *at, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      h->oom = 1;
      return -1;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, at, n);
  b->len += n;
  return 0;
}

/* What acoro_http_execute tells (mirrored in acoro.http's cdef). */
enum {
  ACORO_HTTP_MORE,
  ACORO_HTTP_CONTINUE,
  ACORO_HTTP_DONE,
  ACORO_HTTP_ERROR,
  ACORO_HTTP_NOMEM
};

typedef struct {
  size_t consumed;
  const char *url, *path, *query, *hdrs, *body, *why;
  size_t url_len, path_len, query_len, body_len, nspans;
  const hspan_t *spans;
  int method, minor, keep_alive, status;
} acoro_http_out_t;

/* Exported (ACORO_API) for the FFI only: no C header declares them. */
ACORO_API hp_t *acoro_http_new(size_t max_header, size_t max_body);
ACORO_API void acoro_http_free(hp_t *h);
ACORO_API int acoro_http_execute(hp_t *h, const char *data, size_t len,
                                 acoro_http_out_t *out);
ACORO_API const char *acoro_http_method(int method);

static hp_t *of(http_parser *p) { return (hp_t *)p->data; }

/* The header limit counts the request target and every name and value. */
static int count_header(hp_t *h, size_t n) {
  h->header_bytes += n;
  if (h->header_bytes > h->max_header) {
    h->status = 431;
    return -1;
  }
  return 0;
}

static int on_begin(http_parser *p) {
  (void)p;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  hp_t *h = of(p);
  if (count_header(h, n) != 0)
    return -1;
  return hbuf_add(h, &h->url, at, n);
}

static int on_field(http_parser *p, const char *at, size_t n) {
  hp_t *h = of(p);
  if (count_header(h, n) != 0)
    return -1;
  if (h->in_value || h->nspans == 0) {
    if (h->nspans == h->cap_spans) {
      size_t cap = h->cap_spans ? h->cap_spans * 2 : 16;
      hspan_t *s = realloc(h->spans, cap * sizeof *s);
      if (s == NULL) {
        h->oom = 1;
        return -1;
      }
      h->spans = s;
      h->cap_spans = cap;
    }
    hspan_t *s = &h->spans[h->nspans++];
    s->name = h->hdrs.len;
    s->name_len = 0;
    s->value = 0;
    s->value_len = 0;
    h->in_value = 0;
  }
  size_t from = h->hdrs.len;
  if (hbuf_add(h, &h->hdrs, at, n) != 0)
    return -1;
  for (size_t i = from; i < h->hdrs.len; i++) {
    char c = h->hdrs.p[i];
    if (c >= 'A' && c <= 'Z')
      h->hdrs.p[i] = (char)(c - 'A' + 'a');
    /* http_parser (not strict) lets a space into a name: "Transfer-Encoding :"
     * would be a header it ignores while a proxy in front may honour it (a
     * smuggled request). RFC 9112, 5.1: refused with 400. */
    if (c == ' ' || c == '\t') {
      h->status = 400;
      return -1;
    }
  }
  h->spans[h->nspans - 1].name_len += n;
  return 0;
}

static int on_value(http_parser *p, const char *at, size_t n) {
  hp_t *h = of(p);
  if (count_header(h, n) != 0)
    return -1;
  hspan_t *s = &h->spans[h->nspans - 1];
  if (!h->in_value) {
    s->value = h->hdrs.len;
    h->in_value = 1;
  }
  s->value_len += n;
  return hbuf_add(h, &h->hdrs, at, n);
}

static int is_span(const hp_t *h, size_t off, size_t len, const char *s) {
  size_t n = strlen(s);
  if (len != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = h->hdrs.p[off + i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != s[i])
      return 0;
  }
  return 1;
}

static int on_headers_complete(http_parser *p) {
  hp_t *h = of(p);
  /* A declared body over the limit is refused before it is sent. */
  if (p->content_length != ULLONG_MAX && p->content_length > h->max_body) {
    h->status = 413;
    return -1;
  }
  for (size_t i = 0; i < h->nspans; i++) {
    const hspan_t *s = &h->spans[i];
    if (is_span(h, s->name, s->name_len, "expect") &&
        is_span(h, s->value, s->value_len, "100-continue"))
      h->expect = 1;
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  hp_t *h = of(p);
  if (h->body.len + n > h->max_body) { /* chunked: no length up front */
    h->status = 413;
    return -1;
  }
  return hbuf_add(h, &h->body, at, n);
}

static int on_complete(http_parser *p) {
  of(p)->done = 1;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void reset(hp_t *h) {
  http_parser_init(&h->hp, HTTP_REQUEST);
  h->hp.data = h;
  h->url.len = h->body.len = h->hdrs.len = h->path.len = 0;
  h->nspans = 0;
  h->header_bytes = 0;
  h->in_value = h->done = h->status = h->expect = h->oom = 0;
}

hp_t *acoro_http_new(size_t max_header, size_t max_body) {
  hp_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  h->max_header = max_header;
  h->max_body = max_body;
  reset(h);
  return h;
}

void acoro_http_free(hp_t *h) {
  if (h == NULL)
    return;
  free(h->url.p);
  free(h->body.p);
  free(h->hdrs.p);
  free(h->path.p);
  free(h->spans);
  free(h);
}

const char *acoro_http_method(int method) {
  return http_method_str((enum http_method)method);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Appends s[0..n) percent-decoded to b: -1 without memory. */
static int decode_into(hp_t *h, hbuf_t *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    }
    if (hbuf_add(h, b, &c, 1) != 0)
      return -1;
  }
  return 0;
}

/* Pushes s[0..n) percent-decoded ('+' as a space in a query). */
static void push_decoded(lua_State *L, const char *s, size_t n, int plus) {
  if (memchr(s, '%', n) == NULL && (!plus || memchr(s, '+', n) == NULL)) {
    lua_pushlstring(L, s, n); /* nothing to decode: the common path */
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      luaL_addchar(&b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
      i += 2;
    } else if (c == '+' && plus) {
      luaL_addchar(&b, ' ');
    } else {
      luaL_addchar(&b, c);
    }
  }
  luaL_pushresult(&b);
}

/* A key given twice or more becomes an array of its values; a key without
 * "=" is true (as OpenResty's get_uri_args). */
static void push_query(lua_State *L, const char *q, size_t n) {
  lua_newtable(L);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && q[j] != '&')
      j++;
    if (j > i) {
      size_t eq = i;
      while (eq < j && q[eq] != '=')
        eq++;
      push_decoded(L, q + i, eq - i, 1);
      if (eq < j)
        push_decoded(L, q + eq + 1, j - eq - 1, 1);
      else
        lua_pushboolean(L, 1);
      lua_pushvalue(L, -2);
      lua_rawget(L, -4);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawset(L, -3);
      } else if (lua_istable(L, -1)) {
        lua_insert(L, -2); /* key, list, value */
        lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
        lua_pop(L, 2);
      } else {
        lua_createtable(L, 2, 0); /* key, value, old, list */
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, -3);
      }
    }
    i = j + 1;
  }
}

/* Fills out with the parts of the request just done; -1 without memory. */
static int fill_request(hp_t *h, acoro_http_out_t *out) {
  static const char root[] = "/", star[] = "*";
  out->url = h->url.p ? h->url.p : "";
  out->url_len = h->url.len;
  struct http_parser_url u;
  http_parser_url_init(&u);
  int connect = h->hp.method == HTTP_CONNECT;
  if (h->url.len == 0 ||
      http_parser_parse_url(h->url.p, h->url.len, connect, &u) != 0)
    u.field_set = 0;
  if (u.field_set & (1 << UF_PATH)) {
    const char *p = h->url.p + u.field_data[UF_PATH].off;
    size_t n = u.field_data[UF_PATH].len;
    if (memchr(p, '%', n) != NULL) {
      if (decode_into(h, &h->path, p, n) != 0)
        return -1;
      p = h->path.p;
      n = h->path.len;
    }
    out->path = p;
    out->path_len = n;
  } else {
    out->path = h->url.len > 0 && h->url.p[0] == '*' ? star : root;
    out->path_len = 1;
  }
  if (u.field_set & (1 << UF_QUERY)) {
    out->query = h->url.p + u.field_data[UF_QUERY].off;
    out->query_len = u.field_data[UF_QUERY].len;
  } else {
    out->query = "";
    out->query_len = 0;
  }
  out->hdrs = h->hdrs.p;
  out->spans = h->spans;
  out->nspans = h->nspans;
  out->body = h->body.p ? h->body.p : "";
  out->body_len = h->body.len;
  out->method = (int)h->hp.method;
  out->minor = h->hp.http_minor == 0 && h->hp.http_major == 1 ? 0 : 1;
  out->keep_alive = http_should_keep_alive(&h->hp) && !h->hp.upgrade;
  return 0;
}

int acoro_http_execute(hp_t *h, const char *data, size_t len,
                       acoro_http_out_t *out) {
  if (h->done || h->status != 0) /* the last call's request was taken */
    reset(h);
  out->consumed = http_parser_execute(&h->hp, &settings, data, len);
  enum http_errno err = HTTP_PARSER_ERRNO(&h->hp);
  if (h->oom)
    return ACORO_HTTP_NOMEM;
  if (h->done)
    return fill_request(h, out) == 0 ? ACORO_HTTP_DONE : ACORO_HTTP_NOMEM;
  if (err == HPE_OK) {
    if (h->expect && h->hp.content_length > 0) {
      h->expect = 0;
      return ACORO_HTTP_CONTINUE;
    }
    return ACORO_HTTP_MORE;
  }
  if (h->status == 0 && err == HPE_HEADER_OVERFLOW)
    h->status = 431;
  if (h->status == 413) {
    out->why = "request body over the limit";
  } else if (h->status == 431) {
    out->why = "request header over the limit";
  } else if (h->status == 400) {
    out->why = "whitespace in a header name";
  } else {
    h->status = 400;
    out->why = http_errno_description(err);
  }
  out->status = h->status;
  return ACORO_HTTP_ERROR;
}

/* query(s) -> the table of a query string, decoded. */
static int q_parse(lua_State *L) {
  size_t n;
  const char *q = luaL_checklstring(L, 1, &n);
  push_query(L, q, n);
  return 1;
}

static const luaL_Reg http_funcs[] = {
    {"query", q_parse},
    {NULL, NULL},
};

void lhttp_open(lua_State *L, acoro_engine_t *e) {
  lua_newtable(L);
  lbind_funcs(L, e, http_funcs);
}

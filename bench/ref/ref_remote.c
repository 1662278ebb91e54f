/* bench/ref/ref_remote.c: the floor for W6 and W6s (bench/README.md): two
 * processes on loopback exchanging fixed-size frames over one TCP
 * connection with plain libuv callbacks: no serialisation, no coroutines,
 * no authentication. acoro's remote messaging is measured against it.
 *
 *   bench_ref_remote server PORT      listen on 127.0.0.1:PORT (0: any),
 *                                     print "PORT=n", serve until killed
 *   bench_ref_remote ping PORT [N]    W6: N (100,000) round trips of one
 *                                     frame; prints "W6 rts=N secs=S
 *                                     rts_per_s=R median_us=M"
 *   bench_ref_remote stream PORT [N]  W6s: N (1,000,000) frames one way,
 *                                     written in batches, then an end frame
 *                                     the server answers with its count;
 *                                     prints "W6s msgs=N secs=S msgs_per_s=R"
 *
 * A frame is FRAME bytes: a kind byte ('p' ping, 's' stream, 'e' end, 'd'
 * done) and padding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define FRAME 32
#define BATCH 2048 /* stream frames per write */

static uv_loop_t *loop;

/* Reassembles whole frames from a TCP byte stream. */
typedef struct {
  uv_tcp_t tcp;
  char buf[FRAME * 64];
  size_t have;
  uint64_t count; /* server: stream frames received */
} conn_t;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  conn_t *c = h->data;
  (void)suggested;
  *b = uv_buf_init(c->buf + c->have, (unsigned)(sizeof c->buf - c->have));
}

static void write_done(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

/* Writes len bytes (copied). */
static void send_bytes(conn_t *c, const char *data, size_t len) {
  uv_write_t *req = malloc(sizeof *req + len);
  uv_buf_t b;
  if (req == NULL)
    abort();
  memcpy(req + 1, data, len);
  b = uv_buf_init((char *)(req + 1), (unsigned)len);
  if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0)
    abort();
}

static void send_frame(conn_t *c, char kind, uint64_t value) {
  char f[FRAME] = {0};
  f[0] = kind;
  memcpy(f + 8, &value, sizeof value);
  send_bytes(c, f, FRAME);
}

/* Calls on_frame for each whole frame received. */
static void frames(conn_t *c, ssize_t n, void (*on_frame)(conn_t *, char *)) {
  size_t off = 0;
  c->have += (size_t)n;
  while (c->have - off >= FRAME) {
    on_frame(c, c->buf + off);
    off += FRAME;
  }
  memmove(c->buf, c->buf + off, c->have - off);
  c->have -= off;
}

/* Server. */

static void server_frame(conn_t *c, char *f) {
  if (f[0] == 'p')
    send_bytes(c, f, FRAME);
  else if (f[0] == 's')
    c->count++;
  else if (f[0] == 'e') {
    send_frame(c, 'd', c->count);
    c->count = 0;
  }
}

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) {
    uv_close((uv_handle_t *)s, conn_closed);
    return;
  }
  frames(s->data, n, server_frame);
}

static void on_connection(uv_stream_t *srv, int status) {
  conn_t *c;
  if (status < 0)
    return;
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, server_read);
}

static int serve(int port) {
  static uv_tcp_t srv;
  struct sockaddr_in a;
  struct sockaddr_storage name;
  int len = sizeof name;
  uv_ip4_addr("127.0.0.1", port, &a);
  uv_tcp_init(loop, &srv);
  if (uv_tcp_bind(&srv, (struct sockaddr *)&a, 0) != 0 ||
      uv_listen((uv_stream_t *)&srv, 128, on_connection) != 0) {
    fprintf(stderr, "bench_ref_remote: cannot listen on port %d\n", port);
    return 1;
  }
  uv_tcp_getsockname(&srv, (struct sockaddr *)&name, &len);
  printf("PORT=%d\n", ntohs(((struct sockaddr_in *)&name)->sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}

/* Clients. */

static conn_t client;
static uint64_t n_total, n_done, t_start, t_sent;
static uint64_t *rtts;
static int streaming;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void finish(void) {
  double secs = (double)(uv_hrtime() - t_start) / 1e9;
  if (!streaming) {
    uint64_t med;
    qsort(rtts, n_total, sizeof *rtts, cmp_u64);
    med = rtts[n_total / 2];
    printf("W6 rts=%llu secs=%.3f rts_per_s=%.0f median_us=%.1f\n",
           (unsigned long long)n_total, secs, (double)n_total / secs,
           (double)med / 1e3);
  } else {
    printf("W6s msgs=%llu secs=%.3f msgs_per_s=%.0f\n",
           (unsigned long long)n_total, secs, (double)n_total / secs);
  }
  uv_close((uv_handle_t *)&client.tcp, NULL);
}

static void client_frame(conn_t *c, char *f) {
  if (f[0] == 'p') {
    uint64_t now = uv_hrtime();
    rtts[n_done++] = now - t_sent;
    if (n_done == n_total) {
      finish();
      return;
    }
    t_sent = now;
    send_frame(c, 'p', n_done);
  } else if (f[0] == 'd') {
    uint64_t got;
    memcpy(&got, f + 8, sizeof got);
    if (got != n_total) {
      fprintf(stderr, "bench_ref_remote: server counted %llu of %llu\n",
              (unsigned long long)got, (unsigned long long)n_total);
      exit(1);
    }
    finish();
  }
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) {
    fprintf(stderr, "bench_ref_remote: connection lost: %s\n",
            uv_strerror((int)n));
    exit(1);
  }
  frames(s->data, n, client_frame);
}

/* Streams the frames in batches, the next batch once the last is written. */
static void stream_more(uv_write_t *req, int status);

static void stream_batch(void) {
  static char batch[FRAME * BATCH];
  uint64_t k = n_total - n_done < BATCH ? n_total - n_done : BATCH;
  uv_write_t *req = malloc(sizeof *req);
  uv_buf_t b;
  uint64_t i;
  if (req == NULL)
    abort();
  for (i = 0; i < k; i++)
    batch[i * FRAME] = 's';
  n_done += k;
  b = uv_buf_init(batch, (unsigned)(k * FRAME));
  uv_write(req, (uv_stream_t *)&client.tcp, &b, 1, stream_more);
}

static void stream_more(uv_write_t *req, int status) {
  free(req);
  if (status < 0)
    exit(1);
  if (n_done < n_total)
    stream_batch();
  else
    send_frame(&client, 'e', 0);
}

static void on_connect(uv_connect_t *req, int status) {
  if (status < 0) {
    fprintf(stderr, "bench_ref_remote: connect: %s\n", uv_strerror(status));
    exit(1);
  }
  uv_tcp_nodelay(&client.tcp, 1);
  uv_read_start((uv_stream_t *)&client.tcp, on_alloc, client_read);
  t_start = t_sent = uv_hrtime();
  if (streaming)
    stream_batch();
  else
    send_frame(&client, 'p', 0);
  (void)req;
}

static int run_client(int port, uint64_t n) {
  static uv_connect_t req;
  struct sockaddr_in a;
  n_total = n;
  if (n == 0)
    return 2;
  if (!streaming && (rtts = calloc(n, sizeof *rtts)) == NULL)
    return 1;
  uv_ip4_addr("127.0.0.1", port, &a);
  uv_tcp_init(loop, &client.tcp);
  client.tcp.data = &client;
  uv_tcp_connect(&req, &client.tcp, (struct sockaddr *)&a, on_connect);
  uv_run(loop, UV_RUN_DEFAULT);
  free(rtts);
  return 0;
}

int main(int argc, char **argv) {
  loop = uv_default_loop();
  if (argc >= 3 && strcmp(argv[1], "server") == 0)
    return serve(atoi(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "ping") == 0)
    return run_client(atoi(argv[2]),
                      argc > 3 ? strtoull(argv[3], NULL, 10) : 100000);
  if (argc >= 3 && strcmp(argv[1], "stream") == 0) {
    streaming = 1;
    return run_client(atoi(argv[2]),
                      argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000);
  }
  fprintf(stderr, "usage: bench_ref_remote server PORT | ping PORT [N] | "
                  "stream PORT [N]\n");
  return 2;
}

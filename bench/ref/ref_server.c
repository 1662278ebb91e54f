/* bench/ref/ref_server.c: the reference for W4, W4k and W5 (bench/README.md):
 * a minimal libuv server in plain callbacks, no coroutines, minimal parsing.
 * It is the poller's limit that acoro's coroutine-style servers are measured
 * against. One file, one binary (bench_ref):
 *
 *   bench_ref http  PORT   W4: answer the first request of each connection
 *                          ("HTTP/1.0 200 OK", Content-Length: 5, "Pong!"),
 *                          then close
 *   bench_ref httpk PORT   W4k: HTTP/1.1 keep-alive, one answer for every
 *                          request (headers ended by a blank line)
 *   bench_ref echo  PORT   W5 server: send back every byte received
 *   bench_ref client PORT [CONNS [MSGS [SIZE]]]
 *                          W5 client: CONNS connections (100) each send MSGS
 *                          (10,000) messages of SIZE (64) bytes, one at a
 *                          time, reading each echo back; prints one line
 *                          "W5 rts=N secs=S rts_per_s=R"
 *   bench_ref w5 [CONNS [MSGS [SIZE]]]
 *                          W5 in one process: the echo server and the
 *                          client in one loop (as w5_echo.lua runs them)
 *
 * Servers listen on 127.0.0.1:PORT (0: any free port), print "PORT=n" on
 * stdout once listening, and run until killed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum mode { M_HTTP_CLOSE, M_HTTP_KEEP, M_ECHO };

static const char RESP_CLOSE[] = "HTTP/1.0 200 OK\r\n"
                                 "Content-Length: 5\r\n"
                                 "\r\n"
                                 "Pong!";
static const char RESP_KEEP[] = "HTTP/1.1 200 OK\r\n"
                                "Content-Length: 5\r\n"
                                "\r\n"
                                "Pong!";

static enum mode mode;
static uv_loop_t *loop;

static void die(const char *what, int err) {
  fprintf(stderr, "bench_ref: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

/* ---- server ------------------------------------------------------------ */

typedef struct conn {
  uv_tcp_t tcp;
  int crlf;    /* how much of "\r\n\r\n" the bytes so far end with */
  int closing; /* W4: answered; close once the answer is written */
  char buf[65536];
} conn_t;

typedef struct wreq {
  uv_write_t req;
  char *mem; /* malloc'd data (echo and batched answers), or NULL */
} wreq_t;

static void on_close(uv_handle_t *h) { free(h->data); }

static void conn_close(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  conn_t *c = h->data;
  (void)size;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = req->handle->data;
  free(w->mem);
  free(w);
  if (status < 0 || c->closing)
    conn_close(c);
}

static void send_bytes(conn_t *c, const char *data, size_t n, char *mem) {
  wreq_t *w = malloc(sizeof *w);
  if (w == NULL) {
    free(mem);
    conn_close(c);
    return;
  }
  w->mem = mem;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
    free(mem);
    free(w);
    conn_close(c);
  }
}

/* Counts the requests that end in data[0..n): each "\r\n\r\n" (the blank
 * line after the headers), matched across reads. */
static int count_requests(conn_t *c, const char *data, size_t n) {
  int reqs = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = data[i];
    if (ch == (c->crlf % 2 == 0 ? '\r' : '\n'))
      c->crlf++;
    else
      c->crlf = ch == '\r' ? 1 : 0;
    if (c->crlf == 4) {
      reqs++;
      c->crlf = 0;
    }
  }
  return reqs;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0 || c->closing)
    return;
  if (mode == M_ECHO) {
    char *mem = malloc((size_t)nread);
    if (mem == NULL) {
      conn_close(c);
      return;
    }
    memcpy(mem, buf->base, (size_t)nread);
    send_bytes(c, mem, (size_t)nread, mem);
    return;
  }
  int reqs = count_requests(c, buf->base, (size_t)nread);
  if (reqs == 0)
    return;
  if (mode == M_HTTP_CLOSE) {
    c->closing = 1;
    uv_read_stop(s);
    send_bytes(c, RESP_CLOSE, sizeof RESP_CLOSE - 1, NULL);
  } else if (reqs == 1) {
    send_bytes(c, RESP_KEEP, sizeof RESP_KEEP - 1, NULL);
  } else { /* pipelined requests: one write with every answer */
    size_t len = sizeof RESP_KEEP - 1;
    char *mem = malloc(len * (size_t)reqs);
    if (mem == NULL) {
      conn_close(c);
      return;
    }
    for (int i = 0; i < reqs; i++)
      memcpy(mem + len * (size_t)i, RESP_KEEP, len);
    send_bytes(c, mem, len * (size_t)reqs, mem);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
}

static uv_tcp_t server;

/* Listens; returns the port. */
static int listen_on(int port) {
  struct sockaddr_in addr;
  int err;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port, &addr);
  if ((err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) < 0)
    die("bind", err);
  if ((err = uv_listen((uv_stream_t *)&server, 1024, on_connection)) < 0)
    die("listen", err);
  struct sockaddr_storage name;
  int namelen = sizeof name;
  uv_tcp_getsockname(&server, (struct sockaddr *)&name, &namelen);
  return ntohs(((struct sockaddr_in *)&name)->sin_port);
}

static int serve(int port) {
  printf("PORT=%d\n", listen_on(port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- W5 client --------------------------------------------------------- */

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  long sent; /* messages sent */
  long got;  /* bytes of the current echo received */
  char buf[65536];
} client_t;

static long n_msgs, msg_size, n_failed, n_conns, n_ended;
static int with_server; /* w5: close the server when every client ended */
static char *message;

static void client_end(client_t *c, int failed) {
  n_failed += failed;
  uv_close((uv_handle_t *)&c->tcp, NULL);
  if (++n_ended == n_conns && with_server)
    uv_close((uv_handle_t *)&server, NULL);
}

static void client_written(uv_write_t *req, int status) {
  if (status < 0)
    client_end(req->data, 1);
}

static void client_send(client_t *c) {
  uv_buf_t b = uv_buf_init(message, (unsigned)msg_size);
  c->write.data = c;
  c->sent++;
  c->got = 0;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, client_written) < 0)
    client_end(c, 1);
}

static void client_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  client_t *c = h->data;
  (void)size;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  client_t *c = s->data;
  (void)buf;
  if (nread < 0) {
    client_end(c, 1);
    return;
  }
  c->got += nread;
  if (c->got < msg_size)
    return;
  if (c->got > msg_size) { /* more than one echo: the server is wrong */
    client_end(c, 1);
    return;
  }
  if (c->sent == n_msgs) {
    uv_read_stop(s);
    client_end(c, 0);
    return;
  }
  client_send(c);
}

static void client_connected(uv_connect_t *req, int status) {
  client_t *c = req->data;
  if (status < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read) < 0) {
    client_end(c, 1);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  client_send(c);
}

static int run_client(int port) {
  struct sockaddr_in addr;
  client_t *clients = calloc((size_t)n_conns, sizeof *clients);
  message = malloc((size_t)msg_size);
  if (clients == NULL || message == NULL)
    die("client", UV_ENOMEM);
  memset(message, 'x', (size_t)msg_size);
  uv_ip4_addr("127.0.0.1", port, &addr);
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < n_conns; i++) {
    client_t *c = &clients[i];
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    int err = uv_tcp_connect(&c->connect, &c->tcp,
                             (const struct sockaddr *)&addr, client_connected);
    if (err < 0)
      die("connect", err);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  long rts = 0;
  for (long i = 0; i < n_conns; i++)
    rts += clients[i].sent;
  free(clients);
  free(message);
  if (n_failed > 0) {
    fprintf(stderr, "bench_ref: client: %ld of %ld connections failed\n",
            n_failed, n_conns);
    return 1;
  }
  printf("W5 rts=%ld secs=%.6f rts_per_s=%.0f\n", rts, secs,
         (double)rts / secs);
  return 0;
}

/* ---- main -------------------------------------------------------------- */

static long arg_long(int argc, char **argv, int i, long dflt) {
  if (i >= argc)
    return dflt;
  char *end;
  long v = strtol(argv[i], &end, 10);
  if (*end != '\0' || v < 0) {
    fprintf(stderr, "bench_ref: bad number '%s'\n", argv[i]);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc < 2 || (argc < 3 && strcmp(argv[1], "w5") != 0)) {
    fprintf(stderr, "usage: bench_ref http|httpk|echo PORT\n"
                    "       bench_ref client PORT [CONNS [MSGS [SIZE]]]\n"
                    "       bench_ref w5 [CONNS [MSGS [SIZE]]]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  const char *m = argv[1];
  int port = strcmp(m, "w5") == 0 ? 0 : (int)arg_long(argc, argv, 2, 0);
  if (strcmp(m, "client") == 0 || strcmp(m, "w5") == 0) {
    int a = 3;
    if (strcmp(m, "w5") == 0) { /* no PORT argument */
      with_server = 1;
      mode = M_ECHO;
      a = 2;
    }
    n_conns = arg_long(argc, argv, a, 100);
    n_msgs = arg_long(argc, argv, a + 1, 10000);
    msg_size = arg_long(argc, argv, a + 2, 64);
    if (n_conns < 1 || n_msgs < 1 || msg_size < 1 || msg_size > 65536) {
      fprintf(stderr, "bench_ref: client: counts must be >= 1, SIZE <= "
                      "65536\n");
      return 2;
    }
    return run_client(with_server ? listen_on(0) : port);
  }
  if (strcmp(m, "http") == 0)
    mode = M_HTTP_CLOSE;
  else if (strcmp(m, "httpk") == 0)
    mode = M_HTTP_KEEP;
  else if (strcmp(m, "echo") == 0)
    mode = M_ECHO;
  else {
    fprintf(stderr, "bench_ref: unknown mode '%s'\n", m);
    return 2;
  }
  return serve(port);
}

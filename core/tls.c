/* tls.c: TLS on a stream with OpenSSL over memory BIOs. The socket's bytes
 * go into the read BIO and come out of SSL_read as plaintext in the
 * stream's buffer; SSL_write's records come out of the write BIO and go to
 * the socket. Nothing here blocks: the handshake moves on as bytes arrive.
 * Streams: ENGINE THREAD ONLY. tls_ssl_new and tls_reason also serve the
 * peer links of the network thread (net_tls.c). */
#include "internal.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_s {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int state;        /* TLS_HANDSHAKE, TLS_OPEN or TLS_FAILED */
  acoro_io_wait_t hwait;
  char err[256];
  char raw[16 * 1024 + 512]; /* one TLS record from the socket */
};

enum { TLS_HANDSHAKE, TLS_OPEN, TLS_FAILED };

static void cancel_nothing(acoro_io_wait_t *w) { (void)w; }

/* The first queued OpenSSL error as text (the queue is then cleared). */
static void openssl_reason(char *buf, size_t len) {
  unsigned long e = ERR_get_error();
  if (e == 0)
    snprintf(buf, len, "unknown error");
  else
    ERR_error_string_n(e, buf, len);
  ERR_clear_error();
}

/* Why a session failed: the certificate check's verdict when there is one,
 * else the first queued OpenSSL error (the queue is then cleared). Shared
 * with the peer links (net_tls.c): ANY THREAD, on that session's thread. */
void tls_reason(SSL *ssl, char *buf, size_t len) {
  long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (v != X509_V_OK)
    snprintf(buf, len, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
  else
    openssl_reason(buf, len);
  ERR_clear_error();
}

acoro_tls_ctx_t *acoro_tls_ctx_new(int server, const char *cert,
                                   const char *key, const char *ca, int verify,
                                   char *err, size_t errlen) {
  SSL_CTX *ctx =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  char why[200];
  if (ctx == NULL) {
    openssl_reason(why, sizeof why);
    snprintf(err, errlen, "cannot make a TLS context: %s", why);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (server && (cert == NULL || key == NULL)) {
    snprintf(err, errlen, "a TLS server needs cert and key");
    goto fail;
  }
  if (cert != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    openssl_reason(why, sizeof why);
    snprintf(err, errlen, "cannot load certificate '%s': %s", cert, why);
    goto fail;
  }
  if (key != NULL) {
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
      openssl_reason(why, sizeof why);
      snprintf(err, errlen, "cannot load key '%s': %s", key, why);
      goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      snprintf(err, errlen, "key '%s' does not match certificate '%s'", key,
               cert ? cert : "(none)");
      goto fail;
    }
  }
  if (ca != NULL) {
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
      openssl_reason(why, sizeof why);
      snprintf(err, errlen, "cannot load CA '%s': %s", ca, why);
      goto fail;
    }
  } else if (verify && !server) {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  /* Clients verify the server unless told not to; servers ask for a
   * client certificate only when given a CA to check it against. */
  if (server)
    SSL_CTX_set_verify(ctx,
                       verify && ca
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_NONE,
                       NULL);
  else
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  return (acoro_tls_ctx_t *)ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

void acoro_tls_ctx_free(acoro_tls_ctx_t *ctx) { SSL_CTX_free((SSL_CTX *)ctx); }

/* Sends what OpenSSL has written into the write BIO. Most calls find it
 * empty (a pump that only read): asking costs less than a BIO_read. */
static int flush(acoro_stream_t *s) {
  tls_t *t = s->tls;
  char out[16 * 1024];
  int n, rc;
  if (BIO_ctrl_pending(t->wbio) == 0)
    return 0;
  while ((n = BIO_read(t->wbio, out, sizeof out)) > 0) {
    rc = stream_raw_write(s, out, (size_t)n);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* The TLS session cannot go on: records why, ends reading with EPROTO and
 * wakes whoever waits (handshake, reader, writer). */
static void fail(acoro_stream_t *s, const char *what) {
  tls_t *t = s->tls;
  char why[200];
  tls_reason(t->ssl, why, sizeof why);
  snprintf(t->err, sizeof t->err, "TLS %s: %s", what, why);
  t->state = TLS_FAILED;
  stream_read_ended(s, UV_EPROTO);
  if (s->wwait.co != NULL) {
    s->wstatus = UV_EPROTO;
    acoro_io_done(&s->wwait);
  }
  acoro_io_done(&t->hwait);
}

void tls_pump(acoro_stream_t *s) {
  tls_t *t = s->tls;
  int r, e;
  if (t->state == TLS_HANDSHAKE) {
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
      t->state = TLS_OPEN;
      acoro_io_done(&t->hwait);
    } else {
      e = SSL_get_error(t->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        flush(s); /* the alert tells the peer why */
        fail(s, "handshake failed");
        return;
      }
    }
  }
  if (t->state == TLS_OPEN) {
    /* Up to the high-water mark, or all there is while a reader waits or
     * asks for more than that (recvall of a large block). The reader's
     * want (rmin) counts even before it waits: the last records may be in
     * OpenSSL's buffers already, with nothing more to come from the socket
     * to make on_read pump them. */
    while ((s->rd.len < READ_HIGH_WATER || s->rwait.co != NULL ||
            s->rd.len < s->rmin) &&
           s->rd.status == 0) {
      /* Nothing from the socket and nothing OpenSSL holds: SSL_read could
       * only answer WANT_READ, at the cost of a trip through its record
       * layer. The stream pumps on every read, consume and arrival. */
      if (BIO_ctrl_pending(t->rbio) == 0 && !SSL_has_pending(t->ssl))
        break;
      if (rd_reserve(&s->rd, 16 * 1024, READ_CHUNK) != 0)
        break;
      r = SSL_read(t->ssl, s->rd.buf + s->rd.pos + s->rd.len,
                   (int)(s->rd.cap - s->rd.pos - s->rd.len));
      if (r > 0) {
        s->rd.len += (size_t)r;
        continue;
      }
      e = SSL_get_error(t->ssl, r);
      if (e == SSL_ERROR_ZERO_RETURN) {
        stream_read_ended(s, UV_EOF); /* the peer's close_notify */
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) {
          flush(s);
          fail(s, "read failed");
          return;
        }
      }
      break;
    }
  }
  flush(s);
}

void tls_feed(acoro_stream_t *s, const char *data, size_t n) {
  BIO_write(s->tls->rbio, data, (int)n);
  tls_pump(s);
}

void tls_raw_buffer(acoro_stream_t *s, uv_buf_t *buf) {
  *buf = uv_buf_init(s->tls->raw, sizeof s->tls->raw);
}

int tls_write(acoro_stream_t *s, const char *data, size_t len) {
  tls_t *t = s->tls;
  int rc;
  if (t->state != TLS_OPEN)
    return UV_EPROTO;
  while (len > 0) {
    int chunk = len > 64 * 1024 ? 64 * 1024 : (int)len;
    int r = SSL_write(t->ssl, data, chunk);
    if (r <= 0) {
      fail(s, "write failed");
      return UV_EPROTO;
    }
    data += r;
    len -= (size_t)r;
    rc = flush(s);
    if (rc != 0)
      return rc;
  }
  return 0;
}

void tls_close_notify(acoro_stream_t *s) {
  if (s->tls->state == TLS_OPEN) {
    SSL_shutdown(s->tls->ssl);
    flush(s);
  }
  ERR_clear_error();
}

/* The socket ended during the handshake: the handshake failed. */
void tls_read_ended(acoro_stream_t *s, int status) {
  tls_t *t = s->tls;
  if (t->state != TLS_HANDSHAKE)
    return;
  snprintf(t->err, sizeof t->err, "TLS handshake failed: %s",
           status == UV_EOF ? "connection closed by peer"
                            : uv_strerror(status));
  t->state = TLS_FAILED;
  acoro_io_done(&t->hwait);
}

void tls_wake(acoro_stream_t *s) {
  if (s->tls != NULL)
    acoro_io_done(&s->tls->hwait);
}

void tls_free(acoro_stream_t *s) {
  if (s->tls == NULL)
    return;
  SSL_free(s->tls->ssl);
  free(s->tls);
  s->tls = NULL;
}

static int is_ip_address(const char *name) {
  unsigned char buf[16];
  struct sockaddr_in6 a6;
  (void)buf;
  return uv_inet_pton(AF_INET, name, buf) == 0 ||
         uv_ip6_addr(name, 0, &a6) == 0;
}

/* A session of ctx over two memory BIOs (*rbio: the peer's bytes go in;
 * *wbio: the records to send come out; both owned by the SSL). A client
 * with a server_name checks the certificate names it: an IP address
 * against its IP entries, else a DNS name (also sent as SNI). NULL when out
 * of memory. Shared with the peer links (net_tls.c): ANY THREAD. */
SSL *tls_ssl_new(acoro_tls_ctx_t *ctx, int server, const char *server_name,
                 BIO **rbio, BIO **wbio) {
  SSL *ssl = SSL_new((SSL_CTX *)ctx);
  BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
  if (ssl == NULL || r == NULL || w == NULL) {
    BIO_free(r);
    BIO_free(w);
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_bio(ssl, r, w);
  if (server) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
    if (server_name != NULL && server_name[0] != '\0') {
      if (is_ip_address(server_name)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name);
      } else {
        SSL_set_tlsext_host_name(ssl, server_name);
        SSL_set1_host(ssl, server_name);
      }
    }
  }
  *rbio = r;
  *wbio = w;
  return ssl;
}

int acoro_stream_starttls(acoro_stream_t *s, acoro_tls_ctx_t *ctx, int server,
                          const char *server_name) {
  tls_t *t;
  if (!s->io.open)
    return ACORO_ECLOSED;
  if (s->tls != NULL)
    return ACORO_ESTATE;
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return ACORO_ENOMEM;
  t->hwait.cancel = cancel_nothing;
  t->ssl = tls_ssl_new(ctx, server, server_name, &t->rbio, &t->wbio);
  if (t->ssl == NULL) {
    free(t);
    return ACORO_ENOMEM;
  }
  s->tls = t;
  /* Bytes already buffered in plaintext (starttls after some protocol
   * talk) would be the peer's first TLS records: hand them over. */
  if (s->rd.len > 0) {
    BIO_write(t->rbio, s->rd.buf + s->rd.pos, (int)s->rd.len);
    s->rd.pos = s->rd.len = s->rd.scan = 0;
  }
  tls_pump(s);
  stream_read_start(s);
  return 0;
}

int acoro_stream_handshake(acoro_co_t *co, acoro_stream_t *s, double timeout) {
  int rc;
  if (s->tls == NULL || s->tls->state == TLS_OPEN)
    return 1;
  if (s->tls->state == TLS_FAILED || !s->io.open)
    return ACORO_ETLS;
  rc = stream_read_start(s);
  if (rc != 0)
    return ACORO_ETLS;
  rc = acoro_io_wait(co, &s->tls->hwait, timeout);
  return rc < 0 ? rc : 0;
}

const char *acoro_stream_tls_error(const acoro_stream_t *s) {
  if (s->tls == NULL || s->tls->err[0] == '\0')
    return NULL;
  return s->tls->err;
}

int acoro_stream_is_tls(const acoro_stream_t *s) { return s->tls != NULL; }

/* net_tls.c: TLS on peer links (NETWORK THREAD), with tls.c's contexts,
 * sessions over memory BIOs and failure reasons. The socket's bytes go into
 * the session here and come out as plaintext in the link's read buffer,
 * where net_link.c parses frames as on a plain link; a write batch is
 * sealed into records just before its uv_write. The acoro handshake (HELLO,
 * PROOF, SELECT) runs inside the channel once TLS is open: TLS adds to the
 * shared-secret proof, never replaces it, and the proofs bind the session
 * (net_tls_binding): a handshake relayed between two TLS sessions fails. */
#include "net_internal.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes from the socket before the TLS handshake ends: certificate chains
 * of a few KB fit many times over; the rest of the pre-auth limits (frame
 * size, deadline) apply as on plain links. */
#define TLS_PREAUTH_MAX (64u * 1024)
/* The start of a plain node's HELLO frame: length, type, magic. */
#define PLAIN_PREFIX (HDR + 8)

struct net_tls_s {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int open;         /* the TLS handshake is done */
  int sniffed;      /* the first bytes are known not to be a plain HELLO */
  size_t raw_in;    /* socket bytes before open */
  unsigned char first[PLAIN_PREFIX];
  size_t nfirst;
  char raw[16 * 1024 + 512]; /* one TLS record from the socket */
};

/* The host part of "host:port" or "[v6]:port", for the certificate's name
 * check of an outbound link. */
static void host_of(const char *loc, char *host, size_t cap) {
  const char *colon = strrchr(loc, ':');
  size_t len = colon ? (size_t)(colon - loc) : strlen(loc);
  if (loc[0] == '[' && len >= 2 && loc[len - 1] == ']') {
    loc++;
    len -= 2;
  }
  if (len >= cap)
    len = cap - 1;
  memcpy(host, loc, len);
  host[len] = '\0';
}

/* Why the session failed, for a log line: the certificate check's verdict
 * (tls_reason), else OpenSSL's reason without its error code. An alert
 * from the peer means it refused this node (its certificate, or none
 * given when asked): said plainly. */
static void why_failed(SSL *ssl, char *buf, size_t len) {
  unsigned long e = ERR_peek_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  if (r == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
    tls_reason(ssl, buf, len);
    return;
  }
  if (strstr(r, "alert") != NULL)
    snprintf(buf, len, "the peer refused this node (%s)", r);
  else
    snprintf(buf, len, "%s", r);
  ERR_clear_error();
}

int net_tls_start(link_t *l) {
  acoro_net_t *n = l->net;
  net_tls_t *t = calloc(1, sizeof *t);
  char host[FIELD];
  if (t == NULL) {
    net_link_close(l, 0, 0, "out of memory");
    return -1;
  }
  host_of(l->addr, host, sizeof host);
  t->ssl =
      tls_ssl_new(l->outbound ? n->tls_client : n->tls_server, !l->outbound,
                  l->outbound ? host : NULL, &t->rbio, &t->wbio);
  if (t->ssl == NULL) {
    free(t);
    net_link_close(l, 0, 0, "out of memory");
    return -1;
  }
  l->tls = t;
  if (!l->outbound)
    SSL_set_num_tickets(t->ssl, 0); /* links never resume a session */
  if (l->outbound)
    SSL_do_handshake(t->ssl); /* the ClientHello, for net_kick to send */
  ERR_clear_error();
  return 0;
}

void net_tls_free(link_t *l) {
  if (l->tls == NULL)
    return;
  SSL_free(l->tls->ssl);
  ERR_clear_error();
  free(l->tls);
  l->tls = NULL;
}

int net_tls_is_open(const link_t *l) { return l->tls->open; }

void net_tls_raw_buffer(link_t *l, uv_buf_t *buf) {
  *buf = uv_buf_init(l->tls->raw, sizeof l->tls->raw);
}

/* Starts a write of the records OpenSSL has produced (handshake messages,
 * alerts, tickets) when no write is in flight. */
void net_tls_flush(link_t *l) {
  size_t pending = BIO_ctrl_pending(l->tls->wbio);
  uv_buf_t b;
  char *w;
  if (pending == 0 || l->writing || l->closing)
    return;
  w = malloc(pending);
  if (w == NULL) {
    net_link_close(l, 0, 0, "out of memory");
    return;
  }
  BIO_read(l->tls->wbio, w, (int)pending);
  uv_mutex_lock(&l->net->mu);
  l->net->stats.bytes_out += pending;
  l->net->stats.writes++;
  uv_mutex_unlock(&l->net->mu);
  l->wbuf = w;
  l->wdata = 0;
  l->writing = 1;
  l->wreq.data = l;
  b = uv_buf_init(w, (unsigned)pending);
  if (uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, net_on_written) != 0) {
    l->writing = 0;
    l->wbuf = NULL;
    free(w);
    net_link_close(l, 1, 0, "write failed");
  }
}

int net_tls_seal(link_t *l, char **buf, size_t *len) {
  net_tls_t *t = l->tls;
  size_t pending;
  char *out;
  char why[200];
  if (SSL_write(t->ssl, *buf, (int)*len) != (int)*len) {
    tls_reason(t->ssl, why, sizeof why);
    net_link_close(l, 1, 0, "TLS write failed: %s", why);
    return -1;
  }
  pending = BIO_ctrl_pending(t->wbio);
  out = malloc(pending);
  if (out == NULL) {
    net_link_close(l, 0, 0, "out of memory");
    return -1;
  }
  BIO_read(t->wbio, out, (int)pending);
  free(*buf);
  *buf = out;
  *len = pending;
  return 0;
}

/* The peer sent the start of a plain HELLO: it is a node without TLS. It
 * is told in a plain REFUSE (which it reads before authentication). */
static void refuse_plain(link_t *l) {
  static const char text[] = "\0this node requires TLS";
  l->ctl_len = 0; /* our HELLO waits for TLS: it never goes */
  net_ctl_frame(l, F_REFUSE, text, sizeof text - 1);
  l->tls->sniffed = -1; /* net_tls_closing: ctl goes out as it is */
  net_link_close(l, 1, 1,
                 "refused: the peer does not use TLS (this node requires it)");
}

/* Appends the plaintext the session has to the link's read buffer;
 * returns the count, or -1 when the link closed. */
static ssize_t drain_plain(link_t *l) {
  net_tls_t *t = l->tls;
  size_t got = 0;
  char why[200];
  for (;;) {
    int r, e;
    if (net_rbuf_room(l) != 0) {
      net_link_close(l, 0, 0, "out of memory");
      return -1;
    }
    r = SSL_read(t->ssl, l->rbuf + l->rlen, (int)(l->rcap - l->rlen));
    if (r > 0) {
      l->rlen += (size_t)r;
      got += (size_t)r;
      continue;
    }
    e = SSL_get_error(t->ssl, r);
    /* close_notify (ZERO_RETURN) ends nothing here: the frames before it
     * (a REFUSE) are parsed first, and the socket's EOF follows. */
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
        e == SSL_ERROR_ZERO_RETURN)
      break;
    why_failed(t->ssl, why, sizeof why);
    /* before authentication (TLS 1.3: the server checks the client's
     * certificate after the client's side of the handshake is done) */
    net_link_close(l, 1, 1, "%s: %s",
                   l->state < L_SELECT ? "refused: TLS handshake failed"
                                       : "TLS failed",
                   why);
    return -1;
  }
  /* The plaintext was counted as received already; the caller adds it. */
  l->rlen -= got;
  return (ssize_t)got;
}

ssize_t net_tls_in(link_t *l, const char *raw, size_t n) {
  net_tls_t *t = l->tls;
  char why[200];
  int was_open = t->open;
  ssize_t got = 0;
  if (!t->open) {
    t->raw_in += n;
    if (t->raw_in > TLS_PREAUTH_MAX) {
      net_link_close(l, 1, 0,
                     "malformed: over %u bytes of TLS handshake before "
                     "authentication",
                     TLS_PREAUTH_MAX);
      return -1;
    }
  }
  if (!t->sniffed) {
    /* A plain node's first bytes would make OpenSSL say only "wrong
     * version number": recognise its HELLO to say what is wrong. */
    unsigned char hello[PLAIN_PREFIX];
    size_t k = n < PLAIN_PREFIX - t->nfirst ? n : PLAIN_PREFIX - t->nfirst;
    net_frame_header(hello, F_HELLO, HELLO_LEN);
    memcpy(hello + HDR, MAGIC, 8);
    memcpy(t->first + t->nfirst, raw, k);
    t->nfirst += k;
    raw += k;
    n -= k;
    if (memcmp(t->first, hello, t->nfirst) != 0) {
      t->sniffed = 1;
      BIO_write(t->rbio, t->first, (int)t->nfirst);
    } else if (t->nfirst == PLAIN_PREFIX) {
      refuse_plain(l);
      return -1;
    } else {
      return 0; /* too few bytes to tell yet */
    }
  }
  if (n > 0)
    BIO_write(t->rbio, raw, (int)n);
  if (!t->open) {
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
      t->open = 1;
    } else {
      int e = SSL_get_error(t->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        why_failed(t->ssl, why, sizeof why);
        /* graceful: the alert OpenSSL wrote tells the peer why */
        net_link_close(l, 1, 1, "refused: TLS handshake failed: %s", why);
        return -1;
      }
    }
  }
  if (t->open) {
    got = drain_plain(l);
    if (got < 0)
      return -1;
  }
  /* Our HELLO waited for the channel; OpenSSL may have records to send
   * (handshake, tickets, key updates): net_kick writes them in order. */
  if ((!was_open && t->open) || BIO_ctrl_pending(t->wbio) > 0)
    net_kick(l);
  return got;
}

void net_tls_ended(link_t *l, int status) {
  net_link_close(l, 1, 0, "refused: TLS handshake failed: %s",
                 status == UV_EOF
                     ? "connection closed by the peer (a node without TLS, "
                       "or one that refused this node's certificate)"
                     : uv_strerror(status));
}

int net_tls_closing(link_t *l, char **buf, size_t *len) {
  net_tls_t *t = l->tls;
  size_t pending;
  *buf = NULL;
  *len = 0;
  if (t->sniffed < 0) {
    /* a plain REFUSE to a plain node: no TLS at all */
    pending = l->ctl_len;
    *buf = malloc(pending ? pending : 1);
    if (*buf == NULL)
      return -1;
    memcpy(*buf, l->ctl, pending);
    *len = pending;
    l->ctl_len = 0;
    return 0;
  }
  if (t->open) {
    if (l->ctl_len > 0)
      SSL_write(t->ssl, l->ctl, (int)l->ctl_len);
    SSL_shutdown(t->ssl); /* close_notify */
  }
  l->ctl_len = 0; /* before open: a HELLO that never goes */
  ERR_clear_error();
  pending = BIO_ctrl_pending(t->wbio);
  if (pending == 0)
    return 0;
  *buf = malloc(pending);
  if (*buf == NULL)
    return -1;
  BIO_read(t->wbio, *buf, (int)pending);
  *len = pending;
  return 0;
}

int net_tls_binding(link_t *l, unsigned char out[BINDING_LEN]) {
  static const char label[] = BINDING_LABEL;
  if (l->tls == NULL || !l->tls->open ||
      SSL_export_keying_material(l->tls->ssl, out, BINDING_LEN, label,
                                 sizeof label - 1, NULL, 0, 0) != 1) {
    ERR_clear_error();
    return -1;
  }
  return 0;
}

/* test-net-tls.c: peer links on TLS (net_tls.c) over 127.0.0.1: two or
 * three nets of one engine in this process, with certificates this file
 * makes with the OpenSSL API in a temporary folder (a CA, another CA, leaf
 * certificates for 127.0.0.1, one expired, one for another name, one
 * self-signed). Every wait is for an event, bounded in time. */
#include "net_support.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BIG (3u * 1024 * 1024 + 17)

/* ---- certificates ---- */

static char dir[64];

static void cert_path(char *out, size_t cap, const char *name,
                      const char *ext) {
  snprintf(out, cap, "%s/%s.%s", dir, name, ext);
}

/* A certificate for key, named cn, valid from `from` to `to` seconds from
 * now, with subjectAltName san (NULL: none), signed by issuer/ikey (NULL:
 * self-signed); ca: a CA. Written with its key as dir/name.pem, .key. */
static void make_cert(const char *name, const char *cn, const char *san,
                      long from, long to, int ca, const char *issuer,
                      X509 **out_cert, EVP_PKEY **out_key) {
  static long serial = 1;
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *x = X509_new(), *icert = NULL;
  EVP_PKEY *ikey = key;
  X509V3_CTX v3;
  X509_EXTENSION *ext;
  X509_NAME *nm;
  char path[128];
  FILE *f;
  ASSERT_TRUE(key != NULL && x != NULL);
  if (issuer != NULL) {
    cert_path(path, sizeof path, issuer, "pem");
    f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    icert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cert_path(path, sizeof path, issuer, "key");
    f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    ikey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ASSERT_TRUE(icert != NULL && ikey != NULL);
  }
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), from);
  X509_gmtime_adj(X509_getm_notAfter(x), to);
  X509_set_pubkey(x, key);
  nm = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                             -1, -1, 0);
  X509_set_issuer_name(x, icert ? X509_get_subject_name(icert) : nm);
  X509V3_set_ctx(&v3, icert ? icert : x, x, NULL, NULL, 0);
  if (ca) {
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                              "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
                              "critical,keyCertSign,cRLSign");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (san != NULL) {
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    ASSERT_TRUE(ext != NULL);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  ASSERT_TRUE(X509_sign(x, ikey, EVP_sha256()) > 0);
  cert_path(path, sizeof path, name, "pem");
  f = fopen(path, "w");
  ASSERT_TRUE(f != NULL);
  PEM_write_X509(f, x);
  fclose(f);
  cert_path(path, sizeof path, name, "key");
  f = fopen(path, "w");
  ASSERT_TRUE(f != NULL);
  PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  if (ikey != key)
    EVP_PKEY_free(ikey);
  X509_free(icert);
  if (out_cert)
    *out_cert = x;
  else
    X509_free(x);
  if (out_key)
    *out_key = key;
  else
    EVP_PKEY_free(key);
}

static void make_certs(void) {
  const long day = 86400;
  snprintf(dir, sizeof dir, "/tmp/acoro-net-tls-XXXXXX");
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  make_cert("ca", "acoro test CA", NULL, 0, 30 * day, 1, NULL, NULL, NULL);
  make_cert("other_ca", "other CA", NULL, 0, 30 * day, 1, NULL, NULL, NULL);
  make_cert("node", "node", "IP:127.0.0.1", 0, 30 * day, 0, "ca", NULL, NULL);
  make_cert("node2", "node2", "IP:127.0.0.1", 0, 30 * day, 0, "ca", NULL, NULL);
  make_cert("expired", "expired", "IP:127.0.0.1", -2 * day, -day, 0, "ca", NULL,
            NULL);
  make_cert("elsewhere", "elsewhere", "DNS:elsewhere.invalid", 0, 30 * day, 0,
            "ca", NULL, NULL);
  make_cert("self", "self", "IP:127.0.0.1", 0, 30 * day, 0, NULL, NULL, NULL);
}

static void remove_certs(void) {
  static const char *names[] = {"ca",      "other_ca",  "node", "node2",
                                "expired", "elsewhere", "self"};
  char path[128];
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    cert_path(path, sizeof path, names[i], "pem");
    unlink(path);
    cert_path(path, sizeof path, names[i], "key");
    unlink(path);
  }
  rmdir(dir);
}

/* ---- nets ---- */

/* An engine (nt_engine) and the certificates in a new folder. */
static acoro_engine_t *cert_engine(void) {
  acoro_engine_t *e = nt_engine();
  make_certs();
  return e;
}

/* Starts a net with secret "s3cret"; cert (NULL: plain, no TLS at all) and
 * its key from the test folder, ca likewise (NULL: none). client_cert 0:
 * the client context gives no certificate. */
static void start_tls(acoro_engine_t *e, side_t *s, const char *cert,
                      const char *ca, int client_cert) {
  acoro_net_opts_t o = nt_opts("s3cret");
  char c[128], k[128], a[128], err[300];
  if (cert != NULL) {
    cert_path(c, sizeof c, cert, "pem");
    cert_path(k, sizeof k, cert, "key");
    if (ca)
      cert_path(a, sizeof a, ca, "pem");
    s->srv = acoro_tls_ctx_new(1, c, k, ca ? a : NULL, 1, err, sizeof err);
    if (s->srv == NULL)
      fprintf(stderr, "%s\n", err);
    s->cli =
        acoro_tls_ctx_new(0, client_cert ? c : NULL, client_cert ? k : NULL,
                          ca ? a : NULL, 1, err, sizeof err);
    if (s->cli == NULL)
      fprintf(stderr, "%s\n", err);
    ASSERT_TRUE(s->srv != NULL && s->cli != NULL);
    o.tls_server = s->srv;
    o.tls_client = s->cli;
  }
  nt_start(e, s, &o);
}

static void finish(acoro_engine_t *e, side_t *a, side_t *b) {
  nt_finish(e, a, b);
  remove_certs();
}

/* Bursts both ways, round trips (the kind of traffic a plain link writes
 * directly from the engine thread: never on TLS), and messages split in
 * 64 KB pieces: all arrive once, in order, and the link stays up. */
TEST(net_tls_exchange_keeps_order_round_trips_and_splits) {
  acoro_engine_t *e = cert_engine();
  side_t a = {0}, b = {0};
  const uint32_t n = 5000;
  uint32_t i;
  char *big = malloc(BIG);
  size_t j;
  ASSERT_TRUE(big != NULL);
  for (j = 0; j < BIG; j++)
    big[j] = (char)nt_big_byte(j);
  start_tls(e, &a, "node", "ca", 1);
  start_tls(e, &b, "node2", "ca", 1);
  nt_link_pair(e, &a, &b);
  for (i = 0; i < n; i++) {
    nt_send_seq(&a, i, 4 + i % 300);
    nt_send_seq(&b, i, 4 + i % 200);
  }
  PUMP_UNTIL(e, 20, a.msgs == n && b.msgs == n);
  ASSERT_EQ(a.msgs, n);
  ASSERT_EQ(b.msgs, n);
  /* Round trips: b echoes every message back as it comes. */
  b.echo = 1;
  for (i = 0; i < 300; i++) {
    nt_send_seq(&a, n + i, 4 + i);
    PUMP_UNTIL(e, 10, a.msgs == n + i + 1 || a.downs > 0);
    ASSERT_EQ(a.msgs, n + i + 1);
  }
  b.echo = 0;
  /* Large messages between small ones, both ways at once. */
  ASSERT_EQ(acoro_net_send(a.net, a.peer, big, BIG), 0);
  nt_send_seq(&a, n + 300, 10);
  ASSERT_EQ(acoro_net_send(b.net, b.peer, big, BIG), 0);
  ASSERT_EQ(acoro_net_send(a.net, a.peer, big, BIG), 0);
  PUMP_UNTIL(e, 30, b.bigs == 2 && a.bigs == 1 && b.next_seq == n + 301);
  ASSERT_EQ(b.bigs, 2);
  ASSERT_EQ(a.bigs, 1);
  ASSERT_EQ(b.next_seq, n + 301);
  ASSERT_EQ(a.big_broken + b.big_broken, 0);
  ASSERT_EQ(a.order_broken + b.order_broken, 0);
  ASSERT_EQ(a.downs + b.downs, 0);
  free(big);
  finish(e, &a, &b);
}

/* Certificates b cannot trust, each refused with both sides saying why;
 * meanwhile a good peer c of b keeps exchanging messages. */
TEST(net_tls_bad_certificates_refused_others_unharmed) {
  static const struct {
    const char *cert, *ca, *a_says, *b_says;
  } cases[] = {
      /* a trusts another CA: it refuses b's certificate */
      {"node", "other_ca", "certificate verify failed", "TLS handshake failed"},
      /* b's CA does not know a's certificate (self-signed), nor an expired
       * one: b refuses, after a's side of the handshake ended */
      {"self", "ca", "TLS", "certificate verify failed"},
      {"expired", "ca", "TLS", "certificate has expired"},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    acoro_engine_t *e = cert_engine();
    side_t a = {0}, b = {0}, c = {0};
    start_tls(e, &b, "node2", "ca", 1);
    start_tls(e, &c, "node", "ca", 1);
    nt_link_pair(e, &c, &b);
    b.ups = 0; /* expect_refused: no peer up from a */
    start_tls(e, &a, cases[i].cert, cases[i].ca, 1);
    nt_expect_refused(e, &a, &b, cases[i].a_says, cases[i].b_says);
    nt_send_seq(&c, 0, 40);
    nt_send_seq(&b, 0, 40);
    PUMP_UNTIL(e, 10, c.msgs == 1 && b.msgs == 1);
    ASSERT_EQ(c.msgs, 1);
    ASSERT_EQ(b.msgs, 1);
    ASSERT_EQ(b.downs + c.downs, 0);
    nt_stop_side(&c);
    finish(e, &a, &b);
  }
}

/* a (cert a_cert, NULL: no TLS; a client certificate if a_client_cert)
 * connects to b (cert b_cert, likewise), both trusting "ca": refused, both
 * saying why. */
static void refused(const char *a_cert, int a_client_cert, const char *b_cert,
                    const char *a_says, const char *b_says) {
  acoro_engine_t *e = cert_engine();
  side_t a = {0}, b = {0};
  start_tls(e, &a, a_cert, "ca", a_client_cert);
  start_tls(e, &b, b_cert, "ca", 1);
  nt_expect_refused(e, &a, &b, a_says, b_says);
  finish(e, &a, &b);
}

/* The certificate b shows must name the address a connects to. */
TEST(net_tls_certificate_for_another_name_refused) {
  refused("node", 1, "elsewhere", "certificate verify failed",
          "TLS handshake failed");
}

/* A node without TLS and one with it refuse each other, whichever
 * connects, each saying why. */
TEST(net_tls_plain_and_tls_nodes_refuse_each_other) {
  refused(NULL, 0, "node", "this node requires TLS",
          "the peer does not use TLS");
  refused("node", 1, NULL, "TLS", "the peer uses TLS and this node has no");
}

/* b asks for a client certificate (it has a CA and verifies); a gives
 * none: refused, both saying so. */
TEST(net_tls_mutual_client_without_certificate_refused) {
  refused("node", 0, "node2", "certificate", "certificate");
}

/* TLS adds to the secret's proof, never replaces it. */
TEST(net_tls_wrong_secret_still_refused) {
  acoro_engine_t *e = cert_engine();
  side_t a = {0}, b = {0};
  char c[128], k[128], ca[128], err[300];
  acoro_net_opts_t o = nt_opts("other");
  start_tls(e, &b, "node2", "ca", 1);
  cert_path(c, sizeof c, "node", "pem");
  cert_path(k, sizeof k, "node", "key");
  cert_path(ca, sizeof ca, "ca", "pem");
  a.srv = acoro_tls_ctx_new(1, c, k, ca, 1, err, sizeof err);
  a.cli = acoro_tls_ctx_new(0, c, k, ca, 1, err, sizeof err);
  ASSERT_TRUE(a.srv != NULL && a.cli != NULL);
  o.tls_server = a.srv;
  ASSERT_EQ(acoro_net_start(e, &o, &nt_host, &a, &a.net), ACORO_EINVAL);
  o.tls_client = a.cli;
  ASSERT_EQ(acoro_net_start(e, &o, &nt_host, &a, &a.net), 0);
  nt_expect_refused(e, &a, &b, "wrong secret", "wrong secret");
  finish(e, &a, &b);
}

/* TLS handshake bytes count against the pre-authentication limits: a
 * ClientHello declared 128 KB long (OpenSSL would buffer that much) is cut
 * off at 64 KB; a connection that says nothing is closed at the handshake
 * deadline. A good peer of b keeps exchanging messages meanwhile. */
TEST(net_tls_handshake_bytes_and_time_are_limited) {
  acoro_engine_t *e = cert_engine();
  side_t b = {0}, c = {0};
  char rec[5 + 16384];
  int big, silent, k;
  start_tls(e, &b, "node2", "ca", 1);
  start_tls(e, &c, "node", "ca", 1);
  nt_link_pair(e, &c, &b);
  big = nt_raw_connect(acoro_net_location(b.net));
  silent = nt_raw_connect(acoro_net_location(b.net));
  ASSERT_TRUE(big >= 0 && silent >= 0);
  memset(rec, 0, sizeof rec);
  rec[0] = 0x16; /* handshake record, TLS 1.0 framing, 16 KB */
  rec[1] = 0x03;
  rec[2] = 0x01;
  rec[3] = 0x40;
  rec[5] = 0x01; /* ClientHello of 0x01ff00 bytes */
  rec[6] = 0x01;
  rec[7] = (char)0xff;
  for (k = 0; k < 5; k++) {
    if (k > 0)
      memset(rec + 5, 0, 4);
    if (send(big, rec, sizeof rec, MSG_NOSIGNAL) != (ssize_t)sizeof rec)
      break; /* closed already */
    PUMP_UNTIL(e, 0.05, 0);
  }
  PUMP_UNTIL(e, 10, nt_has(b.logs, "bytes of TLS handshake before"));
  if (!nt_has(b.logs,
              "over 65536 bytes of TLS handshake before authentication"))
    fprintf(stderr, "%s", b.logs);
  ASSERT_TRUE(nt_has(
      b.logs, "over 65536 bytes of TLS handshake before authentication"));
  PUMP_UNTIL(e, 15, nt_has(b.logs, "handshake not finished within"));
  ASSERT_TRUE(nt_has(b.logs, "handshake not finished within 5 s"));
  nt_send_seq(&c, 0, 40);
  PUMP_UNTIL(e, 10, b.msgs == 1);
  ASSERT_EQ(b.msgs, 1);
  ASSERT_EQ(b.downs + c.downs, 0);
  close(big);
  close(silent);
  nt_stop_side(&c);
  finish(e, &b, NULL);
}

/* Two TLS nodes connect to each other at once: the duplicate link's REFUSE
 * goes sealed with close_notify, one link stays, both connects succeed and
 * messages flow both ways in order. */
TEST(net_tls_simultaneous_connect_keeps_one_link) {
  int round;
  for (round = 0; round < 3; round++) {
    acoro_engine_t *e = cert_engine();
    side_t a = {0}, b = {0};
    start_tls(e, &a, "node", "ca", 1);
    start_tls(e, &b, "node2", "ca", 1);
    nt_simultaneous_connect(e, &a, &b);
    finish(e, &a, &b);
  }
}

/* net_handshake.c: a link's handshake on the NETWORK THREAD, from its
 * challenge to the pair's chosen link (net.c's top comment, HANDSHAKE, and
 * docs/security.md): HELLO, the proofs (PROOF_I, then PROOF_A), REFUSE,
 * the arbiter's SELECT or REFUSE(DUP) (duplicate-link arbitration: one
 * link per pair of nodes), the peer made when a link comes up, and the
 * bounds on unauthenticated inbound links (admission, eviction).
 * net_link.c opens, reads, writes and closes links and hands each frame
 * of a link not yet up to net_hs_frame. */
#include "net_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

/* ---- HELLO and the proofs ---- */

/* A fresh random challenge for the link's HELLO: 0, or -1. */
int net_hs_begin(link_t *l) {
  return RAND_bytes(l->my_chal, CHAL_LEN) == 1 ? 0 : -1;
}

/* Builds this side's HELLO, keeps it (its half of the transcript) and
 * queues it. */
void net_hs_hello(link_t *l) {
  acoro_net_t *n = l->net;
  unsigned char *h = l->my_hello;
  memset(h, 0, HELLO_LEN);
  memcpy(h + HELLO_MAGIC, MAGIC, 8);
  h[HELLO_MAJOR] = (unsigned char)(n->vmajor >> 8);
  h[HELLO_MAJOR + 1] = (unsigned char)n->vmajor;
  h[HELLO_MINOR] = (unsigned char)(n->vminor >> 8);
  h[HELLO_MINOR + 1] = (unsigned char)n->vminor;
  net_put64(h + HELLO_INC, n->inc);
  memcpy(h + HELLO_CHAL, l->my_chal, CHAL_LEN);
  h[HELLO_FLAGS] = n->has_secret ? 1 : 0;
  memcpy(h + HELLO_LOC, n->location, strlen(n->location));
  memcpy(h + HELLO_NAME, n->name, strlen(n->name));
  net_ctl_frame(l, F_HELLO, h, HELLO_LEN);
}

/* The proofs of both directions over the whole transcript: the label, the
 * direction ('I' initiator, 'A' acceptor), the initiator's HELLO, the
 * acceptor's HELLO (both challenges, incarnations, locations and names, as
 * sent) and, on TLS, the session's exporter value. A proof made for one
 * link, one pair of nodes or one direction is worth nothing anywhere else:
 * no node can be used as an oracle for another link (a reflection). */
static int make_proofs(link_t *l, const unsigned char *theirs) {
  const acoro_net_t *n = l->net;
  enum { LBL = sizeof PROOF_LABEL - 1 };
  unsigned char msg[LBL + 1 + 2 * HELLO_LEN + BINDING_LEN];
  const unsigned char *hi = l->outbound ? l->my_hello : theirs;
  const unsigned char *ha = l->outbound ? theirs : l->my_hello;
  unsigned char *pi = l->outbound ? l->pf_send : l->pf_want;
  unsigned char *pa = l->outbound ? l->pf_want : l->pf_send;
  unsigned int len = PROOF_LEN;
  memset(msg, 0, sizeof msg);
  memcpy(msg, PROOF_LABEL, LBL);
  memcpy(msg + LBL + 1, hi, HELLO_LEN);
  memcpy(msg + LBL + 1 + HELLO_LEN, ha, HELLO_LEN);
  if (l->tls && net_tls_binding(l, msg + LBL + 1 + 2 * HELLO_LEN) != 0)
    return -1;
  msg[LBL] = 'I';
  if (HMAC(EVP_sha256(), n->key, KEY_LEN, msg, sizeof msg, pi, &len) == NULL)
    return -1;
  msg[LBL] = 'A';
  len = PROOF_LEN;
  if (HMAC(EVP_sha256(), n->key, KEY_LEN, msg, sizeof msg, pa, &len) == NULL)
    return -1;
  return 0;
}

/* A challenge this node issued on any link it has open (this one too): a
 * peer that sends one back is replaying this node's own words. */
static int issued_here(const acoro_net_t *n, const unsigned char *chal) {
  const link_t *m;
  for (m = n->links; m != NULL; m = m->next)
    if (m->state >= L_HELLO && memcmp(m->my_chal, chal, CHAL_LEN) == 0)
      return 1;
  return 0;
}

/* ---- duplicate-link arbitration: one link per pair, and its peer ---- */

/* Orders nodes by (incarnation, location): the lower one arbitrates. */
static int key_cmp(uint64_t ia, const char *la, uint64_t ib, const char *lb) {
  if (ia != ib)
    return ia < ib ? -1 : 1;
  return strcmp(la, lb);
}

static void resolve_dupwaits(acoro_net_t *n, peer_t *p) {
  dupwait_t **pp = &n->dupwaits, *d;
  while ((d = *pp) != NULL) {
    if (d->inc == p->inc && strcmp(d->location, p->location) == 0) {
      *pp = d->next;
      net_post_connect(n, d->req, 0, p->id, NULL);
      free(d);
    } else {
      pp = &d->next;
    }
  }
}

/* The link carries the pair's traffic from now on: a new peer. */
static void link_up(link_t *l) {
  acoro_net_t *n = l->net;
  peer_t *p = calloc(1, sizeof *p), *old;
  ev_t *ev;
  size_t ll, nl;
  if (p == NULL) {
    net_link_close(l, 0, 0, "out of memory");
    return;
  }
  old = net_peer_by_key(n, l->their_inc, l->their_loc);
  if (old && old->link)
    net_link_close(old->link, 1, 0, "replaced by a new link");
  p->id = n->next_peer++;
  p->dfd = p->idle_fd = -1; /* until net_kick finds the link idle */
  p->inc = l->their_inc;
  memcpy(p->location, l->their_loc, FIELD);
  memcpy(p->name, l->their_name, FIELD);
  p->link = l;
  l->peer = p;
  if (!l->outbound)
    n->handshaking--;
  l->state = L_UP;
  l->last_rx = l->last_tx = l->last_msg = net_now();
  uv_mutex_lock(&n->mu);
  p->next = n->peers;
  n->peers = p;
  n->stats.peers++;
  uv_mutex_unlock(&n->mu);
  ll = strlen(p->location);
  nl = strlen(p->name);
  ev = net_ev_new(EV_UP, p->id, p->location, nl + 1);
  if (ev) {
    memcpy(ev->text + ll + 1, p->name, nl);
    ev->inc = p->inc;
  }
  net_post(n, ev);
  net_log(n, 2, "peer %s (%s) up", p->location, p->name);
  if (l->has_req)
    net_post_connect(n, l->req, 0, p->id, NULL);
  l->has_req = 0;
  resolve_dupwaits(n, p);
}

/* This link lost to another link of the same pair. A connect request on it
 * ends with the pair's peer, now or when the chosen link comes up. */
static void link_duplicate(link_t *l) {
  acoro_net_t *n = l->net;
  peer_t *p = net_peer_by_key(n, l->their_inc, l->their_loc);
  if (l->has_req && p) {
    net_post_connect(n, l->req, 0, p->id, NULL);
  } else if (l->has_req) {
    dupwait_t *d = calloc(1, sizeof *d);
    if (d) {
      d->req = l->req;
      d->inc = l->their_inc;
      memcpy(d->location, l->their_loc, FIELD);
      d->deadline = net_now() + n->hs_timeout;
      d->next = n->dupwaits;
      n->dupwaits = d;
    } else {
      net_post_connect(n, l->req, ACORO_ENOMEM, 0, "out of memory");
    }
  }
  l->has_req = 0;
  net_link_close(l, 2, 1,
                 "duplicate link closed (the pair keeps its other one)");
}

/* ---- the frames of the handshake ---- */

/* The other's HELLO: checks it, then the initiator proves itself at once
 * (PROOF_I) and the acceptor waits for that proof. Every refusal here is
 * decided by each side alone, so both log one line. A node dialled on a
 * discovery ping must be at the location the ping named: else whoever sent
 * the ping could relay this node's proof to another node (which would take
 * the relay for this node). */
static void on_hello(link_t *l, const unsigned char *h) {
  acoro_net_t *n = l->net;
  int major = h[HELLO_MAJOR] << 8 | h[HELLO_MAJOR + 1];
  int minor = h[HELLO_MINOR] << 8 | h[HELLO_MINOR + 1];
  int secret = h[HELLO_FLAGS] & 1;
  if (memcmp(h + HELLO_MAGIC, MAGIC, 8) != 0) {
    net_link_close(l, 1, 0, "refused: not an acoro node (bad magic)");
    return;
  }
  net_sanitize(l->their_loc, FIELD, (const char *)h + HELLO_LOC, FIELD);
  net_sanitize(l->their_name, FIELD, (const char *)h + HELLO_NAME, FIELD);
  l->their_inc = net_get64(h + HELLO_INC);
  if (major != n->vmajor) {
    net_link_close(l, 1, 0,
                   "refused: protocol version %d.%d, this node speaks %d.%d",
                   major, minor, n->vmajor, n->vminor);
  } else if (secret != n->has_secret) {
    net_link_close(l, 1, 0, "refused: %s",
                   secret ? "the peer has a secret and this node has none"
                          : "the peer has no secret and this node has one");
  } else if (key_cmp(l->their_inc, l->their_loc, n->inc, n->location) == 0) {
    net_link_close(l, 1, 0, "refused: a connection to this node itself");
  } else if (l->discovered && strcmp(l->their_loc, l->addr) != 0) {
    net_link_close(l, 1, 0,
                   "refused: the node discovered at %s says it is %s (a "
                   "relay?)",
                   l->addr, l->their_loc);
  } else if (issued_here(n, h + HELLO_CHAL)) {
    net_link_close(l, 1, 0,
                   "refused: the peer's challenge is one this node issued "
                   "(a reflected handshake)");
  } else if (make_proofs(l, h) != 0) {
    net_link_close(l, 0, 0, "cannot compute the proofs");
  } else {
    l->state = L_PROOF;
    l->answered = 1;
    if (l->outbound) {
      net_ctl_frame(l, F_PROOF, l->pf_send, PROOF_LEN);
      net_kick(l);
    }
  }
}

/* The other's proof checked (both sides are authenticated once each has
 * checked the other's): the arbiter of the pair takes the link up and
 * sends SELECT, or REFUSE(DUP) when the pair has a link up already. */
static void arbitrate(link_t *l) {
  acoro_net_t *n = l->net;
  if (key_cmp(n->inc, n->location, l->their_inc, l->their_loc) > 0) {
    l->state = L_SELECT; /* the other node arbitrates */
    net_kick(l);
    return;
  }
  if (net_peer_by_key(n, l->their_inc, l->their_loc) != NULL) {
    static const char dup[] = "\001duplicate link";
    net_ctl_frame(l, F_REFUSE, dup, sizeof dup - 1);
    net_kick(l);
    link_duplicate(l);
    return;
  }
  net_ctl_frame(l, F_SELECT, NULL, 0);
  link_up(l); /* SELECT is in ctl: it precedes any data */
  net_kick(l);
}

/* The other's proof. The acceptor proves itself only now, once the
 * initiator has: whoever connects without the secret gets nothing computed
 * from it (no offline guessing from an acceptor's proof). A wrong proof
 * is answered with a REFUSE saying so (what a failed online guess learns
 * anyway), so that both sides log why. */
static void on_proof(link_t *l, const unsigned char *theirs) {
  if (CRYPTO_memcmp(l->pf_want, theirs, PROOF_LEN) != 0) {
    static const char wrong[] = "\002wrong secret (proof mismatch)";
    l->answered = 0; /* not a node of this group: no quick retry */
    if (!l->outbound) {
      net_ctl_frame(l, F_REFUSE, wrong, sizeof wrong - 1);
      net_kick(l);
    }
    net_link_close(l, 1, 1, "refused: wrong secret (proof mismatch)");
    return;
  }
  l->authed = 1;
  if (l->outbound)
    net_dial_up(l->net, l->addr); /* its next failure is news */
  else
    net_ctl_frame(l, F_PROOF, l->pf_send, PROOF_LEN);
  OPENSSL_cleanse(l->pf_send, PROOF_LEN);
  arbitrate(l);
}

void net_hs_refuse(link_t *l, const unsigned char *p, size_t len) {
  char text[REFUSE_TEXT_MAX + 1];
  if (len >= 1 && p[0] == REFUSE_DUP && l->state == L_SELECT) {
    link_duplicate(l);
    return;
  }
  if (len >= 1 && p[0] == REFUSE_WRONG && l->state == L_PROOF) {
    l->answered = 0;
    net_link_close(l, 1, 0, "refused: wrong secret (proof mismatch)");
    return;
  }
  net_sanitize(text, sizeof text, len > 1 ? (const char *)p + 1 : "",
               len > 1 ? len - 1 : 0);
  net_link_close(l, 1, 0, "refused by the peer: %s", text);
}

/* One frame of a link in handshake (HELLO, PROOF or SELECT state). Until
 * both proofs have checked only fixed-size frames are taken, and a REFUSE
 * of bounded text. Returns 0 for a frame not expected there: the caller
 * closes the link as malformed. */
int net_hs_frame(link_t *l, int type, const unsigned char *p, size_t len) {
  switch (l->state) {
  case L_HELLO:
    if (type == F_HELLO && len == HELLO_LEN) {
      on_hello(l, p);
      return 1;
    }
    /* A node that cannot talk to this one says why (TLS against plain):
     * bounded text, sanitised, only logged. */
    if (type == F_REFUSE && len <= REFUSE_TEXT_MAX + 1) {
      net_hs_refuse(l, p, len);
      return 1;
    }
    break;
  case L_PROOF:
    if (type == F_PROOF && len == PROOF_LEN) {
      on_proof(l, p);
      return 1;
    }
    /* The acceptor's answer to a wrong proof. */
    if (type == F_REFUSE && l->outbound && len <= REFUSE_TEXT_MAX + 1) {
      net_hs_refuse(l, p, len);
      return 1;
    }
    break;
  case L_SELECT:
    if (type == F_SELECT && len == 0) {
      link_up(l);
      return 1;
    }
    if (type == F_REFUSE && len <= REFUSE_TEXT_MAX + 1) {
      net_hs_refuse(l, p, len);
      return 1;
    }
    break;
  default:
    break;
  }
  return 0;
}

/* ---- unauthenticated inbound links ---- */

/* Is m idler than best (NULL: anything is)? A link that never sent a byte
 * before one that did; then the one silent the longest. */
static int idler(const link_t *m, const link_t *best) {
  if (best == NULL)
    return 1;
  if ((m->rx_bytes == 0) != (best->rx_bytes == 0))
    return m->rx_bytes == 0;
  return m->last_rx < best->last_rx;
}

/* UNAUTHENTICATED INBOUND LINKS: the newcomer l (counted already) is
 * admitted; past MAX_HANDSHAKING_PER_SOURCE from its source address, or
 * MAX_HANDSHAKING in all, the idlest unauthenticated inbound link (of
 * that source, or of all) is closed instead. A client holding many idle
 * sockets thus loses its own, oldest first, and a peer that speaks at
 * once gets through. */
void net_hs_admit(acoro_net_t *n, link_t *l) {
  link_t *m, *mine = NULL, *any = NULL, *victim;
  int same = 0;
  for (m = n->links; m != NULL; m = m->next) {
    if (m == l || m->outbound || m->closing || m->state >= L_SELECT)
      continue;
    if (strcmp(m->src, l->src) == 0) {
      same++;
      if (idler(m, mine))
        mine = m;
    }
    if (idler(m, any))
      any = m;
  }
  if (same >= MAX_HANDSHAKING_PER_SOURCE)
    victim = mine;
  else if (n->handshaking > MAX_HANDSHAKING)
    victim = any;
  else
    return;
  if (victim == NULL)
    return;
  if (net_quiet_ok(&n->evict_log_at, net_now()))
    net_log(n, 1,
            "%d connections in handshake (%d from %s): closing the idlest "
            "one to admit a new one (logged at most once a minute)",
            n->handshaking, same + 1, l->src);
  net_link_close(victim, 2, 0, NULL); /* (the line above says why) */
}

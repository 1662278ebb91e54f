/* addr.c: socket addresses for TCP and UDP: a local address to bind from a
 * host and port, and an address as text. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Numeric hosts ("", "*" and NULL mean any IPv4 address) at once; a name
 * through the system resolver, which blocks: done once, when a server or
 * socket is made, never per message. */
int addr_local(const char *host, int port, int socktype,
               struct sockaddr_storage *out) {
  struct addrinfo hints, *res;
  char service[16];
  if (host == NULL || host[0] == '\0' || strcmp(host, "*") == 0)
    host = "0.0.0.0";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
    return 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_PASSIVE;
  snprintf(service, sizeof service, "%d", port);
  if (getaddrinfo(host, service, &hints, &res) != 0)
    return UV_EAI_NONAME;
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

/* The numeric host and the port of an IPv4 or IPv6 address. */
int addr_name(const struct sockaddr_storage *a, char *host, size_t len,
              int *port) {
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)a;
    *port = ntohs(in->sin_port);
    return uv_ip4_name(in, host, len);
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
    *port = ntohs(in6->sin6_port);
    return uv_ip6_name(in6, host, len);
  }
  return UV_EAFNOSUPPORT;
}

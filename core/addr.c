/*
 * addr.c: socket addresses, from and to text (see addr.h).
 */
#include "addr.h"

#include <netinet/in.h>
#include <string.h>
#include <uv.h>

#include "eddy.h"

int eddy__addr_parse(const char *ip, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (port < 0 || port > 65535)
    return EDDY_EINVAL;
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)out) == 0)
    return 0;
  if (strchr(ip, ':') != NULL &&
      uv_ip6_addr(ip, port, (struct sockaddr_in6 *)out) == 0)
    return 0;
  return EDDY_EINVAL;
}

int eddy__addr_name(const struct sockaddr *addr, char *ip, int *port) {
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
    uv_ip4_name(a4, ip, EDDY__ADDR_TEXT);
    *port = ntohs(a4->sin_port);
    return 0;
  }
  if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
    uv_ip6_name(a6, ip, EDDY__ADDR_TEXT);
    *port = ntohs(a6->sin6_port);
    return 0;
  }
  return EDDY_EINVAL;
}

void eddy__addr_set_port(struct sockaddr_storage *addr, int port) {
  if (addr->ss_family == AF_INET)
    ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
  else if (addr->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
}

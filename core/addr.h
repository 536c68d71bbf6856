/*
 * addr.h: socket addresses, from and to text. Knows nothing of Lua.
 */
#ifndef EDDY_ADDR_H
#define EDDY_ADDR_H

#include <sys/socket.h>

#define EDDY__ADDR_TEXT 64 /* room for any IPv6 text form */

/* Parses an IPv4 or IPv6 literal ("127.0.0.1", "::1") with a port.
   Returns 0, or EDDY_EINVAL when ip is not a literal (a name to resolve
   first). */
int eddy__addr_parse(const char *ip, int port, struct sockaddr_storage *out);

/* The text form and port of an address. Returns 0 or EDDY_EINVAL. */
int eddy__addr_name(const struct sockaddr *addr, char *ip, int *port);

/* Sets the port of an IPv4 or IPv6 address. */
void eddy__addr_set_port(struct sockaddr_storage *addr, int port);

#endif

/*
 * dns.h: name resolution on the loop with c-ares: one channel per reactor
 * thread, its sockets watched by libuv, answers cached by their TTL, and
 * concurrent lookups of one name sharing one query. Knows nothing of Lua.
 */
#ifndef EDDY_DNS_H
#define EDDY_DNS_H

#include <sys/socket.h>

typedef struct eddy_runtime_s eddy_runtime_t;
typedef struct eddy__dns_s eddy__dns_t;
typedef struct eddy__dns_req_s eddy__dns_req_t;

/* Addresses of one answer, in the order to try them. */
typedef struct eddy__dns_addrs_s {
  int count;
  struct sockaddr_storage addr[];
} eddy__dns_addrs_t;

/* status is EDDY_OK (addrs set, valid during the call only), EDDY_ENOTFOUND,
   EDDY_ETIMEOUT or EDDY_EDNS. */
typedef void (*eddy__dns_cb)(eddy__dns_req_t *req, int status,
                             const eddy__dns_addrs_t *addrs);

struct eddy__dns_req_s {
  eddy__dns_cb cb;
  void *data;
  eddy__dns_req_t *next; /* waiters of one query */
  struct eddy__dns_query_s *query;
};

/* Looks a name up (family AF_UNSPEC, AF_INET or AF_INET6). The callback
   runs exactly once, maybe before this returns when the answer is cached,
   unless eddy__dns_cancel is called first. Returns 0 or an EDDY_E code. */
int eddy__dns_resolve(eddy_runtime_t *rt, eddy__dns_req_t *req,
                      const char *name, int family);
void eddy__dns_cancel(eddy__dns_req_t *req);
void eddy__dns_free(eddy__dns_t *dns);

#endif

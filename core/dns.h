/*
 * dns.h: name resolution on the loop with c-ares: one channel per reactor
 * thread, made on first use, its sockets watched by libuv; answers cached
 * by their TTL; concurrent lookups of one name share one query. Nothing
 * here touches libuv's threadpool, so a dead DNS server cannot stall file
 * I/O. Knows nothing of Lua.
 */
#ifndef EDDY_DNS_H
#define EDDY_DNS_H

#include <sys/socket.h>

typedef struct eddy_runtime_s eddy_runtime_t;
typedef struct eddy__dns_s eddy__dns_t;
typedef struct eddy__dns_req_s eddy__dns_req_t;
typedef struct eddy__dns_query_s eddy__dns_query_t;

/* The addresses of one answer, in the order to try them. */
typedef struct eddy__dns_addrs_s {
  int count;
  struct sockaddr_storage addr[];
} eddy__dns_addrs_t;

/* status: EDDY_OK (addrs valid during the call only), EDDY_ENOTFOUND,
   EDDY_ETIMEOUT, EDDY_ECANCELLED (the runtime is going) or EDDY_EDNS. */
typedef void (*eddy__dns_cb)(eddy__dns_req_t *req, int status,
                             const eddy__dns_addrs_t *addrs);

/* Owned by the caller; must stay valid until its callback runs or
   eddy__dns_cancel returns. */
struct eddy__dns_req_s {
  eddy__dns_cb cb;
  eddy__dns_req_t *next;
  eddy__dns_query_t *query;
};

/* An answer from the cache: EDDY_OK with *addrs (valid until the next DNS
   call), a cached failure, or EDDY_EBUSY when the name is not cached.
   family: AF_UNSPEC, AF_INET or AF_INET6. */
int eddy__dns_cached(eddy_runtime_t *rt, const char *name, int family,
                     const eddy__dns_addrs_t **addrs);

/* Starts a lookup; req->cb runs later (never before this returns), once,
   unless eddy__dns_cancel comes first. Returns 0 or an EDDY_E code. */
int eddy__dns_resolve(eddy_runtime_t *rt, eddy__dns_req_t *req,
                      const char *name, int family);
void eddy__dns_cancel(eddy__dns_req_t *req);

/* Ends every lookup (callbacks get EDDY_ECANCELLED) and closes. */
void eddy__dns_free(eddy__dns_t *dns);

#endif

/*
 * dns.c: name resolution with c-ares on the loop (see dns.h). Knows
 * nothing of Lua.
 */
#include "dns.h"

#include <ares.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "runtime.h"

#define CACHE_BUCKETS 256
#define CACHE_MAX 1024
#define MAX_TTL_MS (300 * 1000)  /* even a long TTL is looked at again */
#define NEGATIVE_TTL_MS (5 * 1000) /* "no such name" is remembered briefly */
#define QUERY_TIMEOUT_MS 2000
#define QUERY_TRIES 2

typedef struct dns_poll_s {
  uv_poll_t poll;
  eddy__dns_t *dns;
  ares_socket_t fd;
  struct dns_poll_s *next;
} dns_poll_t;

typedef struct cache_entry_s {
  struct cache_entry_s *chain; /* bucket */
  struct cache_entry_s *older; /* LRU list, newest first */
  struct cache_entry_s *newer;
  uint64_t expires;            /* loop time, ms */
  int family;
  int status;
  eddy__dns_addrs_t *addrs;
  char name[];
} cache_entry_t;

struct eddy__dns_query_s {
  eddy__dns_t *dns;
  eddy__dns_req_t *waiters;
  eddy__dns_query_t *next;
  eddy__dns_query_t *next_deferred;
  int family;
  int ares_status;           /* an answer that came too early, kept */
  struct ares_addrinfo *ai;
  char name[];
};

struct eddy__dns_s {
  eddy_runtime_t *rt;
  ares_channel channel;
  uv_timer_t timer; /* c-ares's own retransmits and timeouts */
  dns_poll_t *polls;
  eddy__dns_query_t *queries;
  /* Answers c-ares gave inside ares_getaddrinfo (from /etc/hosts): they
     are delivered from the timer, as callers expect no answer before
     eddy__dns_resolve returns. */
  eddy__dns_query_t *deferred;
  int resolving;
  cache_entry_t *buckets[CACHE_BUCKETS];
  cache_entry_t *newest;
  cache_entry_t *oldest;
  int ncached;
  int open_handles; /* freed once the last close callback has run */
  int closing;
};

/* ======================================================================= */
/* Cache */

static unsigned hash(const char *name, int family) {
  unsigned h = 2166136261u ^ (unsigned)family;
  for (; *name; name++)
    h = (h ^ (unsigned char)*name) * 16777619u;
  return h % CACHE_BUCKETS;
}

static void lru_unlink(eddy__dns_t *dns, cache_entry_t *e) {
  if (e->newer)
    e->newer->older = e->older;
  else
    dns->newest = e->older;
  if (e->older)
    e->older->newer = e->newer;
  else
    dns->oldest = e->newer;
  e->older = e->newer = NULL;
}

static void lru_push(eddy__dns_t *dns, cache_entry_t *e) {
  e->newer = NULL;
  e->older = dns->newest;
  if (dns->newest)
    dns->newest->newer = e;
  dns->newest = e;
  if (dns->oldest == NULL)
    dns->oldest = e;
}

static void cache_remove(eddy__dns_t *dns, cache_entry_t *e) {
  cache_entry_t **p = &dns->buckets[hash(e->name, e->family)];
  while (*p != e)
    p = &(*p)->chain;
  *p = e->chain;
  lru_unlink(dns, e);
  dns->ncached--;
  free(e->addrs);
  free(e);
}

static cache_entry_t *cache_find(eddy__dns_t *dns, const char *name,
                                 int family) {
  uint64_t now = uv_now(&dns->rt->loop);
  for (cache_entry_t *e = dns->buckets[hash(name, family)]; e; e = e->chain) {
    if (e->family != family || strcmp(e->name, name) != 0)
      continue;
    if (e->expires <= now) {
      cache_remove(dns, e);
      return NULL;
    }
    lru_unlink(dns, e);
    lru_push(dns, e);
    return e;
  }
  return NULL;
}

/* Takes ownership of addrs. */
static void cache_put(eddy__dns_t *dns, const char *name, int family,
                      int status, eddy__dns_addrs_t *addrs, uint64_t ttl_ms) {
  cache_entry_t *old = cache_find(dns, name, family);
  if (old)
    cache_remove(dns, old);
  size_t len = strlen(name);
  cache_entry_t *e = malloc(sizeof *e + len + 1);
  if (e == NULL) {
    free(addrs);
    return;
  }
  if (dns->ncached >= CACHE_MAX)
    cache_remove(dns, dns->oldest);
  memcpy(e->name, name, len + 1);
  e->family = family;
  e->status = status;
  e->addrs = addrs;
  e->expires = uv_now(&dns->rt->loop) + ttl_ms;
  unsigned h = hash(name, family);
  e->chain = dns->buckets[h];
  dns->buckets[h] = e;
  lru_push(dns, e);
  dns->ncached++;
}

/* ======================================================================= */
/* c-ares on libuv */

static void handle_closed(uv_handle_t *handle) {
  eddy__dns_t *dns = handle->data;
  if (handle != (uv_handle_t *)&dns->timer)
    free(handle); /* a dns_poll_t: poll is its first member */
  if (--dns->open_handles == 0 && dns->closing)
    free(dns);
}

static void on_timer(uv_timer_t *timer);

static void update_timer(eddy__dns_t *dns) {
  struct timeval tv;
  if (dns->closing)
    return;
  if (dns->deferred != NULL) {
    uv_timer_start(&dns->timer, on_timer, 0, 0);
    return;
  }
  if (ares_timeout(dns->channel, NULL, &tv) == NULL) {
    uv_timer_stop(&dns->timer);
    return;
  }
  uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec + 999) / 1000;
  uv_timer_start(&dns->timer, on_timer, ms, 0);
}

static void deliver(eddy__dns_query_t *q, int ares_status,
                    struct ares_addrinfo *ai);

static void deliver_deferred(eddy__dns_t *dns) {
  while (dns->deferred != NULL) {
    eddy__dns_query_t *q = dns->deferred;
    dns->deferred = q->next_deferred;
    deliver(q, q->ares_status, q->ai);
  }
}

static void on_timer(uv_timer_t *timer) {
  eddy__dns_t *dns = timer->data;
  deliver_deferred(dns);
  ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  update_timer(dns);
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  dns_poll_t *p = (dns_poll_t *)poll;
  eddy__dns_t *dns = p->dns;
  ares_socket_t fd = p->fd;
  /* On an error, let c-ares read and write so that it sees it. */
  int r = status < 0 || (events & UV_READABLE);
  int w = status < 0 || (events & UV_WRITABLE);
  ares_process_fd(dns->channel, r ? fd : ARES_SOCKET_BAD,
                  w ? fd : ARES_SOCKET_BAD);
  update_timer(dns);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable,
                          int writable) {
  eddy__dns_t *dns = data;
  dns_poll_t **pp = &dns->polls;
  while (*pp && (*pp)->fd != fd)
    pp = &(*pp)->next;
  dns_poll_t *p = *pp;
  if (!readable && !writable) {
    if (p) {
      *pp = p->next;
      uv_poll_stop(&p->poll);
      uv_close((uv_handle_t *)&p->poll, handle_closed);
    }
    return;
  }
  if (p == NULL) {
    p = malloc(sizeof *p);
    if (p == NULL)
      return; /* c-ares times the query out */
    if (uv_poll_init_socket(&dns->rt->loop, &p->poll, fd) != 0) {
      free(p);
      return;
    }
    p->poll.data = dns;
    p->dns = dns;
    p->fd = fd;
    p->next = dns->polls;
    dns->polls = p;
    dns->open_handles++;
  }
  uv_poll_start(&p->poll, (readable ? UV_READABLE : 0) |
                              (writable ? UV_WRITABLE : 0), on_poll);
}

static eddy__dns_t *get_dns(eddy_runtime_t *rt) {
  if (rt->dns)
    return rt->dns;
  eddy__dns_t *dns = calloc(1, sizeof *dns);
  if (dns == NULL)
    return NULL;
  struct ares_options o;
  memset(&o, 0, sizeof o);
  o.sock_state_cb = on_sock_state;
  o.sock_state_cb_data = dns;
  o.timeout = QUERY_TIMEOUT_MS;
  o.tries = QUERY_TRIES;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  if (ares_init_options(&dns->channel, &o, mask) != ARES_SUCCESS) {
    free(dns);
    return NULL;
  }
  dns->rt = rt;
  uv_timer_init(&rt->loop, &dns->timer);
  dns->timer.data = dns;
  dns->open_handles = 1;
  rt->dns = dns;
  return dns;
}

/* ======================================================================= */
/* Queries */

static int status_of(int ares_status) {
  switch (ares_status) {
  case ARES_SUCCESS:
    return EDDY_OK;
  case ARES_ENOTFOUND:
  case ARES_ENODATA:
  case ARES_ENONAME:
  case ARES_EBADNAME:
    return EDDY_ENOTFOUND;
  case ARES_ETIMEOUT:
    return EDDY_ETIMEOUT;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION:
    return EDDY_ECANCELLED;
  case ARES_ENOMEM:
    return EDDY_ENOMEM;
  }
  return EDDY_EDNS;
}

static eddy__dns_addrs_t *addrs_of(struct ares_addrinfo *ai, int *min_ttl) {
  int n = 0;
  *min_ttl = -1;
  for (struct ares_addrinfo_node *nd = ai ? ai->nodes : NULL; nd; nd = nd->ai_next)
    n++;
  eddy__dns_addrs_t *a = malloc(sizeof *a + (size_t)n * sizeof a->addr[0]);
  if (a == NULL)
    return NULL;
  a->count = 0;
  for (struct ares_addrinfo_node *nd = ai ? ai->nodes : NULL; nd; nd = nd->ai_next) {
    if (nd->ai_addrlen > sizeof a->addr[0])
      continue;
    memset(&a->addr[a->count], 0, sizeof a->addr[0]);
    memcpy(&a->addr[a->count], nd->ai_addr, nd->ai_addrlen);
    a->count++;
    if (*min_ttl < 0 || nd->ai_ttl < *min_ttl)
      *min_ttl = nd->ai_ttl;
  }
  return a;
}

static void on_answer(void *arg, int ares_status, int timeouts,
                      struct ares_addrinfo *ai) {
  eddy__dns_query_t *q = arg;
  (void)timeouts;
  if (q->dns->resolving) {
    q->ares_status = ares_status;
    q->ai = ai;
    q->next_deferred = q->dns->deferred;
    q->dns->deferred = q;
    return;
  }
  deliver(q, ares_status, ai);
}

static void deliver(eddy__dns_query_t *q, int ares_status,
                    struct ares_addrinfo *ai) {
  eddy__dns_t *dns = q->dns;
  eddy__dns_query_t **pp = &dns->queries;
  while (*pp != q)
    pp = &(*pp)->next;
  *pp = q->next;

  int status = status_of(ares_status);
  int ttl = 0;
  eddy__dns_addrs_t *addrs = NULL;
  if (status == EDDY_OK) {
    addrs = addrs_of(ai, &ttl);
    if (addrs == NULL)
      status = EDDY_ENOMEM;
    else if (addrs->count == 0)
      status = EDDY_ENOTFOUND;
  }
  if (ai)
    ares_freeaddrinfo(ai);
  /* Cache first: a waiter resumed below may ask again at once. The cache
     keeps a copy, since a lookup from a callback may evict the entry. */
  if (!dns->closing && status == EDDY_OK && ttl > 0) {
    size_t size = sizeof *addrs + (size_t)addrs->count * sizeof addrs->addr[0];
    eddy__dns_addrs_t *copy = malloc(size);
    if (copy != NULL) {
      memcpy(copy, addrs, size);
      uint64_t ttl_ms = (uint64_t)ttl * 1000;
      cache_put(dns, q->name, q->family, status, copy,
                ttl_ms > MAX_TTL_MS ? MAX_TTL_MS : ttl_ms);
    }
  } else if (!dns->closing && status == EDDY_ENOTFOUND) {
    cache_put(dns, q->name, q->family, status, NULL, NEGATIVE_TTL_MS);
  }
  /* Waiters may cancel each other from their callbacks: take them off the
     list one at a time. */
  eddy__dns_req_t *req;
  while ((req = q->waiters) != NULL) {
    q->waiters = req->next;
    req->query = NULL;
    req->cb(req, status, status == EDDY_OK ? addrs : NULL);
  }
  free(addrs);
  free(q);
}

int eddy__dns_cached(eddy_runtime_t *rt, const char *name, int family,
                     const eddy__dns_addrs_t **addrs) {
  if (rt->dns == NULL)
    return EDDY_EBUSY;
  cache_entry_t *e = cache_find(rt->dns, name, family);
  if (e == NULL)
    return EDDY_EBUSY;
  *addrs = e->addrs;
  return e->status;
}

int eddy__dns_resolve(eddy_runtime_t *rt, eddy__dns_req_t *req,
                      const char *name, int family) {
  eddy__dns_t *dns = get_dns(rt);
  if (dns == NULL)
    return EDDY_EDNS;
  for (eddy__dns_query_t *q = dns->queries; q; q = q->next) {
    if (q->family == family && strcmp(q->name, name) == 0) {
      req->query = q;
      req->next = q->waiters;
      q->waiters = req;
      return 0;
    }
  }
  size_t len = strlen(name);
  eddy__dns_query_t *q = malloc(sizeof *q + len + 1);
  if (q == NULL)
    return EDDY_ENOMEM;
  memcpy(q->name, name, len + 1);
  q->dns = dns;
  q->family = family;
  q->waiters = req;
  req->next = NULL;
  req->query = q;
  q->next = dns->queries;
  dns->queries = q;
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM; /* one entry per address, not three */
  dns->resolving = 1;
  ares_getaddrinfo(dns->channel, name, NULL, &hints, on_answer, q);
  dns->resolving = 0;
  update_timer(dns);
  return 0;
}

void eddy__dns_cancel(eddy__dns_req_t *req) {
  eddy__dns_query_t *q = req->query;
  if (q == NULL)
    return;
  eddy__dns_req_t **pp = &q->waiters;
  while (*pp && *pp != req)
    pp = &(*pp)->next;
  if (*pp)
    *pp = req->next;
  req->query = NULL;
  /* The query goes on: its answer still fills the cache. */
}

void eddy__dns_free(eddy__dns_t *dns) {
  dns->closing = 1;
  ares_destroy(dns->channel); /* answers every query with ARES_EDESTRUCTION */
  while (dns->deferred != NULL) {
    eddy__dns_query_t *q = dns->deferred;
    dns->deferred = q->next_deferred;
    if (q->ai)
      ares_freeaddrinfo(q->ai);
    deliver(q, ARES_EDESTRUCTION, NULL);
  }
  while (dns->polls) {
    dns_poll_t *p = dns->polls;
    dns->polls = p->next;
    uv_close((uv_handle_t *)&p->poll, handle_closed);
  }
  while (dns->newest)
    cache_remove(dns, dns->newest);
  uv_close((uv_handle_t *)&dns->timer, handle_closed);
}

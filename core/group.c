/*
 * group.c: reactor-thread groups (see group.h and eddy.h): starting the
 * threads and waiting for them, stopping them together, and the shared
 * ports of listeners on port 0.
 */
#include "group.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "hub.h"
#include "shared.h"

eddy_group_t *eddy_group_new(int threads) {
  if (threads <= 0)
    threads = (int)uv_available_parallelism();
  eddy_group_t *g = calloc(1, sizeof *g);
  if (g == NULL)
    return NULL;
  g->threads = threads;
  g->members = calloc((size_t)threads, sizeof *g->members);
  if (g->members == NULL || (g->hub = eddy__hub_new()) == NULL ||
      uv_mutex_init(&g->lock) != 0) {
    eddy__hub_unref(g->hub);
    free(g->members);
    free(g);
    return NULL;
  }
  return g;
}

int eddy_group_threads(const eddy_group_t *g) {
  return g->threads;
}

void eddy_group_free(eddy_group_t *g) {
  if (g == NULL || g->running)
    return;
  eddy__pool_free(g->pool);
  eddy__hub_unref(g->hub);
  uv_mutex_destroy(&g->lock);
  free(g->members);
  free(g->ports);
  free(g);
}

/* ======================================================================= */
/* Members */

void eddy__group_join(eddy_group_t *g, eddy_runtime_t *rt, int thread) {
  uv_mutex_lock(&g->lock);
  g->members[thread - 1] = rt;
  if (g->stopping)
    eddy_stop(rt);
  uv_mutex_unlock(&g->lock);
}

void eddy__group_leave(eddy_group_t *g, eddy_runtime_t *rt) {
  uv_mutex_lock(&g->lock);
  for (int i = 0; i < g->threads; i++)
    if (g->members[i] == rt)
      g->members[i] = NULL;
  uv_mutex_unlock(&g->lock);
}

/* Once: a second request would tell each member to stop at once. */
void eddy__group_stop_others(eddy_group_t *g, eddy_runtime_t *except) {
  uv_mutex_lock(&g->lock);
  if (!g->stopping) {
    g->stopping = 1;
    for (int i = 0; i < g->threads; i++)
      if (g->members[i] != NULL && g->members[i] != except)
        eddy_stop(g->members[i]);
  }
  uv_mutex_unlock(&g->lock);
}

void eddy__group_exit(eddy_group_t *g, eddy_runtime_t *rt, int code) {
  uv_mutex_lock(&g->lock);
  if (!g->exited) {
    g->exited = 1;
    g->exit_code = code;
  }
  uv_mutex_unlock(&g->lock);
  eddy__group_stop_others(g, rt);
}

int eddy_group_stop(eddy_group_t *g) {
  eddy__group_stop_others(g, NULL);
  return EDDY_OK;
}

/* ======================================================================= */
/* Running the threads */

typedef struct thread_s {
  eddy_group_t *g;
  int number;
  eddy_thread_fn fn;
  void *data;
  uv_thread_t tid;
} thread_t;

static void run_thread(void *arg) {
  thread_t *t = arg;
  int status = t->fn(t->g, t->number, t->data);
  if (status == 0)
    return;
  /* One thread failing, or exiting with a status, ends the program. */
  uv_mutex_lock(&t->g->lock);
  if (t->g->status == 0)
    t->g->status = status;
  uv_mutex_unlock(&t->g->lock);
  eddy__group_stop_others(t->g, NULL);
}

int eddy_group_run(eddy_group_t *g, eddy_thread_fn fn, void *data) {
  if (g->running)
    return EDDY_EBUSY;
  thread_t *threads = calloc((size_t)g->threads, sizeof *threads);
  if (threads == NULL)
    return EDDY_ENOMEM;
  g->running = 1;
  g->status = 0;
  g->exited = 0;
  g->exit_code = 0;
  g->nports = 0;
  int started = 1;
  for (int i = 0; i < g->threads; i++)
    threads[i] = (thread_t){g, i + 1, fn, data, 0};
  for (int i = 1; i < g->threads; i++, started++)
    if (uv_thread_create(&threads[i].tid, run_thread, &threads[i]) != 0)
      break;
  if (started < g->threads) {
    /* Under the lock: the threads started may be ending already. */
    uv_mutex_lock(&g->lock);
    g->status = EDDY_ENOMEM;
    uv_mutex_unlock(&g->lock);
    eddy__group_stop_others(g, NULL);
  } else {
    run_thread(&threads[0]);
  }
  for (int i = 1; i < started; i++)
    uv_thread_join(&threads[i].tid);
  free(threads);
  /* A stop asked before the run stopped it; the next run starts afresh. */
  g->stopping = 0;
  g->running = 0;
  return g->status;
}

/* ======================================================================= */
/* Shared ports */

static int same_host(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                &((const struct sockaddr_in6 *)b)->sin6_addr,
                sizeof(struct in6_addr)) == 0;
}

static void set_port(struct sockaddr *sa, int port) {
  if (sa->sa_family == AF_INET)
    ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

static int port_of(uv_tcp_t *tcp) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  return ss.ss_family == AF_INET
             ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
             : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static eddy__port_t *find_port(eddy_group_t *g, int ordinal,
                               const struct sockaddr *addr) {
  for (int i = 0; i < g->nports; i++)
    if (g->ports[i].ordinal == ordinal &&
        same_host((struct sockaddr *)&g->ports[i].addr, addr))
      return &g->ports[i];
  return NULL;
}

static void record_port(eddy_group_t *g, int ordinal,
                        const struct sockaddr *addr, int port) {
  eddy__port_t *ports =
      realloc(g->ports, (size_t)(g->nports + 1) * sizeof *ports);
  if (ports == NULL)
    return; /* the other threads get ports of their own */
  g->ports = ports;
  eddy__port_t *p = &ports[g->nports++];
  memset(p, 0, sizeof *p);
  memcpy(&p->addr, addr,
         addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6));
  p->ordinal = ordinal;
  p->port = port;
}

int eddy__group_bind_port0(eddy_group_t *g, int ordinal, uv_tcp_t *tcp,
                           const struct sockaddr *addr, unsigned uv_flags) {
  struct sockaddr_storage ss;
  memcpy(&ss, addr,
         addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6));
  /* Held across the first bind, so that no thread binds a fresh port
     while another is still getting the group's. */
  uv_mutex_lock(&g->lock);
  eddy__port_t *p = find_port(g, ordinal, addr);
  if (p != NULL)
    set_port((struct sockaddr *)&ss, p->port);
  int rc = uv_tcp_bind(tcp, (struct sockaddr *)&ss, uv_flags);
  if (rc == 0 && p == NULL) {
    int port = port_of(tcp);
    if (port > 0)
      record_port(g, ordinal, addr, port);
  }
  uv_mutex_unlock(&g->lock);
  return rc;
}

/*
 * hub.c: the shared names' hub (see hub.h). Signals are few (one per
 * durable queue), so a list does to find them.
 */
#include "hub.h"

#include <stdlib.h>
#include <string.h>

#include "eddy.h"

#include "mqueue.h"
#include "shared.h"
#include "topic.h"

typedef struct eddy__signal_s {
  struct eddy__signal_s *next;
  eddy__hub_t *hub;
  uint64_t version;
  eddy__xwaitq_t waiters[2]; /* takers, givers */
  size_t len;
  char name[];
} eddy__signal_t;

eddy__hub_t *eddy__hub_new(void) {
  eddy__hub_t *hub = calloc(1, sizeof *hub);
  if (hub == NULL || uv_mutex_init(&hub->lock) != 0) {
    free(hub);
    return NULL;
  }
  if (uv_mutex_init(&hub->shmaps_lock) != 0) {
    uv_mutex_destroy(&hub->lock);
    free(hub);
    return NULL;
  }
  atomic_init(&hub->refs, 1);
  return hub;
}

eddy__hub_t *eddy__hub_ref(eddy__hub_t *hub) {
  atomic_fetch_add(&hub->refs, 1);
  return hub;
}

void eddy__hub_unref(eddy__hub_t *hub) {
  if (hub == NULL || atomic_fetch_sub(&hub->refs, 1) != 1)
    return;
  /* No one holds a queue or a topic any more, so none has a waiter or a
     subscriber; a store holds a reference, so there is none left. */
  eddy__mq_free_all(hub->queues);
  eddy__topic_free_all(hub->topics);
  eddy__shmaps_free(hub->shmaps);
  while (hub->signals != NULL) {
    eddy__signal_t *next = hub->signals->next;
    free(hub->signals);
    hub->signals = next;
  }
  uv_mutex_destroy(&hub->shmaps_lock);
  uv_mutex_destroy(&hub->lock);
  free(hub);
}

void eddy__hub_replace(eddy__hub_t **slot, eddy__hub_t *hub) {
  eddy__hub_t *old = *slot;
  *slot = eddy__hub_ref(hub);
  eddy__hub_unref(old);
}

/* ======================================================================= */
/* Signals */

/* Under the hub's lock; make: a new one when there is none (NULL when out
   of memory). */
static eddy__signal_t *find_signal(eddy__hub_t *hub, const char *name,
                                   size_t len, int make) {
  eddy__signal_t *sig = hub->signals;
  while (sig != NULL && (sig->len != len || memcmp(sig->name, name, len)))
    sig = sig->next;
  if (sig == NULL && make && (sig = calloc(1, sizeof *sig + len)) != NULL) {
    sig->hub = hub;
    sig->len = len;
    memcpy(sig->name, name, len);
    sig->next = hub->signals;
    hub->signals = sig;
  }
  return sig;
}

int64_t eddy__hub_version(eddy__hub_t *hub, const char *name, size_t len) {
  uv_mutex_lock(&hub->lock);
  eddy__signal_t *sig = find_signal(hub, name, len, 1);
  int64_t version = sig != NULL ? (int64_t)sig->version : -1;
  uv_mutex_unlock(&hub->lock);
  return version;
}

/* A waiter woken after its task went passes the wake-up on: to either
   kind, as it cannot tell which it was (a wake-up too many costs a look). */
static void pass_on(void *owner) {
  eddy__signal_t *sig = owner;
  uv_mutex_lock(&sig->hub->lock);
  eddy__xwaiter_t *takers = eddy__xwaitq_take(&sig->waiters[0], 0);
  eddy__xwaiter_t *givers = eddy__xwaitq_take(&sig->waiters[1], 0);
  uv_mutex_unlock(&sig->hub->lock);
  eddy__xwait_post(takers);
  eddy__xwait_post(givers);
}

eddy__xwaiter_t *eddy__hub_wait(eddy__hub_t *hub, const char *name,
                                size_t len, int givers, uint64_t seen,
                                eddy_runtime_t *rt, eddy__task_t *t,
                                int *err) {
  eddy__xwaiter_t *w = NULL;
  *err = 0;
  uv_mutex_lock(&hub->lock);
  eddy__signal_t *sig = find_signal(hub, name, len, 1);
  if (sig == NULL)
    *err = EDDY_ENOMEM;
  else if (sig->version == seen &&
           (w = eddy__xwait_new(rt, t, &sig->waiters[givers != 0],
                                &hub->lock, pass_on, sig)) == NULL)
    *err = EDDY_ENOMEM;
  uv_mutex_unlock(&hub->lock);
  return w;
}

void eddy__hub_signal(eddy__hub_t *hub, const char *name, size_t len,
                      int givers, int all) {
  eddy__xwaiter_t *wake = NULL, *more = NULL;
  uv_mutex_lock(&hub->lock);
  eddy__signal_t *sig = find_signal(hub, name, len, 0);
  if (sig != NULL) { /* none: nobody has looked, so nobody waits */
    sig->version++;
    if (all) {
      wake = eddy__xwaitq_take(&sig->waiters[0], 1);
      more = eddy__xwaitq_take(&sig->waiters[1], 1);
    } else {
      wake = eddy__xwaitq_take(&sig->waiters[givers != 0], 0);
    }
  }
  uv_mutex_unlock(&hub->lock);
  eddy__xwait_post(wake);
  eddy__xwait_post(more);
}

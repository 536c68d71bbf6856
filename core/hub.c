/*
 * hub.c: the shared names' hub (see hub.h).
 */
#include "hub.h"

#include <stdlib.h>

#include "mqueue.h"
#include "topic.h"

eddy__hub_t *eddy__hub_new(void) {
  eddy__hub_t *hub = calloc(1, sizeof *hub);
  if (hub == NULL || uv_mutex_init(&hub->lock) != 0) {
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
  uv_mutex_destroy(&hub->lock);
  free(hub);
}

void eddy__hub_replace(eddy__hub_t **slot, eddy__hub_t *hub) {
  eddy__hub_t *old = *slot;
  *slot = eddy__hub_ref(hub);
  eddy__hub_unref(old);
}

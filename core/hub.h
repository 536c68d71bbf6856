/*
 * hub.h: the named things that the threads of one program share: memory
 * queues (mqueue.h), pub/sub topics (topic.h) and durable queue stores
 * (sqlite_queue.h), each found by name in the hub's lists.
 *
 * A hub belongs to a runtime, or to a group when the runtime is in one,
 * so that every reactor thread of a program sees the same queues; a task
 * pool holds the hub of the runtime that made it and gives it to its
 * threads' Lua states. Two runtimes that a host makes apart have hubs
 * apart: nothing here belongs to the process. Counted: the owners, and
 * every Lua object holding a queue, topic or store, hold a reference; the
 * last one frees the queues and topics with what they hold.
 */
#ifndef EDDY_HUB_H
#define EDDY_HUB_H

#include <stdatomic.h>
#include <uv.h>

typedef struct eddy__hub_s {
  atomic_int refs;
  uv_mutex_t lock; /* guards the lists (each thing has a lock of its own) */
  struct eddy__mq_s *queues;
  struct eddy__topic_s *topics;
  struct eddy__sqlq_s *stores; /* each holds a reference while listed */
} eddy__hub_t;

/* A new hub with one reference; NULL when out of memory. */
eddy__hub_t *eddy__hub_new(void);
eddy__hub_t *eddy__hub_ref(eddy__hub_t *hub);
/* Drops a reference (hub may be NULL); the last frees the hub. */
void eddy__hub_unref(eddy__hub_t *hub);
/* Makes *slot, which holds a reference, hold one to hub instead. */
void eddy__hub_replace(eddy__hub_t **slot, eddy__hub_t *hub);

#endif

/*
 * hub.h: the named things that the threads of one program share: memory
 * queues (mqueue.h), pub/sub topics (topic.h), durable queue stores
 * (sqlite_queue.h) and the mappings of shared dictionaries (shared.h),
 * each found by name in the hub's lists; and signals, named counts of
 * changes that tasks of any thread wait on.
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
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "xwait.h"

typedef struct eddy__hub_s {
  atomic_int refs;
  uv_mutex_t lock; /* guards the lists (each thing has a lock of its own) */
  struct eddy__mq_s *queues;
  struct eddy__topic_s *topics;
  struct eddy__sqlq_s *stores; /* each holds a reference while listed */
  struct eddy__signal_s *signals;
  /* Shared dictionaries have a lock of their own: the first open of one
     in a worker process asks the master, a round trip that must not
     hold up the queues. */
  uv_mutex_t shmaps_lock;       /* guards the two below */
  struct eddy__shmap_s *shmaps; /* shared dictionaries mapped */
  /* In a worker process, the link to the master, which makes the
     dictionaries' blocks (set by the runtimes that have it, so that a
     task-pool thread asks the master too). */
  struct eddy_worker_s *worker;
} eddy__hub_t;

/* A new hub with one reference; NULL when out of memory. */
eddy__hub_t *eddy__hub_new(void);
eddy__hub_t *eddy__hub_ref(eddy__hub_t *hub);
/* Drops a reference (hub may be NULL); the last frees the hub. */
void eddy__hub_unref(eddy__hub_t *hub);
/* Makes *slot, which holds a reference, hold one to hub instead. */
void eddy__hub_replace(eddy__hub_t **slot, eddy__hub_t *hub);

/*
 * Signals, for what changes outside the hub's own memory (a durable
 * queue's file): a task reads a signal's version, looks (a pop that finds
 * nothing), then waits for the version to move past what it read, so
 * that a change between its look and its wait is never missed. Whoever
 * makes the change signals it: one waiter is woken (takers: tasks waiting
 * for something to take; givers: for room), who looks again. Names are
 * bytes; a signal lives as long as its hub.
 */
enum { EDDY__SIGNAL_TAKERS, EDDY__SIGNAL_GIVERS };

/* The signal's version (0 for one never signalled); -1 when out of
   memory. */
int64_t eddy__hub_version(eddy__hub_t *hub, const char *name, size_t len);
/* For task t of rt, which read version seen: a queued waiter (then wait
   with eddy__xwait_ops), or NULL with *err 0 when the version moved
   already (look again at once), or EDDY_ENOMEM. */
eddy__xwaiter_t *eddy__hub_wait(eddy__hub_t *hub, const char *name,
                                size_t len, int givers, uint64_t seen,
                                eddy_runtime_t *rt, eddy__task_t *t,
                                int *err);
/* Moves the version on and wakes one waiter of the kind (all: every
   waiter of both kinds), from any thread. */
void eddy__hub_signal(eddy__hub_t *hub, const char *name, size_t len,
                      int givers, int all);

#endif

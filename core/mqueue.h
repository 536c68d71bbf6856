/*
 * mqueue.h: the memory backend of eddy.queue. A named queue of byte
 * messages that every reactor thread and task-pool thread of a program
 * sees: queues are found by name in the program's hub (hub.h) and kept
 * for its life (a worker process has its own; the durable and Redis
 * backends serve several processes). Delivery is at least once: a popped
 * message stays in flight until acked; a nack, or a visibility deadline
 * that passes, makes it ready again after a delay; past max_attempts it
 * moves to the queue `<name>.dead`. Knows nothing of Lua.
 */
#ifndef EDDY_MQUEUE_H
#define EDDY_MQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "xwait.h"

#define EDDY__MQ_NAME 128

typedef struct eddy__mq_s eddy__mq_t;

typedef struct eddy__mq_opts_s {
  size_t max;              /* messages held (ready, delayed, in flight);
                              0: no bound */
  uint32_t max_attempts;   /* deliveries before the dead-letter queue;
                              0: no bound */
  uint64_t backoff_ms;     /* a nack's delay: backoff_ms * 2^(attempts-1) */
  uint64_t backoff_max_ms; /* ... capped */
  uint64_t visibility_ms;  /* how long a popped message may stay in flight;
                              0: as long as it likes */
} eddy__mq_opts_t;

/* A message handed out by pop: the caller frees data. */
typedef struct eddy__mq_msg_s {
  uint64_t id;       /* this delivery's id, for ack and nack */
  uint32_t attempts; /* 1 for the first delivery */
  char *data;
  size_t len;
} eddy__mq_msg_t;

typedef struct eddy__hub_s eddy__hub_t;

/* The queue `name` of the hub: the existing one, or a new one with opts
   (a later open's opts are ignored: the first declares the queue). 0 or
   an EDDY_E code (INVAL for a bad name, NOMEM). A queue lives as long as
   its hub: whoever holds one holds a reference to the hub. */
int eddy__mq_open(eddy__hub_t *hub, const char *name,
                  const eddy__mq_opts_t *opts, eddy__mq_t **out);
/* Frees a hub's list of queues and their messages (hub.c, at its end). */
void eddy__mq_free_all(eddy__mq_t *list);
const char *eddy__mq_name(const eddy__mq_t *q);

/* 0, EDDY_EFULL, or EDDY_ENOMEM. delay_ms > 0: visible that much later. */
int eddy__mq_push(eddy__mq_t *q, const char *data, size_t len,
                  uint64_t delay_ms);
/* 0 with *out, or EDDY_ENOTFOUND when none is ready; then *due_ms is the
   time until a delayed or in-flight message may become ready (-1: none).
   EDDY_ENOMEM when the copy cannot be made (the message stays). */
int eddy__mq_pop(eddy__mq_t *q, eddy__mq_msg_t *out, int64_t *due_ms);
/* 0 or EDDY_ENOTFOUND (not in flight under that id). */
int eddy__mq_ack(eddy__mq_t *q, uint64_t id);
/* Back to ready after delay_ms (< 0: the backoff for its attempts), or to
   the dead-letter queue past max_attempts; *dead says which. 0 or
   EDDY_ENOTFOUND. */
int eddy__mq_nack(eddy__mq_t *q, uint64_t id, int64_t delay_ms, int *dead);
/* Messages held, and the bytes of their payloads. */
void eddy__mq_length(eddy__mq_t *q, size_t *ready, size_t *in_flight,
                     size_t *delayed, size_t *bytes);

/* For a task that found nothing to pop (room: found the queue full):
   queues a waiter unless the state changed meanwhile, in which case it
   returns NULL with *err 0 (look again at once). NULL with EDDY_ENOMEM.
   *due_ms: when the queue will change of itself (a delayed message, a
   visibility deadline), -1 for never: a taker waits no longer than that,
   and is woken if a change brings it sooner. */
eddy__xwaiter_t *eddy__mq_wait(eddy__mq_t *q, int room, eddy_runtime_t *rt,
                               eddy__task_t *t, int *err, int64_t *due_ms);

#endif

/*
 * topic.h: the topics of eddy.pubsub in one process. Every subscriber, in
 * any reactor thread, gets every message published after it subscribed.
 * A subscriber holds a bounded ring of messages: when a slow one's ring is
 * full, the oldest message goes and the drop is counted, so memory stays
 * bounded whatever the publishers do. A message is stored once, shared by
 * the rings that hold it. Topics are found by name in the program's hub
 * (hub.h), as memory queues are. Knows nothing of Lua.
 */
#ifndef EDDY_TOPIC_H
#define EDDY_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "xwait.h"

#define EDDY__TOPIC_NAME 128

typedef struct eddy__topic_s eddy__topic_t;
typedef struct eddy__sub_s eddy__sub_t;

typedef struct eddy__hub_s eddy__hub_t;

/* The hub's topic `name`, made on first use: 0 or an EDDY_E code (INVAL:
   a bad name; NOMEM). A topic lives as long as its hub: whoever holds one
   (a subscriber too) holds a reference to the hub. */
int eddy__topic_open(eddy__hub_t *hub, const char *name, eddy__topic_t **out);
/* Frees a hub's list of topics, which have no subscribers left. */
void eddy__topic_free_all(eddy__topic_t *list);

/* Copies the message into the ring of every subscriber, or (only > 0)
   of those made with that tag; *delivered: how many. */
int eddy__topic_publish(eddy__topic_t *t, const char *data, size_t len,
                        int only, size_t *delivered);

/* A subscriber with a ring of cap messages, tagged (its reactor thread:
   a message relayed from another process is published again in each
   thread that hears it, to that thread's subscribers only); NULL when
   out of memory. Its owner frees it with eddy__sub_close. */
eddy__sub_t *eddy__sub_new(eddy__topic_t *t, size_t cap, int tag);
/* Leaves the topic and frees the ring; its waiter, if any, is woken. */
void eddy__sub_close(eddy__sub_t *s);
/* The oldest message, copied (the caller frees *data): 0, or
   EDDY_ENOTFOUND when none waits, EDDY_ENOMEM. */
int eddy__sub_next(eddy__sub_t *s, char **data, size_t *len);
/* Messages dropped so far, and those waiting now. */
void eddy__sub_counts(eddy__sub_t *s, uint64_t *dropped, size_t *waiting);
/* As eddy__mq_wait: NULL with *err 0 when a message came meanwhile. */
eddy__xwaiter_t *eddy__sub_wait(eddy__sub_t *s, eddy_runtime_t *rt,
                                eddy__task_t *task, int *err);

#endif

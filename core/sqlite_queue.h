/*
 * sqlite_queue.h: the durable queue store of eddy.queue's SQLite backend.
 * A store is one database file (WAL mode) and one writer thread of its
 * own (one per file in a program's hub), which runs every operation, reads
 * included, so that no loop thread waits on the disk. Operations queued
 * while the writer is busy go into the next transaction together (group
 * commit), and each comes back to the runtime that submitted it once that
 * transaction has committed: a push that answers is durable. The writer
 * is a task pool (core/pool.h) of one thread whose state is the
 * connection, running one drain job at a time; each operation is a job
 * held on its runtime's job port, which the writer posts back. Knows
 * nothing of Lua.
 */
#ifndef EDDY_SQLITE_QUEUE_H
#define EDDY_SQLITE_QUEUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "xwait.h"

typedef struct eddy__sqlq_s eddy__sqlq_t;
typedef struct eddy__sqlq_op_s eddy__sqlq_op_t;

enum eddy__sqlq_kind {
  EDDY__SQLQ_OPEN,   /* makes the queue's counters: nothing else */
  EDDY__SQLQ_PUSH,
  EDDY__SQLQ_POP,
  EDDY__SQLQ_ACK,
  EDDY__SQLQ_NACK,
  EDDY__SQLQ_LENGTH
};

/* What an operation came back with (rc). */
enum eddy__sqlq_rc {
  EDDY__SQLQ_OK,
  EDDY__SQLQ_FULL,     /* push: the queue holds max messages */
  EDDY__SQLQ_EMPTY,    /* pop: nothing due; next_ms says when */
  EDDY__SQLQ_NOTFOUND, /* ack, nack: not in flight (or redelivered) */
  EDDY__SQLQ_ERROR     /* err says why */
};

typedef struct eddy__sqlq_msg_s {
  int64_t id;
  int attempts; /* deliveries so far, this one included */
  char *payload;
  size_t len;
} eddy__sqlq_msg_t;

/*
 * One operation. The submitter fills the inputs and job.done, which is
 * called on its loop thread once the operation has committed (or, when
 * the runtime has gone, in the writer thread): done must free the op
 * (eddy__sqlq_op_free). Times are ms.
 */
struct eddy__sqlq_op_s {
  eddy__job_t job;          /* first: held on the submitter's job port,
                               posted back by the writer */
  eddy__sqlq_op_t *next;    /* pending list of the store */
  int kind;
  char *queue;              /* owned */
  char *dead;               /* the dead-letter queue's name, owned */
  char *payload;            /* push, owned */
  size_t len;
  int64_t id;               /* ack, nack */
  int attempts;             /* ack, nack: the delivery acked; 0: any */
  int64_t delay;            /* push, nack: -1 for nack's backoff */
  int64_t max;              /* push: 0 for unbounded */
  int n;                    /* pop: the most messages to take */
  int64_t visibility;       /* pop */
  int max_attempts;         /* pop, nack */
  int64_t backoff;          /* nack: base, doubled per attempt ... */
  int64_t backoff_max;      /* ... up to this */
  void *data;               /* the submitter's */
  atomic_int abandoned;     /* its waiter went: a pop not yet run takes
                               nothing (its messages would stay in flight
                               until their visibility timeout) */
  /* Results. */
  int rc;
  char err[160];
  int64_t out_id;           /* push */
  int64_t ready;            /* length */
  int64_t in_flight;        /* length */
  int64_t next_ms;          /* pop, EMPTY: ms until one is due; -1: none */
  int dead_lettered;        /* nack: moved to the dead-letter queue;
                               pop: moved expired deliveries there */
  eddy__sqlq_msg_t *msgs;   /* pop */
  int nmsgs;
};

typedef struct eddy__hub_s eddy__hub_t;

/* The hub's store over the file at path (one writer per file, for every
   thread that opens it; made by the first open, whose sync_full
   picks synchronous=FULL, an fsync per commit: durable against power
   loss, over NORMAL, durable against a killed process only). NULL when
   out of memory. The file is opened by the writer thread, with the first
   operation. Any thread's loop may submit to it. */
eddy__sqlq_t *eddy__sqlq_new(eddy__hub_t *hub, const char *path,
                            int sync_full);
/* Lets go of the store; the last one ends it: the writer ends after what
   is pending (see eddy__pool_free), whose operations come back as usual. */
void eddy__sqlq_free(eddy__sqlq_t *q);

/* The waiter of op went (from the loop thread). */
void eddy__sqlq_abandon(eddy__sqlq_op_t *op);

/* A zeroed op of kind for queue, or NULL when out of memory. */
eddy__sqlq_op_t *eddy__sqlq_op_new(int kind, const char *queue,
                                   const char *dead);
void eddy__sqlq_op_free(eddy__sqlq_op_t *op);

/* Transactions committed and operations run in them, since the store was
   made: ops / commits is the group commit's batch. */
void eddy__sqlq_stats(eddy__sqlq_t *q, uint64_t *commits, uint64_t *ops);

/* Queues op from rt's loop thread. Returns 0 or an EDDY_E code. */
int eddy__sqlq_submit(eddy__sqlq_t *q, eddy_runtime_t *rt,
                      eddy__sqlq_op_t *op);

/*
 * Waiting for a queue of the file to change, from any thread of the hub
 * (see the signals of hub.h): each commit signals the queues its ops
 * changed (a push or a message made ready again for takers, an ack or a
 * move to the dead letters for givers). Another process's commits are
 * not seen: its waiters look again from time to time.
 */
/* The queue's version, read before a look; -1 when out of memory. */
int64_t eddy__sqlq_version(eddy__sqlq_t *q, const char *queue);
/* As eddy__hub_wait. */
eddy__xwaiter_t *eddy__sqlq_wait(eddy__sqlq_t *q, const char *queue,
                                 int givers, uint64_t seen,
                                 eddy_runtime_t *rt, eddy__task_t *t,
                                 int *err);
/* Wakes every waiter of the queue (one of its handles closed). */
void eddy__sqlq_wake_all(eddy__sqlq_t *q, const char *queue);

#endif

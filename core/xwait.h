/*
 * xwait.h: tasks of any reactor thread waiting on an object that any
 * thread may change (a memory queue, a topic's subscription). The object
 * keeps a FIFO of waiters under its own lock; whoever makes the awaited
 * thing happen takes a waiter off and posts it to the waiter's runtime
 * through the job port (pool.h), whose loop then resumes the task with
 * `true`. A wake-up carries nothing: the task looks again, so a wake-up
 * that arrives late is harmless, and one whose task went is passed on to
 * the next waiter. Knows nothing of Lua.
 */
#ifndef EDDY_XWAIT_H
#define EDDY_XWAIT_H

#include <uv.h>

#include "pool.h"
#include "task.h"

typedef struct eddy__xwaiter_s eddy__xwaiter_t;

/* Guarded by its owner's lock. */
typedef struct eddy__xwaitq_s {
  eddy__xwaiter_t *head;
  eddy__xwaiter_t *tail;
} eddy__xwaitq_t;

/* One wait of one task. Made on the task's loop thread, freed there by
   the wait's end (detach, or the job's done). */
struct eddy__xwaiter_s {
  eddy__job_t job;        /* first: the job port hands this back */
  eddy__xwaiter_t *next;  /* on the queue, under *lock */
  eddy__xwaiter_t *prev;
  eddy__xwaitq_t *q;      /* the queue it is on; NULL once taken off */
  uv_mutex_t *lock;       /* the owner's */
  eddy__task_t *task;     /* NULL once the wait ended otherwise */
  /* Wakes another waiter when this one was woken after its task went
     (called on the loop thread, without the lock held). */
  void (*pass)(void *owner);
  void *owner;
};

/* The ops of a task waiting with an xwaiter as wait_data. */
extern const eddy__wait_ops_t eddy__xwait_ops;

/* Makes a waiter for task t of rt on q and queues it: call with *lock
   held, then, after unlocking, eddy__task_wait(t, &eddy__xwait_ops, w,
   timeout). NULL when out of memory. */
eddy__xwaiter_t *eddy__xwait_new(eddy_runtime_t *rt, eddy__task_t *t,
                                 eddy__xwaitq_t *q, uv_mutex_t *lock,
                                 void (*pass)(void *owner), void *owner);

/* Under the owner's lock, from any thread: takes the first waiter off
   (all of them, when the object closes), linked through next; NULL when
   none waits. Then, with the lock released, post what it took: a runtime
   that has gone runs the wake-up in the posting thread. */
eddy__xwaiter_t *eddy__xwaitq_take(eddy__xwaitq_t *q, int all);
void eddy__xwait_post(eddy__xwaiter_t *list);

#endif

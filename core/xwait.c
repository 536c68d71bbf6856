/*
 * xwait.c: cross-thread waits (see xwait.h).
 */
#include "xwait.h"

#include <stdlib.h>

#include "runtime.h"

static void unlink_waiter(eddy__xwaiter_t *w) {
  eddy__xwaitq_t *q = w->q;
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    q->head = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  else
    q->tail = w->prev;
  w->next = w->prev = NULL;
  w->q = NULL;
}

/* On the waiter's loop thread: the wake-up came back. */
static void on_woken(eddy__job_t *job) {
  eddy__xwaiter_t *w = (eddy__xwaiter_t *)job;
  if (w->task != NULL && !atomic_load(&job->cancelled)) {
    eddy__task_t *t = w->task;
    /* A stopping runtime only queues the task, which its teardown may
       end before it runs: let another waiter look as well. */
    int may_not_run = t->sched->rt->stopping;
    lua_State *co = eddy__task_wake_begin(t);
    lua_pushboolean(co, 1);
    eddy__task_wake_end(t, 1);
    if (may_not_run && w->pass != NULL)
      w->pass(w->owner);
  } else if (w->pass != NULL && w->task == NULL &&
             atomic_load(&job->cancelled)) {
    /* The task went after it was taken off: what woke it is still
       there for someone else. (Not when the runtime went: the owner may
       be gone as well.) */
    w->pass(w->owner);
  }
  free(w);
}

/* The wait ended by timeout, cancellation or teardown. */
static void detach(eddy__task_t *t) {
  eddy__xwaiter_t *w = t->wait_data;
  uv_mutex_lock(w->lock);
  int queued = w->q != NULL;
  if (queued)
    unlink_waiter(w);
  uv_mutex_unlock(w->lock);
  w->task = NULL;
  eddy__job_unhold(&w->job, !queued);
  if (queued)
    free(w);
}

const eddy__wait_ops_t eddy__xwait_ops = {"queue", detach, NULL};

eddy__xwaiter_t *eddy__xwait_new(eddy_runtime_t *rt, eddy__task_t *t,
                                 eddy__xwaitq_t *q, uv_mutex_t *lock,
                                 void (*pass)(void *owner), void *owner) {
  eddy__xwaiter_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->job.done = on_woken;
  if (eddy__jobport_hold(rt, &w->job) != 0) {
    free(w);
    return NULL;
  }
  w->lock = lock;
  w->task = t;
  w->pass = pass;
  w->owner = owner;
  w->q = q;
  w->prev = q->tail;
  if (q->tail != NULL)
    q->tail->next = w;
  else
    q->head = w;
  q->tail = w;
  return w;
}

eddy__xwaiter_t *eddy__xwaitq_take(eddy__xwaitq_t *q, int all) {
  eddy__xwaiter_t *list = NULL, **tail = &list;
  while (q->head != NULL) {
    eddy__xwaiter_t *w = q->head;
    unlink_waiter(w);
    *tail = w;
    tail = &w->next;
    if (!all)
      break;
  }
  return list;
}

void eddy__xwait_post(eddy__xwaiter_t *list) {
  while (list != NULL) {
    eddy__xwaiter_t *next = list->next;
    eddy__job_post(&list->job);
    list = next;
  }
}

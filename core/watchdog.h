/*
 * watchdog.h: the loop-stall watchdog of one reactor thread. A thread of
 * its own watches the scheduler's resumes; when one task has held the loop
 * past a threshold it logs a warning at once (task id, name, the wait it
 * was resumed from), asks the Lua VM for that task's traceback through a
 * count hook, and counts the stall. Past an optional second threshold the
 * hook raises an error in the task instead, and the loop goes on.
 *
 * The loop thread only stores a few words per resume (enter/leave); the
 * watchdog thread never touches Lua: it signals the loop thread, whose
 * handler sets the hook.
 */
#ifndef EDDY_WATCHDOG_H
#define EDDY_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct eddy_runtime_s eddy_runtime_t;
typedef struct eddy__task_s eddy__task_t;

#define EDDY__TASK_NAME_MAX 24 /* bytes of a task's name, with its NUL */

typedef struct eddy__watchdog_s {
  eddy_runtime_t *rt;
  pthread_t thread;
  pthread_mutex_t lock; /* guards quit, and the sleep on wake */
  pthread_cond_t wake;
  pthread_t loop_thread; /* where the hook signal goes */
  int use_signal;        /* the host lets eddy handle signals */
  int started;
  int quit;
  /* Settings, in ms; may change while the thread runs. 0 turns off. */
  _Atomic int threshold_ms;
  _Atomic int abort_ms;
  /* What the loop thread publishes. seq is odd while a task runs; the
     other fields describe that run and are written only while seq is
     even, so a reader that sees the same odd seq before and after reading
     them has a consistent copy. */
  _Atomic uint64_t seq;
  _Atomic uint64_t task_id;
  _Atomic(const char *) resumed_from;
  _Atomic uint64_t name[EDDY__TASK_NAME_MAX / 8];
  /* Set by the watchdog thread for the loop thread's hook: the run (seq)
     the hook is meant for, and whether it must abort the task. */
  _Atomic uint64_t hook_seq;
  _Atomic int hook_abort;
  _Atomic uint64_t warned_seq; /* the run a warning was logged for */
  _Atomic uint64_t stall_start_ms;
  /* Figures. */
  _Atomic uint64_t stalls;
  _Atomic uint64_t aborts;
  _Atomic uint64_t longest_ms;
} eddy__watchdog_t;

void eddy__watchdog_init(eddy__watchdog_t *wd, eddy_runtime_t *rt,
                         int threshold_ms, int abort_ms);
/* Starts the thread (when a threshold is set); returns 0 or an eddy
   error. Stop joins it. Both are called by the loop thread around a run. */
int eddy__watchdog_start(eddy__watchdog_t *wd);
void eddy__watchdog_stop(eddy__watchdog_t *wd);
/* Changes the thresholds at run time (0 turns each off). */
void eddy__watchdog_configure(eddy__watchdog_t *wd, int threshold_ms,
                              int abort_ms);

/* Around each resume of a task, in the loop thread. */
void eddy__watchdog_enter(eddy__watchdog_t *wd, const eddy__task_t *t);
void eddy__watchdog_leave(eddy__watchdog_t *wd);

#endif

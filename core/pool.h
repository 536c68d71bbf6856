/*
 * pool.h: the task pool, threads of its own that run blocking or CPU-heavy
 * jobs off the reactor threads (eddy.task.run). A job is submitted by a
 * runtime and comes back to it: the pool thread runs it, then posts it to
 * the runtime's job port, whose async handle wakes the loop, which calls
 * the job's done callback there. Nothing ever waits for a job: a runtime
 * that ends, or a pool that is freed, leaves a running job to finish in
 * its thread, its result dropped (Lua code cannot always be interrupted:
 * LuaJIT checks hooks in interpreted code only). The pool's threads start
 * on the first job; one pool serves a group's threads, or a runtime of
 * its own. What a thread holds (a Lua state) is the owner's: core knows
 * nothing of Lua.
 */
#ifndef EDDY_POOL_H
#define EDDY_POOL_H

#include <stdatomic.h>
#include <uv.h>

typedef struct eddy_runtime_s eddy_runtime_t;
typedef struct eddy__job_s eddy__job_t;
typedef struct eddy__pool_s eddy__pool_t;
typedef struct eddy__jobport_s eddy__jobport_t;

enum eddy__job_state { EDDY__JOB_QUEUED, EDDY__JOB_RUNNING, EDDY__JOB_DONE };

struct eddy__job_s {
  eddy__job_t *next;
  eddy__jobport_t *port; /* where it comes back */
  int state;             /* guarded by the pool's lock */
  atomic_int cancelled;  /* the waiter went: run may stop early, and done
                            only frees it */
  void *thread;          /* the pool thread's state while RUNNING */
  /* In a pool thread, with that thread's state (NULL if the thread could
     not make one). */
  void (*run)(eddy__job_t *job, void *thread_state);
  /* Once run has returned: on the runtime's loop thread; or, cancelled,
     in the pool thread when the runtime has gone. Not called for a job
     cancelled before it ran (eddy__pool_cancel says so). */
  void (*done)(eddy__job_t *job);
};

/* What the pool's owner provides for its threads. */
typedef struct eddy__pool_ops_s {
  void *(*thread_new)(void *arg);
  void (*thread_free)(void *state);
  /* From another thread, under the pool's lock: make the job running on
     this state stop soon. */
  void (*interrupt)(void *state);
  void (*arg_free)(void *arg);
} eddy__pool_ops_t;

eddy__pool_t *eddy__pool_new(int threads, const eddy__pool_ops_t *ops,
                             void *arg);
/* Ends the pool: idle threads end now, busy ones after their job (eddy's
   code then stays loaded for the process's life, even if its host unloads
   the Lua module). Its queue must be empty (every runtime that used it
   has gone). */
void eddy__pool_free(eddy__pool_t *p);
int eddy__pool_threads(const eddy__pool_t *p);

/* Queues job from rt's loop thread. Returns 0 or an EDDY_E code. */
int eddy__pool_submit(eddy__pool_t *p, eddy_runtime_t *rt, eddy__job_t *job);
/* The waiter went. Returns 1 if the job had not started: it is off the
   queue and the caller frees it. Else 0: a running job is interrupted,
   and its done callback, which must free it, still comes. */
int eddy__pool_cancel(eddy__pool_t *p, eddy__job_t *job);

/*
 * Jobs that no pool runs: a task waiting on something another thread
 * finishes (a queue that any thread pushes to) holds a job on its runtime's
 * port, and that thread posts it; done then runs on the loop thread. While
 * held, the job keeps the loop alive, as a submitted one does.
 */
int eddy__jobport_hold(eddy_runtime_t *rt, eddy__job_t *job);
/* From any thread, once: hands a held job back to its runtime. */
void eddy__job_post(eddy__job_t *job);
/* On the loop thread, when the waiter went. posted 0: the job never will
   be, and the caller frees it now; 1: it was or is being posted, and its
   done, which must free it, still comes (cancelled set). */
void eddy__job_unhold(eddy__job_t *job, int posted);

/* rt goes: jobs already back are done, later ones are freed where they
   finish. Called from rt's loop thread before its loop closes. */
void eddy__jobport_detach(eddy_runtime_t *rt);

#endif

/*
 * task.h: tasks and the coroutine bridge. A task is a Lua coroutine run by
 * the scheduler of one reactor thread. A C function that waits records the
 * wait on the current task and yields; a completion later pushes results
 * onto the task's coroutine and resumes it. DESIGN.md, "The coroutine
 * bridge", gives the rules this file keeps.
 */
#ifndef EDDY_TASK_H
#define EDDY_TASK_H

#include <stdint.h>
#include <uv.h>
#include <lua.h>

#include "timer.h"
#include "watchdog.h"

#define EDDY__CO_POOL 256

typedef struct eddy_runtime_s eddy_runtime_t;
typedef struct eddy__task_s eddy__task_t;
typedef struct eddy__sched_s eddy__sched_t;

enum eddy__task_state {
  EDDY__TASK_READY,   /* queued to run (first run, or woken by Lua code) */
  EDDY__TASK_RUNNING, /* on the CPU: the one task of sched->current */
  EDDY__TASK_WAITING, /* suspended in a wait */
  EDDY__TASK_DONE     /* returned, failed, or never ran (cancelled) */
};

#define EDDY__TASK_CANCELLED 0x01 /* sticky: every later wait answers so */
#define EDDY__TASK_FAILED 0x02    /* ended with an error */
#define EDDY__TASK_MAIN 0x04      /* a loaded chunk: its error ends the run */
#define EDDY__TASK_NOLOG 0x08     /* its error is not logged (eddy.run) */
#define EDDY__TASK_STARTED 0x10   /* resumed at least once */
#define EDDY__TASK_ESCAPED 0x20   /* Lua code holds its coroutine
                                     (coroutine.running): never reuse it */
#define EDDY__TASK_ABANDONED 0x40 /* ended by a teardown, not by itself */
#define EDDY__TASK_ANSWER_CANCELLED 0x80 /* queued to answer "cancelled" */
#define EDDY__TASK_LINKED 0x100   /* on the live list (not yet released) */

/* What a task waits on. detach is called when the wait ends by timeout,
   cancellation or teardown: it unhooks the task from the waited object. */
typedef struct eddy__wait_ops_s {
  const char *what;
  void (*detach)(eddy__task_t *task);
  /* Pushes on co what the wait answers when it ends with err (EDDY_ETIMEOUT
     or EDDY_ECANCELLED) and returns the count; NULL means nil, err. */
  int (*fail)(eddy__task_t *task, lua_State *co, int err);
} eddy__wait_ops_t;

/* A FIFO of waiting tasks, linked through the tasks themselves: a task
   waits on one thing at a time. */
typedef struct eddy__waitq_s {
  eddy__task_t *head;
  eddy__task_t *tail;
} eddy__waitq_t;

/*
 * Task memory comes from the scheduler's chunks and is reused, never freed,
 * while the runtime lives: a pointer to a finished task still points to a
 * task, whose gen tells a stale completion apart.
 */
struct eddy__task_s {
  eddy__sched_t *sched;
  lua_State *co;    /* root coroutine, alive while co_ref anchors it;
                       NULL once the task is done */
  int co_ref;       /* eddy__ref of co */
  int res_ref;      /* results kept for join (a table, pcall-shaped);
                       EDDY__NOREF when there were none beyond `true` */
  uint32_t slot;    /* position in the scheduler's chunks: the Lua token */
  uint8_t state;
  uint16_t flags;
  uint32_t handles; /* Lua task handles pointing here */
  uint64_t id;      /* unique for the runtime's life */
  uint64_t gen;     /* bumped when a wait ends; completions carry it */
  int nargs;        /* values waiting on co for the next resume */
  eddy__task_t *next; /* ready queue or a wait queue */
  eddy__task_t *prev;
  eddy__waitq_t *queue; /* the wait queue it is on, if any */
  eddy__task_t *all_next; /* live tasks, for listings and teardown */
  eddy__task_t *all_prev;
  const eddy__wait_ops_t *wait;
  const char *what; /* what it waits on, for listings */
  const char *resumed_from; /* the what of its last wait, for the
                               watchdog */
  uint64_t born;    /* loop time (ms) it was spawned at */
  char name[EDDY__TASK_NAME_MAX]; /* given by Lua code, for listings */
  lua_State *wait_L; /* the coroutine that waits (the task's, or a user
                        coroutine inside it), for listings; anchored by
                        the suspended chain while the wait lasts */
  void *wait_data;
  eddy__timer_t timeout; /* may stay in the heap after the wait (see
                            eddy__task_wait), weak */
  uint64_t deadline;     /* loop time the current wait times out; 0: none */
  eddy__waitq_t joiners;
  /* Called once when the task ends (or is abandoned), before anything
     else: lets go of what the task owned (a server closes the task's
     connection). Must not touch Lua when the runtime's L is NULL. */
  void (*on_done)(void *data);
  void *done_data;
};

/* A reference to one particular wait of a task. */
typedef struct eddy__waiter_s {
  eddy__task_t *task;
  uint64_t gen;
} eddy__waiter_t;

struct eddy__sched_s {
  eddy_runtime_t *rt;
  lua_State *L;            /* the thread's main state */
  eddy__task_t *current;   /* the running task, or NULL */
  int depth;               /* > 0 while inside a resume: wake-ups queue */
  eddy__task_t *ready_head;
  eddy__task_t *ready_tail;
  eddy__task_t *all;       /* live tasks (not DONE) */
  size_t live;
  uint64_t next_id;
  eddy__task_t **chunks;   /* task memory, EDDY__TASK_CHUNK tasks each */
  uint32_t nchunks;
  eddy__task_t *free;      /* released tasks, linked through next */
  /* Coroutines of finished tasks, ready for new ones: making a coroutine
     and collecting it later costs more than the rest of a task. */
  lua_State *pool_co[EDDY__CO_POOL];
  int pool_ref[EDDY__CO_POOL];
  int npool;
  size_t nready;
  int entry_ref;           /* xpcall */
  int traceback_ref;       /* the message handler */
  int whats_ref;           /* anchors the strings of Lua-level waits */
  uv_check_t check;        /* runs the ready queue after each poll */
  uv_idle_t idle;          /* keeps poll from blocking while tasks are ready */
  uint64_t spawned;        /* counters for eddy.stats() */
  uint64_t finished;
  uint64_t failed;
};

int eddy__sched_init(eddy__sched_t *s, eddy_runtime_t *rt, lua_State *L);
/* Ends every live task without resuming it (their waits are detached) and
   closes the scheduler's handles. */
void eddy__sched_abandon(eddy__sched_t *s);
void eddy__sched_close(eddy__sched_t *s);
void eddy__sched_free(eddy__sched_t *s);

/* Pops a function and nargs arguments from L (the main state or one of its
   coroutines) and queues a task that calls it. NULL when out of memory. */
eddy__task_t *eddy__task_spawn(eddy__sched_t *s, lua_State *L, int nargs);

/* The task with a given slot, or NULL. */
eddy__task_t *eddy__task_at(eddy__sched_t *s, uint32_t slot);

/* Raises "must be called inside a task" (or a plain error when Lua cannot
   yield here) unless L may wait; returns the current task. */
eddy__task_t *eddy__task_check_wait(eddy__sched_t *s, lua_State *L);

/* Raises msg, blamed on the script that called: the first frame outside
   eddy's own Lua files. */
void eddy__raise_at_caller(lua_State *L, const char *msg);

/* Records that t (the current task) waits; timeout_ms < 0 means none.
   The caller then returns eddy__task_yield(L). */
void eddy__task_wait(eddy__task_t *t, const eddy__wait_ops_t *ops,
                     void *data, int64_t timeout_ms);
int eddy__task_yield(eddy__sched_t *s, lua_State *L);

/* Ends t's wait: returns the coroutine to push results onto; then call
   eddy__task_wake_end with their count. The task resumes at once when
   called from a libuv callback, else it is queued: no nested resumes. */
lua_State *eddy__task_wake_begin(eddy__task_t *t);
void eddy__task_wake_end(eddy__task_t *t, int nresults);

/* Gives a waiting task's wait a new timeout from now (an HTTP connection
   whose idle wait becomes a wait for the rest of a head). */
void eddy__task_retime(eddy__task_t *t, int64_t timeout_ms);

/* Queues the running task behind the ready ones (eddy.yield). */
void eddy__task_requeue(eddy__task_t *t);

/* For a wait begun by a cancelled task: instead of waiting, the task goes
   round the ready queue once and the wait answers "cancelled" (through
   ops->fail), so that a loop of waits cannot starve the loop. The caller
   then returns eddy__task_yield(L). */
void eddy__task_wait_cancelled(eddy__task_t *t, const eddy__wait_ops_t *ops);

/* Pushes co's traceback from level out (luaL_traceback), without the
   frame every task starts in. */
void eddy__task_traceback(lua_State *L, lua_State *co, const char *msg,
                          int level);

/* Pushes what join answers for a finished task (pcall-shaped); returns
   the count. */
int eddy__task_push_results(eddy__task_t *t, lua_State *L);

/* Cancels t: sticky; a wait in progress ends with nil, "cancelled"; a task
   that never ran never will. */
void eddy__task_cancel(eddy__task_t *t);

/* A Lua handle let go of t; it is released once it is done as well. */
void eddy__task_unhandle(eddy__task_t *t);

static inline eddy__waiter_t eddy__waiter_of(eddy__task_t *t) {
  eddy__waiter_t w = {t, t->gen};
  return w;
}
/* True while the wait w refers to has not ended. */
static inline int eddy__waiter_is_current(eddy__waiter_t w) {
  return w.task != NULL && w.task->gen == w.gen &&
         w.task->state == EDDY__TASK_WAITING;
}

/* Wake-ups between hold and unhold are queued, not run at once: for code
   that Lua called (a method, a __gc finalizer) rather than libuv. Only a
   completion that libuv delivers resumes its task directly. */
static inline void eddy__sched_hold(eddy__sched_t *s) {
  s->depth++;
}
static inline void eddy__sched_unhold(eddy__sched_t *s) {
  s->depth--;
}

void eddy__waitq_push(eddy__waitq_t *q, eddy__task_t *t);
void eddy__waitq_remove(eddy__task_t *t);
eddy__task_t *eddy__waitq_pop(eddy__waitq_t *q);

/* Appends "task N waits on WHAT at FILE:LINE" lines for every waiting task
   to the buffer at the top of L's stack. */
void eddy__sched_describe(eddy__sched_t *s, lua_State *L, int max);

#endif

/*
 * pool.c: the task pool and job ports (see pool.h).
 */
#include "pool.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include "runtime.h"

typedef struct pool_thread_s {
  eddy__pool_t *pool;
  uv_thread_t tid;
  int busy;     /* running a job: freeing the pool does not wait for it */
  int detached; /* it ends by itself */
} pool_thread_t;

struct eddy__pool_s {
  uv_mutex_t lock;
  uv_cond_t work;       /* a job was queued, or the pool stops */
  eddy__job_t *head;    /* queued jobs, oldest first */
  eddy__job_t *tail;
  int size;
  int started;          /* threads made */
  int stopping;
  int orphans;          /* detached threads still running, and the
                           eddy__pool_free in progress: the last frees it */
  pool_thread_t *threads;
  eddy__pool_ops_t ops;
  void *arg;
};

/* Where a runtime's jobs come back: lives while the runtime or a job
   still points to it. */
struct eddy__jobport_s {
  eddy_runtime_t *rt;   /* NULL once the runtime has gone */
  uv_async_t async;     /* referenced while jobs are out */
  uv_mutex_t lock;      /* guards rt, done and refs */
  eddy__job_t *done;    /* come back, done not yet called */
  int refs;             /* the runtime's, and one per job out */
  int waiting;          /* jobs out whose waiter waits: loop thread only */
};

eddy__pool_t *eddy__pool_new(int threads, const eddy__pool_ops_t *ops,
                             void *arg) {
  if (threads <= 0)
    threads = (int)uv_available_parallelism();
  eddy__pool_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->threads = calloc((size_t)threads, sizeof *p->threads);
  if (p->threads == NULL || uv_mutex_init(&p->lock) != 0) {
    free(p->threads);
    free(p);
    return NULL;
  }
  if (uv_cond_init(&p->work) != 0) {
    uv_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
    return NULL;
  }
  p->size = threads;
  p->ops = *ops;
  p->arg = arg;
  return p;
}

int eddy__pool_threads(const eddy__pool_t *p) {
  return p->size;
}

static void pool_release(eddy__pool_t *p) {
  uv_cond_destroy(&p->work);
  uv_mutex_destroy(&p->lock);
  if (p->ops.arg_free != NULL)
    p->ops.arg_free(p->arg);
  free(p->threads);
  free(p);
}

/* ======================================================================= */
/* Job ports */

static void port_unref(eddy__jobport_t *port) {
  uv_mutex_lock(&port->lock);
  int last = --port->refs == 0;
  uv_mutex_unlock(&port->lock);
  if (last) {
    uv_mutex_destroy(&port->lock);
    free(port);
  }
}

/* A job's waiter has its answer, or went: the loop need not run for it
   any more. */
static void waiter_gone(eddy__jobport_t *port) {
  if (--port->waiting == 0 && port->rt != NULL)
    uv_unref((uv_handle_t *)&port->async);
}

/* Calls done for each job of the list, oldest first. */
static void finish(eddy__jobport_t *port, eddy__job_t *list) {
  eddy__job_t *rev = NULL;
  while (list != NULL) {
    eddy__job_t *next = list->next;
    list->next = rev;
    rev = list;
    list = next;
  }
  while (rev != NULL) {
    eddy__job_t *next = rev->next;
    if (!atomic_load(&rev->cancelled))
      waiter_gone(port);
    rev->done(rev);
    port_unref(port); /* the runtime holds one: never the last here */
    rev = next;
  }
}

static eddy__job_t *take_done(eddy__jobport_t *port) {
  uv_mutex_lock(&port->lock);
  eddy__job_t *list = port->done;
  port->done = NULL;
  uv_mutex_unlock(&port->lock);
  return list;
}

static void on_jobs_back(uv_async_t *async) {
  eddy__jobport_t *port = async->data;
  finish(port, take_done(port));
}

static eddy__jobport_t *port_of(eddy_runtime_t *rt) {
  if (rt->jobs != NULL)
    return rt->jobs;
  eddy__jobport_t *port = calloc(1, sizeof *port);
  if (port == NULL || uv_mutex_init(&port->lock) != 0) {
    free(port);
    return NULL;
  }
  if (uv_async_init(&rt->loop, &port->async, on_jobs_back) != 0) {
    uv_mutex_destroy(&port->lock);
    free(port);
    return NULL;
  }
  port->async.data = port;
  uv_unref((uv_handle_t *)&port->async);
  port->rt = rt;
  port->refs = 1;
  rt->jobs = port;
  return port;
}

static void on_port_closed(uv_handle_t *handle) {
  port_unref(handle->data); /* the runtime's reference */
}

void eddy__jobport_detach(eddy_runtime_t *rt) {
  eddy__jobport_t *port = rt->jobs;
  if (port == NULL)
    return;
  rt->jobs = NULL;
  uv_mutex_lock(&port->lock);
  port->rt = NULL;
  eddy__job_t *list = port->done;
  port->done = NULL;
  uv_mutex_unlock(&port->lock);
  finish(port, list);
  uv_close((uv_handle_t *)&port->async, on_port_closed);
}

/* Points job at rt's port, made on first use; NULL when out of memory. */
static eddy__jobport_t *job_attach(eddy_runtime_t *rt, eddy__job_t *job) {
  eddy__jobport_t *port = port_of(rt);
  if (port == NULL)
    return NULL;
  job->port = port;
  job->next = NULL;
  job->thread = NULL;
  atomic_store(&job->cancelled, 0);
  return port;
}

/* A job is out: it holds the port, and while jobs are out, their waiters
   count on the loop running. */
static void job_out(eddy__jobport_t *port) {
  uv_mutex_lock(&port->lock);
  port->refs++;
  uv_mutex_unlock(&port->lock);
  if (port->waiting++ == 0)
    uv_ref((uv_handle_t *)&port->async);
}

/* Hands a finished job back to its runtime, or frees it when that has
   gone. The lock is held over the wake-up: once it is released, the
   runtime may go. */
static void post(eddy__job_t *job) {
  eddy__jobport_t *port = job->port;
  uv_mutex_lock(&port->lock);
  if (port->rt != NULL) {
    job->next = port->done;
    port->done = job;
    uv_async_send(&port->async);
    uv_mutex_unlock(&port->lock);
    return;
  }
  uv_mutex_unlock(&port->lock);
  job->done(job); /* cancelled when its runtime went */
  port_unref(port);
}

int eddy__jobport_hold(eddy_runtime_t *rt, eddy__job_t *job) {
  eddy__jobport_t *port = job_attach(rt, job);
  if (port == NULL)
    return EDDY_ENOMEM;
  job->state = EDDY__JOB_RUNNING;
  job_out(port);
  return 0;
}

void eddy__job_post(eddy__job_t *job) {
  post(job);
}

void eddy__job_unhold(eddy__job_t *job, int posted) {
  atomic_store(&job->cancelled, 1);
  waiter_gone(job->port);
  if (!posted)
    port_unref(job->port);
}

/* ======================================================================= */
/* Pool threads */

static void pool_thread(void *arg) {
  pool_thread_t *self = arg;
  eddy__pool_t *p = self->pool;
  void *state = p->ops.thread_new(p->arg);
  uv_mutex_lock(&p->lock);
  for (;;) {
    while (p->head == NULL && !p->stopping)
      uv_cond_wait(&p->work, &p->lock);
    eddy__job_t *job = p->head;
    if (job == NULL)
      break;
    p->head = job->next;
    if (p->head == NULL)
      p->tail = NULL;
    job->state = EDDY__JOB_RUNNING;
    job->thread = state;
    self->busy = 1;
    uv_mutex_unlock(&p->lock);
    job->run(job, state);
    uv_mutex_lock(&p->lock);
    self->busy = 0;
    job->state = EDDY__JOB_DONE;
    job->thread = NULL;
    uv_mutex_unlock(&p->lock);
    post(job);
    uv_mutex_lock(&p->lock);
  }
  uv_mutex_unlock(&p->lock);
  /* Before this thread lets go of the pool: once it has, the last holder
     may free it. */
  if (state != NULL)
    p->ops.thread_free(state);
  if (!self->detached)
    return; /* eddy__pool_free joins it */
  uv_mutex_lock(&p->lock);
  int last = --p->orphans == 0;
  uv_mutex_unlock(&p->lock);
  if (last)
    pool_release(p);
}

static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

/* An orphan runs eddy's code after eddy__pool_free has returned, when the
   host may unload eddy: lua_close unloads the Lua module (eddy.so) and a
   host process goes on. Keep eddy's code mapped for the process's life. */
static void pin_code(void) {
  Dl_info info;
  if (dladdr((void *)&pin_once, &info) != 0 && info.dli_fname != NULL)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void eddy__pool_free(eddy__pool_t *p) {
  if (p == NULL)
    return;
  uv_mutex_lock(&p->lock);
  p->stopping = 1;
  uv_cond_broadcast(&p->work);
  /* A thread still in a job may be in it for good (a compiled endless
     loop, a blocking call): it ends by itself, and the last to end frees
     the pool. */
  for (int i = 0; i < p->started; i++)
    if (p->threads[i].busy) {
      p->threads[i].detached = 1;
      p->orphans++;
      pthread_detach(p->threads[i].tid);
    }
  int orphaned = p->orphans > 0;
  /* This call holds the pool as an orphan does while it joins the other
     threads: an orphan that ends meanwhile must not free it. */
  p->orphans++;
  uv_mutex_unlock(&p->lock);
  if (orphaned)
    pthread_once(&pin_once, pin_code);
  for (int i = 0; i < p->started; i++)
    if (!p->threads[i].detached)
      uv_thread_join(&p->threads[i].tid);
  uv_mutex_lock(&p->lock);
  int last = --p->orphans == 0;
  uv_mutex_unlock(&p->lock);
  if (last)
    pool_release(p);
}

/* ======================================================================= */
/* Submitting and cancelling */

int eddy__pool_submit(eddy__pool_t *p, eddy_runtime_t *rt,
                      eddy__job_t *job) {
  eddy__jobport_t *port = job_attach(rt, job);
  if (port == NULL)
    return EDDY_ENOMEM;
  job->state = EDDY__JOB_QUEUED;
  uv_mutex_lock(&p->lock);
  /* Threads start with the first job: a program that never uses the pool
     pays nothing, and worker processes fork before any thread exists. */
  while (p->started < p->size) {
    pool_thread_t *t = &p->threads[p->started];
    t->pool = p;
    if (uv_thread_create(&t->tid, pool_thread, t) != 0)
      break;
    p->started++;
  }
  if (p->started == 0) {
    uv_mutex_unlock(&p->lock);
    return EDDY_ENOMEM;
  }
  if (p->tail != NULL)
    p->tail->next = job;
  else
    p->head = job;
  p->tail = job;
  uv_cond_signal(&p->work);
  uv_mutex_unlock(&p->lock);
  job_out(port);
  return 0;
}

int eddy__pool_cancel(eddy__pool_t *p, eddy__job_t *job) {
  uv_mutex_lock(&p->lock);
  atomic_store(&job->cancelled, 1);
  if (job->state == EDDY__JOB_QUEUED) {
    eddy__job_t **link = &p->head, *prev = NULL;
    while (*link != job) {
      prev = *link;
      link = &(*link)->next;
    }
    *link = job->next;
    if (p->tail == job)
      p->tail = prev;
    uv_mutex_unlock(&p->lock);
    waiter_gone(job->port);
    port_unref(job->port);
    return 1;
  }
  /* A thread that could not make its state runs no code to interrupt. */
  if (job->state == EDDY__JOB_RUNNING && job->thread != NULL &&
      p->ops.interrupt != NULL)
    p->ops.interrupt(job->thread);
  uv_mutex_unlock(&p->lock);
  waiter_gone(job->port);
  return 0;
}

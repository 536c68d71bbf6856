/*
 * runtime.c: the runtime object's life (attach, run, release), process-wide
 * setup, how a run ends (nothing left, eddy.exit, a failing chunk, a
 * deadlock) and the graceful stop that SIGINT, SIGTERM and eddy_stop start.
 */
#include "runtime.h"

#include <ares.h>
#include <lauxlib.h>
#include <math.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "curl.h"
#include "group.h"
#include "hub.h"
#include "shared.h"
#include "worker.h"

/* ======================================================================= */
/* Process-wide setup */

static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void process_setup(void) {
  /* A write to a peer that has gone must answer "closed", not kill the
     process; libuv writes with write(2), which raises SIGPIPE. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
  ares_library_init(ARES_LIB_INIT_ALL);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  OPENSSL_init_ssl(0, NULL);
}

void eddy__process_init(void) {
  pthread_once(&process_once, process_setup);
}

/* ======================================================================= */
/* Logging and errors */

void eddy__log(eddy_runtime_t *rt, int level, const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (rt->opts.log != NULL) {
    rt->opts.log(rt->opts.log_data, level, msg);
    return;
  }
  const char *tag = level <= EDDY_LOG_ERROR  ? "error: "
                    : level == EDDY_LOG_WARN ? "warning: "
                                             : "";
  /* With several threads, say which one speaks. */
  if (rt->opts.group != NULL && eddy_group_threads(rt->opts.group) > 1)
    fprintf(stderr, "eddy[%d]: %s%s\n", rt->opts.thread, tag, msg);
  else
    fprintf(stderr, "eddy: %s%s\n", tag, msg);
  fflush(stderr);
}

void eddy__set_error(eddy_runtime_t *rt, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rt->error, sizeof rt->error, fmt, ap);
  va_end(ap);
}

int64_t eddy__timeout_ms(double seconds) {
  if (isnan(seconds) || seconds < 0 || isinf(seconds))
    return -1;
  /* Round up to whole ms, but not past what the decimal meant: 0.003 is
     3.0000000000000004 ms in binary. */
  double ms = ceil(seconds * 1000.0 - 1e-6);
  return ms > 9e15 ? (int64_t)9e15 : (int64_t)ms;
}

/* ======================================================================= */
/* Closers: what a stop must close */

void eddy__closer_add(eddy_runtime_t *rt, eddy__closer_t *c) {
  c->prev = NULL;
  c->next = rt->closers;
  if (rt->closers)
    rt->closers->prev = c;
  rt->closers = c;
}

void eddy__closer_remove(eddy_runtime_t *rt, eddy__closer_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else if (rt->closers == c)
    rt->closers = c->next;
  else
    return; /* not linked */
  if (c->next)
    c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

/* Closes every closer, or (graceful) starts winding down those that have
   a stop; each removes itself from the list when closed. */
static void close_all(eddy_runtime_t *rt, int graceful) {
  eddy__closer_t *c = rt->closers;
  while (c != NULL) {
    eddy__closer_t *next = c->next;
    if (!graceful)
      c->close(c);
    else if (c->stop != NULL)
      c->stop(c);
    c = next;
  }
}

/* ======================================================================= */
/* Ending a run */

void eddy__runtime_exit(eddy_runtime_t *rt, int code) {
  if (rt->stopping)
    return;
  rt->stopping = 1;
  rt->stop_code = code;
  uv_stop(&rt->loop);
}

void eddy__runtime_started(eddy_runtime_t *rt) {
  rt->started = 1;
  if (rt->opts.worker != NULL && !rt->stopping)
    eddy__worker_ready(rt->opts.worker);
}

void eddy__runtime_idle(eddy_runtime_t *rt) {
  if (rt->shutting_down)
    eddy__runtime_exit(rt, 0);
}

static void on_grace(uv_timer_t *timer) {
  eddy_runtime_t *rt = timer->data;
  if (rt->grace_phase == 1) {
    /* The grace period is over: cancel what still runs, and give the
       cleanup code a moment of its own. */
    rt->grace_phase = 2;
    eddy__log(rt, EDDY_LOG_WARN, "%d tasks still running after %.3g s; "
              "cancelling them", (int)rt->sched.live, rt->opts.shutdown_grace);
    /* The cancelled tasks are queued, not run, while we walk the list. */
    rt->sched.depth++;
    for (eddy__task_t *t = rt->sched.all; t != NULL;) {
      eddy__task_t *next = t->all_next;
      eddy__task_cancel(t);
      t = next;
    }
    rt->sched.depth--;
    if (rt->sched.live > 0)
      uv_timer_start(&rt->grace, on_grace, 1000, 0);
    return;
  }
  eddy__runtime_exit(rt, 0);
}

void eddy__runtime_shutdown(eddy_runtime_t *rt) {
  if (!rt->running)
    return;
  if (rt->shutting_down) {
    eddy__log(rt, EDDY_LOG_WARN, "second stop request: exiting now");
    rt->exit_requested = 1;
    eddy__runtime_exit(rt, 130);
    return;
  }
  rt->shutting_down = 1;
  close_all(rt, 1);
  if (rt->sched.live == 0) {
    eddy__runtime_exit(rt, 0);
    return;
  }
  rt->grace_phase = 1;
  uv_timer_start(&rt->grace, on_grace,
                 (uint64_t)eddy__timeout_ms(rt->opts.shutdown_grace), 0);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  eddy__runtime_shutdown(sig->data);
}

static void on_stop_async(uv_async_t *async) {
  eddy_runtime_t *rt = async->data;
  if (rt->running)
    eddy__runtime_shutdown(rt);
  else
    rt->stop_pending = 1;
}

static void watch_signals(eddy_runtime_t *rt, int on) {
  if (!rt->opts.install_signal_handlers)
    return;
  if (on) {
    if (!rt->user_signal[0])
      uv_signal_start(&rt->sigint, on_signal, SIGINT);
    if (!rt->user_signal[1])
      uv_signal_start(&rt->sigterm, on_signal, SIGTERM);
  } else {
    uv_signal_stop(&rt->sigint);
    uv_signal_stop(&rt->sigterm);
  }
}

void eddy__runtime_user_signal(eddy_runtime_t *rt, int signum, int on) {
  int i = signum == SIGINT ? 0 : signum == SIGTERM ? 1 : -1;
  if (i < 0)
    return;
  rt->user_signal[i] += on ? 1 : -1;
  if (rt->running) {
    uv_signal_t *sig = i == 0 ? &rt->sigint : &rt->sigterm;
    if (rt->user_signal[i] > 0)
      uv_signal_stop(sig);
    else if (rt->opts.install_signal_handlers)
      uv_signal_start(sig, on_signal, signum);
  }
}

int eddy__runtime_run(eddy_runtime_t *rt) {
  if (rt->running)
    return EDDY_EBUSY;
  rt->running = 1;
  rt->stopping = 0;
  rt->stop_code = 0;
  rt->shutting_down = 0;
  rt->grace_phase = 0;
  rt->end = EDDY_OK;
  rt->exit_requested = 0;
  rt->error[0] = '\0';
  watch_signals(rt, 1);
  if (rt->stop_pending) {
    rt->stop_pending = 0;
    eddy__runtime_shutdown(rt);
  }
  if (eddy__watchdog_start(&rt->watchdog) != 0)
    eddy__log(rt, EDDY_LOG_WARN, "cannot start the loop watchdog's thread");
  uv_run(&rt->loop, UV_RUN_DEFAULT);
  eddy__watchdog_stop(&rt->watchdog);
  watch_signals(rt, 0);
  uv_timer_stop(&rt->grace);

  int code = 0;
  if (rt->stopping) {
    code = rt->stop_code;
  } else if (rt->sched.live > 0) {
    /* Nothing is active, yet tasks wait: nothing can ever wake them. */
    eddy__sched_describe(&rt->sched, rt->L, 20);
    eddy__set_error(rt, "deadlock: %d task%s waiting and nothing left that "
                    "could wake them:%s", (int)rt->sched.live,
                    rt->sched.live == 1 ? "" : "s", lua_tostring(rt->L, -1));
    lua_pop(rt->L, 1);
    rt->end = EDDY_EDEADLOCK;
    code = 1;
  }
  /* eddy.exit in one thread ends the program. */
  if (rt->exit_requested && rt->opts.group != NULL)
    eddy__group_exit(rt->opts.group, rt, code);
  /* Whatever is left would run in the next eddy.run: end it now. */
  eddy__sched_abandon(&rt->sched);
  close_all(rt, 0);
  rt->running = 0;
  return code;
}

/* ======================================================================= */
/* Making and releasing */

eddy_runtime_t *eddy__runtime_attach(lua_State *L, const eddy_options_t *opts) {
  eddy__process_init();
  eddy_runtime_t *rt = calloc(1, sizeof *rt);
  if (rt == NULL)
    return NULL;
  if (opts)
    rt->opts = *opts;
  else
    eddy_options_init(&rt->opts);
  if (rt->opts.group != NULL &&
      (rt->opts.thread < 1 || rt->opts.thread > rt->opts.group->threads)) {
    free(rt);
    return NULL;
  }
  rt->L = L;
  rt->box_ref = LUA_NOREF;
  if ((rt->hub = eddy__hub_new()) == NULL || uv_loop_init(&rt->loop) != 0) {
    eddy__hub_unref(rt->hub);
    free(rt);
    return NULL;
  }
  rt->loop.data = rt;
  if (eddy__timers_init(&rt->loop, &rt->timers) != 0 ||
      eddy__sched_init(&rt->sched, rt, L) != 0 ||
      uv_async_init(&rt->loop, &rt->stop_async, on_stop_async) != 0 ||
      uv_signal_init(&rt->loop, &rt->sigint) != 0 ||
      uv_signal_init(&rt->loop, &rt->sigterm) != 0 ||
      uv_timer_init(&rt->loop, &rt->grace) != 0)
    abort(); /* these fail only for want of memory or file descriptors */
  eddy__watchdog_init(&rt->watchdog, rt, rt->opts.watchdog_ms,
                      rt->opts.watchdog_abort_ms);
  rt->stop_async.data = rt;
  rt->sigint.data = rt;
  rt->sigterm.data = rt;
  rt->grace.data = rt;
  /* None of these may keep the loop alive by itself. */
  uv_unref((uv_handle_t *)&rt->stop_async);
  uv_unref((uv_handle_t *)&rt->sigint);
  uv_unref((uv_handle_t *)&rt->sigterm);
  if (rt->opts.group != NULL)
    eddy__group_join(rt->opts.group, rt, rt->opts.thread);
  if (rt->opts.worker != NULL) {
    eddy__hub_t *hub = eddy__runtime_hub(rt);
    uv_mutex_lock(&hub->shmaps_lock);
    hub->worker = rt->opts.worker;
    uv_mutex_unlock(&hub->shmaps_lock);
  }
  return rt;
}

eddy__hub_t *eddy__runtime_hub(eddy_runtime_t *rt) {
  return rt->opts.group != NULL ? rt->opts.group->hub : rt->hub;
}

static void close_leftover(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle))
    uv_close(handle, NULL);
}

void eddy__runtime_release(eddy_runtime_t *rt, int lua_closing) {
  if (rt->opts.worker != NULL) {
    /* The link ends with the worker's runs: a task-pool thread left
       running must not ask through it. */
    eddy__hub_t *hub = eddy__runtime_hub(rt);
    uv_mutex_lock(&hub->shmaps_lock);
    if (hub->worker == rt->opts.worker)
      hub->worker = NULL;
    uv_mutex_unlock(&hub->shmaps_lock);
  }
  if (rt->opts.group != NULL)
    eddy__group_leave(rt->opts.group, rt);
  if (lua_closing) {
    rt->L = NULL;
    rt->sched.L = NULL;
  }
  eddy__sched_abandon(&rt->sched);
  close_all(rt, 0);
  /* The abandoned tasks' jobs were cancelled: none is waited for. */
  eddy__jobport_detach(rt);
  if (rt->owns_pool)
    eddy__pool_free(rt->pool);
  rt->pool = NULL;
  eddy__hub_unref(rt->hub);
  rt->hub = NULL;
  eddy__curl_free(rt->curl); /* its transfers were aborted with their tasks */
  rt->curl = NULL;
  if (rt->dns)
    eddy__dns_free(rt->dns);
  rt->dns = NULL;
  eddy__sched_close(&rt->sched);
  eddy__timers_close(&rt->timers);
  uv_close((uv_handle_t *)&rt->stop_async, NULL);
  uv_close((uv_handle_t *)&rt->sigint, NULL);
  uv_close((uv_handle_t *)&rt->sigterm, NULL);
  uv_close((uv_handle_t *)&rt->grace, NULL);
  uv_run(&rt->loop, UV_RUN_DEFAULT);
  /* Anything still open is a bug elsewhere; close it rather than leak the
     loop. */
  uv_walk(&rt->loop, close_leftover, NULL);
  uv_run(&rt->loop, UV_RUN_DEFAULT);
  uv_loop_close(&rt->loop);
  eddy__bufpool_free(&rt->bufs);
  eddy__refs_free(&rt->refs);
  eddy__sched_free(&rt->sched);
  free(rt);
}

void eddy_options_init(eddy_options_t *opts) {
  memset(opts, 0, sizeof *opts);
  opts->install_signal_handlers = 1;
  opts->shutdown_grace = 5.0;
  opts->watchdog_ms = 100;
}

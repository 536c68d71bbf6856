/*
 * runtime.h: the runtime object behind eddy.h. One reactor thread (of a
 * group, when there are several: group.h): a
 * uv_loop_t, a Lua state, a scheduler and a timer heap, plus the run state
 * (exit code, stop requests, graceful shutdown). Everything eddy keeps
 * lives here or hangs off it; nothing is global.
 */
#ifndef EDDY_RUNTIME_H
#define EDDY_RUNTIME_H

#include <uv.h>
#include <lua.h>

#include "eddy.h"
#include "task.h"
#include "timer.h"
#include "buffer.h"
#include "refs.h"
#include "pool.h"

typedef struct eddy__dns_s eddy__dns_t;

/* The registry field holding the runtime's box (a userdata with the
   eddy_runtime_t pointer), for code that has only a lua_State. */
#define EDDY__RUNTIME_KEY "eddy.runtime"

/* Something that must stop when the runtime shuts down (a listener). */
typedef struct eddy__closer_s eddy__closer_t;
struct eddy__closer_s {
  void (*close)(eddy__closer_t *c);
  /* When a graceful stop begins: NULL (wait for close), or how to wind
     down (a listener closes, a WebSocket says it is going away). */
  void (*stop)(eddy__closer_t *c);
  eddy__closer_t *next;
  eddy__closer_t *prev;
};

/* Figures for eddy.metrics, each kept by the layer that sees it. */
typedef struct eddy__counters_s {
  uint64_t streams_open; /* TCP connections open now, either way */
  uint64_t accepted;     /* connections accepted by listeners */
  uint64_t connected;    /* connections made by connect */
  uint64_t bytes_in;     /* read from connections */
  uint64_t bytes_out;    /* handed to connections to send */
  uint64_t http[6];      /* HTTP responses begun, by status class 1-5 */
} eddy__counters_t;

struct eddy_runtime_s {
  uv_loop_t loop;
  lua_State *L;        /* main state of this thread */
  int owns_lua;        /* made by eddy_new (else the module face's host) */
  eddy__sched_t sched;
  eddy__timers_t timers;
  eddy__bufpool_t bufs;
  eddy__refs_t refs;   /* C -> Lua references of objects */
  eddy__dns_t *dns;    /* made on first use */
  eddy_options_t opts;
  int box_ref;         /* registry ref of the runtime's Lua box */
  int running;         /* inside uv_run */
  int stop_code;       /* exit status requested by eddy.exit or a failure */
  int stopping;        /* uv_stop was called for stop_code */
  int end;             /* how the last run ended: EDDY_OK, EDDY_ELUA (a
                          loaded chunk failed), EDDY_EDEADLOCK */
  int exit_requested;  /* eddy.exit, or a second stop request */
  int stop_pending;    /* eddy_stop came before eddy_run */
  int shutting_down;   /* graceful stop in progress */
  int signals_on;      /* SIGINT/SIGTERM watched */
  int user_signal[2];  /* the script handles SIGINT / SIGTERM itself */
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_async_t stop_async; /* eddy_stop from other threads */
  uv_timer_t grace;      /* ends the graceful stop */
  int grace_phase;       /* 1: waiting for tasks, 2: cancelled them */
  eddy__closer_t *closers;
  int port0_listens;     /* listens on port 0 so far (see group.h) */
  int started;           /* the main chunks have run their first part */
  eddy__pool_t *pool;    /* the task pool: the group's, or its own */
  int owns_pool;
  eddy__jobport_t *jobs; /* where task-pool jobs come back, once used */
  struct eddy__hub_s *hub;      /* queues, topics and dictionaries,
                                   outside a group */
  struct eddy__curl_s *curl;    /* the HTTP client's multi handle, once used */
  eddy__watchdog_t watchdog;    /* finds tasks that hold the loop */
  eddy__counters_t counters;
  char error[1024];
};

/* Process-wide setup, once: SIGPIPE ignored, c-ares initialised. */
void eddy__process_init(void);

/* The hub (hub.h) whose queues and topics the runtime sees: its group's,
   or its own. */
struct eddy__hub_s *eddy__runtime_hub(eddy_runtime_t *rt);

/* Runs the loop until it is done; returns the exit status (see eddy_run). */
int eddy__runtime_run(eddy_runtime_t *rt);

/* Makes a runtime around an existing Lua state (the module face); the
   caller anchors the Lua box. */
eddy_runtime_t *eddy__runtime_attach(lua_State *L, const eddy_options_t *opts);
/* Tears a runtime down. lua_closing: called from the box's __gc while the
   Lua state is closing, so Lua must not be touched any more. */
void eddy__runtime_release(eddy_runtime_t *rt, int lua_closing);

/* Stops the run with an exit status (eddy.exit, a failing main chunk). */
void eddy__runtime_exit(eddy_runtime_t *rt, int code);
/* Starts a graceful stop: listeners close, tasks get the grace period. */
void eddy__runtime_shutdown(eddy_runtime_t *rt);
/* The script handles SIGINT or SIGTERM itself (on) or no longer (off). */
void eddy__runtime_user_signal(eddy_runtime_t *rt, int signum, int on);
/* Called by the scheduler once the first ready tasks (the main chunks)
   have run: a worker process tells its master it runs. */
void eddy__runtime_started(eddy_runtime_t *rt);
/* Called by the scheduler when the last live task ends. */
void eddy__runtime_idle(eddy_runtime_t *rt);

void eddy__closer_add(eddy_runtime_t *rt, eddy__closer_t *c);
void eddy__closer_remove(eddy_runtime_t *rt, eddy__closer_t *c);

/* Logging through the host's callback (or stderr). */
void eddy__log(eddy_runtime_t *rt, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets rt->error, for eddy_last_error. */
void eddy__set_error(eddy_runtime_t *rt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Maps a libuv error code to an eddy one. */
int eddy__error_from_uv(int uverr);

/* Milliseconds for a timeout in seconds; negative when there is none. */
int64_t eddy__timeout_ms(double seconds);

#endif

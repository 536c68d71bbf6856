/*
 * eddy.h: the public C API of eddy, an embeddable async network runtime
 * for LuaJIT. A host program creates a runtime, loads Lua scripts into it,
 * runs it until it is done and frees it. Everything hangs off the runtime
 * object; two runtimes can live in one process.
 */
#ifndef EDDY_H
#define EDDY_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>

#define EDDY_VERSION_MAJOR 0
#define EDDY_VERSION_MINOR 1
#define EDDY_VERSION_PATCH 0
#define EDDY_VERSION "0.1.0"

#if defined(__GNUC__)
#define EDDY_API __attribute__((visibility("default")))
#else
#define EDDY_API
#endif

/*
 * Error codes. Every failure that depends on the world has a negative code
 * and a short, stable string; Lua code sees the string as the `err` of
 * `nil, err` and may compare it.
 */
#define EDDY_ERRNO_MAP(X)                                   \
  X(TIMEOUT, -1, "timeout")                                 \
  X(CANCELLED, -2, "cancelled")                             \
  X(CLOSED, -3, "closed")                                   \
  X(REFUSED, -4, "refused")                                 \
  X(NOTFOUND, -5, "not found")                              \
  X(FULL, -6, "full")                                       \
  X(TOOLARGE, -7, "too large")                              \
  X(UNREACHABLE, -8, "unreachable")                         \
  X(ADDRINUSE, -9, "address in use")                        \
  X(ACCESS, -10, "permission denied")                       \
  X(NOMEM, -11, "out of memory")                            \
  X(INVAL, -12, "invalid argument")                         \
  X(DNS, -13, "dns failure")                                \
  X(BUSY, -14, "busy")                                      \
  X(LUA, -15, "lua error")                                  \
  X(DEADLOCK, -16, "deadlock")                              \
  X(IO, -17, "io error")                                    \
  X(MFILE, -18, "too many open files")                      \
  X(ISDIR, -19, "is a directory")                          \
  X(EXIST, -20, "already exists")                           \
  X(NOTDIR, -21, "not a directory")                         \
  X(NOTEMPTY, -22, "not empty")                             \
  X(NOSPACE, -23, "no space")                               \
  X(TLS, -24, "tls failure")

typedef enum eddy_errno_e {
  EDDY_OK = 0,
#define EDDY_ERRNO_ENUM(name, code, str) EDDY_E##name = (code),
  EDDY_ERRNO_MAP(EDDY_ERRNO_ENUM)
#undef EDDY_ERRNO_ENUM
} eddy_errno_t;

/* The stable string of an error code ("timeout", "closed", ...). */
EDDY_API const char *eddy_strerror(int err);

/* The library's version string, e.g. "0.1.0". */
EDDY_API const char *eddy_version(void);

/* ===================================================================== */
/* Runtime */

typedef struct eddy_runtime_s eddy_runtime_t;
typedef struct eddy_group_s eddy_group_t;
typedef struct eddy_worker_s eddy_worker_t;

/* Log levels, as syslog orders them. */
#define EDDY_LOG_ERROR 3
#define EDDY_LOG_WARN 4
#define EDDY_LOG_INFO 6

typedef void (*eddy_log_cb)(void *data, int level, const char *message);

/*
 * Options of a runtime. Fill with eddy_options_init, then change fields;
 * new fields will only ever be added at the end.
 */
typedef struct eddy_options_s {
  /* Install SIGINT and SIGTERM handlers that stop gracefully (default 1).
     A host that handles signals itself sets 0. SIGPIPE is ignored in every
     case: a write to a closed peer must fail, not kill the process. */
  int install_signal_handlers;
  /* Seconds running tasks get to finish after a stop request (default 5). */
  double shutdown_grace;
  /* Where log lines go; NULL writes them to stderr. */
  eddy_log_cb log;
  void *log_data;
  /* The reactor-thread group this runtime belongs to, and its thread
     number in it (1-based); NULL and 0 for a runtime of its own. Set by
     the function that eddy_group_run calls. */
  eddy_group_t *group;
  int thread;
  /* Threads of the task pool (eddy.task.run), started on its first job;
     0 (the default) means one per core. A group's threads share the pool
     its first thread to use it makes. */
  int task_threads;
  /* The worker process this runtime runs in (see eddy_master_run), or
     NULL. Its listeners then use the sockets the master holds. */
  eddy_worker_t *worker;
  /* The loop-stall watchdog: a task that holds the loop longer than
     watchdog_ms (default 100; 0 turns it off) is logged with its
     traceback; one that holds it past watchdog_abort_ms (default 0: never)
     gets an error raised in it. The log callback may then be called from
     the watchdog's own thread. With install_signal_handlers, the
     traceback and the abort are asked for with signal SIGRTMIN + 6, sent
     to the loop's thread; without, only the warnings come. */
  int watchdog_ms;
  int watchdog_abort_ms;
} eddy_options_t;

EDDY_API void eddy_options_init(eddy_options_t *opts);

/* Creates a runtime with a Lua state of its own. NULL when out of memory,
   or when opts names a thread outside its group. opts may be NULL for the
   defaults. */
EDDY_API eddy_runtime_t *eddy_new(const eddy_options_t *opts);

/* Loads a script and queues it as a task; it starts when eddy_run runs.
   argv becomes the script's `arg` table and `...`. Returns EDDY_OK, or
   EDDY_ELUA with the reason in eddy_last_error. */
EDDY_API int eddy_load_file(eddy_runtime_t *rt, const char *path, int argc,
                            char **argv);
EDDY_API int eddy_load_string(eddy_runtime_t *rt, const char *code,
                              const char *chunkname);
/* The same for a chunk of len bytes, source or LuaJIT bytecode. */
EDDY_API int eddy_load_buffer(eddy_runtime_t *rt, const char *code,
                              size_t len, const char *chunkname);

/*
 * Runs the loop until nothing is left to do, eddy.exit is called, or a stop
 * request completes. Returns the exit status: 0, the code given to
 * eddy.exit, or 1 when a loaded chunk raised an error or the tasks left
 * deadlocked (eddy_last_error says which). Returns EDDY_EBUSY if the
 * runtime is already running.
 */
EDDY_API int eddy_run(eddy_runtime_t *rt);

/* Asks a running runtime to stop gracefully, as SIGTERM does. Safe to call
   from any thread, and before or after eddy_run. */
EDDY_API int eddy_stop(eddy_runtime_t *rt);

/* Frees the runtime and its Lua state. Not while eddy_run runs. */
EDDY_API void eddy_free(eddy_runtime_t *rt);

/* The message of the last failure, or "" when there was none. */
EDDY_API const char *eddy_last_error(const eddy_runtime_t *rt);

/* The runtime's main Lua state, for hosts that register functions of
   their own. Use it only from the thread that calls eddy_run. */
EDDY_API struct lua_State *eddy_lua_state(eddy_runtime_t *rt);

/* ===================================================================== */
/* Reactor threads */

/*
 * A group of reactor threads: each runs a runtime of its own (loop, Lua
 * state, scheduler), made by the host's function with opts.group and
 * opts.thread set. Listeners of the group's runtimes share their ports
 * through SO_REUSEPORT, so the kernel spreads connections over the
 * threads; a listener on port 0 gets the same port in every thread.
 * eddy.exit or a failure in one thread stops the others gracefully.
 */

/* Makes a group of `threads` threads; 0 or less means one per core. */
EDDY_API eddy_group_t *eddy_group_new(int threads);
EDDY_API int eddy_group_threads(const eddy_group_t *g);

/* Runs one thread: makes a runtime with opts.group = g and opts.thread =
   thread, loads the program, runs it and frees it; returns its status. */
typedef int (*eddy_thread_fn)(eddy_group_t *g, int thread, void *data);

/* Calls fn for threads 1..N: thread 1 in the calling thread, the others
   in threads of their own, and waits for them all. Returns the status of
   the first thread that ended with one other than 0 (its eddy.exit code,
   or 1 for a failure), else 0; EDDY_EBUSY if the group runs already, or
   EDDY_ENOMEM when a thread cannot be started. */
EDDY_API int eddy_group_run(eddy_group_t *g, eddy_thread_fn fn, void *data);

/* Asks every runtime of the group to stop gracefully; from any thread,
   and before eddy_group_run too (it then stops at once). Once per run:
   a second call does nothing. */
EDDY_API int eddy_group_stop(eddy_group_t *g);

/* Frees the group. Not while eddy_group_run runs. */
EDDY_API void eddy_group_free(eddy_group_t *g);

/* ===================================================================== */
/* Worker processes */

/*
 * A master process that runs no Lua: it forks worker processes, each
 * running the host's function, and holds the listening sockets they use
 * (created on their first request, one SO_REUSEPORT socket per worker and
 * reactor thread, kept open for as long as the master runs, so that no
 * connection queued on them is lost when a worker goes). It restarts a
 * worker that dies (with a growing delay while it keeps dying); on SIGHUP
 * it starts a new worker for each one and stops the old one gracefully
 * once the new one runs; on SIGTERM or SIGINT it stops them all
 * gracefully, and a second signal kills them.
 */
typedef struct eddy_master_options_s {
  int workers;          /* how many (default 1; 0 or less: one per core) */
  const char *pid_file; /* the master's pid is written there; NULL: none */
  /* Seconds a stopping worker gets before it is killed (default 30): more
     than its runtimes' shutdown_grace. */
  double kill_after;
  /* Processes of the host's own besides the workers (Swoole's Process):
     fn is called for them too, with ids workers + 1 to workers +
     processes; the master restarts and reloads them as it does workers,
     and eddy_worker_count tells the workers alone (default 0). */
  int processes;
} eddy_master_options_t;

EDDY_API void eddy_master_options_init(eddy_master_options_t *opts);

/* Runs in a worker: makes runtimes with opts.worker = w, runs them, and
   returns the worker's exit status. id is 1 to workers (then the host's
   other processes). At most 4096 in all. */
typedef int (*eddy_worker_fn)(eddy_worker_t *w, int id, void *data);

/* Runs the master until every worker has ended or a stop completes;
   returns its exit status. Call it before any thread exists: it forks. */
EDDY_API int eddy_master_run(const eddy_master_options_t *opts,
                             eddy_worker_fn fn, void *data);

/* Sends a string to the mailbox (eddy.mailbox) of reactor thread `thread`
   (1-based) of process `pid` (getpid() for the host's own runtimes), from
   any thread; it arrives as a Lua string from worker 0, thread 0. Returns
   EDDY_OK, EDDY_EFULL, EDDY_ENOTFOUND (no such mailbox open) or
   EDDY_ETOOLARGE (over 64 KiB). */
EDDY_API int eddy_mailbox_send(long pid, int thread, const char *msg,
                               size_t len);

/* The worker's number (1 to count) and the number of workers. */
EDDY_API int eddy_worker_id(const eddy_worker_t *w);
EDDY_API int eddy_worker_count(const eddy_worker_t *w);

#ifdef __cplusplus
}
#endif

#endif /* EDDY_H */

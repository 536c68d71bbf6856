/*
 * watchdog.c: finds the task that holds a reactor thread's loop (see
 * watchdog.h). The watchdog thread samples the scheduler's run counter a
 * few times per threshold; a run it sees twice, far enough apart, is a
 * stall. The warning is logged from the watchdog thread, so it shows while
 * the stall goes on, even in code the JIT has compiled whole; the
 * traceback and the abort come from a count hook, which only interpreted
 * code (or a compiled loop's exit to the interpreter) reaches.
 *
 * The hook is set by a signal handler on the loop thread, not by the
 * watchdog thread: setting a hook rewrites the VM's dispatch table, which
 * LuaJIT allows from a signal handler interrupting the VM (its own SIGINT
 * handler does it) but not from a second thread racing it. A host that
 * keeps eddy's signal handlers out (install_signal_handlers = 0) gets the
 * warnings without tracebacks or aborts.
 */
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "runtime.h"
#include "watchdog.h"

/* The hook runs at the next VM instruction, and takes itself off. */
#define HOOK_COUNT 1

/* Carries a hook request to the loop thread. The real-time signals below
   SIGRTMIN + 4 are left to the C library and to hosts that pick the
   first free ones. */
#define HOOK_SIGNAL (SIGRTMIN + 6)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void eddy__watchdog_init(eddy__watchdog_t *wd, eddy_runtime_t *rt,
                         int threshold_ms, int abort_ms) {
  memset(wd, 0, sizeof *wd);
  wd->rt = rt;
  atomic_init(&wd->threshold_ms, threshold_ms);
  atomic_init(&wd->abort_ms, abort_ms);
}

/* ======================================================================= */
/* The loop thread's side */

void eddy__watchdog_enter(eddy__watchdog_t *wd, const eddy__task_t *t) {
  uint64_t words[EDDY__TASK_NAME_MAX / 8];
  memcpy(words, t->name, sizeof words);
  atomic_store_explicit(&wd->task_id, t->id, memory_order_relaxed);
  atomic_store_explicit(&wd->resumed_from, t->resumed_from,
                        memory_order_relaxed);
  for (int i = 0; i < EDDY__TASK_NAME_MAX / 8; i++)
    atomic_store_explicit(&wd->name[i], words[i], memory_order_relaxed);
  atomic_fetch_add_explicit(&wd->seq, 1, memory_order_release);
}

void eddy__watchdog_leave(eddy__watchdog_t *wd) {
  uint64_t seq = atomic_fetch_add_explicit(&wd->seq, 1, memory_order_release);
  /* A hook set for this run and not fired yet would fire in a later one:
     take it off. (The hook also checks, for one set just now.) */
  if (atomic_load_explicit(&wd->hook_seq, memory_order_relaxed) == seq) {
    atomic_store(&wd->hook_seq, 0);
    lua_sethook(wd->rt->L, NULL, 0, 0);
  }
  if (atomic_load_explicit(&wd->warned_seq, memory_order_relaxed) == seq) {
    uint64_t held = now_ms() - atomic_load(&wd->stall_start_ms);
    uint64_t longest = atomic_load(&wd->longest_ms);
    if (held > longest)
      atomic_store(&wd->longest_ms, held);
    eddy__log(wd->rt, EDDY_LOG_WARN,
              "task %llu gave the loop back after about %llu ms",
              (unsigned long long)atomic_load(&wd->task_id),
              (unsigned long long)held);
  }
}

static eddy_runtime_t *runtime_of(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, EDDY__RUNTIME_KEY);
  eddy_runtime_t **box = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return box ? *box : NULL;
}

/* Runs in the stalled task's code, on the loop thread. */
static void on_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  eddy_runtime_t *rt = runtime_of(L);
  lua_sethook(L, NULL, 0, 0);
  if (rt == NULL)
    return;
  eddy__watchdog_t *wd = &rt->watchdog;
  uint64_t seq = atomic_load(&wd->seq);
  if (atomic_exchange(&wd->hook_seq, 0) != seq)
    return; /* set for a run that has ended */
  eddy__task_t *t = rt->sched.current;
  unsigned long long id = t ? (unsigned long long)t->id : 0;
  if (atomic_exchange(&wd->hook_abort, 0)) {
    atomic_fetch_add(&wd->aborts, 1);
    eddy__log(rt, EDDY_LOG_ERROR, "task %llu held the loop past the "
              "watchdog's limit (%d ms): raising an error in it", id,
              atomic_load(&wd->abort_ms));
    luaL_error(L, "task held the loop for more than %d ms (watchdog)",
               atomic_load(&wd->abort_ms));
    return;
  }
  eddy__task_traceback(L, L, NULL, 0);
  eddy__log(rt, EDDY_LOG_WARN, "task %llu is holding the loop, at:\n%s", id,
            lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* ======================================================================= */
/* The watchdog thread */

typedef struct run_view_s {
  uint64_t seq;
  uint64_t task_id;
  const char *resumed_from;
  char name[EDDY__TASK_NAME_MAX];
} run_view_t;

/* A consistent copy of what the loop thread published about the running
   task; 0 when no task runs. */
static int read_run(eddy__watchdog_t *wd, run_view_t *v) {
  uint64_t seq = atomic_load_explicit(&wd->seq, memory_order_acquire);
  if ((seq & 1) == 0)
    return 0;
  uint64_t words[EDDY__TASK_NAME_MAX / 8];
  v->task_id = atomic_load_explicit(&wd->task_id, memory_order_relaxed);
  v->resumed_from = atomic_load_explicit(&wd->resumed_from,
                                         memory_order_relaxed);
  for (int i = 0; i < EDDY__TASK_NAME_MAX / 8; i++)
    words[i] = atomic_load_explicit(&wd->name[i], memory_order_relaxed);
  atomic_thread_fence(memory_order_acquire);
  if (atomic_load_explicit(&wd->seq, memory_order_relaxed) != seq)
    return 0;
  memcpy(v->name, words, sizeof words);
  v->name[EDDY__TASK_NAME_MAX - 1] = '\0';
  v->seq = seq;
  return 1;
}

/* On the loop thread, interrupting the stalled code: sets the hook.
   Another hook (a debugger's, debug.sethook) is left alone. */
static void on_hook_signal(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)context;
  if (info->si_code != SI_QUEUE || info->si_value.sival_ptr == NULL)
    return;
  eddy__watchdog_t *wd = info->si_value.sival_ptr;
  lua_State *L = wd->rt->L;
  lua_Hook current = lua_gethook(L);
  if (current == NULL || current == on_hook)
    lua_sethook(L, on_hook, LUA_MASKCOUNT, HOOK_COUNT);
}

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static void install_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_hook_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(HOOK_SIGNAL, &sa, NULL);
}

/* Asks the loop thread's VM to run on_hook soon. */
static void arm_hook(eddy__watchdog_t *wd, uint64_t seq, int abort) {
  if (!wd->use_signal)
    return;
  atomic_store(&wd->hook_abort, abort);
  atomic_store(&wd->hook_seq, seq);
  union sigval value = {.sival_ptr = wd};
  pthread_sigqueue(wd->loop_thread, HOOK_SIGNAL, value);
}

static void warn_stall(eddy__watchdog_t *wd, const run_view_t *v,
                       uint64_t held) {
  atomic_fetch_add(&wd->stalls, 1);
  atomic_store(&wd->warned_seq, v->seq);
  char name[EDDY__TASK_NAME_MAX + 4] = "";
  if (v->name[0] != '\0')
    snprintf(name, sizeof name, " '%s'", v->name);
  eddy__log(wd->rt, EDDY_LOG_WARN,
            "loop stalled: task %llu%s has run for %llu ms without giving "
            "the loop back (resumed from: %s)",
            (unsigned long long)v->task_id, name, (unsigned long long)held,
            v->resumed_from ? v->resumed_from : "its start");
}

/* One look at the loop. `seen` is the run seen last and when it was first
   seen; `stage` how far its stall has gone (1 warned, 2 aborted). */
static void look(eddy__watchdog_t *wd, uint64_t *seen_seq, uint64_t *seen_at,
                 int *stage) {
  run_view_t v;
  uint64_t t = now_ms();
  int running = read_run(wd, &v);
  if (!running || v.seq != *seen_seq) {
    *seen_seq = running ? v.seq : 0;
    *seen_at = t;
    *stage = 0;
    return;
  }
  uint64_t held = t - *seen_at;
  int threshold = atomic_load(&wd->threshold_ms);
  int abort_ms = atomic_load(&wd->abort_ms);
  if (*stage == 0 && threshold > 0 && held >= (uint64_t)threshold) {
    *stage = 1;
    atomic_store(&wd->stall_start_ms, *seen_at);
    warn_stall(wd, &v, held);
    arm_hook(wd, v.seq, 0);
  } else if (*stage < 2 && abort_ms > 0 && held >= (uint64_t)abort_ms) {
    *stage = 2;
    arm_hook(wd, v.seq, 1);
  }
}

/* The time between looks: a quarter of the smallest threshold, so that a
   stall is seen within 25 % of it. */
static int period_ms(eddy__watchdog_t *wd) {
  int p = atomic_load(&wd->threshold_ms);
  int a = atomic_load(&wd->abort_ms);
  if (p <= 0 || (a > 0 && a < p))
    p = a;
  if (p <= 0)
    return 250; /* off for now: only waits to be stopped or turned on */
  p /= 4;
  return p < 2 ? 2 : p > 250 ? 250 : p;
}

static void *watchdog_main(void *arg) {
  eddy__watchdog_t *wd = arg;
  uint64_t seen_seq = 0, seen_at = 0;
  int stage = 0;
  pthread_mutex_lock(&wd->lock);
  while (!wd->quit) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long ns = until.tv_nsec + (long)period_ms(wd) * 1000000L;
    until.tv_sec += ns / 1000000000L;
    until.tv_nsec = ns % 1000000000L;
    int rc = pthread_cond_timedwait(&wd->wake, &wd->lock, &until);
    if (wd->quit)
      break;
    if (rc == ETIMEDOUT)
      look(wd, &seen_seq, &seen_at, &stage);
  }
  pthread_mutex_unlock(&wd->lock);
  return NULL;
}

int eddy__watchdog_start(eddy__watchdog_t *wd) {
  if (wd->started)
    return 0;
  if (atomic_load(&wd->threshold_ms) <= 0 && atomic_load(&wd->abort_ms) <= 0)
    return 0;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&wd->wake, &attr);
  pthread_condattr_destroy(&attr);
  if (rc != 0)
    return EDDY_ENOMEM;
  pthread_mutex_init(&wd->lock, NULL);
  wd->quit = 0;
  wd->loop_thread = pthread_self();
  wd->use_signal = wd->rt->opts.install_signal_handlers;
  if (wd->use_signal) {
    pthread_once(&handler_once, install_handler);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, HOOK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  }
  if (pthread_create(&wd->thread, NULL, watchdog_main, wd) != 0) {
    pthread_cond_destroy(&wd->wake);
    pthread_mutex_destroy(&wd->lock);
    return EDDY_ENOMEM;
  }
  wd->started = 1;
  return 0;
}

void eddy__watchdog_stop(eddy__watchdog_t *wd) {
  if (!wd->started)
    return;
  pthread_mutex_lock(&wd->lock);
  wd->quit = 1;
  pthread_cond_signal(&wd->wake);
  pthread_mutex_unlock(&wd->lock);
  pthread_join(wd->thread, NULL);
  pthread_cond_destroy(&wd->wake);
  pthread_mutex_destroy(&wd->lock);
  wd->started = 0;
  if (atomic_exchange(&wd->hook_seq, 0) != 0 && wd->rt->L != NULL)
    lua_sethook(wd->rt->L, NULL, 0, 0);
}

void eddy__watchdog_configure(eddy__watchdog_t *wd, int threshold_ms,
                              int abort_ms) {
  atomic_store(&wd->threshold_ms, threshold_ms);
  atomic_store(&wd->abort_ms, abort_ms);
  if (wd->rt->running)
    eddy__watchdog_start(wd); /* it was off, and is on now */
}

/*
 * taskpool.c: eddy.task (module eddy.c.taskpool): run(module, fn, ...)
 * calls require(module)[fn](...) in a thread of the task pool (core/pool.h),
 * each thread with a Lua state of its own, while the calling task waits.
 * Arguments and results cross as bytes through the codec. A caller that
 * times out or is cancelled stops waiting at once; Lua code still running
 * in the pool is interrupted by a hook (interpreted code only: a compiled
 * loop or a blocking C call runs to its end, and its result is dropped).
 */
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "../core/codec.h"
#include "../core/group.h"
#include "../core/hub.h"
#include "../core/pool.h"
#include "bindings.h"

#define WORKER_KEY "eddy.taskpool.worker"

/* What a pool thread holds. */
typedef struct worker_s {
  lua_State *L;
  eddy__job_t *job; /* running now, or NULL */
} worker_t;

/* What the pool's Lua states start with: where they find modules (the
   first user's paths), and the hub of queues and topics they share with
   the runtime that made the pool. */
typedef struct paths_s {
  char *path;
  char *cpath;
  eddy__hub_t *hub; /* a reference */
} paths_t;

typedef struct lua_job_s {
  eddy__job_t job;
  eddy__pool_t *pool;
  eddy__task_t *task; /* the waiter, until the job is cancelled */
  char *module;
  char *fn;
  eddy__enc_t args;
  eddy__enc_t results; /* the encoded results, or an error message */
  int failed;
} lua_job_t;

/* ======================================================================= */
/* In a pool thread */

static void *worker_new(void *arg) {
  paths_t *paths = arg;
  worker_t *w = calloc(1, sizeof *w);
  if (w == NULL || (w->L = luaL_newstate()) == NULL) {
    free(w);
    return NULL;
  }
  lua_State *L = w->L;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, paths->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, paths->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, w);
  lua_setfield(L, LUA_REGISTRYINDEX, WORKER_KEY);
  /* require "eddy" finds this copy of eddy, whichever face runs the pool
     (the eddy command has no eddy.so on the path), and the runtime it
     makes here shares the queues and topics of the pool's maker. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_eddy);
  lua_setfield(L, -2, "eddy");
  lua_pop(L, 2);
  lua_pushlightuserdata(L, paths->hub);
  lua_setfield(L, LUA_REGISTRYINDEX, EDDYL_HUB_KEY);
  return w;
}

static void worker_free(void *state) {
  worker_t *w = state;
  lua_close(w->L);
  free(w);
}

/* Set by interrupt from another thread: ends the job's Lua code at the
   next hook, if the job is still the one cancelled. The hook stays set
   until the job ends (job_run clears it): a job whose code runs under a
   pcall of its own would catch one error and go on for good. */
static void on_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_getfield(L, LUA_REGISTRYINDEX, WORKER_KEY);
  worker_t *w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (w->job != NULL && atomic_load(&w->job->cancelled))
    luaL_error(L, "cancelled");
  lua_sethook(L, NULL, 0, 0); /* an interrupt meant for a job now gone */
}

/* Called under the pool's lock while the job runs: lua_sethook is the one
   call that may come from another thread (LuaJIT's own Ctrl-C uses it). */
static void worker_interrupt(void *state) {
  worker_t *w = state;
  lua_sethook(w->L, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void set_error(lua_job_t *j, const char *msg) {
  eddy__enc_free(&j->results);
  j->results.data = strdup(msg);
  j->results.len = j->results.data ? strlen(msg) : 0;
  j->failed = 1;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

/* The job, run protected: finds the function, decodes the arguments,
   calls it and encodes what it returns. */
static int job_body(lua_State *L) {
  lua_job_t *j = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "require");
  lua_pushstring(L, j->module);
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "module '%s' is not a table", j->module);
  lua_getfield(L, -1, j->fn);
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "module '%s' has no function '%s'", j->module,
                      j->fn);
  lua_remove(L, 2);
  const char *err;
  int nargs = eddyL_decode_values(L, j->args.data, j->args.len, &err);
  if (nargs < 0)
    return luaL_error(L, "arguments: %s", err);
  if (lua_pcall(L, nargs, LUA_MULTRET, 1) != 0) {
    set_error(j, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    return 0;
  }
  char msg[256];
  eddy__enc_init(&j->results);
  if (eddyL_encode_values(L, 2, lua_gettop(L) - 1, &j->results, msg,
                          sizeof msg) != 0) {
    char full[300];
    snprintf(full, sizeof full, "results: %s", msg);
    set_error(j, full);
  }
  return 0;
}

static void job_run(eddy__job_t *job, void *state) {
  lua_job_t *j = (lua_job_t *)job;
  worker_t *w = state;
  if (w == NULL) {
    set_error(j, "the task pool cannot make a Lua state (out of memory)");
    return;
  }
  w->job = job;
  if (atomic_load(&job->cancelled)) {
    set_error(j, "cancelled");
  } else if (lua_cpcall(w->L, job_body, j) != 0) {
    set_error(j, lua_tostring(w->L, -1) ? lua_tostring(w->L, -1) : "error");
  }
  w->job = NULL;
  lua_sethook(w->L, NULL, 0, 0);
  lua_settop(w->L, 0);
}

/* ======================================================================= */
/* On the loop thread */

static void job_free(lua_job_t *j) {
  eddy__enc_free(&j->args);
  eddy__enc_free(&j->results);
  free(j->module);
  free(j->fn);
  free(j);
}

/* run's answer: the results, or nil, err. */
static void job_done(eddy__job_t *job) {
  lua_job_t *j = (lua_job_t *)job;
  if (!atomic_load(&job->cancelled) && j->task != NULL) {
    eddy__task_t *t = j->task;
    lua_State *co = eddy__task_wake_begin(t);
    const char *err = NULL;
    int n = -1;
    if (!j->failed)
      n = eddyL_decode_values(co, j->results.data, j->results.len, &err);
    if (n < 0) {
      lua_pushnil(co);
      lua_pushlstring(co, j->failed ? j->results.data : err,
                      j->failed ? j->results.len : strlen(err));
      n = 2;
    }
    eddy__task_wake_end(t, n);
  }
  job_free(j);
}

/* The waiter timed out or was cancelled. */
static void job_detach(eddy__task_t *t) {
  lua_job_t *j = t->wait_data;
  j->task = NULL;
  if (eddy__pool_cancel(j->pool, &j->job))
    job_free(j);
}

static const eddy__wait_ops_t job_ops = {"task pool", job_detach, NULL};

static void paths_free(void *arg) {
  paths_t *p = arg;
  free(p->path);
  free(p->cpath);
  eddy__hub_unref(p->hub);
  free(p);
}

static const eddy__pool_ops_t pool_ops = {worker_new, worker_free,
                                          worker_interrupt, paths_free};

/* The caller's module paths, copied for the pool's states, and its hub;
   NULL when out of memory. The Lua calls come first, so that nothing
   leaks if one raises. */
static paths_t *paths_of(lua_State *L, eddy_runtime_t *rt) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "cpath");
  paths_t *paths = calloc(1, sizeof *paths);
  if (paths != NULL) {
    paths->path = strdup(lua_tostring(L, -2) ? lua_tostring(L, -2) : "");
    paths->cpath = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    paths->hub = eddy__hub_ref(eddy__runtime_hub(rt));
  }
  lua_pop(L, 3);
  if (paths != NULL && (paths->path == NULL || paths->cpath == NULL)) {
    paths_free(paths);
    return NULL;
  }
  return paths;
}

/* A pool whose states find modules through paths, which it then owns. */
static eddy__pool_t *new_pool(paths_t *paths, int threads) {
  eddy__pool_t *p = NULL;
  if (paths != NULL)
    p = eddy__pool_new(threads, &pool_ops, paths);
  if (p == NULL && paths != NULL)
    paths_free(paths);
  return p;
}

/* The runtime's pool: its group's (made by the first thread to ask), or
   its own. No Lua call runs under the group's lock: one that raised
   would leave it locked. */
static eddy__pool_t *pool_of(lua_State *L, eddy_runtime_t *rt) {
  if (rt->pool != NULL)
    return rt->pool;
  eddy_group_t *g = rt->opts.group;
  paths_t *paths = paths_of(L, rt);
  if (g == NULL) {
    rt->pool = new_pool(paths, rt->opts.task_threads);
    rt->owns_pool = 1;
    return rt->pool;
  }
  uv_mutex_lock(&g->lock);
  if (g->pool == NULL) {
    g->pool = new_pool(paths, rt->opts.task_threads);
    paths = NULL;
  }
  rt->pool = g->pool;
  rt->owns_pool = 0;
  uv_mutex_unlock(&g->lock);
  if (paths != NULL)
    paths_free(paths); /* another thread made the pool first */
  return rt->pool;
}

/* The module and function names at a and b, checked. */
static void check_names(lua_State *L, int a, int b, int in_table) {
  if (lua_type(L, a) != LUA_TSTRING)
    luaL_error(L, "bad argument #1 to 'run' (module name expected%s)",
               in_table ? " at [1]" : "");
  if (lua_type(L, b) != LUA_TSTRING)
    luaL_error(L, "bad argument #%d to 'run' (function name expected%s)",
               in_table ? 1 : 2, in_table ? " at [2]" : "");
}

/* run(module, fn, ...) or run({module, fn, timeout = s}, ...)
   -> results... | nil, err */
static int taskpool_run(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  int first; /* the first argument for fn */
  int64_t timeout = -1;
  /* Raises outside a task, before the job is made: it would leak. */
  eddy__task_check_wait(&rt->sched, L);
  if (lua_istable(L, 1)) {
    timeout = eddyL_opttimeout(L, 1, -1);
    lua_rawgeti(L, 1, 1);
    lua_rawgeti(L, 1, 2);
    first = 2;
  } else {
    if (lua_gettop(L) < 2)
      lua_settop(L, 2);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    first = 3;
  }
  int top = lua_gettop(L);
  check_names(L, top - 1, top, first == 2);
  lua_job_t *j = calloc(1, sizeof *j);
  if (j == NULL)
    return luaL_error(L, "eddy.task.run: out of memory");
  j->module = strdup(lua_tostring(L, top - 1));
  j->fn = strdup(lua_tostring(L, top));
  lua_pop(L, 2);
  char err[256] = "out of memory";
  eddy__enc_init(&j->args);
  int nargs = lua_gettop(L) - first + 1;
  if (j->module == NULL || j->fn == NULL ||
      eddyL_encode_values(L, first, nargs < 0 ? 0 : nargs, &j->args, err,
                          sizeof err) != 0) {
    job_free(j);
    return luaL_error(L, "eddy.task.run: arguments: %s", err);
  }
  eddy__task_t *t = eddyL_begin_wait(L, rt, &job_ops);
  if (t == NULL) {
    job_free(j);
    return eddy__task_yield(&rt->sched, L);
  }
  j->pool = pool_of(L, rt);
  j->job.run = job_run;
  j->job.done = job_done;
  int rc = j->pool ? eddy__pool_submit(j->pool, rt, &j->job) : EDDY_ENOMEM;
  if (rc != 0) {
    job_free(j);
    return eddyL_error(L, rc);
  }
  j->task = t;
  eddy__task_wait(t, &job_ops, j, timeout);
  return eddy__task_yield(&rt->sched, L);
}

/* threads() -> the size of the pool (made or to be made). */
static int taskpool_threads(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  if (rt->pool != NULL)
    lua_pushinteger(L, eddy__pool_threads(rt->pool));
  else if (rt->opts.group != NULL && rt->opts.group->pool != NULL)
    lua_pushinteger(L, eddy__pool_threads(rt->opts.group->pool));
  else
    lua_pushinteger(L, rt->opts.task_threads > 0
                           ? rt->opts.task_threads
                           : (int)uv_available_parallelism());
  return 1;
}

/* configure{threads = n}: the pool's size, before its first job. In a
   group, the pool is the group's: the first thread to use it sizes it. */
static int taskpool_configure(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  double n = eddyL_optfield_number(L, 1, "threads", rt->opts.task_threads);
  if (n < 0 || n > 1024 || n != (int)n)
    return luaL_error(L, "eddy.task.configure: threads must be 0 (one per "
                      "core) to 1024");
  if (rt->pool != NULL)
    return luaL_error(L, "eddy.task.configure: the pool has started");
  rt->opts.task_threads = (int)n;
  return 0;
}

static const luaL_Reg taskpool_funcs[] = {
    {"run", taskpool_run},
    {"threads", taskpool_threads},
    {"configure", taskpool_configure},
    {NULL, NULL},
};

int luaopen_eddy_c_taskpool(lua_State *L) {
  eddyL_newlib(L, taskpool_funcs);
  return 1;
}

/*
 * threads.c: the Lua face of reactor threads (module eddy.c.threads): who
 * this thread is (eddy.worker), and eddy.run with several threads for the
 * module face, where the calling thread is thread 1 and the others run
 * the same function, dumped to bytecode, in Lua states of their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/group.h"
#include "../core/hub.h"
#include "bindings.h"

/* info() -> thread, threads, worker, workers (1, 1 outside a worker
   process). */
static int threads_info(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy_group_t *g = rt->opts.group;
  eddy_worker_t *w = rt->opts.worker;
  lua_pushinteger(L, g != NULL ? rt->opts.thread : 1);
  lua_pushinteger(L, g != NULL ? g->threads : 1);
  lua_pushinteger(L, w != NULL ? eddy_worker_id(w) : 1);
  lua_pushinteger(L, w != NULL ? eddy_worker_count(w) : 1);
  return 4;
}

/* ======================================================================= */
/* eddy.run on several threads */

/* An argument of the main function, copied for the other threads. */
typedef struct arg_s {
  int type;
  lua_Number number;
  const char *string; /* in the caller's Lua state, which outlives the run */
  size_t len;
} arg_t;

typedef struct group_run_s {
  eddy_runtime_t *first; /* the caller's runtime: thread 1 */
  eddy_options_t opts;   /* its options, copied before thread 1 runs on:
                            its Lua code may change them meanwhile */
  int threads;
  const char *code;      /* the function's bytecode */
  size_t code_len;
  const char *path, *cpath;
  arg_t *args;
  int nargs;
} group_run_t;

static void push_arg(lua_State *L, const arg_t *a) {
  switch (a->type) {
  case LUA_TBOOLEAN: lua_pushboolean(L, a->number != 0); break;
  case LUA_TNUMBER: lua_pushnumber(L, a->number); break;
  case LUA_TSTRING: lua_pushlstring(L, a->string, a->len); break;
  default: lua_pushnil(L); break;
  }
}

/* Threads 2..N: the function in a runtime of their own, which finds
   modules where the caller's does. */
static int run_other(eddy_group_t *g, int thread, group_run_t *r) {
  eddy_options_t opts = r->opts;
  opts.group = g;
  opts.thread = thread;
  eddy_runtime_t *rt = eddy_new(&opts);
  if (rt == NULL) {
    /* No runtime, so no log of its own: the run's error points here. */
    fprintf(stderr, "eddy[%d]: cannot start: out of memory\n", thread);
    return 1;
  }
  lua_State *L = eddy_lua_state(rt);
  lua_getglobal(L, "package");
  lua_pushstring(L, r->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, r->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  for (int i = 0; i < r->nargs; i++)
    push_arg(L, &r->args[i]);
  int status;
  if (eddyL_load_main(rt, r->code, r->code_len, "=eddy.run", r->nargs) != 0) {
    eddy__log(rt, EDDY_LOG_ERROR, "%s", eddy_last_error(rt));
    status = 1;
  } else {
    status = eddy_run(rt);
  }
  eddy_free(rt);
  return status;
}

static int run_thread(eddy_group_t *g, int thread, void *data) {
  group_run_t *r = data;
  if (thread > 1)
    return run_other(g, thread, r);
  return eddy__runtime_run(r->first);
}

/* Thread 1 runs the caller's runtime as a member of the group. When it
   ends well but another thread did not, the run fails all the same. */
static int run_group(eddy_runtime_t *rt, void *arg) {
  group_run_t *r = arg;
  eddy_group_t *g = eddy_group_new(r->threads);
  if (g == NULL) {
    eddy__set_error(rt, "eddy.run: out of memory");
    rt->end = EDDY_ELUA;
    return 1;
  }
  /* Queues and topics outlive a run: the group's threads see those of
     the runtime's earlier runs and of its pool. */
  eddy__hub_replace(&g->hub, eddy__runtime_hub(rt));
  /* A pool the runtime made in an earlier run stays its own (it goes on
     using it); a pool it takes from the group goes with the group. */
  eddy__pool_t *own_pool = rt->pool;
  int owns_pool = rt->owns_pool;
  rt->opts.group = g;
  rt->opts.thread = 1;
  rt->port0_listens = 0;
  r->opts = rt->opts;
  eddy__group_join(g, rt, 1);
  int status = eddy_group_run(g, run_thread, r);
  eddy__group_leave(g, rt);
  rt->opts.group = NULL;
  rt->opts.thread = 0;
  rt->pool = own_pool;
  rt->owns_pool = owns_pool;
  int exited = g->exited, exit_code = g->exit_code;
  eddy_group_free(g);
  /* eddy.exit in any thread ends the program, as in this one. */
  if (exited && !rt->exit_requested) {
    rt->exit_requested = 1;
    return exit_code;
  }
  if (status != 0 && rt->end == EDDY_OK && !rt->exit_requested) {
    eddy__set_error(rt, "eddy.run: a thread ended with status %d (its log "
                    "says why)", status);
    rt->end = EDDY_ELUA;
  }
  return status;
}

/* run(threads, bytecode, fn, ...) -> true, results... | false, err */
static int threads_run(lua_State *L) {
  lua_Integer threads = luaL_checkinteger(L, 1); /* range checked below */
  group_run_t r;
  memset(&r, 0, sizeof r);
  r.first = eddyL_runtime(L);
  r.code = luaL_checklstring(L, 2, &r.code_len);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (threads < 0 || threads > 1024)
    return luaL_argerror(L, 1, "threads must be 0 (one per core) to 1024");
  r.threads = (int)threads;
  r.nargs = lua_gettop(L) - 3;
  r.args = lua_newuserdata(L, (size_t)r.nargs * sizeof *r.args + 1);
  lua_insert(L, 1); /* anchored below the function */
  for (int i = 0; i < r.nargs; i++) {
    arg_t *a = &r.args[i];
    int idx = 5 + i;
    a->type = lua_type(L, idx);
    if (a->type == LUA_TBOOLEAN)
      a->number = lua_toboolean(L, idx);
    else if (a->type == LUA_TNUMBER)
      a->number = lua_tonumber(L, idx);
    else if (a->type == LUA_TSTRING)
      a->string = lua_tolstring(L, idx, &a->len);
    else if (a->type != LUA_TNIL)
      return luaL_argerror(L, 4 + i, "only nil, booleans, numbers and "
                           "strings cross to other threads");
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "cpath");
  r.path = lua_tostring(L, -2);
  r.cpath = lua_tostring(L, -1);
  lua_insert(L, 1);
  lua_insert(L, 1);
  lua_insert(L, 1); /* package, path, cpath, args, threads, code, fn... */
  return eddyL_run_main(L, 7, run_group, &r);
}

static const luaL_Reg threads_funcs[] = {
    {"info", threads_info},
    {"run", threads_run},
    {NULL, NULL},
};

int luaopen_eddy_c_threads(lua_State *L) {
  eddyL_newlib(L, threads_funcs);
  return 1;
}

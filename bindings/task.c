/*
 * task.c: the Lua face of the scheduler (module eddy.c.task): spawning,
 * task handles, sleeping, yielding, time, running and exiting, and the
 * suspend/wake pair that eddy's Lua-level waits (channels, waitgroups,
 * semaphores, require) are built on.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bindings.h"

static const eddyL_class_t task_class = {"eddy.task"};

/* A Lua handle of a task: the task stays (done or not) while handles
   refer to it, so that join can read its results. */
typedef struct task_handle_s {
  eddy__task_t *task;
} task_handle_t;

static void push_handle(lua_State *L, eddy__task_t *t) {
  task_handle_t *h = eddyL_newobject(L, &task_class, sizeof *h);
  h->task = t;
  t->handles++;
}

static eddy__task_t *check_task(lua_State *L, int idx) {
  task_handle_t *h = eddyL_checkobject(L, idx, &task_class);
  return h->task;
}

/* ======================================================================= */
/* Tasks */

static int task_spawn(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  eddy__task_t *t = eddy__task_spawn(&rt->sched, L, lua_gettop(L) - 1);
  if (t == NULL)
    return luaL_error(L, "eddy.spawn: out of memory");
  push_handle(L, t);
  return 1;
}

static int task_current(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  if (rt->sched.current == NULL)
    return 0;
  push_handle(L, rt->sched.current);
  return 1;
}

/* join's own timeout or cancellation: false, err, as pcall would say. */
static int join_fail(eddy__task_t *t, lua_State *co, int err) {
  (void)t;
  lua_pushboolean(co, 0);
  lua_pushstring(co, eddy_strerror(err));
  return 2;
}

static const eddy__wait_ops_t join_ops = {"join", NULL, join_fail};

/* task:join([timeout]): true, results... when the task returned; false,
   its error when it failed; false, "cancelled" when it never ran or a stop
   ended it; false, "timeout" / "cancelled" when the join itself gave up. */
static int task_join(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__task_t *target = check_task(L, 1);
  int64_t ms = eddyL_opttimeout(L, 2, -1);
  if (target->state == EDDY__TASK_DONE)
    return eddy__task_push_results(target, L);
  if (target == rt->sched.current)
    return luaL_error(L, "a task cannot join itself");
  if (ms == 0)
    return join_fail(target, L, EDDY_ETIMEOUT);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &join_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &join_ops, target, ms);
  eddy__waitq_push(&target->joiners, t);
  return eddy__task_yield(&rt->sched, L);
}

static int task_cancel(lua_State *L) {
  eddy__task_t *t = check_task(L, 1);
  int was_live = t->state != EDDY__TASK_DONE;
  eddy__task_cancel(t);
  lua_pushboolean(L, was_live);
  return 1;
}

static int task_status(lua_State *L) {
  static const char *const names[] = {"ready", "running", "waiting", "done"};
  eddy__task_t *t = check_task(L, 1);
  lua_pushstring(L, names[t->state]);
  return 1;
}

static int task_id(lua_State *L) {
  lua_pushnumber(L, (lua_Number)check_task(L, 1)->id);
  return 1;
}

/* t:name([name]) -> its name (nil if none), after setting it: a label for
   listings and the watchdog's warnings, cut to 23 bytes. */
static int task_name(lua_State *L) {
  eddy__task_t *t = check_task(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    if (len >= sizeof t->name)
      len = sizeof t->name - 1;
    memcpy(t->name, name, len);
    t->name[len] = '\0';
  }
  if (t->name[0] == '\0')
    return 0;
  lua_pushstring(L, t->name);
  return 1;
}

static int task_cancelled(lua_State *L) {
  lua_pushboolean(L, (check_task(L, 1)->flags & EDDY__TASK_CANCELLED) != 0);
  return 1;
}

static int task_gc(lua_State *L) {
  task_handle_t *h = eddyL_toobject(L, 1);
  if (h->task != NULL)
    eddy__task_unhandle(h->task);
  h->task = NULL;
  return 0;
}

static int task_eq(lua_State *L) {
  task_handle_t *a = eddyL_testobject(L, 1, &task_class);
  task_handle_t *b = eddyL_testobject(L, 2, &task_class);
  lua_pushboolean(L, a && b && a->task == b->task);
  return 1;
}

static int task_tostring(lua_State *L) {
  eddy__task_t *t = check_task(L, 1);
  lua_pushfstring(L, "eddy.task %d", (int)t->id);
  return 1;
}

/* ======================================================================= */
/* Time and yielding */

/* A sleep that runs its time out has done what it was asked. */
static int sleep_fail(eddy__task_t *t, lua_State *co, int err) {
  (void)t;
  if (err == EDDY_ETIMEOUT) {
    lua_pushboolean(co, 1);
    return 1;
  }
  lua_pushnil(co);
  lua_pushstring(co, eddy_strerror(err));
  return 2;
}

static const eddy__wait_ops_t sleep_ops = {"sleep", NULL, sleep_fail};
static const eddy__wait_ops_t yield_ops = {"yield", NULL, NULL};

static int task_sleep(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  int64_t ms = eddyL_checkseconds(L, 1);
  if (ms < 0)
    ms = -1; /* math.huge: until cancelled */
  eddy__task_t *t = eddyL_begin_wait(L, rt, &sleep_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &sleep_ops, NULL, ms);
  return eddy__task_yield(&rt->sched, L);
}

static int task_yield(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &yield_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_requeue(t);
  return eddy__task_yield(&rt->sched, L);
}

/* The wall clock: seconds since the epoch, µs precision (for logs). */
static int task_wall(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

/* A monotonic clock in seconds, ns precision, for measuring durations
   (now() is the loop's, in ms). */
static int task_clock(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

/* The running task's id, or nil outside tasks (cheaper than current()). */
static int task_current_id(lua_State *L) {
  eddy__task_t *t = eddyL_runtime(L)->sched.current;
  if (t == NULL)
    return 0;
  lua_pushnumber(L, (lua_Number)t->id);
  return 1;
}

/* The loop's clock, brought up to date: seconds, ms precision. */
static int task_now(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  uv_update_time(&rt->loop);
  lua_pushnumber(L, (lua_Number)uv_now(&rt->loop) / 1000.0);
  return 1;
}

/* ======================================================================= */
/* Lua-level waits: suspend and wake */

static const eddy__wait_ops_t suspend_ops = {"?", NULL, NULL};

/* The current task's slot and the generation its next wait will have:
   the token a waker passes to wake. Each call makes the tokens handed out
   before it stale, so that a token left behind by a wait that never began
   (its suspend raised) cannot end a later one. */
static int task_self(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__task_t *t = rt->sched.current;
  if (t == NULL)
    eddy__raise_at_caller(L, "must be called inside a task (eddy.run, "
                             "eddy.spawn or a handler that eddy runs)");
  t->gen++;
  lua_pushnumber(L, t->slot);
  lua_pushnumber(L, (lua_Number)t->gen);
  return 2;
}

/* suspend(timeout, what): waits until wake(slot, gen, ...) and returns
   its values, or nil, "timeout" / "cancelled". */
static int task_suspend(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  int64_t ms = eddyL_opttimeout(L, 1, -1);
  const char *what = luaL_checkstring(L, 2);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &suspend_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  /* Anchor the description so that the pointer stays valid while it is
     shown in listings. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->sched.whats_ref);
  lua_pushvalue(L, 2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  eddy__task_wait(t, &suspend_ops, NULL, ms);
  t->what = what;
  return eddy__task_yield(&rt->sched, L);
}

static int task_wake(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  uint32_t slot = (uint32_t)luaL_checknumber(L, 1);
  uint64_t gen = (uint64_t)luaL_checknumber(L, 2);
  eddy__task_t *t = eddy__task_at(&rt->sched, slot);
  if (t == NULL || t->gen != gen || t->state != EDDY__TASK_WAITING ||
      t->wait != &suspend_ops) {
    lua_pushboolean(L, 0);
    return 1;
  }
  int n = lua_gettop(L) - 2;
  eddy__sched_hold(&rt->sched);
  lua_State *co = eddy__task_wake_begin(t);
  lua_xmove(L, co, n);
  eddy__task_wake_end(t, n);
  eddy__sched_unhold(&rt->sched);
  lua_pushboolean(L, 1);
  return 1;
}

/* The value an eddy wait yields, so that coroutine wrappers can tell it
   from a user's yield. */
static int task_wait_token(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->sched.whats_ref);
  return 1;
}

/* coroutine.running, noting that the task's coroutine is now held by Lua
   code, so that it is not reused for another task. The second result says
   whether it is a task's own coroutine (lua/eddy/coroutine.lua refuses to
   resume those). */
static int task_coroutine_running(lua_State *L) {
  eddy__task_t *t = eddyL_runtime(L)->sched.current;
  int root = t != NULL && t->co == L;
  if (root)
    t->flags |= EDDY__TASK_ESCAPED;
  if (lua_pushthread(L)) {
    lua_pop(L, 1);
    lua_pushnil(L); /* the main thread, as LuaJIT answers */
  }
  lua_pushboolean(L, root);
  return 2;
}

/* check_wait(): raises unless the caller may wait here (inside a task,
   not across a C call), for a module that must know before it starts an
   exchange it could not leave midway. */
static int task_check_wait(lua_State *L) {
  eddy__task_check_wait(&eddyL_runtime(L)->sched, L);
  return 0;
}

/* coroutine.isyieldable: a task's own coroutine may not yield. */
static int task_coroutine_isyieldable(lua_State *L) {
  eddy__task_t *t = eddyL_runtime(L)->sched.current;
  lua_pushboolean(L, lua_isyieldable(L) && !(t != NULL && t->co == L));
  return 1;
}

/* coroutine.yield, refusing to yield a task itself: that would suspend
   the task with nothing to resume it. */
static int task_coroutine_yield(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__task_t *t = rt->sched.current;
  if (t != NULL && t->co == L)
    return luaL_error(L, "attempt to yield from outside a coroutine");
  return lua_yield(L, lua_gettop(L));
}

/* ======================================================================= */
/* Running and exiting */

static int task_running(lua_State *L) {
  lua_pushboolean(L, eddyL_runtime(L)->running);
  return 1;
}

/* Runs the loop with the function at index `first` (its arguments above
   it) as the main task, through run_loop, and pushes true, results... or
   false, err. fn's error and a deadlock are returned, for eddy.run
   (api.lua) to raise: raising here, after resuming coroutines, would leave
   LuaJIT's record of the running coroutine on the last one resumed, and a
   compiled trace that exits later would write into that coroutine's stack
   (LuaJIT issue 1066, fixed in August 2023; Debian 12's luajit2 is of
   January 2023). A normal return sets the record right. */
int eddyL_run_main(lua_State *L, int first,
                   int (*run_loop)(eddy_runtime_t *rt, void *arg), void *arg) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  luaL_checktype(L, first, LUA_TFUNCTION);
  if (rt->running)
    return luaL_error(L, "eddy.run: the loop is already running");
  eddy__task_t *t = eddy__task_spawn(&rt->sched, L, lua_gettop(L) - first);
  if (t == NULL)
    return luaL_error(L, "eddy.run: out of memory");
  t->flags |= EDDY__TASK_MAIN | EDDY__TASK_NOLOG;
  push_handle(L, t); /* keeps the results until we have read them */
  int code = run_loop(rt, arg);
  if (rt->exit_requested) {
    lua_getglobal(L, "os");
    lua_getfield(L, -1, "exit");
    lua_pushinteger(L, code);
    lua_call(L, 1, 0);
  }
  if (t->flags & EDDY__TASK_FAILED && !(t->flags & EDDY__TASK_ABANDONED)) {
    lua_pushboolean(L, 0);
    eddy__getref(&rt->refs, L, t->res_ref);
    lua_rawgeti(L, -1, 2); /* the error value itself, string or not */
    lua_remove(L, -2);
    return 2;
  }
  if (rt->end == EDDY_EDEADLOCK || rt->end == EDDY_ELUA) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, rt->error);
    return 2;
  }
  lua_pushboolean(L, 1);
  int base = lua_gettop(L);
  int n = eddy__task_push_results(t, L);
  if (!lua_toboolean(L, base + 1))
    return n + 1; /* ended by a graceful stop: true, false, "cancelled" */
  lua_remove(L, base + 1); /* pcall's true */
  return n;
}

static int run_alone(eddy_runtime_t *rt, void *arg) {
  (void)arg;
  return eddy__runtime_run(rt);
}

/* run(fn, ...) -> true, results... | false, err */
static int task_run(lua_State *L) {
  return eddyL_run_main(L, 1, run_alone, NULL);
}

static const eddy__wait_ops_t exit_ops = {"exit", NULL, NULL};

static int task_exit(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  int code = (int)luaL_optinteger(L, 1, 0);
  if (!rt->running || rt->sched.current == NULL || !lua_isyieldable(L)) {
    lua_getglobal(L, "os");
    lua_getfield(L, -1, "exit");
    lua_pushinteger(L, code);
    lua_call(L, 1, 0);
    return 0;
  }
  rt->exit_requested = 1;
  eddy__runtime_exit(rt, code);
  /* The task must not go on: it waits for good, and the teardown ends it. */
  eddy__task_wait(rt->sched.current, &exit_ops, NULL, -1);
  return eddy__task_yield(&rt->sched, L);
}

static int task_shutdown(lua_State *L) {
  eddy__runtime_shutdown(eddyL_runtime(L));
  return 0;
}

/* log(level, message): a line through the runtime's log ("error", "warn"
   or "info"). */
static int task_log(lua_State *L) {
  static const char *const names[] = {"error", "warn", "info", NULL};
  static const int levels[] = {EDDY_LOG_ERROR, EDDY_LOG_WARN, EDDY_LOG_INFO};
  int level = levels[luaL_checkoption(L, 1, "info", names)];
  eddy__log(eddyL_runtime(L), level, "%s", luaL_checkstring(L, 2));
  return 0;
}

static int task_stats(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  size_t ready = 0, open = 0;
  for (eddy__task_t *t = rt->sched.ready_head; t; t = t->next)
    ready++;
  for (eddy__closer_t *c = rt->closers; c; c = c->next)
    open++;
  lua_createtable(L, 0, 8);
  lua_pushnumber(L, (lua_Number)rt->sched.live);
  lua_setfield(L, -2, "tasks");
  lua_pushnumber(L, (lua_Number)ready);
  lua_setfield(L, -2, "ready");
  lua_pushnumber(L, (lua_Number)rt->sched.spawned);
  lua_setfield(L, -2, "spawned");
  lua_pushnumber(L, (lua_Number)rt->sched.finished);
  lua_setfield(L, -2, "finished");
  lua_pushnumber(L, (lua_Number)rt->sched.failed);
  lua_setfield(L, -2, "failed");
  lua_pushnumber(L, (lua_Number)(rt->timers.count - rt->timers.nweak));
  lua_setfield(L, -2, "timers");
  lua_pushnumber(L, (lua_Number)open);
  lua_setfield(L, -2, "open");
  return 1;
}

static const luaL_Reg task_funcs[] = {
    {"spawn", task_spawn},
    {"current", task_current},

    {"sleep", task_sleep},
    {"yield", task_yield},
    {"now", task_now},
    {"wall", task_wall},
    {"clock", task_clock},
    {"current_id", task_current_id},
    {"self", task_self},
    {"suspend", task_suspend},
    {"wake", task_wake},
    {"wait_token", task_wait_token},
    {"check_wait", task_check_wait},
    {"coroutine_yield", task_coroutine_yield},
    {"coroutine_running", task_coroutine_running},
    {"coroutine_isyieldable", task_coroutine_isyieldable},
    {"running", task_running},
    {"run", task_run},
    {"exit", task_exit},
    {"shutdown", task_shutdown},
    {"stats", task_stats},
    {"log", task_log},
    {NULL, NULL},
};

static const luaL_Reg task_methods[] = {
    {"join", task_join},
    {"cancel", task_cancel},
    {"status", task_status},
    {"id", task_id},
    {"cancelled", task_cancelled},
    {"name", task_name},
    {NULL, NULL},
};

static const luaL_Reg task_meta[] = {
    {"__gc", task_gc},
    {"__eq", task_eq},
    {"__tostring", task_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_task(lua_State *L) {
  eddyL_newclass(L, &task_class, task_methods, task_meta);
  eddyL_newlib(L, task_funcs);
  return 1;
}

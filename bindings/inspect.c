/*
 * inspect.c: looking into a running reactor thread from Lua (module
 * eddy.c.inspect): the live task list and the loop-stall watchdog's
 * settings and figures.
 */
#include <string.h>

#include "bindings.h"

/* The classic three states: a waiting task is blocked. */
static const char *state_name(const eddy__task_t *t) {
  switch (t->state) {
  case EDDY__TASK_RUNNING:
    return "running";
  case EDDY__TASK_WAITING:
    return "blocked";
  default:
    return "ready";
  }
}

static void push_task(lua_State *L, eddy_runtime_t *rt, eddy__task_t *t,
                      int with_traceback) {
  lua_createtable(L, 0, 6);
  lua_pushnumber(L, (lua_Number)t->id);
  lua_setfield(L, -2, "id");
  if (t->name[0] != '\0') {
    lua_pushstring(L, t->name);
    lua_setfield(L, -2, "name");
  }
  lua_pushnumber(L, (lua_Number)(uv_now(&rt->loop) - t->born) / 1000.0);
  lua_setfield(L, -2, "age");
  lua_pushstring(L, state_name(t));
  lua_setfield(L, -2, "state");
  if (t->state == EDDY__TASK_WAITING && t->what != NULL) {
    lua_pushstring(L, t->what);
    lua_setfield(L, -2, "waits_on");
  }
  if (with_traceback && t->co != NULL) {
    /* The running task is the caller: its stack is L's. */
    lua_State *co = t->state == EDDY__TASK_RUNNING ? L
                    : t->wait_L != NULL           ? t->wait_L
                                                  : t->co;
    eddy__task_traceback(L, co, NULL, co == L ? 1 : 0);
    lua_setfield(L, -2, "traceback");
  }
}

/* tasks([traceback]) -> { {id, name, age, state, waits_on, traceback}, ... }
   for every live task of this thread, oldest first. */
static int inspect_tasks(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  int with_traceback = lua_toboolean(L, 1);
  uv_update_time(&rt->loop);
  lua_createtable(L, (int)rt->sched.live, 0);
  int n = 0;
  /* The live list has the newest first. */
  eddy__task_t *last = rt->sched.all;
  while (last != NULL && last->all_next != NULL)
    last = last->all_next;
  for (eddy__task_t *t = last; t != NULL; t = t->all_prev) {
    push_task(L, rt, t, with_traceback);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static int ms_of(lua_State *L, int idx, const char *field, int current) {
  lua_getfield(L, idx, field);
  int ms = current;
  if (lua_toboolean(L, -1) == 0 && !lua_isnil(L, -1)) {
    ms = 0; /* false turns it off */
  } else if (!lua_isnil(L, -1)) {
    lua_Number s = luaL_checknumber(L, -1);
    luaL_argcheck(L, s >= 0 && s < 86400, idx, "seconds out of range");
    ms = (int)(s * 1000 + 0.5);
    if (ms == 0 && s > 0)
      ms = 1;
  }
  lua_pop(L, 1);
  return ms;
}

/* watchdog([opts | false]) -> { threshold, abort, stalls, aborts,
   longest }: reads the watchdog's settings and figures, after changing
   them: opts.threshold and opts.abort in seconds (0 or false: off); false
   turns both off. */
static int inspect_watchdog(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__watchdog_t *wd = &rt->watchdog;
  int threshold = atomic_load(&wd->threshold_ms);
  int abort_ms = atomic_load(&wd->abort_ms);
  if (lua_isboolean(L, 1) && !lua_toboolean(L, 1)) {
    eddy__watchdog_configure(wd, 0, 0);
  } else if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    threshold = ms_of(L, 1, "threshold", threshold);
    abort_ms = ms_of(L, 1, "abort", abort_ms);
    eddy__watchdog_configure(wd, threshold, abort_ms);
  }
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, atomic_load(&wd->threshold_ms) / 1000.0);
  lua_setfield(L, -2, "threshold");
  lua_pushnumber(L, atomic_load(&wd->abort_ms) / 1000.0);
  lua_setfield(L, -2, "abort");
  lua_pushnumber(L, (lua_Number)atomic_load(&wd->stalls));
  lua_setfield(L, -2, "stalls");
  lua_pushnumber(L, (lua_Number)atomic_load(&wd->aborts));
  lua_setfield(L, -2, "aborts");
  lua_pushnumber(L, (lua_Number)atomic_load(&wd->longest_ms) / 1000.0);
  lua_setfield(L, -2, "longest");
  return 1;
}

static const luaL_Reg inspect_funcs[] = {
    {"tasks", inspect_tasks},
    {"watchdog", inspect_watchdog},
    {NULL, NULL},
};

int luaopen_eddy_c_inspect(lua_State *L) {
  eddyL_newlib(L, inspect_funcs);
  return 1;
}

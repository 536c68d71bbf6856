/*
 * timer.c: eddy.timer.after and eddy.timer.every (module eddy.c.timer). A
 * timer is a node in the thread's deadline heap inside a small userdata;
 * each firing runs the callback as a task. A repeating timer keeps its
 * rhythm (the next firing is due one interval after the last was due) and
 * skips a firing while the previous callback still runs, so a slow
 * callback cannot pile tasks up.
 */
#include <stddef.h>

#include "bindings.h"

static const eddyL_class_t timer_class = {"eddy.timer"};

typedef struct ltimer_s {
  eddy__timer_t node;
  eddy__closer_t closer; /* a stop cancels pending timers */
  eddy_runtime_t *rt;
  int fn_ref;   /* the callback, while the timer is active */
  int self_ref; /* anchors the userdata while the timer is active */
  uint64_t interval_ms; /* 0: fires once */
  eddy__task_t *last;   /* the task of the last firing */
  uint64_t last_id;
  uint32_t skipped;
} ltimer_t;

#define timer_of(p, field) \
  ((ltimer_t *)((char *)(p) - offsetof(ltimer_t, field)))

static int is_active(const ltimer_t *tm) {
  return tm->self_ref != EDDY__NOREF;
}

static void deactivate(ltimer_t *tm) {
  eddy_runtime_t *rt = tm->rt;
  eddy__timer_stop(&rt->timers, &tm->node);
  eddy__closer_remove(rt, &tm->closer);
  if (rt->L != NULL) {
    eddy__unref(&rt->refs, rt->L, tm->fn_ref);
    eddy__unref(&rt->refs, rt->L, tm->self_ref);
  }
  tm->fn_ref = tm->self_ref = EDDY__NOREF;
}

static void close_timer(eddy__closer_t *c) {
  deactivate(timer_of(c, closer));
}

static int last_still_runs(const ltimer_t *tm) {
  return tm->last != NULL && tm->last->id == tm->last_id &&
         tm->last->state != EDDY__TASK_DONE;
}

static void on_fire(eddy__timer_t *node, uint64_t due) {
  ltimer_t *tm = timer_of(node, node);
  eddy_runtime_t *rt = tm->rt;
  lua_State *L = rt->L;
  if (tm->interval_ms > 0) {
    uint64_t next = due + tm->interval_ms;
    uint64_t now = uv_now(&rt->loop);
    eddy__timer_start(&rt->timers, node, next > now ? next - now : 0,
                      on_fire);
    if (last_still_runs(tm)) {
      tm->skipped++;
      return;
    }
  }
  eddy__getref(&rt->refs, L, tm->fn_ref);
  eddy__getref(&rt->refs, L, tm->self_ref);
  eddy__task_t *t = eddy__task_spawn(&rt->sched, L, 1);
  if (t != NULL) {
    tm->last = t;
    tm->last_id = t->id;
  } else {
    eddy__log(rt, EDDY_LOG_ERROR, "timer: out of memory for its task");
  }
  if (tm->interval_ms == 0)
    deactivate(tm);
}

static int start(lua_State *L, int repeating) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  int64_t ms = eddyL_checkseconds(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (ms < 0)
    return luaL_argerror(L, 1, "must be finite");
  if (repeating && ms == 0)
    return luaL_argerror(L, 1, "a repeating interval must be > 0");
  ltimer_t *tm = eddyL_newobject(L, &timer_class, sizeof *tm);
  tm->node.index = tm->node.weak = 0;
  tm->closer.close = close_timer;
  tm->closer.stop = NULL;
  tm->closer.next = tm->closer.prev = NULL;
  tm->rt = rt;
  tm->interval_ms = repeating ? (uint64_t)ms : 0;
  tm->last = NULL;
  tm->last_id = 0;
  tm->skipped = 0;
  tm->fn_ref = tm->self_ref = EDDY__NOREF;
  if (eddy__timer_start(&rt->timers, &tm->node, (uint64_t)ms, on_fire) < 0)
    return luaL_error(L, "timer: out of memory");
  lua_pushvalue(L, 2);
  tm->fn_ref = eddy__ref(&rt->refs, L);
  lua_pushvalue(L, -1);
  tm->self_ref = eddy__ref(&rt->refs, L);
  eddy__closer_add(rt, &tm->closer);
  return 1;
}

static int timer_after(lua_State *L) {
  return start(L, 0);
}

static int timer_every(lua_State *L) {
  return start(L, 1);
}

static ltimer_t *check_timer(lua_State *L) {
  return eddyL_checkobject(L, 1, &timer_class);
}

/* timer:cancel(): true if it was still active. */
static int timer_cancel(lua_State *L) {
  ltimer_t *tm = check_timer(L);
  int active = is_active(tm);
  if (active)
    deactivate(tm);
  lua_pushboolean(L, active);
  return 1;
}

static int timer_active(lua_State *L) {
  lua_pushboolean(L, is_active(check_timer(L)));
  return 1;
}

/* Firings a repeating timer skipped because its callback still ran. */
static int timer_skipped(lua_State *L) {
  lua_pushnumber(L, check_timer(L)->skipped);
  return 1;
}

static int timer_tostring(lua_State *L) {
  ltimer_t *tm = check_timer(L);
  lua_pushfstring(L, "eddy.timer (%s)", is_active(tm) ? "active" : "done");
  return 1;
}

static const luaL_Reg timer_funcs[] = {
    {"after", timer_after},
    {"every", timer_every},
    {NULL, NULL},
};

static const luaL_Reg timer_methods[] = {
    {"cancel", timer_cancel},
    {"active", timer_active},
    {"skipped", timer_skipped},
    {NULL, NULL},
};

static const luaL_Reg timer_meta[] = {
    {"__tostring", timer_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_timer(lua_State *L) {
  eddyL_newclass(L, &timer_class, timer_methods, timer_meta);
  eddyL_newlib(L, timer_funcs);
  return 1;
}

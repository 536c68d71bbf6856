/*
 * reactor.c: eddy.reactor (module eddy.c.reactor), the raw reactor:
 * add(fd, "r" | "w" | "rw", callback) watches any file descriptor, such
 * as the socket a C library hands over, and runs callback(watcher,
 * events) as a task when it is ready. One callback runs at a time per
 * watcher: the descriptor is not watched while it runs, so a readable
 * socket that the callback has not read yet is reported once, not in a
 * flood of tasks. An error on the descriptor is reported as
 * callback(watcher, nil, err) and ends the watcher. A descriptor has one
 * watcher at a time: add answers nil, "busy" for one watched already.
 */
#include <stdlib.h>

#include "../core/watch.h"
#include "bindings.h"

static const eddyL_class_t watcher_class = {"eddy.reactor.watcher"};

/* Freed once the watch is closed, no callback runs and Lua let go. */
typedef struct watcher_s {
  eddy__watch_t watch;
  int fn_ref;   /* the callback, while active */
  int self_ref; /* anchors the Lua object while active */
  int busy;     /* a callback task runs */
  int closed;   /* the watch's on_close came */
  int gone;     /* the Lua object was collected */
} watcher_t;

typedef struct watcher_box_s {
  watcher_t *w;
} watcher_box_t;

static void maybe_free(watcher_t *w) {
  if (w->closed && w->gone && !w->busy)
    free(w);
}

/* Stops watching for good and lets go of the callback. */
static void deactivate(watcher_t *w) {
  eddy_runtime_t *rt = w->watch.rt;
  if (rt->L != NULL) {
    eddy__unref(&rt->refs, rt->L, w->fn_ref);
    eddy__unref(&rt->refs, rt->L, w->self_ref);
  }
  w->fn_ref = w->self_ref = EDDY__NOREF;
  eddy__watch_close(&w->watch);
}

static void on_close(eddy__watch_t *watch) {
  watcher_t *w = watch->data;
  w->closed = 1;
  maybe_free(w);
}

static void on_callback_done(void *data) {
  watcher_t *w = data;
  w->busy = 0;
  if (!w->watch.closing)
    eddy__watch_resume(&w->watch);
  maybe_free(w);
}

static const char *events_name(int events) {
  int r = events & EDDY__WATCH_READ, wr = events & EDDY__WATCH_WRITE;
  return r && wr ? "rw" : r ? "r" : wr ? "w" : "";
}

/* Queues callback(watcher, events) or, after an error, callback(watcher,
   nil, err). */
static void on_event(eddy__watch_t *watch, int events, int status) {
  watcher_t *w = watch->data;
  eddy_runtime_t *rt = watch->rt;
  lua_State *L = rt->L;
  eddy__getref(&rt->refs, L, w->fn_ref);
  eddy__getref(&rt->refs, L, w->self_ref);
  if (status < 0) {
    lua_pushnil(L);
    lua_pushstring(L, eddy_strerror(status));
  } else {
    lua_pushstring(L, events_name(events));
  }
  eddy__task_t *t = eddy__task_spawn(&rt->sched, L, status < 0 ? 3 : 2);
  if (status < 0) {
    deactivate(w);
    return;
  }
  if (t == NULL) {
    eddy__log(rt, EDDY_LOG_ERROR, "reactor: out of memory for a callback");
    return;
  }
  w->busy = 1;
  t->on_done = on_callback_done;
  t->done_data = w;
  eddy__watch_pause(watch);
}

static int check_events(lua_State *L, int idx, int allow_none) {
  const char *s = luaL_checkstring(L, idx);
  int events = 0;
  for (; *s; s++) {
    if (*s == 'r')
      events |= EDDY__WATCH_READ;
    else if (*s == 'w')
      events |= EDDY__WATCH_WRITE;
    else
      break;
  }
  if (*s != '\0' || (events == 0 && !allow_none))
    luaL_argerror(L, idx, allow_none ? "\"r\", \"w\", \"rw\" or \"\" expected"
                                     : "\"r\", \"w\" or \"rw\" expected");
  return events;
}

/* add(fd, events, callback[, {weak = true}]) -> watcher | nil, err. A
   weak watcher does not keep the program running by itself. */
static int reactor_add(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  lua_Integer fd = luaL_checkinteger(L, 1);
  int events = check_events(L, 2, 0);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (fd < 0 || fd > 0x7fffffff)
    return luaL_argerror(L, 1, "not a file descriptor");
  watcher_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return luaL_error(L, "reactor: out of memory");
  w->fn_ref = w->self_ref = EDDY__NOREF;
  w->watch.data = w;
  w->watch.on_event = on_event;
  w->watch.on_close = on_close;
  int err = eddy__watch_start(rt, &w->watch, (int)fd, events);
  if (err != 0) {
    if (!w->watch.closing)
      free(w);
    else
      w->gone = 1; /* on_close frees it */
    return eddyL_error(L, err);
  }
  if (eddyL_optfield_boolean(L, 4, "weak", 0))
    uv_unref((uv_handle_t *)&w->watch.poll);
  watcher_box_t *box = eddyL_newobject(L, &watcher_class, sizeof *box);
  box->w = w;
  lua_pushvalue(L, 3);
  w->fn_ref = eddy__ref(&rt->refs, L);
  lua_pushvalue(L, -1);
  w->self_ref = eddy__ref(&rt->refs, L);
  return 1;
}

static watcher_t *check_watcher(lua_State *L) {
  return ((watcher_box_t *)eddyL_checkobject(L, 1, &watcher_class))->w;
}

/* watcher:set(events) -> true | nil, "closed"; "" watches for nothing
   until set again. */
static int watcher_set(lua_State *L) {
  watcher_t *w = check_watcher(L);
  int err = eddy__watch_set(&w->watch, check_events(L, 2, 1));
  if (err != 0)
    return eddyL_error(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* watcher:del(): stops watching (the descriptor stays open); true if it
   was still watching. */
static int watcher_del(lua_State *L) {
  watcher_t *w = check_watcher(L);
  int active = !w->watch.closing;
  if (active)
    deactivate(w);
  lua_pushboolean(L, active);
  return 1;
}

static int watcher_fd(lua_State *L) {
  lua_pushinteger(L, check_watcher(L)->watch.fd);
  return 1;
}

/* watcher:events() -> what it watches for, "" once deleted. */
static int watcher_events(lua_State *L) {
  watcher_t *w = check_watcher(L);
  lua_pushstring(L, w->watch.closing ? "" : events_name(w->watch.events));
  return 1;
}

static int watcher_gc(lua_State *L) {
  watcher_t *w = ((watcher_box_t *)eddyL_toobject(L, 1))->w;
  w->gone = 1;
  if (!w->watch.closing)
    eddy__watch_close(&w->watch); /* only when Lua closes: active ones are
                                     anchored */
  maybe_free(w);
  return 0;
}

static int watcher_tostring(lua_State *L) {
  watcher_t *w = check_watcher(L);
  lua_pushfstring(L, "eddy.reactor.watcher (fd %d, %s)", w->watch.fd,
                  w->watch.closing ? "deleted" : events_name(w->watch.events));
  return 1;
}

static const luaL_Reg reactor_funcs[] = {
    {"add", reactor_add},
    {NULL, NULL},
};

static const luaL_Reg watcher_methods[] = {
    {"set", watcher_set},
    {"del", watcher_del},
    {"fd", watcher_fd},
    {"events", watcher_events},
    {NULL, NULL},
};

static const luaL_Reg watcher_meta[] = {
    {"__gc", watcher_gc},
    {"__tostring", watcher_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_reactor(lua_State *L) {
  eddyL_newclass(L, &watcher_class, watcher_methods, watcher_meta);
  eddyL_newlib(L, reactor_funcs);
  return 1;
}

/*
 * signal.c: eddy.signal.on(name, fn) (module eddy.c.signal): each delivery
 * of the signal runs fn(name) as a task. A script that handles SIGINT or
 * SIGTERM itself replaces eddy's graceful stop for that signal.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bindings.h"

static const eddyL_class_t handler_class = {"eddy.signal.handler"};

typedef struct handler_s {
  uv_signal_t sig;
  eddy_runtime_t *rt;
  eddy__closer_t closer;
  int signum;
  int fn_ref;
  int closing; /* 1: close asked; 2: closed */
  int lua_held; /* the Lua handle points here */
} handler_t;

static const struct {
  const char *name;
  int signum;
} signals[] = {
    {"int", SIGINT},   {"term", SIGTERM}, {"hup", SIGHUP},
    {"usr1", SIGUSR1}, {"usr2", SIGUSR2}, {"quit", SIGQUIT},
    {"winch", SIGWINCH}, {"chld", SIGCHLD}, {"alrm", SIGALRM},
    /* Only for sending (eddy.process): no handler can catch the first
       two, and the others are for eddy's own use. */
    {"kill", SIGKILL}, {"stop", SIGSTOP}, {"cont", SIGCONT},
    {"pipe", SIGPIPE}, {"abrt", SIGABRT}, {"segv", SIGSEGV},
    {"bus", SIGBUS}, {"fpe", SIGFPE}, {"ill", SIGILL}, {"trap", SIGTRAP},
    {"tstp", SIGTSTP}, {"ttin", SIGTTIN}, {"ttou", SIGTTOU},
    {NULL, 0},
};
#define CATCHABLE 9 /* the first entries: what on() accepts */

static int signum_of(const char *name, int max) {
  if (strncasecmp(name, "sig", 3) == 0)
    name += 3;
  for (int i = 0; signals[i].name && i < max; i++)
    if (strcasecmp(signals[i].name, name) == 0)
      return signals[i].signum;
  return 0;
}

static const char *name_of(int signum) {
  for (int i = 0; signals[i].name; i++)
    if (signals[i].signum == signum)
      return signals[i].name;
  return "?";
}

static void on_signal(uv_signal_t *sig, int signum) {
  handler_t *h = sig->data;
  lua_State *L = h->rt->L;
  eddy__getref(&h->rt->refs, L, h->fn_ref);
  lua_pushstring(L, name_of(signum));
  if (eddy__task_spawn(&h->rt->sched, L, 1) == NULL)
    eddy__log(h->rt, EDDY_LOG_ERROR, "signal: out of memory for a task");
}

int eddyL_checksignal(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, idx);
    luaL_argcheck(L, n >= 0 && n < NSIG, idx, "no such signal number");
    return (int)n;
  }
  const char *name = luaL_checkstring(L, idx);
  int signum = signum_of(name, (int)(sizeof signals / sizeof signals[0]));
  if (signum == 0)
    luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
  return signum;
}

void eddyL_pushsignal(lua_State *L, int signum) {
  const char *name = name_of(signum);
  if (name[0] == '?')
    lua_pushinteger(L, signum);
  else
    lua_pushstring(L, name);
}

/* A handler is freed once it is closed and its Lua handle is gone. The
   handler keeps running when the handle is collected. */
static void on_closed(uv_handle_t *handle) {
  handler_t *h = handle->data;
  h->closing = 2;
  if (!h->lua_held)
    free(h);
}

static void handler_stop(handler_t *h) {
  if (h->closing)
    return;
  h->closing = 1;
  eddy__closer_remove(h->rt, &h->closer);
  eddy__runtime_user_signal(h->rt, h->signum, 0);
  if (h->rt->L != NULL)
    eddy__unref(&h->rt->refs, h->rt->L, h->fn_ref);
  uv_close((uv_handle_t *)&h->sig, on_closed);
}

static void close_by_stop(eddy__closer_t *c) {
  handler_stop((handler_t *)((char *)c - offsetof(handler_t, closer)));
}

/* on(name, fn): a handle whose cancel() stops it. Names: "int", "term",
   "hup", "usr1", "usr2", "quit", "winch", "chld", "alrm" (any case, with or
   without "SIG"). */
static int signal_on(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int signum = signum_of(name, CATCHABLE);
  if (signum == 0)
    return luaL_argerror(L, 1, lua_pushfstring(L, "unknown signal '%s'", name));
  handler_t **box = eddyL_newobject(L, &handler_class, sizeof *box);
  *box = NULL;
  handler_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return luaL_error(L, "signal: out of memory");
  h->rt = rt;
  h->signum = signum;
  h->sig.data = h;
  h->closer.close = close_by_stop;
  if (uv_signal_init(&rt->loop, &h->sig) != 0) {
    free(h);
    return luaL_error(L, "signal: cannot watch %s", name);
  }
  int rc = uv_signal_start(&h->sig, on_signal, signum);
  if (rc != 0) {
    h->closing = 1;
    uv_close((uv_handle_t *)&h->sig, on_closed);
    return eddyL_error(L, eddy__error_from_uv(rc));
  }
  h->lua_held = 1;
  /* Watching a signal does not keep the program alive by itself. */
  uv_unref((uv_handle_t *)&h->sig);
  lua_pushvalue(L, 2);
  h->fn_ref = eddy__ref(&rt->refs, L);
  eddy__closer_add(rt, &h->closer);
  eddy__runtime_user_signal(rt, signum, 1);
  *box = h;
  return 1;
}

/* handler:cancel(): stops the handler; SIGINT and SIGTERM return to eddy's
   graceful stop once no handler is left. */
static int handler_cancel(lua_State *L) {
  handler_t **box = eddyL_checkobject(L, 1, &handler_class);
  int active = *box != NULL && !(*box)->closing;
  if (*box != NULL)
    handler_stop(*box);
  lua_pushboolean(L, active);
  return 1;
}

static int handler_gc(lua_State *L) {
  handler_t **box = eddyL_toobject(L, 1);
  handler_t *h = *box;
  *box = NULL;
  if (h == NULL)
    return 0;
  h->lua_held = 0;
  if (h->closing == 2)
    free(h);
  return 0;
}

static const luaL_Reg signal_funcs[] = {
    {"on", signal_on},
    {NULL, NULL},
};

static const luaL_Reg handler_methods[] = {
    {"cancel", handler_cancel},
    {NULL, NULL},
};

static const luaL_Reg handler_meta[] = {
    {"__gc", handler_gc},
    {NULL, NULL},
};

int luaopen_eddy_c_signal(lua_State *L) {
  eddyL_newclass(L, &handler_class, handler_methods, handler_meta);
  eddyL_newlib(L, signal_funcs);
  return 1;
}

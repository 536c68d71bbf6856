/*
 * process.c: child processes for Lua (module eddy.c.process; the public
 * eddy.process, with run(), is lua/eddy/process.lua). A child's pipes are
 * connections (bindings/tcp.c, class eddy.process.pipe): read_line,
 * read_some, read, write, shutdown and close behave as a TCP
 * connection's.
 *
 * Memory: a proc_t is freed once its handle has closed (after the child
 * exited and was reaped) and no userdata points to it. A process object
 * collected while its child runs lets the child run on: the handle stays
 * open, not keeping the loop alive, and reaps the child when it exits;
 * if the runtime ends first, the child is killed (core/process.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../core/process.h"
#include "bindings.h"

static const eddyL_class_t proc_class = {"eddy.process"};

typedef struct proc_s {
  eddy__process_t p;
  eddy__waitq_t waiters; /* tasks in wait() */
  int lua_held;
  int closed; /* the handle's close callback ran */
} proc_t;

static void on_proc_close(eddy__process_t *p) {
  proc_t *pr = (proc_t *)p;
  pr->closed = 1;
  if (!pr->lua_held)
    free(pr);
}

/* Pushes what wait() answers for an exited child: the exit status (128
   plus the signal's number when a signal ended it, as a shell says) and
   the signal's name, or nil. */
static int push_exit(lua_State *L, const eddy__process_t *p) {
  if (p->signal != 0) {
    lua_pushinteger(L, 128 + p->signal);
    eddyL_pushsignal(L, p->signal);
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)p->status);
  return 1;
}

static void on_proc_exit(eddy__process_t *p) {
  proc_t *pr = (proc_t *)p;
  eddy__sched_t *s = &p->rt->sched;
  eddy__task_t *t;
  eddy__sched_hold(s);
  while ((t = eddy__waitq_pop(&pr->waiters)) != NULL) {
    lua_State *co = eddy__task_wake_begin(t);
    eddy__task_wake_end(t, push_exit(co, p));
  }
  eddy__sched_unhold(s);
}

/* ======================================================================= */
/* Spawning */

static const char *const stdio_modes[] = {"pipe", "inherit", "ignore", NULL};

/* The strings of the array at idx (a table), NULL-terminated, preceded
   by `first` when given. Pushes a table that anchors them (numbers made
   strings) and the array itself, a userdata, so that an error raised
   meanwhile leaks nothing. */
static char **string_array(lua_State *L, int idx, const char *first,
                           const char *what) {
  size_t n = lua_isnoneornil(L, idx) ? 0 : lua_objlen(L, idx);
  size_t k = 0;
  lua_createtable(L, (int)n, 0);
  int anchor = lua_gettop(L);
  char **v = lua_newuserdata(L, (n + 2) * sizeof *v);
  if (first != NULL)
    v[k++] = (char *)first;
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "bad %s: item %d is %s", what, (int)i,
                 luaL_typename(L, -1));
    v[k++] = (char *)lua_tostring(L, -1);
    lua_rawseti(L, anchor, (int)i);
  }
  v[k] = NULL;
  return v;
}

/* "NAME=value" strings of the table at idx, as string_array's (which
   see for what it pushes). */
static char **env_array(lua_State *L, int idx) {
  lua_newtable(L);
  int strs = lua_gettop(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING ||
        (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
      luaL_error(L, "bad env: names and values must be strings");
    lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_rawseti(L, strs, ++n);
    lua_pop(L, 1);
  }
  return string_array(L, strs, NULL, "env");
}

/* The pipes of a spawn that failed close now, not when collected. */
static void close_pipes(eddy__spawn_t *o) {
  for (int i = 0; i < 3; i++)
    if (o->stdio[i] != NULL)
      eddy__stream_close(o->stdio[i], 0);
}

/* spawn(file, args, env, cwd, stdin, stdout, stderr, group) -> process, stdin,
   stdout, stderr (a pipe each, or false); or nil, err ("not found",
   "permission denied", ...). args: array of strings (argv[1..]); env: a
   table of names and values replacing the environment, or nil; the three
   modes: "pipe", "inherit" or "ignore"; group: in a process group of its
   own, which kill() signals whole. */
static int process_spawn(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__spawn_t o;
  memset(&o, 0, sizeof o);
  o.file = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  o.cwd = luaL_optstring(L, 4, NULL);
  for (int i = 0; i < 3; i++)
    o.mode[i] = luaL_checkoption(L, 5 + i, "pipe", stdio_modes);
  o.group = lua_toboolean(L, 8);
  lua_settop(L, 7);
  o.args = string_array(L, 2, o.file, "args");
  if (!lua_isnil(L, 3))
    o.env = env_array(L, 3);
  int base = lua_gettop(L);

  proc_t **box = eddyL_newobject(L, &proc_class, sizeof *box);
  *box = NULL;
  int err = 0;
  for (int i = 0; i < 3 && err == 0; i++) {
    if (o.mode[i] != EDDY__STDIO_PIPE)
      lua_pushboolean(L, 0);
    else if ((o.stdio[i] = eddyL_pipe_new(L, &err)) == NULL)
      lua_pushboolean(L, 0);
  }
  proc_t *pr = err == 0 ? calloc(1, sizeof *pr) : NULL;
  if (pr == NULL && err == 0)
    err = EDDY_ENOMEM;
  if (pr != NULL) {
    pr->p.on_exit = on_proc_exit;
    pr->p.on_close = on_proc_close;
    err = eddy__process_spawn(rt, &pr->p, &o); /* else on_proc_close
                                                   frees pr */
  }
  if (err != 0) {
    close_pipes(&o);
    return eddyL_error(L, err);
  }
  pr->lua_held = 1;
  *box = pr;
  return lua_gettop(L) - base;
}

/* ======================================================================= */
/* Methods */

static proc_t *check_proc(lua_State *L) {
  proc_t **box = eddyL_checkobject(L, 1, &proc_class);
  return *box;
}

static void wait_detach(eddy__task_t *t) {
  proc_t *pr = t->wait_data;
  eddy__waitq_remove(t);
  if (pr->waiters.head == NULL && !pr->p.closing)
    eddy__process_hold(&pr->p, 0);
}

static const eddy__wait_ops_t wait_ops = {"process wait", wait_detach, NULL};

/* process:wait([timeout]) -> code[, signal] once the child has exited, or
   nil, "timeout". */
static int proc_wait(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  proc_t *pr = check_proc(L);
  int64_t ms = eddyL_opttimeout(L, 2, -1);
  if (pr->p.exited)
    return push_exit(L, &pr->p);
  if (ms == 0)
    return eddyL_error(L, EDDY_ETIMEOUT);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &wait_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &wait_ops, pr, ms);
  eddy__waitq_push(&pr->waiters, t);
  eddy__process_hold(&pr->p, 1); /* a task waits: the loop must too */
  return eddy__task_yield(&rt->sched, L);
}

/* process:kill([signal]) -> true, or nil, "not found" once the child has
   exited (for a group, once no member is left). signal: a name ("term", the default, "kill", "int", "hup",
   "usr1", ...) or a number. */
static int proc_kill(lua_State *L) {
  proc_t *pr = check_proc(L);
  int signum = lua_isnoneornil(L, 2) ? SIGTERM : eddyL_checksignal(L, 2);
  int rc = eddy__process_kill(&pr->p, signum);
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int proc_pid(lua_State *L) {
  lua_pushinteger(L, check_proc(L)->p.pid);
  return 1;
}

/* process:exited() -> whether the child has exited (and been reaped). */
static int proc_exited(lua_State *L) {
  lua_pushboolean(L, check_proc(L)->p.exited);
  return 1;
}

static int proc_gc(lua_State *L) {
  proc_t **box = eddyL_toobject(L, 1);
  proc_t *pr = *box;
  if (pr == NULL)
    return 0;
  *box = NULL;
  pr->lua_held = 0;
  if (pr->closed)
    free(pr);
  return 0;
}

static int proc_tostring(lua_State *L) {
  proc_t *pr = check_proc(L);
  lua_pushfstring(L, "eddy.process (pid %d, %s)", pr->p.pid,
                  pr->p.exited ? "exited" : "running");
  return 1;
}

static const luaL_Reg process_funcs[] = {
    {"spawn", process_spawn},
    {NULL, NULL},
};

static const luaL_Reg proc_methods[] = {
    {"wait", proc_wait},
    {"kill", proc_kill},
    {"pid", proc_pid},
    {"exited", proc_exited},
    {NULL, NULL},
};

static const luaL_Reg proc_meta[] = {
    {"__gc", proc_gc},
    {"__tostring", proc_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_process(lua_State *L) {
  eddyL_newclass(L, &proc_class, proc_methods, proc_meta);
  eddyL_newlib(L, process_funcs);
  return 1;
}

/*
 * fs.c: file operations for Lua (module eddy.c.fs), on the threadpool. For
 * now what res:sendfile needs: open_read and close.
 */
#include <stdlib.h>
#include <unistd.h>

#include "../core/fs.h"
#include "bindings.h"

typedef struct open_wait_s {
  eddy__fs_open_t op;
  eddy__waiter_t waiter;
} open_wait_t;

static void on_opened(eddy__fs_open_t *op, int status) {
  open_wait_t *w = (open_wait_t *)op;
  if (!eddy__waiter_is_current(w->waiter)) {
    if (status == 0)
      close(op->fd); /* nobody wants it any more */
    free(w);
    return;
  }
  eddy__task_t *t = w->waiter.task;
  lua_State *co = eddy__task_wake_begin(t);
  if (status != 0) {
    eddy__task_wake_end(t, eddyL_error(co, status));
  } else {
    lua_pushinteger(co, op->fd);
    lua_pushnumber(co, (lua_Number)op->size);
    lua_pushnumber(co, (lua_Number)op->mtime);
    eddy__task_wake_end(t, 3);
  }
  free(w);
}

/* The request finishes in its own time; on_opened sees the waiter is gone
   and closes what it opened. */
static const eddy__wait_ops_t open_ops = {"file open", NULL, NULL};

/* open_read(path) -> fd, size, mtime; or nil, err ("not found",
   "permission denied", "is a directory", ...). */
static int fs_open_read(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *path = luaL_checkstring(L, 1);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &open_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  open_wait_t *w = malloc(sizeof *w);
  if (w == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  int rc = eddy__fs_open_read(rt, &w->op, path, on_opened);
  if (rc != 0) {
    free(w);
    return eddyL_error(L, rc);
  }
  eddy__task_wait(t, &open_ops, w, -1);
  w->waiter = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

static int fs_close(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd > 2, 1, "not a file this module opened");
  close(fd);
  return 0;
}

static const luaL_Reg fs_funcs[] = {
    {"open_read", fs_open_read},
    {"close", fs_close},
    {NULL, NULL},
};

int luaopen_eddy_c_fs(lua_State *L) {
  eddyL_newlib(L, fs_funcs);
  return 1;
}

/*
 * fs.c: files and directories for Lua (module eddy.c.fs; the friendly API,
 * eddy.fs, is lua/eddy/fs.lua). Every operation is a request on libuv's
 * threadpool (core/fs.h) that the calling task waits for; a task that is
 * cancelled or times out leaves its request to finish in its own time,
 * and the completion drops the result (closing a file it opened).
 *
 * Memory: a file_t is freed once its descriptor is closed, no request on
 * it is in flight and no userdata points to it. A descriptor is closed
 * only when no request uses it any more: a read left running by a
 * cancelled task must not land in another file that reused the number.
 * A watch_t is freed when its handle has closed and its userdata is gone.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fs.h"
#include "bindings.h"

static const eddyL_class_t file_class = {"eddy.fs.file"};
static const eddyL_class_t watch_class = {"eddy.fs.watch"};

#define MAX_READ (16 << 20) /* one request's bytes; fs.lua reads on */
#define DEFAULT_FILE_PERM 0666
#define DEFAULT_DIR_PERM 0777

typedef struct file_s {
  eddy_runtime_t *rt;
  eddy__closer_t closer; /* the descriptor closes when the runtime ends */
  int fd;          /* -1 once closed, though a request may still use it */
  int real_fd;     /* what requests in flight use */
  int64_t pos;     /* where the next read or write goes */
  int flags;       /* the open flags */
  int inflight;    /* requests on real_fd not yet finished */
  int lua_held;
  eddy__waiter_t user; /* the task in an operation */
} file_t;

/* ======================================================================= */
/* Files: life */

static void on_dropped(eddy__fs_req_t *r, int64_t result) {
  (void)result;
  eddy__fs_req_free(r);
}

/* Closes fd without anyone waiting (a collected file, the runtime's end). */
static void close_fd_later(eddy_runtime_t *rt, int fd) {
  eddy__fs_req_t *r = eddy__fs_req_new(0);
  if (r == NULL || eddy__fs_close(rt, r, fd, on_dropped) != 0) {
    eddy__fs_req_free(r);
    close(fd); /* the threadpool cannot take it: close here */
  }
}

/* Undoes what a request nobody waits for any more made: closes the file
   it opened, removes the temporary file or directory. */
static void undo_later(eddy_runtime_t *rt, eddy__fs_req_t *done,
                       int64_t result) {
  int type = done->req.fs_type;
  if (type == UV_FS_OPEN || type == UV_FS_MKSTEMP)
    close_fd_later(rt, (int)result);
  if (type != UV_FS_MKSTEMP && type != UV_FS_MKDTEMP)
    return;
  eddy__fs_req_t *r = eddy__fs_req_new(0);
  if (r == NULL)
    return;
  int rc = type == UV_FS_MKSTEMP
               ? eddy__fs_unlink(rt, r, done->req.path, on_dropped)
               : eddy__fs_rmdir(rt, r, done->req.path, on_dropped);
  if (rc != 0)
    eddy__fs_req_free(r);
}

/* Closes the descriptor of a closed file once no request uses it, and
   frees the file once no userdata points to it either. */
static void maybe_free_file(file_t *f) {
  if (f->fd >= 0 || f->inflight > 0)
    return;
  if (f->real_fd >= 0) {
    close_fd_later(f->rt, f->real_fd);
    f->real_fd = -1;
  }
  if (!f->lua_held)
    free(f);
}

/* Marks f closed; the descriptor itself closes once nothing uses it. */
static void file_shut(file_t *f) {
  if (f->fd < 0)
    return;
  f->fd = -1;
  eddy__closer_remove(f->rt, &f->closer);
}

static void close_by_stop(eddy__closer_t *c) {
  file_t *f = (file_t *)((char *)c - offsetof(file_t, closer));
  file_shut(f);
  maybe_free_file(f);
}

static file_t *file_new(eddy_runtime_t *rt, int fd, int flags) {
  file_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
  f->rt = rt;
  f->fd = f->real_fd = fd;
  f->flags = flags;
  f->closer.close = close_by_stop;
  eddy__closer_add(rt, &f->closer);
  return f;
}

static void push_file(lua_State *L, file_t *f) {
  file_t **box = eddyL_newobject(L, &file_class, sizeof *box);
  *box = f;
  f->lua_held = 1;
}

static int file_gc(lua_State *L) {
  file_t **box = eddyL_toobject(L, 1);
  file_t *f = *box;
  if (f == NULL)
    return 0;
  *box = NULL;
  f->lua_held = 0;
  file_shut(f);
  maybe_free_file(f);
  return 0;
}

/* ======================================================================= */
/* Completions */

static void push_stat(lua_State *L, const uv_stat_t *st) {
  lua_createtable(L, 0, 12);
  lua_pushnumber(L, (lua_Number)st->st_size);
  lua_setfield(L, -2, "size");
  lua_pushstring(L, eddy__fs_type_of(st->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
  lua_setfield(L, -2, "perm");
  lua_pushnumber(L, st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushnumber(L, st->st_atim.tv_sec + st->st_atim.tv_nsec / 1e9);
  lua_setfield(L, -2, "atime");
  lua_pushnumber(L, st->st_ctim.tv_sec + st->st_ctim.tv_nsec / 1e9);
  lua_setfield(L, -2, "ctime");
  lua_pushnumber(L, (lua_Number)st->st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushnumber(L, (lua_Number)st->st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushnumber(L, (lua_Number)st->st_ino);
  lua_setfield(L, -2, "ino");
  lua_pushnumber(L, (lua_Number)st->st_dev);
  lua_setfield(L, -2, "dev");
  lua_pushnumber(L, (lua_Number)st->st_nlink);
  lua_setfield(L, -2, "nlink");
}

/* Entries as { name = ..., type = ... }, in the order the kernel gave. */
static void push_entries(lua_State *L, eddy__fs_req_t *r) {
  const char *name, *type;
  int i = 0;
  lua_newtable(L);
  while ((name = eddy__fs_next_entry(r, &type)) != NULL) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, ++i);
  }
}

/* Pushes what a successful request answers; returns the count. Opening
   requests make their file here. */
static int push_result(lua_State *L, eddy__fs_req_t *r, int64_t result) {
  eddy_runtime_t *rt = r->req.loop->data;
  file_t *f;
  switch (r->req.fs_type) {
  case UV_FS_OPEN:
  case UV_FS_MKSTEMP:
    f = file_new(rt, (int)result,
                 r->req.fs_type == UV_FS_OPEN ? r->req.flags : O_RDWR);
    if (f == NULL) {
      close_fd_later(rt, (int)result);
      return eddyL_error(L, EDDY_ENOMEM);
    }
    push_file(L, f);
    if (r->req.fs_type == UV_FS_OPEN)
      return 1;
    lua_pushstring(L, r->req.path);
    return 2;
  case UV_FS_READ:
    lua_pushlstring(L, r->buf, (size_t)result);
    return 1;
  case UV_FS_STAT:
  case UV_FS_LSTAT:
  case UV_FS_FSTAT:
    push_stat(L, &r->req.statbuf);
    return 1;
  case UV_FS_SCANDIR:
    push_entries(L, r);
    return 1;
  case UV_FS_MKDTEMP:
    lua_pushstring(L, r->req.path);
    return 1;
  default:
    lua_pushboolean(L, 1);
    return 1;
  }
}

/* A request on a file finished: its position moves, and a close that
   waited for it happens. */
static void settle_file(file_t *f, eddy__fs_req_t *r, int64_t result,
                        int current) {
  f->inflight--;
  if (result >= 0 && r->req.fs_type == UV_FS_WRITE && r->offset >= 0)
    f->pos = r->offset;
  else if (result > 0 && r->req.fs_type == UV_FS_READ && current)
    f->pos += result;
  maybe_free_file(f);
}

static void on_fs_done(eddy__fs_req_t *r, int64_t result) {
  int current = eddy__waiter_is_current(r->waiter);
  if (r->data != NULL) {
    file_t *f = r->data;
    if (r->req.fs_type == UV_FS_CLOSE) {
      f->inflight--;
      f->real_fd = -1; /* closed, whatever it answered */
      maybe_free_file(f);
    } else {
      settle_file(f, r, result, current);
    }
  }
  if (!current) {
    if (result >= 0)
      undo_later(r->req.loop->data, r, result);
    eddy__fs_req_free(r);
    return;
  }
  eddy__task_t *t = r->waiter.task;
  lua_State *co = eddy__task_wake_begin(t);
  int n = result < 0 ? eddyL_error(co, (int)result) : push_result(co, r, result);
  eddy__task_wake_end(t, n);
  eddy__fs_req_free(r);
}

/* The request finishes in its own time; on_fs_done sees that the waiter
   is gone. */
static const eddy__wait_ops_t fs_ops = {"file", NULL, NULL};

/* What an operation does, with its arguments: one struct for all, and
   one function that starts each. */
enum fs_op {
  OP_OPEN, OP_STAT, OP_SCANDIR, OP_MKDIR, OP_RMDIR, OP_UNLINK, OP_RENAME,
  OP_MKSTEMP, OP_MKDTEMP, /* on paths */
  OP_READ, OP_WRITE, OP_FSYNC, OP_FTRUNCATE, OP_FCHMOD, OP_FSTAT,
  OP_CLOSE /* on a file's descriptor */
};

typedef struct fs_args_s {
  int op;
  const char *path;
  const char *path2; /* rename's target */
  int flags;         /* open's; stat's follow */
  int mode;          /* permissions */
  int fd;
  int64_t offset;    /* read and write (-1: the end), truncate's size */
} fs_args_t;

static int start(eddy_runtime_t *rt, eddy__fs_req_t *r, const fs_args_t *a) {
  switch (a->op) {
  case OP_OPEN:
    return eddy__fs_open(rt, r, a->path, a->flags, a->mode, on_fs_done);
  case OP_STAT:
    return eddy__fs_stat(rt, r, a->path, a->flags, on_fs_done);
  case OP_SCANDIR:
    return eddy__fs_scandir(rt, r, a->path, on_fs_done);
  case OP_MKDIR:
    return eddy__fs_mkdir(rt, r, a->path, a->mode, on_fs_done);
  case OP_RMDIR:
    return eddy__fs_rmdir(rt, r, a->path, on_fs_done);
  case OP_UNLINK:
    return eddy__fs_unlink(rt, r, a->path, on_fs_done);
  case OP_RENAME:
    return eddy__fs_rename(rt, r, a->path, a->path2, on_fs_done);
  case OP_MKSTEMP:
    return eddy__fs_mkstemp(rt, r, a->path, on_fs_done);
  case OP_MKDTEMP:
    return eddy__fs_mkdtemp(rt, r, a->path, on_fs_done);
  case OP_READ:
    return eddy__fs_read(rt, r, a->fd, a->offset, on_fs_done);
  case OP_WRITE:
    return eddy__fs_write(rt, r, a->fd, a->offset, on_fs_done);
  case OP_FSYNC:
    return eddy__fs_fsync(rt, r, a->fd, on_fs_done);
  case OP_FTRUNCATE:
    return eddy__fs_ftruncate(rt, r, a->fd, a->offset, on_fs_done);
  case OP_FCHMOD:
    return eddy__fs_fchmod(rt, r, a->fd, a->mode, on_fs_done);
  case OP_FSTAT:
    return eddy__fs_fstat(rt, r, a->fd, on_fs_done);
  case OP_CLOSE:
    return eddy__fs_close(rt, r, a->fd, on_fs_done);
  }
  return EDDY_EINVAL;
}

/* The common path of every operation: check that the task may wait, make
   the request (len bytes of buffer, copied from fill when given), start
   it and wait. f: the file it works on, or NULL. */
static int fs_call(lua_State *L, file_t *f, const fs_args_t *a, size_t len,
                   const char *fill) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &fs_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__fs_req_t *r = eddy__fs_req_new(len);
  if (r == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  if (fill != NULL)
    memcpy(r->buf, fill, len);
  r->data = f;
  int rc = start(rt, r, a);
  if (rc != 0) {
    eddy__fs_req_free(r);
    return eddyL_error(L, rc);
  }
  if (f != NULL) {
    f->inflight++;
    f->user = eddy__waiter_of(t);
  }
  eddy__task_wait(t, &fs_ops, r, -1);
  r->waiter = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

/* ======================================================================= */
/* Paths */

static const char *check_path(lua_State *L, int idx) {
  size_t len;
  const char *p = luaL_checklstring(L, idx, &len);
  luaL_argcheck(L, strlen(p) == len, idx, "path contains a zero byte");
  return p;
}

/* An operation on the path at argument 1. */
static int path_call(lua_State *L, int op, int flags, int mode) {
  fs_args_t a = {op, check_path(L, 1), NULL, flags, mode, -1, 0};
  if (op == OP_RENAME)
    a.path2 = check_path(L, 2);
  return fs_call(L, NULL, &a, 0, NULL);
}

static int parse_flags(lua_State *L, int idx) {
  const char *m = luaL_optstring(L, idx, "r");
  int flags;
  switch (m[0]) {
  case 'r':
    flags = 0;
    break;
  case 'w':
    flags = O_CREAT | O_TRUNC;
    break;
  case 'a':
    flags = O_CREAT | O_APPEND;
    break;
  default:
    return luaL_argerror(L, idx, "mode must be r, w or a, then + or x");
  }
  int plus = 0;
  for (const char *c = m + 1; *c; c++) {
    if (*c == '+')
      plus = 1;
    else if (*c == 'x' && m[0] == 'w')
      flags |= O_EXCL;
    else if (*c != 'b')
      return luaL_argerror(L, idx, "mode must be r, w or a, then + or x");
  }
  return flags | (plus ? O_RDWR : m[0] == 'r' ? O_RDONLY : O_WRONLY);
}

/* open(path[, mode[, perm]]) -> file, or nil, err. mode as fopen's: "r"
   (default), "w", "a", "r+", "w+", "a+"; an "x" after "w" fails when the
   file exists. perm: of a new file, before the umask (default 0666). */
static int fs_open(lua_State *L) {
  int flags = parse_flags(L, 2);
  return path_call(L, OP_OPEN, flags,
                   (int)luaL_optinteger(L, 3, DEFAULT_FILE_PERM));
}

/* stat(path[, follow]) -> table (size, type, perm, mtime, ...), or nil,
   err; follow false stats a link itself. */
static int fs_stat(lua_State *L) {
  return path_call(L, OP_STAT, lua_isnoneornil(L, 2) || lua_toboolean(L, 2),
                   0);
}

/* list(path) -> { {name =, type =}, ... }, or nil, err */
static int fs_list(lua_State *L) {
  return path_call(L, OP_SCANDIR, 0, 0);
}

/* mkdir(path[, perm]) -> true, or nil, err (one level; fs.lua makes the
   parents). */
static int fs_mkdir(lua_State *L) {
  return path_call(L, OP_MKDIR, 0,
                   (int)luaL_optinteger(L, 2, DEFAULT_DIR_PERM));
}

static int fs_rmdir(lua_State *L) {
  return path_call(L, OP_RMDIR, 0, 0);
}

static int fs_unlink(lua_State *L) {
  return path_call(L, OP_UNLINK, 0, 0);
}

static int fs_rename(lua_State *L) {
  return path_call(L, OP_RENAME, 0, 0);
}

/* mkstemp(template) -> file (read and write), path; template ends in
   XXXXXX. */
static int fs_mkstemp(lua_State *L) {
  return path_call(L, OP_MKSTEMP, 0, 0);
}

static int fs_mkdtemp(lua_State *L) {
  return path_call(L, OP_MKDTEMP, 0, 0);
}

/* ======================================================================= */
/* File methods */

static file_t *check_file(lua_State *L) {
  file_t **box = eddyL_checkobject(L, 1, &file_class);
  return *box;
}

/* The file, or NULL when it is closed; raises if another task is in an
   operation on it. */
static file_t *usable_file(lua_State *L) {
  file_t *f = check_file(L);
  if (f == NULL || f->fd < 0)
    return NULL;
  if (eddy__waiter_is_current(f->user))
    luaL_error(L, "another task is using this file");
  return f;
}

/* An operation on the file at argument 1, or nil, "closed". */
static int file_call(lua_State *L, int op, int64_t offset, int mode) {
  file_t *f = usable_file(L);
  if (f == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  fs_args_t a = {op, NULL, NULL, 0, mode, f->real_fd, offset};
  return fs_call(L, f, &a, 0, NULL);
}

/* file:read(n) -> up to n bytes ("" at the end of the file), or nil,
   err. */
static int file_read(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "must be >= 0");
  file_t *f = usable_file(L);
  if (f == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  if ((f->flags & O_ACCMODE) == O_WRONLY)
    return luaL_error(L, "file is not open for reading");
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  fs_args_t a = {OP_READ, NULL, NULL, 0, 0, f->real_fd, f->pos};
  return fs_call(L, f, &a, n > MAX_READ ? MAX_READ : (size_t)n, NULL);
}

/* file:write(data) -> true, or nil, err. In append mode the bytes go to
   the end, wherever the position is. */
static int file_write(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  file_t *f = usable_file(L);
  if (f == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  if ((f->flags & O_ACCMODE) == O_RDONLY)
    return luaL_error(L, "file is not open for writing");
  fs_args_t a = {OP_WRITE, NULL, NULL, 0, 0, f->real_fd,
                 (f->flags & O_APPEND) ? -1 : f->pos};
  return fs_call(L, f, &a, len, data);
}

/* file:seek([whence[, offset]]) -> the new position. whence "set" or
   "cur" (default); fs.lua adds "end". Nothing waits: the position is the
   file object's own. */
static int file_seek(lua_State *L) {
  static const char *const whences[] = {"set", "cur", NULL};
  int whence = luaL_checkoption(L, 2, "cur", whences);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  file_t *f = usable_file(L);
  if (f == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  int64_t pos = (whence == 0 ? 0 : f->pos) + off;
  luaL_argcheck(L, pos >= 0, 3, "position before the start of the file");
  f->pos = pos;
  lua_pushnumber(L, (lua_Number)pos);
  return 1;
}

/* file:sync() -> true, or nil, err: the bytes are on the disk. */
static int file_sync(lua_State *L) {
  return file_call(L, OP_FSYNC, 0, 0);
}

/* file:truncate([size]) -> true, or nil, err (size default 0). */
static int file_truncate(lua_State *L) {
  lua_Integer size = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, size >= 0, 2, "must be >= 0");
  return file_call(L, OP_FTRUNCATE, size, 0);
}

/* file:chmod(perm) -> true, or nil, err. */
static int file_chmod(lua_State *L) {
  return file_call(L, OP_FCHMOD, 0, (int)luaL_checkinteger(L, 2));
}

static int file_stat(lua_State *L) {
  return file_call(L, OP_FSTAT, 0, 0);
}

/* file:close() -> true, or nil, err ("closed" the second time). A request
   left in flight by a cancelled task still uses the descriptor: then it
   closes after that, and close answers at once. */
static int file_close(lua_State *L) {
  file_t *f = usable_file(L);
  if (f == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  eddy__task_t *t = eddyL_runtime(L)->sched.current;
  if (f->inflight > 0 || !lua_isyieldable(L) || t == NULL ||
      (t->flags & EDDY__TASK_CANCELLED)) {
    file_shut(f);
    maybe_free_file(f); /* or settle_file, once nothing is in flight */
    lua_pushboolean(L, 1);
    return 1;
  }
  fs_args_t a = {OP_CLOSE, NULL, NULL, 0, 0, f->real_fd, 0};
  file_shut(f);
  return fs_call(L, f, &a, 0, NULL);
}

static int file_closed(lua_State *L) {
  file_t *f = check_file(L);
  lua_pushboolean(L, f == NULL || f->fd < 0);
  return 1;
}

/* file:position() -> where the next read or write goes. */
static int file_position(lua_State *L) {
  file_t *f = check_file(L);
  if (f == NULL || f->fd < 0)
    return eddyL_error(L, EDDY_ECLOSED);
  lua_pushnumber(L, (lua_Number)f->pos);
  return 1;
}

static int file_tostring(lua_State *L) {
  file_t *f = check_file(L);
  lua_pushfstring(L, "eddy.fs.file (%s)",
                  f == NULL || f->fd < 0 ? "closed" : "open");
  return 1;
}

/* ======================================================================= */
/* Watching */

typedef struct watch_s {
  eddy__fs_watch_t w;
  int fn_ref;
  int closed;   /* close was asked for */
  int lua_held;
  int handle_closed;
} watch_t;

static void on_watch_close(eddy__fs_watch_t *w) {
  watch_t *wt = (watch_t *)w;
  eddy_runtime_t *rt = w->rt;
  wt->closed = 1;
  wt->handle_closed = 1;
  if (rt->L != NULL)
    eddy__unref(&rt->refs, rt->L, wt->fn_ref);
  wt->fn_ref = EDDY__NOREF;
  if (!wt->lua_held)
    free(wt);
}

/* Each change runs fn(name, event) in a task of its own: event is
   "rename" (created, removed or moved) or "change". */
static void on_change(eddy__fs_watch_t *w, const char *name, int renamed,
                      int status) {
  watch_t *wt = (watch_t *)w;
  eddy_runtime_t *rt = w->rt;
  lua_State *L = rt->L;
  if (status != 0 || wt->closed || L == NULL)
    return;
  eddy__getref(&rt->refs, L, wt->fn_ref);
  if (name != NULL)
    lua_pushstring(L, name);
  else
    lua_pushnil(L);
  lua_pushstring(L, renamed ? "rename" : "change");
  if (eddy__task_spawn(&rt->sched, L, 2) == NULL)
    eddy__log(rt, EDDY_LOG_ERROR, "fs.watch: out of memory for a task");
}

static void watch_stop(watch_t *wt) {
  if (wt->closed)
    return;
  wt->closed = 1;
  eddy__fs_watch_close(&wt->w); /* on_watch_close lets fn go */
}

/* watch(path, fn) -> watcher, or nil, err. The watcher runs until
   watcher:close() or the runtime's end, even when the Lua object is
   collected. */
static int fs_watch(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *path = check_path(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  watch_t **box = eddyL_newobject(L, &watch_class, sizeof *box);
  *box = NULL;
  watch_t *wt = calloc(1, sizeof *wt);
  if (wt == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  wt->fn_ref = EDDY__NOREF;
  wt->w.on_change = on_change;
  wt->w.on_close = on_watch_close;
  int rc = eddy__fs_watch_start(rt, &wt->w, path);
  if (rc != 0) {
    wt->closed = 1; /* on_watch_close frees it */
    return eddyL_error(L, rc);
  }
  lua_pushvalue(L, 2);
  wt->fn_ref = eddy__ref(&rt->refs, L);
  wt->lua_held = 1;
  *box = wt;
  return 1;
}

static watch_t *check_watch(lua_State *L) {
  watch_t **box = eddyL_checkobject(L, 1, &watch_class);
  return *box;
}

static int watch_close(lua_State *L) {
  watch_t *wt = check_watch(L);
  int was_open = wt != NULL && !wt->closed;
  if (wt != NULL)
    watch_stop(wt);
  lua_pushboolean(L, was_open);
  return 1;
}

static int watch_gc(lua_State *L) {
  watch_t **box = eddyL_toobject(L, 1);
  watch_t *wt = *box;
  if (wt == NULL)
    return 0;
  *box = NULL;
  wt->lua_held = 0;
  if (wt->handle_closed)
    free(wt);
  return 0;
}

/* ======================================================================= */
/* Serving files (res:sendfile) */

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

/* ======================================================================= */

static const luaL_Reg fs_funcs[] = {
    {"open", fs_open},
    {"stat", fs_stat},
    {"list", fs_list},
    {"mkdir", fs_mkdir},
    {"rmdir", fs_rmdir},
    {"unlink", fs_unlink},
    {"rename", fs_rename},
    {"mkstemp", fs_mkstemp},
    {"mkdtemp", fs_mkdtemp},
    {"watch", fs_watch},
    {"open_read", fs_open_read},
    {"close", fs_close},
    {NULL, NULL},
};

static const luaL_Reg file_methods[] = {
    {"read", file_read},
    {"write", file_write},
    {"seek", file_seek},
    {"sync", file_sync},
    {"truncate", file_truncate},
    {"chmod", file_chmod},
    {"stat", file_stat},
    {"close", file_close},
    {"closed", file_closed},
    {"position", file_position},
    {NULL, NULL},
};

static const luaL_Reg file_meta[] = {
    {"__gc", file_gc},
    {"__tostring", file_tostring},
    {NULL, NULL},
};

static const luaL_Reg watch_methods[] = {
    {"close", watch_close},
    {NULL, NULL},
};

static const luaL_Reg watch_meta[] = {
    {"__gc", watch_gc},
    {NULL, NULL},
};

int luaopen_eddy_c_fs(lua_State *L) {
  eddyL_newclass(L, &file_class, file_methods, file_meta);
  eddyL_newclass(L, &watch_class, watch_methods, watch_meta);
  eddyL_newlib(L, fs_funcs);
  eddyL_setmethods(L, &file_class, "File"); /* fs.lua adds lines() */
  return 1;
}

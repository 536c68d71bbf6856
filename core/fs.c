/*
 * fs.c: file operations on libuv's threadpool (see fs.h). Knows nothing of
 * Lua.
 */
#include "fs.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void on_stat(uv_fs_t *req) {
  eddy__fs_open_t *op = req->data;
  int status = 0;
  if (req->result < 0) {
    status = eddy__error_from_uv((int)req->result);
  } else if (S_ISDIR(req->statbuf.st_mode)) {
    status = EDDY_EISDIR;
  } else if (!S_ISREG(req->statbuf.st_mode)) {
    status = EDDY_EINVAL; /* a device, a pipe: not a file to serve */
  } else {
    op->size = (int64_t)req->statbuf.st_size;
    op->mtime = (int64_t)req->statbuf.st_mtim.tv_sec;
  }
  uv_fs_req_cleanup(req);
  if (status != 0) {
    close(op->fd); /* a regular close: nothing for the threadpool */
    op->fd = -1;
  }
  op->cb(op, status);
}

static void on_open(uv_fs_t *req) {
  eddy__fs_open_t *op = req->data;
  int result = (int)req->result;
  uv_loop_t *loop = req->loop;
  uv_fs_req_cleanup(req);
  if (result < 0) {
    op->fd = -1;
    op->cb(op, eddy__error_from_uv(result));
    return;
  }
  op->fd = result;
  if (uv_fs_fstat(loop, &op->req, result, on_stat) != 0) {
    close(result);
    op->fd = -1;
    op->cb(op, EDDY_EIO);
  }
}

int eddy__fs_open_read(eddy_runtime_t *rt, eddy__fs_open_t *op,
                       const char *path,
                       void (*cb)(eddy__fs_open_t *op, int status)) {
  op->cb = cb;
  op->fd = -1;
  op->req.data = op;
  int rc = uv_fs_open(&rt->loop, &op->req, path, O_RDONLY | O_CLOEXEC, 0,
                      on_open);
  return rc == 0 ? 0 : eddy__error_from_uv(rc);
}

/* ======================================================================= */
/* One request for every operation */

eddy__fs_req_t *eddy__fs_req_new(size_t len) {
  eddy__fs_req_t *r = malloc(sizeof *r + len);
  if (r == NULL)
    return NULL;
  memset(r, 0, sizeof *r);
  r->len = len;
  r->req.data = r;
  return r;
}

void eddy__fs_req_free(eddy__fs_req_t *r) {
  if (r == NULL)
    return;
  uv_fs_req_cleanup(&r->req);
  free(r);
}

static void on_done(uv_fs_t *req) {
  eddy__fs_req_t *r = req->data;
  int64_t result = (int64_t)req->result;
  r->cb(r, result < 0 ? eddy__error_from_uv((int)result) : result);
}

static int started(eddy__fs_req_t *r, eddy__fs_cb cb, int rc) {
  r->cb = cb;
  return rc == 0 ? 0 : eddy__error_from_uv(rc);
}

int eddy__fs_open(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                  int flags, int mode, eddy__fs_cb cb) {
  return started(r, cb, uv_fs_open(&rt->loop, &r->req, path,
                                   flags | O_CLOEXEC, mode, on_done));
}

int eddy__fs_close(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   eddy__fs_cb cb) {
  return started(r, cb, uv_fs_close(&rt->loop, &r->req, fd, on_done));
}

int eddy__fs_read(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                  int64_t offset, eddy__fs_cb cb) {
  uv_buf_t buf = uv_buf_init(r->buf, (unsigned)r->len);
  return started(r, cb, uv_fs_read(&rt->loop, &r->req, fd, &buf, 1, offset,
                                   on_done));
}

static int write_rest(eddy__fs_req_t *r, uv_loop_t *loop, int fd);

/* A write to a regular file may still come back short (a full disk, a
   signal): the rest goes in another write, and cb hears of the whole. */
static void on_written(uv_fs_t *req) {
  eddy__fs_req_t *r = req->data;
  int64_t result = (int64_t)req->result;
  uv_loop_t *loop = req->loop;
  uv_file fd = req->file;
  uv_fs_req_cleanup(req);
  if (result < 0) {
    r->cb(r, eddy__error_from_uv((int)result));
    return;
  }
  r->done += (size_t)result;
  if (r->offset >= 0)
    r->offset += result;
  if (r->done == r->len || result == 0) {
    r->cb(r, result == 0 && r->done < r->len ? EDDY_EIO : (int64_t)r->done);
    return;
  }
  int rc = write_rest(r, loop, fd);
  if (rc != 0)
    r->cb(r, eddy__error_from_uv(rc));
}

static int write_rest(eddy__fs_req_t *r, uv_loop_t *loop, int fd) {
  uv_buf_t buf = uv_buf_init(r->buf + r->done, (unsigned)(r->len - r->done));
  return uv_fs_write(loop, &r->req, fd, &buf, 1, r->offset, on_written);
}

int eddy__fs_write(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   int64_t offset, eddy__fs_cb cb) {
  r->done = 0;
  r->offset = offset;
  return started(r, cb, write_rest(r, &rt->loop, fd));
}

int eddy__fs_fsync(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   eddy__fs_cb cb) {
  return started(r, cb, uv_fs_fsync(&rt->loop, &r->req, fd, on_done));
}

int eddy__fs_fchmod(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd, int mode,
                    eddy__fs_cb cb) {
  return started(r, cb, uv_fs_fchmod(&rt->loop, &r->req, fd, mode, on_done));
}

int eddy__fs_ftruncate(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                       int64_t size, eddy__fs_cb cb) {
  return started(r, cb, uv_fs_ftruncate(&rt->loop, &r->req, fd, size,
                                        on_done));
}

int eddy__fs_stat(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                  int follow, eddy__fs_cb cb) {
  if (follow)
    return started(r, cb, uv_fs_stat(&rt->loop, &r->req, path, on_done));
  return started(r, cb, uv_fs_lstat(&rt->loop, &r->req, path, on_done));
}

int eddy__fs_fstat(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   eddy__fs_cb cb) {
  return started(r, cb, uv_fs_fstat(&rt->loop, &r->req, fd, on_done));
}

int eddy__fs_scandir(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                     eddy__fs_cb cb) {
  return started(r, cb, uv_fs_scandir(&rt->loop, &r->req, path, 0, on_done));
}

int eddy__fs_mkdir(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                   int mode, eddy__fs_cb cb) {
  return started(r, cb, uv_fs_mkdir(&rt->loop, &r->req, path, mode, on_done));
}

int eddy__fs_rmdir(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                   eddy__fs_cb cb) {
  return started(r, cb, uv_fs_rmdir(&rt->loop, &r->req, path, on_done));
}

int eddy__fs_unlink(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                    eddy__fs_cb cb) {
  return started(r, cb, uv_fs_unlink(&rt->loop, &r->req, path, on_done));
}

int eddy__fs_rename(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *from,
                    const char *to, eddy__fs_cb cb) {
  return started(r, cb, uv_fs_rename(&rt->loop, &r->req, from, to, on_done));
}

int eddy__fs_mkstemp(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *tmpl,
                     eddy__fs_cb cb) {
  return started(r, cb, uv_fs_mkstemp(&rt->loop, &r->req, tmpl, on_done));
}

int eddy__fs_mkdtemp(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *tmpl,
                     eddy__fs_cb cb) {
  return started(r, cb, uv_fs_mkdtemp(&rt->loop, &r->req, tmpl, on_done));
}

static const char *type_name(uv_dirent_type_t type) {
  switch (type) {
  case UV_DIRENT_FILE:
    return "file";
  case UV_DIRENT_DIR:
    return "directory";
  case UV_DIRENT_LINK:
    return "link";
  case UV_DIRENT_FIFO:
    return "fifo";
  case UV_DIRENT_SOCKET:
    return "socket";
  case UV_DIRENT_CHAR:
    return "char";
  case UV_DIRENT_BLOCK:
    return "block";
  default:
    return "unknown";
  }
}

const char *eddy__fs_next_entry(eddy__fs_req_t *r, const char **type) {
  uv_dirent_t ent;
  if (uv_fs_scandir_next(&r->req, &ent) != 0)
    return NULL;
  *type = type_name(ent.type);
  return ent.name;
}

const char *eddy__fs_type_of(uint64_t mode) {
  switch (mode & S_IFMT) {
  case S_IFREG:
    return type_name(UV_DIRENT_FILE);
  case S_IFDIR:
    return type_name(UV_DIRENT_DIR);
  case S_IFLNK:
    return type_name(UV_DIRENT_LINK);
  case S_IFIFO:
    return type_name(UV_DIRENT_FIFO);
  case S_IFSOCK:
    return type_name(UV_DIRENT_SOCKET);
  case S_IFCHR:
    return type_name(UV_DIRENT_CHAR);
  case S_IFBLK:
    return type_name(UV_DIRENT_BLOCK);
  }
  return type_name(UV_DIRENT_UNKNOWN);
}

/* ======================================================================= */
/* Watching */

static void on_watch_closed(uv_handle_t *handle) {
  eddy__fs_watch_t *w = handle->data;
  w->on_close(w);
}

void eddy__fs_watch_close(eddy__fs_watch_t *w) {
  if (w->closing)
    return;
  w->closing = 1;
  eddy__closer_remove(w->rt, &w->closer);
  uv_close((uv_handle_t *)&w->handle, on_watch_closed);
}

static void close_by_stop(eddy__closer_t *c) {
  eddy__fs_watch_close(
      (eddy__fs_watch_t *)((char *)c - offsetof(eddy__fs_watch_t, closer)));
}

static void on_event(uv_fs_event_t *handle, const char *name, int events,
                     int status) {
  eddy__fs_watch_t *w = handle->data;
  w->on_change(w, name, (events & UV_RENAME) != 0,
               status < 0 ? eddy__error_from_uv(status) : 0);
}

int eddy__fs_watch_start(eddy_runtime_t *rt, eddy__fs_watch_t *w,
                         const char *path) {
  w->rt = rt;
  w->closing = 0;
  w->closer.close = close_by_stop;
  w->closer.stop = NULL;
  w->handle.data = w;
  uv_fs_event_init(&rt->loop, &w->handle); /* only initialises fields */
  eddy__closer_add(rt, &w->closer);
  int rc = uv_fs_event_start(&w->handle, on_event, path, 0);
  if (rc != 0) {
    eddy__fs_watch_close(w);
    return eddy__error_from_uv(rc);
  }
  return 0;
}

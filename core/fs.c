/*
 * fs.c: file operations on libuv's threadpool (see fs.h). Knows nothing of
 * Lua.
 */
#include "fs.h"

#include <fcntl.h>
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

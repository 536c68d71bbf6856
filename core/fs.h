/*
 * fs.h: file operations on libuv's threadpool, so that a slow disk never
 * stalls the loop. For now, what serving files needs: open a file for
 * reading and learn its size and time in one step. Knows nothing of Lua.
 */
#ifndef EDDY_FS_H
#define EDDY_FS_H

#include <stdint.h>
#include <uv.h>

#include "runtime.h"

typedef struct eddy__fs_open_s eddy__fs_open_t;
struct eddy__fs_open_s {
  uv_fs_t req;
  int fd;        /* on success */
  int64_t size;
  int64_t mtime; /* seconds */
  void (*cb)(eddy__fs_open_t *op, int status);
  void *data;
};

/* Opens path for reading and stats it; cb gets EDDY_OK (fd, size, mtime
   set), EDDY_ENOTFOUND, EDDY_EACCESS, EDDY_EISDIR, ... Returns 0 or an
   EDDY_E code (no cb then). op is the caller's until cb. */
int eddy__fs_open_read(eddy_runtime_t *rt, eddy__fs_open_t *op,
                       const char *path,
                       void (*cb)(eddy__fs_open_t *op, int status));

#endif

/*
 * fs.h: file operations on libuv's threadpool, so that a slow disk never
 * stalls the loop. One request type carries every operation; its
 * completion hands the result back to the caller, which reads what it
 * needs (the bytes read, a stat, directory entries) and frees it. Knows
 * nothing of Lua.
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

/*
 * One operation. Made by eddy__fs_req_new with room for len bytes in buf
 * (what a read fills, or what a write sends: the caller copies its bytes
 * there, so that a Lua string collected meanwhile costs nothing). Once
 * started, the request belongs to the threadpool until cb, which gets
 * the result (>= 0: a descriptor, a byte count or 0) or an EDDY_E code;
 * the caller frees it after cb with eddy__fs_req_free. A start that fails
 * returns the EDDY_E code and makes no cb.
 */
typedef struct eddy__fs_req_s eddy__fs_req_t;
typedef void (*eddy__fs_cb)(eddy__fs_req_t *r, int64_t result);
struct eddy__fs_req_s {
  uv_fs_t req; /* after cb: req.statbuf (stat), req.path (mkstemp),
                  req.flags (open) */
  eddy__fs_cb cb;
  size_t len;  /* bytes of buf */
  size_t done; /* a write's bytes written so far */
  int64_t offset;
  void *data;           /* the caller's */
  eddy__waiter_t waiter; /* the caller's: the task waiting for it */
  char buf[];
};

eddy__fs_req_t *eddy__fs_req_new(size_t len);
void eddy__fs_req_free(eddy__fs_req_t *r);

int eddy__fs_open(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                  int flags, int mode, eddy__fs_cb cb);
int eddy__fs_close(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   eddy__fs_cb cb);
/* Reads up to r->len bytes at offset (-1: the file's position). */
int eddy__fs_read(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                  int64_t offset, eddy__fs_cb cb);
/* Writes all r->len bytes at offset (-1: at the file's position, or its
   end when opened to append); the result is r->len. */
int eddy__fs_write(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   int64_t offset, eddy__fs_cb cb);
int eddy__fs_fsync(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   eddy__fs_cb cb);
int eddy__fs_fchmod(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd, int mode,
                    eddy__fs_cb cb);
int eddy__fs_ftruncate(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                       int64_t size, eddy__fs_cb cb);
/* follow: 0 stats a symbolic link itself (lstat). */
int eddy__fs_stat(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                  int follow, eddy__fs_cb cb);
int eddy__fs_fstat(eddy_runtime_t *rt, eddy__fs_req_t *r, int fd,
                   eddy__fs_cb cb);
/* After cb, eddy__fs_next_entry gives the entries one by one. */
int eddy__fs_scandir(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                     eddy__fs_cb cb);
int eddy__fs_mkdir(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                   int mode, eddy__fs_cb cb);
int eddy__fs_rmdir(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                   eddy__fs_cb cb);
int eddy__fs_unlink(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *path,
                    eddy__fs_cb cb);
int eddy__fs_rename(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *from,
                    const char *to, eddy__fs_cb cb);
/* tmpl ends in XXXXXX; after cb, req.path is the name made. mkstemp's
   result is the descriptor of the new file, opened for reading and
   writing. */
int eddy__fs_mkstemp(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *tmpl,
                     eddy__fs_cb cb);
int eddy__fs_mkdtemp(eddy_runtime_t *rt, eddy__fs_req_t *r, const char *tmpl,
                     eddy__fs_cb cb);

/* The next entry of a finished scandir (NULL after the last) and its
   type: "file", "directory", "link", "fifo", "socket", "char", "block"
   or "unknown". */
const char *eddy__fs_next_entry(eddy__fs_req_t *r, const char **type);
/* The type of a stat's mode, in the same words. */
const char *eddy__fs_type_of(uint64_t mode);

/*
 * A watch on a file or directory (uv_fs_event): on_change runs for each
 * change the kernel reports, with the name that changed (within a watched
 * directory) and whether it was renamed (created, removed, moved) or
 * changed. Owned by its owner; freed by the owner's on_close, its last
 * callback. Closed when the runtime ends.
 */
typedef struct eddy__fs_watch_s eddy__fs_watch_t;
struct eddy__fs_watch_s {
  uv_fs_event_t handle;
  eddy_runtime_t *rt;
  eddy__closer_t closer;
  int closing;
  void (*on_change)(eddy__fs_watch_t *w, const char *name, int renamed,
                    int status);
  void (*on_close)(eddy__fs_watch_t *w);
  void *data;
};

/* Returns 0, or an EDDY_E code once the watch is closing (on_close
   follows, as after eddy__fs_watch_close). */
int eddy__fs_watch_start(eddy_runtime_t *rt, eddy__fs_watch_t *w,
                         const char *path);
void eddy__fs_watch_close(eddy__fs_watch_t *w);

#endif

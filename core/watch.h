/*
 * watch.h: watchers of raw file descriptors, for C libraries that hand
 * eddy a socket of theirs (eddy.reactor). A watcher reports readiness to
 * read or write until it is closed; its owner may pause it while it
 * handles an event, so that a level-triggered descriptor does not report
 * the same readiness again and again. Knows nothing of Lua.
 */
#ifndef EDDY_WATCH_H
#define EDDY_WATCH_H

#include <uv.h>

#include "runtime.h"

#define EDDY__WATCH_READ UV_READABLE
#define EDDY__WATCH_WRITE UV_WRITABLE

typedef struct eddy__watch_s eddy__watch_t;

/* Owned by its owner; freed by the owner's on_close, its last callback. */
struct eddy__watch_s {
  uv_poll_t poll;
  eddy_runtime_t *rt;
  eddy__closer_t closer; /* closed when the runtime ends */
  int fd;
  int events;   /* what to watch for: EDDY__WATCH_READ | _WRITE */
  int paused;
  int closing;
  /* events is what is ready; status < 0 (an EDDY_E code) on an error. */
  void (*on_event)(eddy__watch_t *w, int events, int status);
  void (*on_close)(eddy__watch_t *w);
  void *data;
};

/* Starts watching fd. Returns 0 or an EDDY_E code (EDDY_EINVAL for a
   descriptor that cannot be watched, such as a regular file; EDDY_EBUSY
   for one that a watcher or socket of this runtime has already); after a
   failure, w->closing says whether on_close is still to come. */
int eddy__watch_start(eddy_runtime_t *rt, eddy__watch_t *w, int fd,
                      int events);
/* Changes what is watched for; 0 watches for nothing until changed. */
int eddy__watch_set(eddy__watch_t *w, int events);
void eddy__watch_pause(eddy__watch_t *w);
void eddy__watch_resume(eddy__watch_t *w);
/* Stops watching; on_close follows. The descriptor stays open. */
void eddy__watch_close(eddy__watch_t *w);

#endif

/*
 * watch.c: watchers of raw file descriptors (see watch.h), on uv_poll_t.
 */
#include "watch.h"

#include <stddef.h>

#define watch_of(p, field) \
  ((eddy__watch_t *)((char *)(p) - offsetof(eddy__watch_t, field)))

static void on_poll(uv_poll_t *poll, int status, int events) {
  eddy__watch_t *w = poll->data;
  w->on_event(w, events, status < 0 ? eddy__error_from_uv(status) : 0);
}

/* Watches for what is asked, unless paused or asked for nothing. */
static int apply(eddy__watch_t *w) {
  if (w->closing)
    return EDDY_ECLOSED;
  if (w->paused || w->events == 0)
    return eddy__error_from_uv(uv_poll_stop(&w->poll));
  return eddy__error_from_uv(uv_poll_start(&w->poll, w->events, on_poll));
}

static void close_by_closer(eddy__closer_t *c) {
  eddy__watch_close(watch_of(c, closer));
}

/* Whether another watcher of rt has fd. libuv allows one poll handle per
   descriptor and loop, but notices a second one only while the first is
   started: one added while the first is paused for its callback would
   take the descriptor's events from it, and closing either would drop
   them for the other. */
static int watched(eddy_runtime_t *rt, int fd) {
  for (eddy__closer_t *c = rt->closers; c != NULL; c = c->next)
    if (c->close == close_by_closer && watch_of(c, closer)->fd == fd)
      return 1;
  return 0;
}

int eddy__watch_start(eddy_runtime_t *rt, eddy__watch_t *w, int fd,
                      int events) {
  w->rt = rt;
  w->fd = fd;
  w->events = events;
  w->paused = 0;
  w->closing = 0;
  w->poll.data = w;
  w->closer.close = close_by_closer;
  w->closer.stop = NULL; /* in-flight work may still need it */
  if (watched(rt, fd))
    return EDDY_EBUSY;
  int rc = uv_poll_init(&rt->loop, &w->poll, fd);
  /* epoll refuses regular files with EPERM: not "permission denied";
     EEXIST: the loop watches fd for something else (an eddy socket). */
  if (rc == UV_EPERM)
    return EDDY_EINVAL;
  if (rc == UV_EEXIST)
    return EDDY_EBUSY;
  if (rc != 0)
    return eddy__error_from_uv(rc);
  eddy__closer_add(rt, &w->closer);
  rc = apply(w);
  if (rc != 0)
    eddy__watch_close(w);
  return rc;
}

int eddy__watch_set(eddy__watch_t *w, int events) {
  w->events = events;
  return apply(w);
}

void eddy__watch_pause(eddy__watch_t *w) {
  w->paused = 1;
  apply(w);
}

void eddy__watch_resume(eddy__watch_t *w) {
  w->paused = 0;
  apply(w);
}

static void on_closed(uv_handle_t *handle) {
  eddy__watch_t *w = handle->data;
  w->on_close(w);
}

void eddy__watch_close(eddy__watch_t *w) {
  if (w->closing)
    return;
  w->closing = 1;
  eddy__closer_remove(w->rt, &w->closer);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

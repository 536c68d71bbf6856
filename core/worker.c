/*
 * worker.c: the worker's side of the master link (see worker.h).
 */
#include "worker.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int eddy_worker_id(const eddy_worker_t *w) {
  return w->id;
}

int eddy_worker_count(const eddy_worker_t *w) {
  return w->count;
}

static ssize_t send_msg(int fd, const eddy__msg_t *m) {
  ssize_t n;
  do
    n = send(fd, m, sizeof *m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

/* The answer and the descriptor that comes with it (-1 if none). */
static int recv_reply(int fd, eddy__reply_t *r, int *passed) {
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {r, sizeof *r};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  do
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof *r)
    return -1;
  *passed = -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
    memcpy(passed, CMSG_DATA(c), sizeof(int));
  return 0;
}

/* Sends a request and waits for the answer and its descriptor. */
static int ask(eddy_worker_t *w, const eddy__msg_t *m, eddy__reply_t *r) {
  int fd = -1;
  /* A short round trip, on the loop thread: the master answers at once.
     One request at a time over the one link. */
  uv_mutex_lock(&w->lock);
  int rc = -1, timed_out = 0;
  if (!w->broken) {
    errno = 0;
    rc = send_msg(w->chan, m) == (ssize_t)sizeof *m
             ? recv_reply(w->chan, r, &fd)
             : -1;
    /* The link has time limits (worker_main): past them, a late answer
       would be taken for the next request's, so the link is given up. */
    timed_out = rc != 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    w->broken = timed_out;
  }
  uv_mutex_unlock(&w->lock);
  if (rc != 0 || r->err != 0 || fd < 0) {
    if (fd >= 0)
      close(fd);
    return timed_out ? EDDY_ETIMEOUT
           : rc != 0 ? EDDY_ECLOSED /* the master has gone */
           : r->err != 0 ? r->err
                         : EDDY_EIO;
  }
  return fd;
}

int eddy__worker_listen(eddy_worker_t *w, const struct sockaddr *addr,
                        int thread, int nth, int ipv6only, int backlog) {
  eddy__msg_t m;
  memset(&m, 0, sizeof m);
  m.type = EDDY__MSG_LISTEN;
  m.thread = thread;
  m.nth = nth;
  m.ipv6only = ipv6only;
  m.backlog = backlog;
  memcpy(&m.addr, addr,
         addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  eddy__reply_t r;
  return ask(w, &m, &r);
}

int eddy__worker_shared(eddy_worker_t *w, const char *name, size_t *size,
                        unsigned *flags, int *fd) {
  eddy__msg_t m;
  memset(&m, 0, sizeof m);
  m.type = EDDY__MSG_SHARED;
  strncpy(m.name, name, sizeof m.name - 1);
  m.size = *size;
  m.flags = *flags;
  eddy__reply_t r;
  *fd = ask(w, &m, &r);
  if (*fd < 0)
    return *fd;
  *size = (size_t)r.size;
  *flags = r.flags;
  return 0;
}

void eddy__worker_ready(eddy_worker_t *w) {
  uv_mutex_lock(&w->lock);
  if (!w->ready) {
    w->ready = 1;
    eddy__msg_t m;
    memset(&m, 0, sizeof m);
    m.type = EDDY__MSG_READY;
    send_msg(w->chan, &m);
  }
  uv_mutex_unlock(&w->lock);
}

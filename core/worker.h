/*
 * worker.h: a worker process's link to its master (master.c): a
 * SOCK_SEQPACKET socket over which the worker asks for the listening
 * sockets the master holds, and tells it when it runs. Shared by the
 * worker's reactor threads, so requests are serialised.
 */
#ifndef EDDY_WORKER_H
#define EDDY_WORKER_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "eddy.h"

#define EDDY__MSG_LISTEN 1
#define EDDY__MSG_READY 2
#define EDDY__MSG_SHARED 3

/* A worker's request. */
typedef struct eddy__msg_s {
  int type;
  int thread;  /* the asking reactor thread, 1-based */
  int nth;     /* its nth listen on a port-0 address; 0 for a fixed port */
  int ipv6only;
  int backlog;
  struct sockaddr_storage addr;
  char name[64];    /* SHARED: the dictionary, its size and flags */
  uint64_t size;
  unsigned flags;
} eddy__msg_t;

/* The master's answer to LISTEN; the socket comes with it (SCM_RIGHTS). */
typedef struct eddy__reply_s {
  int err; /* 0 or an EDDY_E code */
  unsigned flags;  /* SHARED: the dictionary as it was made */
  uint64_t size;
} eddy__reply_t;

struct eddy_worker_s {
  int id;       /* 1-based */
  int count;
  int chan;     /* to the master */
  uv_mutex_t lock;
  int ready;    /* READY was sent */
  int broken;   /* a request timed out: the link is out of step */
};

/* Asks the master for the listening socket of this worker's `thread` on
   addr. Returns the descriptor, or a negative EDDY_E code. */
int eddy__worker_listen(eddy_worker_t *w, const struct sockaddr *addr,
                        int thread, int nth, int ipv6only, int backlog);
/* Asks the master for the block of shared dictionary `name` (made with
   *size and *flags if it is new; *size 0: only if it exists). Returns 0
   with the descriptor in *fd and the block's size and flags, or an EDDY_E
   code. */
int eddy__worker_shared(eddy_worker_t *w, const char *name, size_t *size,
                        unsigned *flags, int *fd);
/* Tells the master the worker runs (once; from any of its threads). */
void eddy__worker_ready(eddy_worker_t *w);

#endif

/*
 * worker.h: a worker process's link to its master (master.c): a
 * SOCK_SEQPACKET socket over which the worker asks for the listening
 * sockets the master holds, and tells it when it runs. Shared by the
 * worker's reactor threads, so requests are serialised.
 */
#ifndef EDDY_WORKER_H
#define EDDY_WORKER_H

#include <sys/socket.h>
#include <uv.h>

#include "eddy.h"

#define EDDY__MSG_LISTEN 1
#define EDDY__MSG_READY 2

/* A worker's request. */
typedef struct eddy__msg_s {
  int type;
  int thread;  /* the asking reactor thread, 1-based */
  int nth;     /* its nth listen on a port-0 address; 0 for a fixed port */
  int ipv6only;
  int backlog;
  struct sockaddr_storage addr;
} eddy__msg_t;

/* The master's answer to LISTEN; the socket comes with it (SCM_RIGHTS). */
typedef struct eddy__reply_s {
  int err; /* 0 or an EDDY_E code */
} eddy__reply_t;

struct eddy_worker_s {
  int id;       /* 1-based */
  int count;
  int chan;     /* to the master */
  uv_mutex_t lock;
  int ready;    /* READY was sent */
};

/* Asks the master for the listening socket of this worker's `thread` on
   addr. Returns the descriptor, or a negative EDDY_E code. */
int eddy__worker_listen(eddy_worker_t *w, const struct sockaddr *addr,
                        int thread, int nth, int ipv6only, int backlog);
/* Tells the master the worker runs (once; from any of its threads). */
void eddy__worker_ready(eddy_worker_t *w);

#endif

/*
 * udp.h: a UDP socket that receives only while its owner asks, holding at
 * most one datagram for it, and sends at once when it can, queueing (and
 * reporting completion) only when the socket is full. Knows nothing of Lua.
 */
#ifndef EDDY_UDP_H
#define EDDY_UDP_H

#include <sys/socket.h>
#include <uv.h>

#include "runtime.h"

typedef struct eddy__udp_s eddy__udp_t;
typedef struct eddy__udp_send_s eddy__udp_send_t;

#define EDDY__UDP_RECEIVING 0x01
#define EDDY__UDP_CLOSING 0x02
#define EDDY__UDP_CLOSED 0x04

/* Owned by its owner; freed by the owner's on_close, its last callback. */
struct eddy__udp_s {
  uv_udp_t udp;
  eddy_runtime_t *rt;
  eddy__closer_t closer;
  unsigned flags;
  char *dgram;     /* the datagram held for the reader (a pool block) */
  size_t dlen;
  int has_dgram;
  int truncated;   /* it was longer than a block */
  struct sockaddr_storage from;
  int rerr;
  /* A datagram is held, or receiving failed (rerr). */
  void (*on_recv)(eddy__udp_t *u);
  void (*on_close)(eddy__udp_t *u);
  void *data;
};

/* A queued send's completion: status 0 or an EDDY_E code. */
typedef void (*eddy__udp_send_cb)(void *data, int status);

int eddy__udp_bind(eddy_runtime_t *rt, eddy__udp_t *u,
                   const struct sockaddr *addr, int reuse);
int eddy__udp_recv_start(eddy__udp_t *u);
void eddy__udp_recv_stop(eddy__udp_t *u);
/* The reader took the datagram: its block goes back. */
void eddy__udp_release(eddy__udp_t *u);

/* Sends now if it can (returns 0), else queues a copy and returns 1: cb
   runs when it is sent. Negative: an EDDY_E code. */
int eddy__udp_send(eddy__udp_t *u, const struct sockaddr *to,
                   const char *data, size_t len, eddy__udp_send_cb cb,
                   void *cb_data);
void eddy__udp_close(eddy__udp_t *u);

#endif

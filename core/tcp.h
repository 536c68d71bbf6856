/*
 * tcp.h: TCP listeners. A listener binds with SO_REUSEPORT (so that each
 * reactor thread can have its own socket on one port) and hands each
 * connection to its owner, which accepts it now or later: a connection
 * not accepted pauses the listener until it is. Knows nothing of Lua.
 */
#ifndef EDDY_TCP_H
#define EDDY_TCP_H

#include <sys/socket.h>
#include <uv.h>

#include "runtime.h"
#include "stream.h"

#define EDDY__LISTEN_REUSEPORT 0x01
#define EDDY__LISTEN_IPV6ONLY 0x02

typedef struct eddy__listener_s eddy__listener_t;

/* Owned by its owner; freed by the owner's on_close, its last callback. */
struct eddy__listener_s {
  uv_tcp_t tcp;
  eddy_runtime_t *rt;
  eddy__closer_t closer; /* a listener: closes first at a graceful stop */
  int pending;           /* a connection waits to be accepted */
  int closing;
  /* A connection is waiting (status 0) or accepting failed (status < 0). */
  void (*on_connection)(eddy__listener_t *l, int status);
  void (*on_close)(eddy__listener_t *l);
  void *data;
};

/* Binds and listens. Returns 0 or an EDDY_E code; after a failure,
   l->closing says whether on_close is still to come. */
int eddy__listener_start(eddy_runtime_t *rt, eddy__listener_t *l,
                         const struct sockaddr *addr, int backlog,
                         unsigned flags);
/* Accepts the waiting connection into s (already initialised). */
int eddy__listener_accept(eddy__listener_t *l, eddy__stream_t *s);
int eddy__listener_port(eddy__listener_t *l);
void eddy__listener_close(eddy__listener_t *l);

#endif

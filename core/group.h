/*
 * group.h: the reactor threads of one process. Each thread runs a runtime
 * of its own (loop, Lua state, scheduler); the group is what they share:
 * who the members are, so that eddy.exit or a failure in one stops the
 * others, and the ports that listeners on port 0 got, so that every
 * thread's socket joins the same SO_REUSEPORT group.
 */
#ifndef EDDY_GROUP_H
#define EDDY_GROUP_H

#include <sys/socket.h>
#include <uv.h>

#include "eddy.h"
#include "pool.h"

/* The port a group's listeners on port 0 share: the nth such listen of
   each thread, on one address, gets the port the first one bound. */
typedef struct eddy__port_s {
  struct sockaddr_storage addr;
  int ordinal;
  int port;
} eddy__port_t;

struct eddy_group_s {
  int threads;
  uv_mutex_t lock;          /* guards everything below */
  eddy_runtime_t **members; /* by thread number - 1; NULL when not running */
  int running;              /* inside eddy_group_run */
  int stopping;             /* a stop was asked of every member */
  int status;               /* the first status other than 0 */
  int exited;               /* a member called eddy.exit ... */
  int exit_code;            /* ... with this code */
  eddy__port_t *ports;
  int nports;
  eddy__pool_t *pool;       /* the task pool the threads share, once used */
  struct eddy__hub_s *hub;  /* the threads' queues, topics, dictionaries */
};

/* Joins rt to its group as thread number `thread`; leaves it. A runtime
   that joins a group asked to stop is asked to stop at once. */
void eddy__group_join(eddy_group_t *g, eddy_runtime_t *rt, int thread);
void eddy__group_leave(eddy_group_t *g, eddy_runtime_t *rt);

/* Binds tcp, a socket with SO_REUSEPORT set, to addr, whose port is 0, as
   the runtime's `ordinal`th such listen: to the port the first thread got
   for it, or (the first) to a fresh port, recorded for the others. Returns
   0 or a libuv error. */
int eddy__group_bind_port0(eddy_group_t *g, int ordinal, uv_tcp_t *tcp,
                           const struct sockaddr *addr, unsigned uv_flags);

/* rt ended its run by eddy.exit(code): records it, stops the others. */
void eddy__group_exit(eddy_group_t *g, eddy_runtime_t *rt, int code);

/* Asks every member but `except` (may be NULL) to stop gracefully. */
void eddy__group_stop_others(eddy_group_t *g, eddy_runtime_t *except);

#endif

/*
 * tcp.c: TCP listeners (see tcp.h). Knows nothing of Lua.
 */
#include "tcp.h"

#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "group.h"
#include "worker.h"

#define listener_of(p, field) \
  ((eddy__listener_t *)((char *)(p) - offsetof(eddy__listener_t, field)))

static void on_connection(uv_stream_t *server, int status) {
  eddy__listener_t *l = server->data;
  if (status == 0)
    l->pending = 1;
  l->on_connection(l, status == 0 ? 0 : eddy__error_from_uv(status));
}

static void close_by_stop(eddy__closer_t *c) {
  eddy__listener_close(listener_of(c, closer));
}

static int port_is_zero(const struct sockaddr *addr) {
  return addr->sa_family == AF_INET
             ? ((const struct sockaddr_in *)addr)->sin_port == 0
             : ((const struct sockaddr_in6 *)addr)->sin6_port == 0;
}

/* In a group of threads, a listen on port 0 binds to the port that the
   same listen got in the first thread, so that the kernel spreads that
   port's connections over every thread's socket. */
static int bind_listener(eddy_runtime_t *rt, eddy__listener_t *l,
                         const struct sockaddr *addr, unsigned flags) {
  unsigned uv_flags = (flags & EDDY__LISTEN_IPV6ONLY) ? UV_TCP_IPV6ONLY : 0;
  eddy_group_t *g = rt->opts.group;
  if (g != NULL && g->threads > 1 && (flags & EDDY__LISTEN_REUSEPORT) &&
      port_is_zero(addr))
    return eddy__group_bind_port0(g, rt->port0_listens++, &l->tcp, addr,
                                  uv_flags);
  return uv_tcp_bind(&l->tcp, addr, uv_flags);
}

/* Listens, unless rc says the set-up failed; after a failure the listener
   closes (on_close follows). */
static int listen_or_close(eddy__listener_t *l, int backlog, int rc) {
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&l->tcp, backlog, on_connection);
  if (rc != 0) {
    eddy__listener_close(l);
    return eddy__error_from_uv(rc);
  }
  return 0;
}

/* In a worker process, the master holds the listening sockets (so that
   they outlive the worker): ask it for this thread's, and listen on it. */
static int listen_in_worker(eddy_runtime_t *rt, eddy__listener_t *l,
                            const struct sockaddr *addr, int backlog,
                            unsigned flags) {
  int nth = port_is_zero(addr) ? rt->port0_listens++ : 0;
  int fd = eddy__worker_listen(rt->opts.worker, addr,
                               rt->opts.thread > 0 ? rt->opts.thread : 1, nth,
                               (flags & EDDY__LISTEN_IPV6ONLY) != 0, backlog);
  if (fd < 0)
    return fd;
  int rc = uv_tcp_init(&rt->loop, &l->tcp);
  if (rc != 0) {
    close(fd);
    return eddy__error_from_uv(rc);
  }
  eddy__closer_add(rt, &l->closer);
  rc = uv_tcp_open(&l->tcp, fd);
  if (rc != 0)
    close(fd);
  return listen_or_close(l, backlog, rc);
}

int eddy__listener_start(eddy_runtime_t *rt, eddy__listener_t *l,
                         const struct sockaddr *addr, int backlog,
                         unsigned flags) {
  l->rt = rt;
  l->pending = 0;
  l->closing = 0;
  l->tcp.data = l;
  l->closer.close = close_by_stop;
  l->closer.stop = close_by_stop;
  if (rt->opts.worker != NULL)
    return listen_in_worker(rt, l, addr, backlog, flags);
  /* init_ex makes the socket now, so that SO_REUSEPORT can be set before
     bind: libuv 1.44 has no flag for it. */
  int rc = uv_tcp_init_ex(&rt->loop, &l->tcp, addr->sa_family);
  if (rc != 0)
    return eddy__error_from_uv(rc);
  eddy__closer_add(rt, &l->closer);
  if (flags & EDDY__LISTEN_REUSEPORT) {
    uv_os_fd_t fd;
    int one = 1;
    uv_fileno((uv_handle_t *)&l->tcp, &fd);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      rc = UV_EINVAL;
  }
  if (rc == 0)
    rc = bind_listener(rt, l, addr, flags);
  /* libuv may report a bind error only at listen. */
  return listen_or_close(l, backlog, rc);
}

int eddy__listener_accept(eddy__listener_t *l, eddy__stream_t *s) {
  if (!l->pending)
    return EDDY_EBUSY;
  l->pending = 0;
  /* uv_accept also resumes watching the socket, which libuv paused when
     a connection was left waiting. */
  int rc = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&s->tcp);
  if (rc != 0)
    return eddy__error_from_uv(rc);
  s->rt->counters.accepted++;
  return 0;
}

int eddy__listener_port(eddy__listener_t *l) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[EDDY__ADDR_TEXT];
  int port = 0;
  if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  eddy__addr_name((struct sockaddr *)&ss, ip, &port);
  return port;
}

static void on_closed(uv_handle_t *handle) {
  eddy__listener_t *l = handle->data;
  l->on_close(l);
}

void eddy__listener_close(eddy__listener_t *l) {
  if (l->closing)
    return;
  l->closing = 1;
  eddy__closer_remove(l->rt, &l->closer);
  uv_close((uv_handle_t *)&l->tcp, on_closed);
}

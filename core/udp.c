/*
 * udp.c: UDP sockets (see udp.h). Knows nothing of Lua.
 */
#include "udp.h"

#include <stdlib.h>
#include <string.h>

typedef struct send_req_s {
  uv_udp_send_t req;
  eddy__udp_send_cb cb;
  void *cb_data;
  char data[];
} send_req_t;

static void close_by_stop(eddy__closer_t *c) {
  eddy__udp_close((eddy__udp_t *)((char *)c - offsetof(eddy__udp_t, closer)));
}

int eddy__udp_bind(eddy_runtime_t *rt, eddy__udp_t *u,
                   const struct sockaddr *addr, int reuse) {
  memset(u, 0, offsetof(eddy__udp_t, on_recv));
  u->rt = rt;
  u->udp.data = u;
  u->closer.close = close_by_stop;
  int rc = uv_udp_init(&rt->loop, &u->udp);
  if (rc != 0)
    return eddy__error_from_uv(rc);
  eddy__closer_add(rt, &u->closer);
  rc = uv_udp_bind(&u->udp, addr, reuse ? UV_UDP_REUSEADDR : 0);
  if (rc != 0) {
    eddy__udp_close(u);
    return eddy__error_from_uv(rc);
  }
  return 0;
}

static void on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf) {
  eddy__udp_t *u = handle->data;
  eddy__rbuf_t b = {0};
  char *base;
  size_t len;
  (void)hint;
  /* Borrow a pool block; it is given back at once unless a datagram
     lands in it. */
  if (eddy__rbuf_reserve(&u->rt->bufs, &b, &base, &len) < 0) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  *buf = uv_buf_init(base, (unsigned)len);
}

static void give_back(eddy__udp_t *u, char *block) {
  eddy__rbuf_t b = {block, EDDY__BUF_BLOCK, 0, 0};
  eddy__rbuf_free(&u->rt->bufs, &b);
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  eddy__udp_t *u = handle->data;
  if (nread < 0) {
    give_back(u, buf->base);
    u->rerr = eddy__error_from_uv((int)nread);
    eddy__udp_recv_stop(u);
    u->on_recv(u);
    return;
  }
  if (addr == NULL) { /* nothing more to read for now */
    if (buf->base)
      give_back(u, buf->base);
    return;
  }
  if (u->has_dgram) { /* cannot happen while receiving stops after one */
    give_back(u, buf->base);
    return;
  }
  u->dgram = buf->base;
  u->dlen = (size_t)nread;
  u->truncated = (flags & UV_UDP_PARTIAL) != 0;
  memcpy(&u->from, addr,
         addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  u->has_dgram = 1;
  /* One datagram at a time: the kernel keeps the rest until asked. */
  eddy__udp_recv_stop(u);
  u->on_recv(u);
}

int eddy__udp_recv_start(eddy__udp_t *u) {
  if (u->flags & (EDDY__UDP_RECEIVING | EDDY__UDP_CLOSING))
    return (u->flags & EDDY__UDP_CLOSING) ? EDDY_ECLOSED : 0;
  int rc = uv_udp_recv_start(&u->udp, on_alloc, on_recv);
  if (rc != 0)
    return eddy__error_from_uv(rc);
  u->flags |= EDDY__UDP_RECEIVING;
  return 0;
}

void eddy__udp_recv_stop(eddy__udp_t *u) {
  if (!(u->flags & EDDY__UDP_RECEIVING))
    return;
  u->flags &= ~EDDY__UDP_RECEIVING;
  uv_udp_recv_stop(&u->udp);
}

void eddy__udp_release(eddy__udp_t *u) {
  if (!u->has_dgram)
    return;
  give_back(u, u->dgram);
  u->dgram = NULL;
  u->has_dgram = 0;
}

static void on_sent(uv_udp_send_t *req, int status) {
  send_req_t *s = (send_req_t *)req;
  eddy__udp_send_cb cb = s->cb;
  void *data = s->cb_data;
  free(s);
  if (cb)
    cb(data, status == 0 ? 0 : eddy__error_from_uv(status));
}

int eddy__udp_send(eddy__udp_t *u, const struct sockaddr *to,
                   const char *data, size_t len, eddy__udp_send_cb cb,
                   void *cb_data) {
  if (u->flags & EDDY__UDP_CLOSING)
    return EDDY_ECLOSED;
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(&u->udp, &buf, 1, to);
  if (rc >= 0)
    return 0;
  if (rc != UV_EAGAIN)
    return eddy__error_from_uv(rc);
  send_req_t *s = malloc(sizeof *s + len);
  if (s == NULL)
    return EDDY_ENOMEM;
  memcpy(s->data, data, len);
  s->cb = cb;
  s->cb_data = cb_data;
  buf = uv_buf_init(s->data, (unsigned)len);
  rc = uv_udp_send(&s->req, &u->udp, &buf, 1, to, on_sent);
  if (rc != 0) {
    free(s);
    return eddy__error_from_uv(rc);
  }
  return 1;
}

static void on_closed(uv_handle_t *handle) {
  eddy__udp_t *u = handle->data;
  eddy__udp_release(u);
  u->flags |= EDDY__UDP_CLOSED;
  u->on_close(u);
}

void eddy__udp_close(eddy__udp_t *u) {
  if (u->flags & EDDY__UDP_CLOSING)
    return;
  u->flags |= EDDY__UDP_CLOSING;
  eddy__closer_remove(u->rt, &u->closer);
  eddy__udp_recv_stop(u);
  uv_close((uv_handle_t *)&u->udp, on_closed);
}

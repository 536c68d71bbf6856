/*
 * udp.c: UDP sockets for Lua (module eddy.c.udp; eddy.udp in
 * lua/eddy/udp.lua adds name resolution). recv_from waits for one
 * datagram; send_to sends at once, or waits for a queued send when the
 * socket is full.
 *
 * Memory: a sock_t is freed when its socket has closed and no userdata
 * points to it.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/addr.h"
#include "../core/udp.h"
#include "bindings.h"

static const eddyL_class_t sock_class = {"eddy.udp.socket"};

typedef struct sock_s {
  eddy__udp_t udp;
  eddy__waiter_t reader;
  int lua_held;
} sock_t;

/* A task waiting for a queued send; freed by the send's completion. */
typedef struct send_wait_s {
  eddy__waiter_t waiter;
} send_wait_t;

static void maybe_free(sock_t *s) {
  if ((s->udp.flags & EDDY__UDP_CLOSED) && !s->lua_held)
    free(s);
}

static void on_close(eddy__udp_t *u) {
  maybe_free((sock_t *)u);
}

/* Pushes the held datagram (data, ip, port) or the error; returns the
   count, or 0 when there is nothing yet. */
static int try_recv(sock_t *s, lua_State *L) {
  eddy__udp_t *u = &s->udp;
  if (u->has_dgram) {
    lua_pushlstring(L, u->dgram, u->dlen);
    eddyL_pushaddr(L, (struct sockaddr *)&u->from);
    eddy__udp_release(u);
    return 3;
  }
  if (u->rerr) {
    int err = u->rerr;
    u->rerr = 0;
    return eddyL_error(L, err);
  }
  return 0;
}

static void on_recv(eddy__udp_t *u) {
  sock_t *s = (sock_t *)u;
  if (!eddy__waiter_is_current(s->reader))
    return; /* held for the next recv_from */
  lua_State *L = u->rt->L;
  int n = try_recv(s, L);
  eddy__task_t *t = s->reader.task;
  s->reader.task = NULL;
  lua_State *co = eddy__task_wake_begin(t);
  lua_xmove(L, co, n);
  eddy__task_wake_end(t, n);
}

static void recv_detach(eddy__task_t *t) {
  sock_t *s = t->wait_data;
  s->reader.task = NULL;
  eddy__udp_recv_stop(&s->udp);
}

static const eddy__wait_ops_t recv_ops = {"udp recv", recv_detach, NULL};

static sock_t *check_sock(lua_State *L) {
  sock_t **box = eddyL_checkobject(L, 1, &sock_class);
  return *box;
}

static int is_closed(const sock_t *s) {
  return (s->udp.flags & EDDY__UDP_CLOSING) != 0;
}

/* bind(ip, port[, opts]): a socket, or nil, err. opts: reuseaddr. */
static int udp_bind(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  int reuse = eddyL_optfield_boolean(L, 3, "reuseaddr", 0);
  struct sockaddr_storage addr;
  if (eddy__addr_parse(ip, port, &addr) != 0)
    return luaL_error(L, "bad address: %s port %d", ip, port);
  sock_t **box = eddyL_newobject(L, &sock_class, sizeof *box);
  *box = NULL;
  sock_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  s->udp.on_recv = on_recv;
  s->udp.on_close = on_close;
  int err = eddy__udp_bind(rt, &s->udp, (struct sockaddr *)&addr, reuse);
  if (err != 0) {
    if (!(s->udp.flags & EDDY__UDP_CLOSING))
      free(s); /* else on_close frees it */
    return eddyL_error(L, err);
  }
  s->lua_held = 1;
  *box = s;
  return 1;
}

/* sock:recv_from([opts]): data, ip, port; or nil, err. */
static int sock_recv_from(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  sock_t *s = check_sock(L);
  int64_t ms = eddyL_opttimeout(L, 2, -1);
  if (is_closed(s))
    return eddyL_error(L, EDDY_ECLOSED);
  if (eddy__waiter_is_current(s->reader))
    return luaL_error(L, "another task is receiving on this socket");
  int n = try_recv(s, L);
  if (n > 0)
    return n;
  if (ms == 0)
    return eddyL_error(L, EDDY_ETIMEOUT);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &recv_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int rc = eddy__udp_recv_start(&s->udp);
  if (rc != 0)
    return eddyL_error(L, rc);
  eddy__task_wait(t, &recv_ops, s, ms);
  s->reader = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

static void on_sent(void *data, int status) {
  send_wait_t *w = data;
  if (eddy__waiter_is_current(w->waiter)) {
    eddy__task_t *t = w->waiter.task;
    lua_State *co = eddy__task_wake_begin(t);
    if (status == 0) {
      lua_pushboolean(co, 1);
      eddy__task_wake_end(t, 1);
    } else {
      lua_pushnil(co);
      lua_pushstring(co, eddy_strerror(status));
      eddy__task_wake_end(t, 2);
    }
  }
  free(w);
}

static const eddy__wait_ops_t send_ops = {"udp send", NULL, NULL};

/* sock:send_to(data, ip, port[, opts]): true, or nil, err. */
static int sock_send_to(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  sock_t *s = check_sock(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *ip = luaL_checkstring(L, 3);
  int port = (int)luaL_checkinteger(L, 4);
  int64_t ms = eddyL_opttimeout(L, 5, -1);
  struct sockaddr_storage to;
  if (eddy__addr_parse(ip, port, &to) != 0)
    return luaL_error(L, "bad address: %s port %d", ip, port);
  if (is_closed(s))
    return eddyL_error(L, EDDY_ECLOSED);
  eddy__task_t *t = NULL;
  send_wait_t *w = malloc(sizeof *w);
  if (w == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  w->waiter.task = NULL;
  int rc = eddy__udp_send(&s->udp, (struct sockaddr *)&to, data, len, on_sent, w);
  if (rc <= 0) {
    free(w);
    if (rc < 0)
      return eddyL_error(L, rc);
    lua_pushboolean(L, 1);
    return 1;
  }
  /* Queued: the socket was full. Wait for it if we may; else it goes out
     on its own and on_sent frees w. */
  if (rt->sched.current == NULL || !lua_isyieldable(L) ||
      (rt->sched.current->flags & EDDY__TASK_CANCELLED) || ms == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  t = eddy__task_check_wait(&rt->sched, L);
  eddy__task_wait(t, &send_ops, NULL, ms);
  w->waiter = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

static int sock_local_addr(lua_State *L) {
  sock_t *s = check_sock(L);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (is_closed(s))
    return eddyL_error(L, EDDY_ECLOSED);
  return eddyL_pushname(
      L, uv_udp_getsockname(&s->udp.udp, (struct sockaddr *)&ss, &len), &ss);
}

static void sock_close(sock_t *s) {
  if (eddy__waiter_is_current(s->reader)) {
    eddy__sched_t *sched = &s->udp.rt->sched;
    eddy__task_t *t = s->reader.task;
    s->reader.task = NULL;
    eddy__sched_hold(sched);
    lua_State *co = eddy__task_wake_begin(t);
    lua_pushnil(co);
    lua_pushstring(co, eddy_strerror(EDDY_ECLOSED));
    eddy__task_wake_end(t, 2);
    eddy__sched_unhold(sched);
  }
  eddy__udp_close(&s->udp);
}

static int sock_close_m(lua_State *L) {
  sock_t *s = check_sock(L);
  int was_open = !is_closed(s);
  sock_close(s);
  lua_pushboolean(L, was_open);
  return 1;
}

static int sock_gc(lua_State *L) {
  sock_t **box = eddyL_toobject(L, 1);
  sock_t *s = *box;
  if (s == NULL)
    return 0;
  *box = NULL;
  s->lua_held = 0;
  sock_close(s);
  maybe_free(s);
  return 0;
}

static int sock_tostring(lua_State *L) {
  sock_t *s = check_sock(L);
  lua_pushfstring(L, "eddy.udp.socket (%s)", is_closed(s) ? "closed" : "open");
  return 1;
}

static const luaL_Reg udp_funcs[] = {
    {"bind", udp_bind},
    {NULL, NULL},
};

static const luaL_Reg sock_methods[] = {
    {"recv_from", sock_recv_from},
    {"send_to", sock_send_to},
    {"local_addr", sock_local_addr},
    {"close", sock_close_m},
    {NULL, NULL},
};

static const luaL_Reg sock_meta[] = {
    {"__gc", sock_gc},
    {"__tostring", sock_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_udp(lua_State *L) {
  eddyL_newclass(L, &sock_class, sock_methods, sock_meta);
  eddyL_newlib(L, udp_funcs);
  eddyL_setmethods(L, &sock_class, "Socket"); /* udp.lua wraps send_to */
  return 1;
}

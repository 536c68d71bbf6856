/*
 * tcp.c: TCP servers and connections for Lua (module eddy.c.tcp; the
 * public eddy.tcp adds name resolution in lua/eddy/tcp.lua). A connection
 * reads only while a task waits on it; its reads (n bytes, a line, up to a
 * delimiter, whatever is there) are answered from the stream's buffer,
 * making a Lua string only of what is asked for; a write waits while more
 * than the write buffer's worth is queued.
 *
 * Memory: a conn_t is freed when its stream has closed and nothing else
 * points to it: no Lua userdata and no serving task. A server_t is freed
 * when its listener has closed, no userdata holds it and no connection
 * it accepted is still open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/addr.h"
#include "../core/stream.h"
#include "../core/tcp.h"
#include "../core/tls.h"
#include "bindings.h"

static const eddyL_class_t conn_class = {"eddy.tcp.conn"};
static const eddyL_class_t server_class = {"eddy.tcp.server"};
/* A pipe to a child process (eddy.process): a connection without the
   methods that only a socket has. */
static const eddyL_class_t pipe_class = {"eddy.process.pipe"};

#define DEFAULT_MAX_LINE 65536
#define DEFAULT_WRITE_BUFFER 65536
#define DEFAULT_READ_SOME 65536
#define DEFAULT_CONNECT_MS 10000
#define CLOSE_LINGER_MS 5000
#define MAX_DELIM 64

enum read_mode { READ_N, READ_SOME, READ_LINE, READ_UNTIL };

typedef struct server_s server_t;

/* What every connection of a server (or of a connect) starts with. */
typedef struct conn_opts_s {
  int64_t timeout_ms; /* default of each call; -1: none */
  size_t max_line;
  size_t write_buffer;
  int nodelay;
  int keepalive; /* seconds; 0: off */
} conn_opts_t;

typedef struct conn_s {
  eddy__stream_t stream;
  eddy__waiter_t reader; /* the task in a read (or in connect) */
  int rmode;
  size_t rn;   /* READ_N: bytes wanted; READ_SOME: at most */
  size_t rmax; /* READ_LINE, READ_UNTIL: give up beyond this */
  size_t scan; /* bytes already searched for the delimiter */
  char delim[MAX_DELIM];
  size_t dlen;
  eddy__waitq_t writers; /* tasks waiting for the write queue to drain */
  conn_opts_t opts;
  server_t *server; /* the server that accepted it, if any */
  int closed;       /* close was asked for */
  int taken;        /* a protocol layered on the stream owns it now */
  int lua_held;     /* a userdata points here */
  int task_held;    /* a serving task owns it */
} conn_t;

struct server_s {
  eddy__listener_t listener;
  int handler_ref; /* serve(): each connection runs in it; else EDDY__NOREF */
  eddy__waitq_t acceptors;
  conn_opts_t opts;
  int max_connections; /* 0: no limit */
  int nconns;          /* accepted and not yet closed */
  int lua_held;
  int closed;
  eddy__tls_config_t *tls; /* TLS for every connection, or NULL */
  uint64_t handshake_ms;
};

/* ======================================================================= */
/* Options */

static void read_conn_opts(lua_State *L, int idx, conn_opts_t *o) {
  o->timeout_ms = eddyL_opttimeout(L, idx, -1);
  double max_line = eddyL_optfield_number(L, idx, "max_line", DEFAULT_MAX_LINE);
  double wbuf =
      eddyL_optfield_number(L, idx, "write_buffer", DEFAULT_WRITE_BUFFER);
  if (max_line < 1 || wbuf < 1)
    luaL_error(L, "bad option: max_line and write_buffer must be >= 1");
  o->max_line = (size_t)max_line;
  o->write_buffer = (size_t)wbuf;
  o->nodelay = eddyL_optfield_boolean(L, idx, "nodelay", 1);
  o->keepalive = 0;
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_getfield(L, idx, "keepalive");
    if (lua_type(L, -1) == LUA_TNUMBER)
      o->keepalive = (int)lua_tonumber(L, -1);
    else if (lua_toboolean(L, -1))
      o->keepalive = 60;
    lua_pop(L, 1);
  }
}

static void apply_socket_opts(conn_t *c) {
  uv_tcp_nodelay(&c->stream.tcp, c->opts.nodelay);
  if (c->opts.keepalive > 0)
    uv_tcp_keepalive(&c->stream.tcp, 1, (unsigned)c->opts.keepalive);
}

/* ======================================================================= */
/* Connections: life */

static void maybe_free_server(server_t *srv);
static void server_accept_more(server_t *srv);

static void maybe_free_conn(conn_t *c) {
  if ((c->stream.flags & EDDY__STREAM_CLOSED) && !c->lua_held && !c->task_held)
    free(c);
}

static void on_stream_read(eddy__stream_t *s);
static void on_stream_drain(eddy__stream_t *s);

static void on_stream_close(eddy__stream_t *s) {
  conn_t *c = (conn_t *)s;
  server_t *srv = c->server;
  c->server = NULL;
  if (srv != NULL) {
    srv->nconns--;
    server_accept_more(srv);
    maybe_free_server(srv);
  }
  maybe_free_conn(c);
}

static conn_t *conn_new(eddy_runtime_t *rt, const conn_opts_t *opts,
                        int pipe, int *err) {
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    *err = EDDY_ENOMEM;
    return NULL;
  }
  *err = pipe ? eddy__stream_init_pipe(rt, &c->stream)
              : eddy__stream_init(rt, &c->stream);
  if (*err != 0) {
    free(c);
    return NULL;
  }
  c->stream.on_read = on_stream_read;
  c->stream.on_drain = on_stream_drain;
  c->stream.on_close = on_stream_close;
  c->opts = *opts;
  c->stream.wlow = opts->write_buffer / 2;
  return c;
}

static int conn_is_closed(const conn_t *c) {
  return c->closed || c->taken || (c->stream.flags & EDDY__STREAM_CLOSING);
}

/* Ends one wait on the connection with nil, err. */
static void wake_with_error(eddy__task_t *t, int err) {
  lua_State *co = eddy__task_wake_begin(t);
  lua_pushnil(co);
  lua_pushstring(co, eddy_strerror(err));
  eddy__task_wake_end(t, 2);
}

/* The task waiting to read (or for a handshake, or a connect), taken off
   the connection; NULL when none waits, or it went. */
static eddy__task_t *take_reader(conn_t *c) {
  if (!eddy__waiter_is_current(c->reader))
    return NULL;
  eddy__task_t *t = c->reader.task;
  c->reader.task = NULL;
  return t;
}

/* Closes the connection: its waiting tasks answer "closed"; queued
   writes still go out. */
static void conn_close(conn_t *c) {
  eddy__sched_t *s = &c->stream.rt->sched;
  if (c->closed)
    return;
  c->closed = 1;
  eddy__sched_hold(s);
  eddy__task_t *t = take_reader(c);
  if (t != NULL)
    wake_with_error(t, EDDY_ECLOSED);
  while ((t = eddy__waitq_pop(&c->writers)) != NULL)
    wake_with_error(t, EDDY_ECLOSED);
  eddy__sched_unhold(s);
  eddy__stream_close(&c->stream, CLOSE_LINGER_MS);
}

/* A serving task ended: its connection closes with it. */
static void conn_task_done(void *data) {
  conn_t *c = data;
  conn_close(c);
  c->task_held = 0;
  maybe_free_conn(c);
}

static void push_conn(lua_State *L, conn_t *c) {
  conn_t **box = eddyL_newobject(L, &conn_class, sizeof *box);
  *box = c;
  c->lua_held = 1;
}

static conn_t *check_conn(lua_State *L) {
  conn_t **box = eddyL_testobject(L, 1, &conn_class);
  if (box == NULL)
    box = eddyL_testobject(L, 1, &pipe_class);
  if (box == NULL)
    luaL_typerror(L, 1, conn_class.name);
  return *box;
}

static int conn_gc(lua_State *L) {
  conn_t **box = eddyL_toobject(L, 1);
  conn_t *c = *box;
  if (c == NULL)
    return 0;
  *box = NULL;
  c->lua_held = 0;
  if (!c->taken) /* a layer's stream closes when the layer is done */
    conn_close(c);
  maybe_free_conn(c);
  return 0;
}

eddy__stream_t *eddyL_tcp_take(lua_State *L, int idx) {
  conn_t **box = eddyL_checkobject(L, idx, &conn_class);
  conn_t *c = *box;
  if (c == NULL || conn_is_closed(c))
    return NULL;
  if (eddy__waiter_is_current(c->reader) || c->writers.head != NULL)
    luaL_error(L, "the connection is busy in another task");
  c->taken = 1;
  return &c->stream;
}

/* ======================================================================= */
/* Connections: reading */

static const eddy__wait_ops_t read_ops;

/* Answers the pending read from the buffer: pushes the results on L and
   returns their count, or returns 0 when more bytes are needed. */
static int try_read(conn_t *c, lua_State *L) {
  eddy__rbuf_t *b = &c->stream.rbuf;
  size_t len = eddy__rbuf_len(b);
  const char *data = eddy__rbuf_data(b);
  switch (c->rmode) {
  case READ_N:
    if (len >= c->rn) {
      lua_pushlstring(L, data, c->rn);
      eddy__rbuf_consume(b, c->rn);
      c->scan = 0;
      return 1;
    }
    break;
  case READ_SOME:
    if (len > 0) {
      size_t n = len < c->rn ? len : c->rn;
      lua_pushlstring(L, data, n);
      eddy__rbuf_consume(b, n);
      c->scan = 0;
      return 1;
    }
    break;
  case READ_LINE:
  case READ_UNTIL: {
    long at = eddy__rbuf_find(b, c->scan, c->delim, c->dlen);
    if (at > (long)c->rmax) {
      /* Too long, however the bytes arrived. They stay buffered. */
      c->scan = 0;
      return eddyL_error(L, EDDY_ETOOLARGE);
    }
    if (at >= 0) {
      size_t end = (size_t)at;
      if (c->rmode == READ_LINE && end > 0 && data[end - 1] == '\r')
        end--;
      lua_pushlstring(L, data, end);
      eddy__rbuf_consume(b, (size_t)at + c->dlen);
      c->scan = 0;
      return 1;
    }
    /* The delimiter could still start in the last dlen-1 bytes. */
    c->scan = len >= c->dlen ? len - c->dlen + 1 : 0;
    if (len >= c->rmax) {
      c->scan = 0;
      return eddyL_error(L, EDDY_ETOOLARGE);
    }
    break;
  }
  }
  if (c->stream.rerr) {
    /* The peer closed (or the connection failed): what is left comes as
       partial data. */
    lua_pushnil(L);
    lua_pushstring(L, eddy_strerror(c->stream.rerr));
    if (len == 0)
      return 2;
    lua_pushlstring(L, data, len);
    eddy__rbuf_consume(b, len);
    c->scan = 0;
    return 3;
  }
  return 0;
}

static void on_stream_read(eddy__stream_t *s) {
  conn_t *c = (conn_t *)s;
  if (!eddy__waiter_is_current(c->reader)) {
    /* Nobody asks: keep what came and stop reading, so that an idle
       connection holds one read's worth at most. */
    eddy__stream_read_stop(s);
    return;
  }
  lua_State *L = s->rt->L;
  int n = try_read(c, L);
  if (n == 0)
    return;
  eddy__task_t *t = take_reader(c);
  lua_State *co = eddy__task_wake_begin(t);
  lua_xmove(L, co, n);
  eddy__task_wake_end(t, n);
}

static void read_detach(eddy__task_t *t) {
  conn_t *c = t->wait_data;
  c->reader.task = NULL;
}

static const eddy__wait_ops_t read_ops = {"tcp read", read_detach, NULL};

/* The common tail of every read: answer now or wait. */
static int read_wait(lua_State *L, conn_t *c, int opts_idx) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  int64_t ms = eddyL_opttimeout(L, opts_idx, c->opts.timeout_ms);
  if (eddy__waiter_is_current(c->reader))
    return luaL_error(L, "another task is reading this connection");
  if (conn_is_closed(c))
    return eddyL_error(L, EDDY_ECLOSED);
  int n = try_read(c, L);
  if (n > 0) {
    eddy__stream_settle(&c->stream);
    return n;
  }
  if (ms == 0)
    return eddyL_error(L, EDDY_ETIMEOUT);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &read_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int rc = eddy__stream_read_start(&c->stream);
  if (rc != 0)
    return eddyL_error(L, rc);
  eddy__task_wait(t, &read_ops, c, ms);
  c->reader = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

/* conn:read(n[, opts]): exactly n bytes. */
static int conn_read(lua_State *L) {
  conn_t *c = check_conn(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "must be >= 0");
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  c->rmode = READ_N;
  c->rn = (size_t)n;
  return read_wait(L, c, 3);
}

/* conn:read_some([max][, opts]): whatever has arrived, at least a byte. */
static int conn_read_some(lua_State *L) {
  conn_t *c = check_conn(L);
  lua_Integer max = luaL_optinteger(L, 2, DEFAULT_READ_SOME);
  luaL_argcheck(L, max > 0, 2, "must be > 0");
  c->rmode = READ_SOME;
  c->rn = (size_t)max;
  return read_wait(L, c, 3);
}

static int read_delimited(lua_State *L, conn_t *c, int mode, const char *d,
                          size_t dlen, int opts_idx) {
  if (!eddy__waiter_is_current(c->reader)) {
    if (c->rmode != mode || c->dlen != dlen || memcmp(c->delim, d, dlen) != 0)
      c->scan = 0;
  }
  c->rmode = mode;
  memcpy(c->delim, d, dlen);
  c->dlen = dlen;
  c->rmax = (size_t)eddyL_optfield_number(L, opts_idx, "max", (double)c->opts.max_line);
  return read_wait(L, c, opts_idx);
}

/* conn:read_line([opts]): a line, without its "\n" or "\r\n". */
static int conn_read_line(lua_State *L) {
  conn_t *c = check_conn(L);
  return read_delimited(L, c, READ_LINE, "\n", 1, 2);
}

/* conn:read_until(delimiter[, opts]): the bytes before the delimiter,
   which is consumed and not returned. */
static int conn_read_until(lua_State *L) {
  conn_t *c = check_conn(L);
  size_t dlen;
  const char *d = luaL_checklstring(L, 2, &dlen);
  luaL_argcheck(L, dlen > 0 && dlen <= MAX_DELIM, 2,
                "delimiter must be 1 to 64 bytes");
  return read_delimited(L, c, READ_UNTIL, d, dlen, 3);
}

/* ======================================================================= */
/* Connections: writing */

static void on_stream_drain(eddy__stream_t *s) {
  conn_t *c = (conn_t *)s;
  eddy__task_t *t;
  while ((t = eddy__waitq_pop(&c->writers)) != NULL) {
    if (s->werr) {
      wake_with_error(t, s->werr);
    } else {
      lua_State *co = eddy__task_wake_begin(t);
      lua_pushboolean(co, 1);
      eddy__task_wake_end(t, 1);
    }
  }
}

static const eddy__wait_ops_t write_ops = {"tcp write", NULL, NULL};

#define MAX_IOV 32

/* conn:write(data[, opts]): data is a string or an array of strings.
   Returns true once the bytes are written or queued within the write
   buffer; waits while more is queued; nil, "closed" if the peer left. */
static int conn_write(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  conn_t *c = check_conn(L);
  uv_buf_t bufs[MAX_IOV];
  unsigned n = 0;
  lua_settop(L, 3); /* the pieces go above the arguments */
  if (lua_type(L, 2) == LUA_TTABLE) {
    size_t count = lua_objlen(L, 2);
    if (count > MAX_IOV) {
      /* Many pieces: join them once rather than queue each. */
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (size_t i = 1; i <= count; i++) {
        lua_rawgeti(L, 2, (int)i);
        if (!lua_isstring(L, -1))
          return luaL_error(L, "bad argument #1 to 'write' (item %d is %s)",
                            (int)i, luaL_typename(L, -1));
        luaL_addvalue(&b);
      }
      luaL_pushresult(&b);
      lua_replace(L, 2);
    } else {
      /* The pieces stay on the stack: a number turned into a string
         must not be collected before it is written. */
      luaL_checkstack(L, MAX_IOV, "write");
      for (size_t i = 1; i <= count; i++) {
        size_t len;
        lua_rawgeti(L, 2, (int)i);
        const char *p = lua_tolstring(L, -1, &len);
        if (p == NULL)
          return luaL_error(L, "bad argument #1 to 'write' (item %d is %s)",
                            (int)i, luaL_typename(L, -1));
        bufs[n++] = uv_buf_init((char *)p, (unsigned)len);
      }
    }
  }
  if (lua_type(L, 2) != LUA_TTABLE) {
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    bufs[0] = uv_buf_init((char *)p, (unsigned)len);
    n = 1;
  }
  int64_t ms = eddyL_opttimeout(L, 3, c->opts.timeout_ms);
  if (conn_is_closed(c))
    return eddyL_error(L, EDDY_ECLOSED);
  int rc = eddy__stream_write(&c->stream, bufs, n);
  if (rc != 0)
    return eddyL_error(L, rc);
  if (c->stream.wqueued <= c->opts.write_buffer) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (ms == 0)
    return eddyL_error(L, EDDY_ETIMEOUT);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &write_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &write_ops, c, ms);
  eddy__waitq_push(&c->writers, t);
  return eddy__task_yield(&rt->sched, L);
}

/* conn:shutdown(): no more writes; the peer reads end-of-stream once the
   queued bytes are through. */
static int conn_shutdown(lua_State *L) {
  conn_t *c = check_conn(L);
  if (conn_is_closed(c))
    return eddyL_error(L, EDDY_ECLOSED);
  int rc = eddy__stream_shutdown(&c->stream);
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:read_stop(): until the next read, an idle connection (one kept in
   a pool) does not keep the loop running; what arrives meanwhile waits,
   a read's worth in eddy and the rest in the socket. (The socket stays
   with the poller: a pooled connection's next use costs no system call
   to start reading again.) */
static int conn_read_stop(lua_State *L) {
  conn_t *c = check_conn(L);
  if (eddy__waiter_is_current(c->reader))
    return luaL_error(L, "another task is reading this connection");
  if (!conn_is_closed(c))
    eddy__stream_read_idle(&c->stream);
  return 0;
}

static int conn_close_m(lua_State *L) {
  conn_t *c = check_conn(L);
  int was_open = !conn_is_closed(c);
  conn_close(c);
  lua_pushboolean(L, was_open);
  return 1;
}

static int conn_closed(lua_State *L) {
  lua_pushboolean(L, conn_is_closed(check_conn(L)));
  return 1;
}

/* ======================================================================= */
/* Connections: addresses and options */

static int conn_peer_addr(lua_State *L) {
  conn_t *c = check_conn(L);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (conn_is_closed(c))
    return eddyL_error(L, EDDY_ECLOSED);
  return eddyL_pushname(
      L, uv_tcp_getpeername(&c->stream.tcp, (struct sockaddr *)&ss, &len), &ss);
}

static int conn_local_addr(lua_State *L) {
  conn_t *c = check_conn(L);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (conn_is_closed(c))
    return eddyL_error(L, EDDY_ECLOSED);
  return eddyL_pushname(
      L, uv_tcp_getsockname(&c->stream.tcp, (struct sockaddr *)&ss, &len), &ss);
}

/* conn:set_timeout(seconds or nil): the default timeout of each call. */
static int conn_set_timeout(lua_State *L) {
  conn_t *c = check_conn(L);
  c->opts.timeout_ms = lua_isnoneornil(L, 2) ? -1 : eddyL_opttimeout(L, 2, -1);
  return 0;
}

static int conn_set_nodelay(lua_State *L) {
  conn_t *c = check_conn(L);
  c->opts.nodelay = lua_toboolean(L, 2);
  if (!conn_is_closed(c))
    uv_tcp_nodelay(&c->stream.tcp, c->opts.nodelay);
  return 0;
}

/* conn:set_keepalive(seconds or false) */
static int conn_set_keepalive(lua_State *L) {
  conn_t *c = check_conn(L);
  int secs = lua_type(L, 2) == LUA_TNUMBER ? (int)lua_tointeger(L, 2)
             : lua_toboolean(L, 2)          ? 60
                                            : 0;
  c->opts.keepalive = secs;
  if (!conn_is_closed(c))
    uv_tcp_keepalive(&c->stream.tcp, secs > 0, secs > 0 ? (unsigned)secs : 0);
  return 0;
}

/* Bytes received and not read yet; bytes queued and not written yet. */
static int conn_pending(lua_State *L) {
  conn_t *c = check_conn(L);
  lua_pushnumber(L, (lua_Number)eddy__rbuf_len(&c->stream.rbuf));
  lua_pushnumber(L, (lua_Number)c->stream.wqueued);
  return 2;
}

static int conn_tostring(lua_State *L) {
  conn_t *c = check_conn(L);
  lua_pushfstring(L, "%s (%s)", ((eddyL_object_t *)lua_touserdata(L, 1))->cls->name,
                  conn_is_closed(c) ? "closed" : "open");
  return 1;
}

eddy__stream_t *eddyL_pipe_new(lua_State *L, int *err) {
  conn_opts_t opts = {-1, DEFAULT_MAX_LINE, DEFAULT_WRITE_BUFFER, 0, 0};
  conn_t *c = conn_new(eddyL_runtime(L), &opts, 1, err);
  if (c == NULL)
    return NULL;
  conn_t **box = eddyL_newobject(L, &pipe_class, sizeof *box);
  *box = c;
  c->lua_held = 1;
  c->stream.wlow = opts.write_buffer / 2;
  return &c->stream;
}

/* ======================================================================= */
/* TLS on a connection */

static void on_handshake(eddy__stream_t *s, int status) {
  conn_t *c = (conn_t *)s;
  eddy__task_t *t = take_reader(c);
  if (t == NULL)
    return; /* timed out or cancelled: the stream is closing already */
  lua_State *co = eddy__task_wake_begin(t);
  int n = 1;
  if (status != 0) {
    n = eddyL_tls_fail(co, status, eddy__tls_reason(s));
    conn_close(c); /* the stream (and the reason) live until it has closed */
  } else {
    lua_pushboolean(co, 1);
  }
  eddy__task_wake_end(t, n);
}

static void handshake_detach(eddy__task_t *t) {
  conn_t *c = t->wait_data;
  c->reader.task = NULL;
  conn_close(c); /* a handshake cut short leaves nothing usable */
}

static const eddy__wait_ops_t handshake_ops = {"tls handshake",
                                               handshake_detach, NULL};

/* conn:starttls([opts]) -> true, or nil, err[, reason]: makes the
   connection a TLS client's; waits for the handshake. opts: server_name
   (SNI and the certificate's name; when verifying without one, the
   certificate must name the peer's IP address), verify (default true),
   ca, cert, key,
   alpn, min_version, max_version, ciphers, ciphersuites, timeout (default:
   the connection's, else 10 s: a silent peer must not hold it forever). On
   failure the connection is closed. Bytes read but not yet taken before
   the upgrade are a failure ("tls failure", reason "plaintext ..."): they
   came in the clear, and must not pass for the TLS stream's (an attacker
   could prefix the server's answers). */
static int conn_starttls(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  conn_t *c = check_conn(L);
  char reason[EDDY__TLS_REASON];
  char key[160];
  int64_t ms = eddyL_opttimeout(L, 2, c->opts.timeout_ms);
  if (ms < 0)
    ms = eddy__timeout_ms(EDDYL_TLS_HANDSHAKE_S);
  if (eddy__waiter_is_current(c->reader))
    return luaL_error(L, "another task is reading this connection");
  if (c->stream.tls != NULL)
    return luaL_error(L, "the connection speaks TLS already");
  if (conn_is_closed(c))
    return eddyL_error(L, EDDY_ECLOSED);
  if (eddy__rbuf_len(&c->stream.rbuf) > 0) {
    conn_close(c);
    return eddyL_tls_fail(L, EDDY_ETLS,
                          "plaintext received before the TLS handshake");
  }
  const char *name = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "server_name");
    name = lua_tostring(L, -1); /* the options table keeps it */
    lua_pop(L, 1);
  }
  eddy__tls_config_t *cfg = eddyL_tls_client(L, 2, reason);
  if (cfg == NULL)
    return eddyL_tls_fail(L, EDDY_ETLS, reason);
  /* Sessions are kept by the name and port of the server. */
  struct sockaddr_storage ss;
  int len = sizeof ss, port = 0;
  char ip[EDDY__ADDR_TEXT] = "";
  if (uv_tcp_getpeername(&c->stream.tcp, (struct sockaddr *)&ss, &len) == 0)
    eddy__addr_name((struct sockaddr *)&ss, ip, &port);
  /* Verifying with no name would accept any certificate of the CA: the
     peer's address is the identity then (and the session key says so). */
  if ((name == NULL || name[0] == '\0') &&
      eddyL_optfield_boolean(L, 2, "verify", 1))
    name = ip;
  snprintf(key, sizeof key, "%s:%d", name ? name : ip, port);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &handshake_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int rc = eddy__tls_start(&c->stream, cfg, name, key, 0, on_handshake);
  if (rc != 0) {
    int n = eddyL_tls_fail(L, rc, eddy__tls_reason(&c->stream));
    conn_close(c);
    return n;
  }
  eddy__task_wait(t, &handshake_ops, c, ms);
  c->reader = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

/* conn:tls() -> what TLS agreed on (version, cipher, alpn, server_name,
   resumed; peer: the subject of the peer's certificate, if it sent one),
   or nil for a plain connection. */
static int conn_tls(lua_State *L) {
  conn_t *c = check_conn(L);
  if (conn_is_closed(c)) {
    lua_pushnil(L);
    return 1;
  }
  return eddyL_tls_info(L, &c->stream);
}

/* ======================================================================= */
/* Connecting */

static void on_connected(eddy__stream_t *s, int status) {
  conn_t *c = (conn_t *)s;
  eddy__task_t *t = take_reader(c);
  if (t == NULL)
    return; /* timed out or cancelled: the stream is closing already */
  if (status != 0) {
    wake_with_error(t, status);
    conn_close(c);
    return;
  }
  apply_socket_opts(c);
  lua_State *co = eddy__task_wake_begin(t);
  push_conn(co, c);
  eddy__task_wake_end(t, 1);
}

static void connect_detach(eddy__task_t *t) {
  conn_t *c = t->wait_data;
  c->reader.task = NULL;
  conn_close(c);
}

static const eddy__wait_ops_t connect_ops = {"tcp connect", connect_detach,
                                             NULL};

/* connect(ip, port[, opts]): a connection, or nil, err. The name
   resolution and the trying of several addresses are in tcp.lua. */
static int tcp_connect(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  conn_opts_t opts;
  read_conn_opts(L, 3, &opts);
  int64_t ms = eddy__timeout_ms(eddyL_optfield_number(
      L, 3, "connect_timeout", DEFAULT_CONNECT_MS / 1000.0));
  struct sockaddr_storage addr;
  if (eddy__addr_parse(ip, port, &addr) != 0)
    return luaL_error(L, "bad address: %s port %d", ip, port);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &connect_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int err;
  conn_t *c = conn_new(rt, &opts, 0, &err);
  if (c == NULL)
    return eddyL_error(L, err);
  err = eddy__stream_connect(&c->stream, (struct sockaddr *)&addr,
                             on_connected);
  if (err != 0) {
    conn_close(c);
    return eddyL_error(L, err);
  }
  eddy__task_wait(t, &connect_ops, c, ms);
  c->reader = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

static int tcp_is_ip(lua_State *L) {
  struct sockaddr_storage addr;
  const char *s = luaL_checkstring(L, 1);
  lua_pushboolean(L, eddy__addr_parse(s, 0, &addr) == 0);
  return 1;
}

/* ======================================================================= */
/* Servers */

static void maybe_free_server(server_t *srv) {
  if (srv->closed && !srv->lua_held && srv->nconns == 0 &&
      srv->listener.closing == 2) {
    eddy__tls_config_unref(srv->tls);
    free(srv);
  }
}

static void wake_acceptors(server_t *srv) {
  eddy__sched_t *s = &srv->listener.rt->sched;
  eddy__task_t *t;
  eddy__sched_hold(s);
  while ((t = eddy__waitq_pop(&srv->acceptors)) != NULL)
    wake_with_error(t, EDDY_ECLOSED);
  eddy__sched_unhold(s);
}

static void on_listener_close(eddy__listener_t *l) {
  server_t *srv = (server_t *)l;
  l->closing = 2; /* the handle is closed */
  if (l->rt->L != NULL)
    eddy__unref(&l->rt->refs, l->rt->L, srv->handler_ref);
  srv->handler_ref = EDDY__NOREF;
  srv->closed = 1;
  wake_acceptors(srv);
  maybe_free_server(srv);
}

static conn_t *accept_conn(server_t *srv, int *err) {
  conn_t *c = conn_new(srv->listener.rt, &srv->opts, 0, err);
  if (c == NULL)
    return NULL;
  *err = eddy__listener_accept(&srv->listener, &c->stream);
  if (*err != 0) {
    conn_close(c);
    return NULL;
  }
  apply_socket_opts(c);
  c->server = srv;
  srv->nconns++;
  if (srv->tls != NULL) {
    /* The handshake runs as the connection is read; its failure is the
       read side's end (and a log line). */
    *err = eddy__tls_start(&c->stream, srv->tls, NULL, NULL,
                           srv->handshake_ms, NULL);
    if (*err != 0) {
      conn_close(c);
      return NULL;
    }
  }
  return c;
}

/* Runs the server's handler for a new connection, in a task of its own. */
static void serve_one(server_t *srv) {
  eddy_runtime_t *rt = srv->listener.rt;
  lua_State *L = rt->L;
  int err;
  conn_t *c = accept_conn(srv, &err);
  if (c == NULL) {
    eddy__log(rt, EDDY_LOG_WARN, "tcp: accept failed: %s", eddy_strerror(err));
    return;
  }
  eddy__getref(&rt->refs, L, srv->handler_ref);
  push_conn(L, c);
  eddy__task_t *t = eddy__task_spawn(&rt->sched, L, 1);
  if (t == NULL) {
    eddy__log(rt, EDDY_LOG_ERROR, "tcp: out of memory for a task");
    conn_close(c);
    return;
  }
  c->task_held = 1;
  t->on_done = conn_task_done;
  t->done_data = c;
}

static int below_limit(const server_t *srv) {
  return srv->max_connections == 0 || srv->nconns < srv->max_connections;
}

/* Hands the waiting connection to an acceptor or the handler, if there is
   one and the limit allows; otherwise it stays waiting and the listener
   stays paused. */
static void server_accept_more(server_t *srv) {
  if (!srv->listener.pending || srv->closed || !below_limit(srv))
    return;
  if (srv->handler_ref != EDDY__NOREF) {
    serve_one(srv);
    return;
  }
  eddy__task_t *t = eddy__waitq_pop(&srv->acceptors);
  if (t == NULL)
    return;
  int err;
  conn_t *c = accept_conn(srv, &err);
  if (c == NULL) {
    wake_with_error(t, err);
    return;
  }
  lua_State *co = eddy__task_wake_begin(t);
  push_conn(co, c);
  eddy__task_wake_end(t, 1);
}

static void on_connection(eddy__listener_t *l, int status) {
  server_t *srv = (server_t *)l;
  if (status != 0) {
    eddy__log(l->rt, EDDY_LOG_WARN, "tcp: accept failed: %s",
              eddy_strerror(status));
    return;
  }
  server_accept_more(srv);
}

static void server_close(server_t *srv) {
  srv->closed = 1;
  wake_acceptors(srv);
  eddy__listener_close(&srv->listener);
}

static server_t *check_server(lua_State *L) {
  server_t **box = eddyL_checkobject(L, 1, &server_class);
  return *box;
}

/* listen(ip, port[, opts]): a server, or nil, err. */
static int tcp_listen(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  struct sockaddr_storage addr;
  if (eddy__addr_parse(ip, port, &addr) != 0)
    return luaL_error(L, "bad address: %s port %d", ip, port);
  int backlog = (int)eddyL_optfield_number(L, 3, "backlog", 511);
  unsigned flags = 0;
  if (eddyL_optfield_boolean(L, 3, "reuseport", 1))
    flags |= EDDY__LISTEN_REUSEPORT;
  if (eddyL_optfield_boolean(L, 3, "ipv6only", 0))
    flags |= EDDY__LISTEN_IPV6ONLY;
  int max_conns = (int)eddyL_optfield_number(L, 3, "max_connections", 0);
  conn_opts_t opts;
  read_conn_opts(L, 3, &opts);
  eddy__tls_config_t *tls;
  uint64_t hs_ms;
  char reason[EDDY__TLS_REASON];
  if (eddyL_tls_listen(L, 3, &tls, &hs_ms, reason) != 0)
    return eddyL_tls_fail(L, EDDY_ETLS, reason);

  server_t **box = eddyL_newobject(L, &server_class, sizeof *box);
  *box = NULL;
  server_t *srv = calloc(1, sizeof *srv);
  if (srv == NULL) {
    eddy__tls_config_unref(tls);
    return eddyL_error(L, EDDY_ENOMEM);
  }
  srv->tls = tls;
  srv->handshake_ms = hs_ms;
  srv->handler_ref = EDDY__NOREF;
  srv->opts = opts;
  srv->max_connections = max_conns > 0 ? max_conns : 0;
  srv->listener.on_connection = on_connection;
  srv->listener.on_close = on_listener_close;
  int err = eddy__listener_start(rt, &srv->listener, (struct sockaddr *)&addr,
                                 backlog, flags);
  if (err != 0) {
    srv->closed = 1;
    if (!srv->listener.closing) {
      eddy__tls_config_unref(srv->tls);
      free(srv); /* else on_listener_close frees it */
    }
    return eddyL_error(L, err);
  }
  srv->lua_held = 1;
  *box = srv;
  return 1;
}

/* server:serve(handler): from now on each connection runs handler(conn) in
   a task of its own; the connection closes when the task ends. Returns the
   server. */
static int server_serve(lua_State *L) {
  server_t *srv = check_server(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (srv->closed)
    return eddyL_error(L, EDDY_ECLOSED);
  if (srv->handler_ref != EDDY__NOREF || srv->acceptors.head != NULL)
    return luaL_error(L, "server is already serving or accepting");
  lua_pushvalue(L, 2);
  srv->handler_ref = eddy__ref(&srv->listener.rt->refs, L);
  while (srv->listener.pending && below_limit(srv))
    serve_one(srv);
  lua_settop(L, 1);
  return 1;
}

static void accept_detach(eddy__task_t *t) {
  (void)t; /* wake_begin takes it off the acceptors' queue */
}

static const eddy__wait_ops_t accept_ops = {"tcp accept", accept_detach, NULL};

/* server:accept([opts]): the next connection, or nil, err. */
static int server_accept(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  server_t *srv = check_server(L);
  int64_t ms = eddyL_opttimeout(L, 2, -1);
  if (srv->closed)
    return eddyL_error(L, EDDY_ECLOSED);
  if (srv->handler_ref != EDDY__NOREF)
    return luaL_error(L, "server is serving: accept is not for it");
  if (srv->listener.pending && below_limit(srv)) {
    int err;
    conn_t *c = accept_conn(srv, &err);
    if (c == NULL)
      return eddyL_error(L, err);
    push_conn(L, c);
    return 1;
  }
  if (ms == 0)
    return eddyL_error(L, EDDY_ETIMEOUT);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &accept_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &accept_ops, srv, ms);
  eddy__waitq_push(&srv->acceptors, t);
  return eddy__task_yield(&rt->sched, L);
}

static int server_close_m(lua_State *L) {
  server_t *srv = check_server(L);
  int was_open = !srv->closed;
  server_close(srv);
  lua_pushboolean(L, was_open);
  return 1;
}

static int server_port(lua_State *L) {
  server_t *srv = check_server(L);
  if (srv->closed)
    return eddyL_error(L, EDDY_ECLOSED);
  lua_pushinteger(L, eddy__listener_port(&srv->listener));
  return 1;
}

static int server_local_addr(lua_State *L) {
  server_t *srv = check_server(L);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (srv->closed)
    return eddyL_error(L, EDDY_ECLOSED);
  return eddyL_pushname(
      L, uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)&ss, &len),
      &ss);
}

/* server:reload_tls(tls_opts) -> true, or nil, err, reason: new
   handshakes use the new certificate; open connections keep theirs. */
static int server_reload_tls(lua_State *L) {
  return eddyL_tls_reload(L, &check_server(L)->tls, 2);
}

static int server_connections(lua_State *L) {
  lua_pushinteger(L, check_server(L)->nconns);
  return 1;
}

static int server_gc(lua_State *L) {
  server_t **box = eddyL_toobject(L, 1);
  server_t *srv = *box;
  if (srv == NULL)
    return 0;
  *box = NULL;
  /* A server that serves keeps serving without a Lua reference; one
     nobody can reach any more closes. */
  srv->lua_held = 0;
  if (srv->handler_ref == EDDY__NOREF)
    server_close(srv);
  maybe_free_server(srv);
  return 0;
}

static int server_tostring(lua_State *L) {
  server_t *srv = check_server(L);
  lua_pushfstring(L, "eddy.tcp.server (%s)", srv->closed ? "closed" : "open");
  return 1;
}

/* ======================================================================= */

static const luaL_Reg tcp_funcs[] = {
    {"connect", tcp_connect},
    {"listen", tcp_listen},
    {"is_ip", tcp_is_ip},
    {NULL, NULL},
};

/* What connections and pipes share: the stream's methods. */
static const luaL_Reg conn_methods[] = {
    {"read", conn_read},
    {"read_some", conn_read_some},
    {"read_line", conn_read_line},
    {"read_until", conn_read_until},
    {"write", conn_write},
    {"shutdown", conn_shutdown},
    {"read_stop", conn_read_stop},
    {"close", conn_close_m},
    {"closed", conn_closed},
    {"set_timeout", conn_set_timeout},
    {"pending", conn_pending},
    {NULL, NULL},
};

/* What only a socket has. */
static const luaL_Reg socket_methods[] = {
    {"peer_addr", conn_peer_addr},
    {"local_addr", conn_local_addr},
    {"set_nodelay", conn_set_nodelay},
    {"set_keepalive", conn_set_keepalive},
    {"starttls", conn_starttls},
    {"tls", conn_tls},
    {NULL, NULL},
};

static const luaL_Reg conn_meta[] = {
    {"__gc", conn_gc},
    {"__tostring", conn_tostring},
    {NULL, NULL},
};

static const luaL_Reg server_methods[] = {
    {"serve", server_serve},
    {"accept", server_accept},
    {"close", server_close_m},
    {"port", server_port},
    {"local_addr", server_local_addr},
    {"connections", server_connections},
    {"reload_tls", server_reload_tls},
    {NULL, NULL},
};

static const luaL_Reg server_meta[] = {
    {"__gc", server_gc},
    {"__tostring", server_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_tcp(lua_State *L) {
  eddyL_newclass(L, &conn_class, conn_methods, conn_meta);
  lua_pushlightuserdata(L, (void *)&conn_class);
  lua_rawget(L, LUA_REGISTRYINDEX); /* conn's metatable */
  lua_getfield(L, -1, "__index");
  eddyL_setfuncs(L, socket_methods);
  lua_pop(L, 2);
  eddyL_newclass(L, &pipe_class, conn_methods, conn_meta);
  eddyL_newclass(L, &server_class, server_methods, server_meta);
  eddyL_newlib(L, tcp_funcs);
  return 1;
}

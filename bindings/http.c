/*
 * http.c: the HTTP/1.1 server for Lua (module eddy.c.http; the app, its
 * router and the per-connection loop are in lua/eddy/http/). Each
 * connection runs in a task that asks for the next request (waiting while
 * its head arrives), calls the handler, and finishes the response. The
 * parsing (core/http.c) and the writing of responses happen here in C, on
 * the connection's own buffer: a request costs a Lua table and the strings
 * of its method and path, and nothing more unless the handler asks.
 *
 * The response object that handlers get (`res`) is the connection's
 * userdata; the request (`req`) is a small Lua table made by
 * lua/eddy/http/server.lua whose lazy fields call back in here.
 *
 * Memory: an hconn_t is freed when its stream has closed and neither its
 * userdata nor its task points to it; an hserver_t when its listener has
 * closed, no userdata holds it and no connection of it is open.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/addr.h"
#include "../core/http.h"
#include "../core/stream.h"
#include "../core/tcp.h"
#include "../core/tls.h"
#include "../core/ws.h"
#include "bindings.h"

#define MAX_HEADERS_LIMIT 1000
#define CLOSE_LINGER_MS 5000
#define DRAIN_MAX 65536 /* unread body past this: close instead of drain */

static const eddyL_class_t res_class = {"eddy.http.response"};
static const eddyL_class_t server_class = {"eddy.http.server"};

typedef struct hserver_s hserver_t;
typedef struct hconn_s hconn_t;

/* The limits of a server, each an option of listen (see http.lua). */
typedef struct limits_s {
  size_t max_head;
  size_t max_headers;
  int64_t max_body;
  int64_t header_timeout_ms;
  int64_t body_timeout_ms;
  int64_t keepalive_timeout_ms;
  int64_t write_timeout_ms;
  size_t write_buffer;
  int max_connections;
} limits_t;

struct hserver_s {
  eddy__listener_t listener;
  int loop_ref; /* the Lua function each connection's task runs */
  limits_t limits;
  int nconns;
  hconn_t *conns; /* open connections, for a graceful stop */
  int closed;
  int lua_held;
  char date[40]; /* the Date line, made once a second */
  int64_t date_sec;
  eddy__tls_config_t *tls; /* HTTPS: TLS on every connection, or NULL */
  uint64_t handshake_ms;
};

enum conn_state {
  C_WAIT_HEAD, /* between requests, or a head is arriving */
  C_HANDLING,  /* a handler has the request */
  C_UPGRADED,  /* a WebSocket session has the stream */
  C_CLOSED
};

enum wait_kind { W_NONE, W_HEAD, W_BODY };

/* A request while it is handled, in one block with a copy of its head and
   its headers: an idle connection holds none of it. */
typedef struct hreq_s {
  eddy__http_request_t req;
  int64_t body_left; /* Content-Length bytes not yet read */
  eddy__http_chunked_t chunked;
  int body_done;
  int64_t body_read;
  int continue_sent;
  /* the headers, then the head's bytes */
} hreq_t;

struct hconn_s {
  eddy__stream_t stream;
  hserver_t *server;
  hconn_t *next; /* the server's list */
  hconn_t *prev;
  int state;
  eddy__waiter_t reader; /* the task waiting for a head or body bytes */
  int wait_kind;
  size_t body_max; /* W_BODY: at most this much per chunk */
  eddy__waitq_t writers;
  size_t scan;            /* how far the head has been searched */
  uint64_t head_started;  /* loop time when this head began to arrive */
  hreq_t *rq;             /* the request being handled, if any */
  /* The response. */
  int status;
  uint64_t sent; /* bytes of it given to the socket, head included */
  char *hdrs; /* header lines the handler set */
  size_t hdrs_len;
  size_t hdrs_cap;
  int has_type;   /* the handler set Content-Type */
  int has_length; /* the handler set Content-Length */
  int head_sent;
  int chunked_out;
  int finished;
  int keep_alive;
  int write_failed; /* a write gave up: the response cannot end well */
  eddy__sendfile_t *sendfile; /* a sendfile in progress */
  int lua_held;
  int task_held;
  uint32_t served; /* requests read on it so far */
};

/* At a graceful stop, how long a connection that has not sent its first
   request yet still gets: its client may have sent it already. */
#define FRESH_GRACE_MS 1000

/* ======================================================================= */
/* Life */

static void maybe_free_server(hserver_t *srv) {
  if (srv->closed && !srv->lua_held && srv->nconns == 0 &&
      srv->listener.closing == 2) {
    eddy__tls_config_unref(srv->tls);
    free(srv);
  }
}

static void request_free(hconn_t *c) {
  free(c->rq);
  c->rq = NULL;
}

static void maybe_free_conn(hconn_t *c) {
  if ((c->stream.flags & EDDY__STREAM_CLOSED) && !c->lua_held &&
      !c->task_held) {
    request_free(c);
    free(c->hdrs);
    free(c);
  }
}

static void unlink_conn(hconn_t *c) {
  hserver_t *srv = c->server;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

static void accept_more(hserver_t *srv);

static void on_stream_close(eddy__stream_t *s) {
  hconn_t *c = (hconn_t *)s;
  hserver_t *srv = c->server;
  if (srv != NULL) {
    unlink_conn(c);
    c->server = NULL;
    srv->nconns--;
    accept_more(srv);
    maybe_free_server(srv);
  }
  maybe_free_conn(c);
}

static void wake_error(eddy__task_t *t, int err) {
  lua_State *co = eddy__task_wake_begin(t);
  lua_pushnil(co);
  lua_pushstring(co, eddy_strerror(err));
  eddy__task_wake_end(t, 2);
}

typedef struct sendfile_wait_s {
  eddy__sendfile_t op;
  eddy__waiter_t waiter;
  hconn_t *conn; /* NULL once abandoned: the connection may be freed
                    before the cancelled op's callback runs */
} sendfile_wait_t;

/* Cancels the sendfile in progress; its callback (which frees it) runs
   later, from its poll handle's close, and must not touch c then. */
static void sendfile_abandon(hconn_t *c) {
  sendfile_wait_t *w = (sendfile_wait_t *)c->sendfile;
  c->sendfile = NULL;
  w->conn = NULL;
  eddy__sendfile_cancel(&w->op);
}

static void conn_close(hconn_t *c) {
  if (c->state == C_CLOSED)
    return;
  c->state = C_CLOSED;
  if (c->sendfile)
    sendfile_abandon(c);
  eddy__sched_t *s = &c->stream.rt->sched;
  eddy__sched_hold(s);
  if (eddy__waiter_is_current(c->reader)) {
    eddy__task_t *t = c->reader.task;
    c->reader.task = NULL;
    wake_error(t, EDDY_ECLOSED);
  }
  eddy__task_t *t;
  while ((t = eddy__waitq_pop(&c->writers)) != NULL)
    wake_error(t, EDDY_ECLOSED);
  eddy__sched_unhold(s);
  eddy__stream_close(&c->stream, CLOSE_LINGER_MS);
}

/* The connection's task ended: the connection ends with it. */
static void conn_task_done(void *data) {
  hconn_t *c = data;
  conn_close(c);
  c->task_held = 0;
  maybe_free_conn(c);
}

static hconn_t *check_conn(lua_State *L) {
  hconn_t **box = eddyL_checkobject(L, 1, &res_class);
  if (*box == NULL)
    luaL_error(L, "the connection is gone");
  return *box;
}

/* The connection, when a handler's request is still being answered: res
   is good only inside its handler. */
static hconn_t *check_handling(lua_State *L) {
  hconn_t *c = check_conn(L);
  if (c->rq == NULL || (c->state != C_HANDLING && c->state != C_CLOSED))
    luaL_error(L, "no request is being answered on this connection (res is "
                  "only good inside its handler)");
  return c;
}

static int conn_gc(lua_State *L) {
  hconn_t **box = eddyL_toobject(L, 1);
  hconn_t *c = *box;
  if (c == NULL)
    return 0;
  *box = NULL;
  c->lua_held = 0;
  conn_close(c);
  maybe_free_conn(c);
  return 0;
}

/* ======================================================================= */
/* Writing */

/* The Date line, made at most once a second. */
static const char *date_line(hserver_t *srv) {
  int64_t now = (int64_t)time(NULL);
  if (now != srv->date_sec) {
    eddy__http_date(srv->date, now);
    srv->date_sec = now;
  }
  return srv->date;
}

/* A status without a body (1xx, 204, 304). */
static int bodiless(int status) {
  return status < 200 || status == 204 || status == 304;
}

/* Writes raw bytes: 0, or an eddy error. */
static int put(hconn_t *c, const uv_buf_t *bufs, unsigned n) {
  if (c->state == C_CLOSED)
    return EDDY_ECLOSED;
  for (unsigned i = 0; i < n; i++)
    c->sent += bufs[i].len;
  return eddy__stream_write(&c->stream, bufs, n);
}

/* Appends a string literal (no printf on the hot path). */
#define PUT_LITERAL(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

static char *put_uint(char *p, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0)
    *p++ = tmp[--n];
  return p;
}

/* Builds the response head into buf (at least 256 bytes + the handler's
   header lines); length is the body's length, -1 for chunked, -2 for a
   body that runs to the close (or whose length the handler set). */
static size_t build_head(hconn_t *c, char *buf, int64_t length) {
  c->stream.rt->counters.http[c->status / 100 % 6]++;
  char *p = PUT_LITERAL(buf, "HTTP/1.1 ");
  p = put_uint(p, (uint64_t)c->status);
  *p++ = ' ';
  const char *reason = eddy__http_reason(c->status);
  size_t rlen = strlen(reason);
  memcpy(p, reason, rlen);
  p += rlen;
  p = PUT_LITERAL(p, "\r\n");
  memcpy(p, date_line(c->server), 37);
  p += 37;
  if (!bodiless(c->status)) {
    if (!c->has_length && length >= 0) {
      p = PUT_LITERAL(p, "Content-Length: ");
      p = put_uint(p, (uint64_t)length);
      p = PUT_LITERAL(p, "\r\n");
    } else if (!c->has_length && length == -1) {
      p = PUT_LITERAL(p, "Transfer-Encoding: chunked\r\n");
    }
    if (!c->has_type)
      p = PUT_LITERAL(p, "Content-Type: text/plain; charset=utf-8\r\n");
  }
  /* An answer to an Expect request whose body the handler never asked
     for: the client may still be sending it, so the connection ends. */
  if (c->rq && (c->rq->req.flags & EDDY__HTTP_EXPECT) &&
      !c->rq->continue_sent && !c->rq->body_done)
    c->keep_alive = 0;
  if (!c->keep_alive)
    p = PUT_LITERAL(p, "Connection: close\r\n");
  else if (c->rq->req.minor == 0)
    p = PUT_LITERAL(p, "Connection: keep-alive\r\n");
  if (c->hdrs_len > 0) {
    memcpy(p, c->hdrs, c->hdrs_len);
    p += c->hdrs_len;
  }
  p = PUT_LITERAL(p, "\r\n");
  return (size_t)(p - buf);
}

/* Sends the head and a whole body in one write. */
static int send_whole(hconn_t *c, const char *body, size_t len) {
  char small[1024];
  size_t need = 256 + c->hdrs_len;
  char *head = need <= sizeof small ? small : malloc(need);
  if (head == NULL)
    return EDDY_ENOMEM;
  size_t n = build_head(c, head, (int64_t)len);
  uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)n),
                      uv_buf_init((char *)body, (unsigned)len)};
  int with_body = len > 0 && !bodiless(c->status) &&
                  !(c->rq->req.flags & EDDY__HTTP_HEAD);
  int rc = put(c, bufs, with_body ? 2 : 1);
  if (head != small)
    free(head);
  c->head_sent = 1;
  c->finished = 1;
  return rc;
}

/* A write that times out (or whose task is cancelled) leaves part of the
   response unsent: it must not end as if whole. */
static void write_detach(eddy__task_t *t) {
  hconn_t *c = t->wait_data;
  c->write_failed = 1;
  c->keep_alive = 0;
}

static const eddy__wait_ops_t write_ops = {"http write", write_detach, NULL};

/* After a write: true now, or wait while too much is queued. */
static int write_tail(lua_State *L, hconn_t *c, int rc) {
  eddy_runtime_t *rt = c->stream.rt;
  if (rc != 0)
    return eddyL_error(L, rc);
  if (c->stream.wqueued <= c->server->limits.write_buffer) {
    lua_settop(L, 1);
    return 1;
  }
  eddy__task_t *t = eddyL_begin_wait(L, rt, &write_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &write_ops, c, c->server->limits.write_timeout_ms);
  eddy__waitq_push(&c->writers, t);
  return eddy__task_yield(&rt->sched, L);
}

/* res:status(code) -> res */
static int res_status(lua_State *L) {
  hconn_t *c = check_handling(L);
  lua_Integer code = luaL_checkinteger(L, 2);
  luaL_argcheck(L, code >= 100 && code <= 999, 2, "not an HTTP status");
  if (c->head_sent)
    return luaL_error(L, "the response has started: too late for a status");
  c->status = (int)code;
  lua_settop(L, 1);
  return 1;
}

static int is_token(const char *s, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch >= 0x7F || strchr("\"(),/:;<=>?@[\\]{}", ch))
      return 0;
  }
  return 1;
}

static int ieq(const char *a, size_t n, const char *b) {
  size_t m = strlen(b);
  if (n != m)
    return 0;
  for (size_t i = 0; i < n; i++) {
    int x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z')
      x += 32;
    if (x != y)
      return 0;
  }
  return 1;
}

/* Adds "name: value" to the response's header lines (checked already). */
static int append_header(hconn_t *c, const char *name, size_t nlen,
                         const char *value, size_t vlen) {
  size_t need = c->hdrs_len + nlen + vlen + 4;
  if (need > c->hdrs_cap) {
    size_t cap = c->hdrs_cap ? c->hdrs_cap * 2 : 256;
    while (cap < need)
      cap *= 2;
    char *p = realloc(c->hdrs, cap);
    if (p == NULL)
      return -1;
    c->hdrs = p;
    c->hdrs_cap = cap;
  }
  char *p = c->hdrs + c->hdrs_len;
  memcpy(p, name, nlen);
  p[nlen] = ':';
  p[nlen + 1] = ' ';
  memcpy(p + nlen + 2, value, vlen);
  p[nlen + 2 + vlen] = '\r';
  p[nlen + 3 + vlen] = '\n';
  c->hdrs_len = need;
  if (ieq(name, nlen, "content-type"))
    c->has_type = 1;
  else if (ieq(name, nlen, "content-length"))
    c->has_length = 1;
  return 0;
}

/* res:header(name, value) -> res. The name must be a token and the value
   must hold no CR, LF or NUL: a handler cannot be made to split the
   response by what a client sent. Transfer-Encoding and Connection are
   eddy's to set. */
static int res_header(lua_State *L) {
  hconn_t *c = check_handling(L);
  size_t nlen, vlen;
  const char *name = luaL_checklstring(L, 2, &nlen);
  const char *value = luaL_checklstring(L, 3, &vlen);
  if (!is_token(name, nlen))
    return luaL_argerror(L, 2, "not a header name");
  for (size_t i = 0; i < vlen; i++)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
      return luaL_argerror(L, 3, "CR, LF or NUL in a header value");
  if (ieq(name, nlen, "transfer-encoding") || ieq(name, nlen, "connection"))
    return luaL_argerror(L, 2, "eddy sets this header itself");
  if (c->head_sent)
    return luaL_error(L, "the response has started: too late for a header");
  if (append_header(c, name, nlen, value, vlen) != 0)
    return luaL_error(L, "out of memory");
  lua_settop(L, 1);
  return 1;
}

/* res:send([body]) -> res, or nil, err: the whole response at once. */
static int res_send(lua_State *L) {
  hconn_t *c = check_handling(L);
  size_t len = 0;
  const char *body = luaL_optlstring(L, 2, "", &len);
  if (c->finished)
    return luaL_error(L, "the response was already sent");
  if (c->head_sent)
    return luaL_error(L, "the response has started: use write, then finish");
  return write_tail(L, c, send_whole(c, body, len));
}

/* Starts a streamed response: the head, chunked unless the handler set a
   length (or the client speaks HTTP/1.0, which then reads to the close). */
static int start_stream(hconn_t *c) {
  char small[1024];
  size_t need = 256 + c->hdrs_len;
  char *head = need <= sizeof small ? small : malloc(need);
  if (head == NULL)
    return EDDY_ENOMEM;
  c->chunked_out = !c->has_length && c->rq->req.minor == 1 && !bodiless(c->status);
  if (!c->chunked_out && !c->has_length)
    c->keep_alive = 0;
  size_t n = build_head(c, head, c->chunked_out ? -1 : -2);
  uv_buf_t buf = uv_buf_init(head, (unsigned)n);
  int rc = put(c, &buf, 1);
  if (head != small)
    free(head);
  c->head_sent = 1;
  return rc;
}

/* res:write(data) -> res, or nil, err: a piece of a streamed response;
   waits while the client is slow. */
static int res_write(lua_State *L) {
  hconn_t *c = check_handling(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (c->finished)
    return luaL_error(L, "the response was already sent");
  int rc = 0;
  if (!c->head_sent)
    rc = start_stream(c);
  if (rc == 0 && len > 0 && !(c->rq->req.flags & EDDY__HTTP_HEAD) &&
      !bodiless(c->status)) {
    if (c->chunked_out) {
      char size[24];
      int sn = sprintf(size, "%zx\r\n", len);
      uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)sn),
                          uv_buf_init((char *)data, (unsigned)len),
                          uv_buf_init("\r\n", 2)};
      rc = put(c, bufs, 3);
    } else {
      uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
      rc = put(c, &buf, 1);
    }
  }
  return write_tail(L, c, rc);
}

/* Ends the response: the last chunk, or an empty body when the handler
   sent nothing. Returns 0 or an error. */
static int finish_response(hconn_t *c) {
  if (c->finished)
    return 0;
  c->finished = 1;
  if (c->write_failed)
    return EDDY_ECLOSED; /* end_request closes instead */
  if (!c->head_sent)
    return send_whole(c, "", 0);
  if (c->chunked_out && !(c->rq->req.flags & EDDY__HTTP_HEAD) &&
      !bodiless(c->status)) {
    uv_buf_t buf = uv_buf_init("0\r\n\r\n", 5);
    return put(c, &buf, 1);
  }
  return 0;
}

/* _send_head(res, length) -> res: the head of a response whose body of
   length bytes follows by _sendfile. */
static int res_send_head(lua_State *L) {
  hconn_t *c = check_handling(L);
  int64_t length = (int64_t)luaL_checknumber(L, 2);
  if (c->head_sent)
    return luaL_error(L, "the response has started");
  char small[1024];
  size_t need = 256 + c->hdrs_len;
  char *head = need <= sizeof small ? small : malloc(need);
  if (head == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  size_t n = build_head(c, head, length);
  uv_buf_t buf = uv_buf_init(head, (unsigned)n);
  int rc = put(c, &buf, 1);
  if (head != small)
    free(head);
  c->head_sent = 1;
  if ((c->rq->req.flags & EDDY__HTTP_HEAD) || bodiless(c->status) || length == 0)
    c->finished = 1;
  return write_tail(L, c, rc);
}

static void sendfile_detach(eddy__task_t *t) {
  hconn_t *c = t->wait_data;
  if (c->sendfile) {
    sendfile_abandon(c);
    c->keep_alive = 0; /* the body was cut short */
  }
}

static const eddy__wait_ops_t sendfile_ops = {"http sendfile", sendfile_detach,
                                              NULL};

static void on_sent(eddy__sendfile_t *op, int status) {
  sendfile_wait_t *w = (sendfile_wait_t *)op;
  if (w->conn != NULL && w->conn->sendfile == op)
    w->conn->sendfile = NULL;
  if (eddy__waiter_is_current(w->waiter)) {
    eddy__task_t *t = w->waiter.task;
    lua_State *co = eddy__task_wake_begin(t);
    if (status == 0) {
      lua_pushboolean(co, 1);
      eddy__task_wake_end(t, 1);
    } else {
      eddy__task_wake_end(t, eddyL_error(co, status));
    }
  }
  free(w);
}

static const eddy__wait_ops_t drain_ops = {"http write", NULL, NULL};

/* _drain(res) -> true once everything written so far has gone, or nil,
   err: what must come before a sendfile. */
static int res_drain(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  hconn_t *c = check_handling(L);
  if (c->state == C_CLOSED)
    return eddyL_error(L, EDDY_ECLOSED);
  eddy__stream_uncork(&c->stream);
  c->stream.wlow = c->server->limits.write_buffer / 2;
  if (c->stream.wqueued == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  eddy__task_t *t = eddyL_begin_wait(L, rt, &drain_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  c->stream.wlow = 0;
  eddy__task_wait(t, &drain_ops, c, c->server->limits.write_timeout_ms);
  eddy__waitq_push(&c->writers, t);
  return eddy__task_yield(&rt->sched, L);
}

/* _sendfile(res, fd, offset, length) -> true, or nil, err: the body from a
   file, with sendfile(2), after the head (_send_head) has gone (_drain). */
static int res_sendfile(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  hconn_t *c = check_handling(L);
  int fd = (int)luaL_checkinteger(L, 2);
  int64_t offset = (int64_t)luaL_checknumber(L, 3);
  int64_t length = (int64_t)luaL_checknumber(L, 4);
  if (c->state == C_CLOSED)
    return eddyL_error(L, EDDY_ECLOSED);
  if (c->finished || length == 0) {
    c->finished = 1;
    lua_pushboolean(L, 1);
    return 1;
  }
  eddy__task_t *t = eddyL_begin_wait(L, rt, &sendfile_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  sendfile_wait_t *w = malloc(sizeof *w);
  if (w == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  w->conn = c;
  c->sent += (uint64_t)length;
  int rc = eddy__stream_sendfile(&c->stream, &w->op, fd, offset, length,
                                 on_sent);
  if (rc != 1) {
    free(w);
    c->finished = rc == 0;
    if (rc != 0)
      c->keep_alive = 0;
    if (rc == 0) {
      lua_pushboolean(L, 1);
      return 1;
    }
    return eddyL_error(L, rc);
  }
  c->finished = 1;
  c->sendfile = &w->op;
  eddy__task_wait(t, &sendfile_ops, c, c->server->limits.write_timeout_ms);
  w->waiter = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

/* res:finish() -> res: ends a streamed response (the handler's return
   does it too). */
static int res_finish(lua_State *L) {
  hconn_t *c = check_handling(L);
  return write_tail(L, c, finish_response(c));
}

/* _has_type(res) -> whether the handler set Content-Type. */
static int res_has_type(lua_State *L) {
  lua_pushboolean(L, check_handling(L)->has_type);
  return 1;
}

/* res:started() -> whether the head has gone out. */
static int res_started(lua_State *L) {
  lua_pushboolean(L, check_conn(L)->head_sent);
  return 1;
}

/* ======================================================================= */
/* Reading requests */

/* A complete status reply for a request that never reaches a handler;
   the connection then closes. */
static void refuse(hconn_t *c, int status) {
  c->stream.rt->counters.http[status / 100 % 6]++;
  char buf[256];
  int n = sprintf(buf, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n",
                  status, eddy__http_reason(status), date_line(c->server));
  uv_buf_t b = uv_buf_init(buf, (unsigned)n);
  put(c, &b, 1);
  conn_close(c);
}

/* Looks for the next request head in the buffer. Returns 1 (parsed, the
   head copied out and consumed), 0 (more bytes needed), or -status after
   refusing the request. */
static int take_head(hconn_t *c) {
  eddy__rbuf_t *b = &c->stream.rbuf;
  /* A client may send empty lines between requests (RFC 9112, 2.2). */
  while (c->scan == 0 && eddy__rbuf_len(b) >= 2 &&
         eddy__rbuf_data(b)[0] == '\r' && eddy__rbuf_data(b)[1] == '\n')
    eddy__rbuf_consume(b, 2);
  size_t len = eddy__rbuf_len(b);
  if (len == 0)
    return 0;
  const limits_t *lim = &c->server->limits;
  long n = eddy__http_head_end(eddy__rbuf_data(b), len, &c->scan, lim->max_head);
  if (n == 0)
    return 0;
  if (n < 0) {
    refuse(c, (int)-n);
    return (int)n;
  }
  c->scan = 0;
  eddy__http_header_t tmp[MAX_HEADERS_LIMIT];
  eddy__http_request_t req;
  req.headers = tmp;
  int rc = eddy__http_parse_request(eddy__rbuf_data(b), (size_t)n, &req,
                                    lim->max_headers);
  if (rc != 0) {
    refuse(c, -rc);
    return rc;
  }
  /* Keep the head and its headers apart from the read buffer, which the
     body will move. */
  size_t hsize = req.nheaders * sizeof tmp[0];
  hreq_t *rq = malloc(sizeof *rq + hsize + (size_t)n);
  if (rq == NULL) {
    refuse(c, 503);
    return -503;
  }
  eddy__http_header_t *headers = (eddy__http_header_t *)(rq + 1);
  char *head = (char *)headers + hsize;
  memcpy(head, eddy__rbuf_data(b), (size_t)n);
  ptrdiff_t shift = head - eddy__rbuf_data(b);
  for (size_t i = 0; i < req.nheaders; i++) {
    headers[i] = tmp[i];
    headers[i].name += shift;
    headers[i].value += shift;
  }
  rq->req = req;
  rq->req.headers = headers;
  rq->req.method += shift;
  rq->req.target += shift;
  if (rq->req.upgrade)
    rq->req.upgrade += shift;
  eddy__rbuf_consume(b, (size_t)n);
  c->rq = rq;

  if (rq->req.content_length > lim->max_body) {
    refuse(c, 413);
    return -413;
  }
  rq->body_left = rq->req.content_length > 0 ? rq->req.content_length : 0;
  rq->body_done = !(rq->req.flags & EDDY__HTTP_CHUNKED) && rq->body_left == 0;
  memset(&rq->chunked, 0, sizeof rq->chunked);
  rq->body_read = 0;
  rq->continue_sent = 0;
  c->status = 200;
  c->sent = 0;
  c->hdrs_len = 0;
  c->has_type = c->has_length = 0;
  c->head_sent = c->chunked_out = c->finished = 0;
  c->write_failed = 0;
  c->keep_alive = (rq->req.flags & EDDY__HTTP_KEEP_ALIVE) && !c->server->closed;
  c->state = C_HANDLING;
  return 1;
}

/* Pushes what next_request answers for a parsed request: method, path
   (percent-decoded). Returns the count, or 0 after refusing it. */
static int push_request(lua_State *L, hconn_t *c) {
  const char *path = c->rq->req.target;
  size_t plen = c->rq->req.path_len;
  lua_pushlstring(L, c->rq->req.method, c->rq->req.method_len);
  if (memchr(path, '%', plen) == NULL) {
    lua_pushlstring(L, path, plen);
    return 2;
  }
  char small[512];
  char *dst = plen <= sizeof small ? small : malloc(plen);
  long n = dst ? eddy__http_unescape(path, plen, dst) : -1;
  if (n >= 0)
    lua_pushlstring(L, dst, (size_t)n);
  if (dst != small)
    free(dst);
  if (n < 0) {
    lua_pop(L, 1);
    refuse(c, 400);
    return 0;
  }
  return 2;
}

static const eddy__wait_ops_t head_ops;
static int end_request(hconn_t *c);

/* The timeout of the wait for the next head: the keep-alive timeout while
   nothing of it has come, else what is left of the header timeout. */
static int64_t head_timeout(hconn_t *c) {
  const limits_t *lim = &c->server->limits;
  if (eddy__rbuf_len(&c->stream.rbuf) == 0 && c->scan == 0)
    return c->server->closed && lim->keepalive_timeout_ms > FRESH_GRACE_MS
               ? FRESH_GRACE_MS
               : lim->keepalive_timeout_ms;
  uint64_t now = uv_now(&c->stream.rt->loop);
  if (c->head_started == 0)
    c->head_started = now;
  int64_t left = lim->header_timeout_ms - (int64_t)(now - c->head_started);
  return left > 0 ? left : 0;
}

/* Answers a waiting next_request, or leaves it waiting. */
static int try_head(hconn_t *c, lua_State *L) {
  int rc = take_head(c);
  if (rc == 0) {
    if (c->stream.rerr)
      return eddyL_error(L, c->stream.rerr);
    return 0;
  }
  if (rc < 0)
    return eddyL_error(L, EDDY_EINVAL);
  c->head_started = 0;
  c->served++;
  int n = push_request(L, c);
  return n > 0 ? n : eddyL_error(L, EDDY_EINVAL);
}

static void head_timed_out(eddy__task_t *t) {
  hconn_t *c = t->wait_data;
  c->reader.task = NULL;
  /* Bytes of a head came but not all of it in time: 408. An idle
     keep-alive connection just closes. */
  if (eddy__rbuf_len(&c->stream.rbuf) > 0 && c->state == C_WAIT_HEAD)
    refuse(c, 408);
  else
    conn_close(c);
}

static const eddy__wait_ops_t head_ops = {"http request", head_timed_out, NULL};

/* _next(res) -> method, path of the next request, after ending the one
   before; or nil, err ("closed", "timeout", "invalid argument" for a
   request that was refused with a status). */
static int res_next(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  hconn_t *c = check_conn(L);
  if (c->state == C_HANDLING && !end_request(c))
    return eddyL_error(L, EDDY_ECLOSED);
  if (c->state == C_CLOSED || c->state == C_UPGRADED)
    return eddyL_error(L, EDDY_ECLOSED);
  if (c->server->closed && eddy__rbuf_len(&c->stream.rbuf) == 0 &&
      c->served > 0) {
    conn_close(c); /* a graceful stop: no new requests on old connections */
    return eddyL_error(L, EDDY_ECLOSED);
  }
  c->state = C_WAIT_HEAD;
  int n = try_head(c, L);
  if (n > 0) {
    eddy__stream_settle(&c->stream);
    return n;
  }
  /* Before waiting, everything answered so far goes out. */
  eddy__stream_uncork(&c->stream);
  eddy__stream_settle(&c->stream);
  int64_t ms = head_timeout(c);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &head_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int rc = eddy__stream_read_start(&c->stream);
  if (rc != 0)
    return eddyL_error(L, rc);
  eddy__task_wait(t, &head_ops, c, ms);
  c->reader = eddy__waiter_of(t);
  c->wait_kind = W_HEAD;
  return eddy__task_yield(&rt->sched, L);
}

/* ======================================================================= */
/* Reading bodies */

static void send_continue(hconn_t *c) {
  if (!(c->rq->req.flags & EDDY__HTTP_EXPECT) || c->rq->continue_sent || c->head_sent)
    return;
  c->rq->continue_sent = 1;
  uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
  put(c, &b, 1);
  eddy__stream_uncork(&c->stream);
}

/* Takes up to max bytes of body from the buffer. Pushes a string, or nil at
   the end of the body, or nil, err; returns the count, 0 when it must wait. */
static int try_body(hconn_t *c, lua_State *L, size_t max) {
  eddy__rbuf_t *b = &c->stream.rbuf;
  if (c->rq->body_done) {
    lua_pushnil(L);
    return 1;
  }
  size_t len = eddy__rbuf_len(b);
  size_t n = 0;
  if (c->rq->req.flags & EDDY__HTTP_CHUNKED) {
    size_t used = 0, out = 0;
    char *data = (char *)eddy__rbuf_data(b);
    int rc = eddy__http_chunked_decode(&c->rq->chunked, data, len < max ? len : max,
                                       &used, &out);
    if (rc < 0) {
      c->keep_alive = 0;
      if (!c->head_sent)
        c->status = 400;
      return eddyL_error(L, EDDY_EINVAL);
    }
    if (out > 0)
      lua_pushlstring(L, data, out);
    eddy__rbuf_consume(b, used);
    if (rc == 1)
      c->rq->body_done = 1;
    n = out;
    if (out == 0 && rc == 1) {
      lua_pushnil(L);
      return 1;
    }
  } else {
    n = len < max ? len : max;
    if ((int64_t)n > c->rq->body_left)
      n = (size_t)c->rq->body_left;
    if (n > 0) {
      lua_pushlstring(L, eddy__rbuf_data(b), n);
      eddy__rbuf_consume(b, n);
      c->rq->body_left -= (int64_t)n;
      if (c->rq->body_left == 0)
        c->rq->body_done = 1;
    }
  }
  if (n > 0) {
    c->rq->body_read += (int64_t)n;
    if (c->rq->body_read > c->server->limits.max_body) {
      lua_pop(L, 1);
      c->keep_alive = 0;
      if (!c->head_sent)
        c->status = 413;
      return eddyL_error(L, EDDY_ETOOLARGE);
    }
    return 1;
  }
  if (c->stream.rerr)
    return eddyL_error(L, c->stream.rerr);
  return 0;
}

static void body_detach(eddy__task_t *t) {
  hconn_t *c = t->wait_data;
  c->reader.task = NULL;
  c->keep_alive = 0; /* what is left of the body is unknown */
}

static const eddy__wait_ops_t body_ops = {"http body", body_detach, NULL};

/* _read(res[, max]) -> the next piece of the request body, nil at its end,
   or nil, err ("timeout", "closed", "too large", "invalid argument" for a
   malformed chunked body). */
static int res_read(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  hconn_t *c = check_conn(L);
  lua_Integer max = luaL_optinteger(L, 2, 65536);
  luaL_argcheck(L, max > 0, 2, "must be > 0");
  if (c->state != C_HANDLING)
    return luaL_error(L, "no request is being handled");
  if (eddy__waiter_is_current(c->reader))
    return luaL_error(L, "another task is reading this request's body");
  send_continue(c);
  int n = try_body(c, L, (size_t)max);
  if (n > 0) {
    eddy__stream_settle(&c->stream);
    return n;
  }
  eddy__task_t *t = eddyL_begin_wait(L, rt, &body_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int rc = eddy__stream_read_start(&c->stream);
  if (rc != 0)
    return eddyL_error(L, rc);
  eddy__task_wait(t, &body_ops, c, c->server->limits.body_timeout_ms);
  c->reader = eddy__waiter_of(t);
  c->wait_kind = W_BODY;
  c->body_max = (size_t)max;
  return eddy__task_yield(&rt->sched, L);
}

static void on_stream_read(eddy__stream_t *s) {
  hconn_t *c = (hconn_t *)s;
  if (!eddy__waiter_is_current(c->reader)) {
    eddy__stream_read_stop(s);
    return;
  }
  lua_State *L = s->rt->L;
  int n = c->wait_kind == W_HEAD ? try_head(c, L) : try_body(c, L, c->body_max);
  if (n == 0) {
    /* The first bytes of a head: the idle wait becomes a wait for the
       rest, under the header timeout (slowloris). */
    if (c->wait_kind == W_HEAD && c->head_started == 0 &&
        eddy__rbuf_len(&s->rbuf) > 0)
      eddy__task_retime(c->reader.task, head_timeout(c));
    return;
  }
  if (!eddy__waiter_is_current(c->reader)) {
    lua_pop(L, n); /* refusing the request closed the connection, which
                      already answered the reader */
    return;
  }
  eddy__task_t *t = c->reader.task;
  c->reader.task = NULL;
  lua_State *co = eddy__task_wake_begin(t);
  lua_xmove(L, co, n);
  eddy__task_wake_end(t, n);
}

static void on_stream_drain(eddy__stream_t *s) {
  hconn_t *c = (hconn_t *)s;
  eddy__task_t *t;
  while ((t = eddy__waitq_pop(&c->writers)) != NULL) {
    if (s->werr) {
      wake_error(t, s->werr);
    } else {
      lua_State *co = eddy__task_wake_begin(t);
      lua_pushboolean(co, 1);
      eddy__task_wake_end(t, 1);
    }
  }
}

/* ======================================================================= */
/* Between requests */

/* Ends the request being handled: the response is completed, what is left
   of a small body is read away (a big one closes the connection instead),
   and when another request is already here its answer is corked, to share
   a write. Returns whether the connection can take another request. */
static int end_request(hconn_t *c) {
  if (c->state == C_CLOSED)
    return 0;
  finish_response(c);
  if (!c->rq->body_done) {
    eddy__rbuf_t *b = &c->stream.rbuf;
    if (c->rq->req.flags & EDDY__HTTP_CHUNKED) {
      size_t used, out;
      char *data = (char *)eddy__rbuf_data(b);
      int rc = eddy__http_chunked_decode(&c->rq->chunked, data, eddy__rbuf_len(b),
                                         &used, &out);
      eddy__rbuf_consume(b, used);
      c->rq->body_done = rc == 1;
    } else if ((size_t)c->rq->body_left <= eddy__rbuf_len(b)) {
      eddy__rbuf_consume(b, (size_t)c->rq->body_left);
      c->rq->body_done = 1;
    }
    if (!c->rq->body_done)
      c->keep_alive = 0; /* not here yet: closing is cheaper than waiting */
  }
  request_free(c);
  c->state = C_WAIT_HEAD;
  if (!c->keep_alive || c->stream.werr || c->write_failed) {
    conn_close(c);
    return 0;
  }
  if (eddy__rbuf_len(&c->stream.rbuf) > 0)
    eddy__stream_cork(&c->stream);
  else
    eddy__stream_uncork(&c->stream);
  return 1;
}

/* _fail(res, status): a handler failed; answer with status if nothing was
   sent yet, else cut the connection (the client cannot tell otherwise). */
static int res_fail(lua_State *L) {
  hconn_t *c = check_handling(L);
  int status = (int)luaL_optinteger(L, 2, 500);
  if (c->state == C_CLOSED)
    return 0;
  if (c->head_sent) {
    c->finished = 1;
    c->keep_alive = 0;
    conn_close(c);
    return 0;
  }
  c->status = status;
  c->hdrs_len = 0;
  c->has_type = c->has_length = 0;
  c->keep_alive = 0;
  send_whole(c, eddy__http_reason(status), strlen(eddy__http_reason(status)));
  return 0;
}

/* ======================================================================= */
/* The request, for req's lazy fields */

/* The request's head stays until the next one: a WebSocket handler can
   still read it. */
static int has_request(const hconn_t *c) {
  return c->rq != NULL && c->state != C_CLOSED;
}

static int res_req_target(lua_State *L) {
  hconn_t *c = check_conn(L);
  if (!has_request(c))
    return 0;
  lua_pushlstring(L, c->rq->req.target, c->rq->req.target_len);
  return 1;
}

static int res_req_query(lua_State *L) {
  hconn_t *c = check_conn(L);
  if (!has_request(c) || c->rq->req.path_len == c->rq->req.target_len)
    return 0;
  lua_pushlstring(L, c->rq->req.target + c->rq->req.path_len + 1,
                  c->rq->req.target_len - c->rq->req.path_len - 1);
  return 1;
}

/* _header(res, name) -> the value of a request header, or nil. */
static int res_req_header(lua_State *L) {
  hconn_t *c = check_conn(L);
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  if (!has_request(c))
    return 0;
  const eddy__http_header_t *h = eddy__http_find(&c->rq->req, name, len);
  if (h == NULL)
    return 0;
  lua_pushlstring(L, h->value, h->value_len);
  return 1;
}

/* _headers(res) -> { lowercased name = value, ... }; repeated headers are
   joined with ", " (RFC 9110 5.3). */
static int res_req_headers(lua_State *L) {
  hconn_t *c = check_conn(L);
  lua_createtable(L, 0, has_request(c) ? (int)c->rq->req.nheaders : 0);
  if (!has_request(c))
    return 1;
  char name[256];
  for (size_t i = 0; i < c->rq->req.nheaders; i++) {
    const eddy__http_header_t *h = &c->rq->req.headers[i];
    size_t n = h->name_len < sizeof name ? h->name_len : sizeof name;
    for (size_t k = 0; k < n; k++) {
      char ch = h->name[k];
      name[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    lua_pushlstring(L, name, n);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushlstring(L, h->value, h->value_len);
    } else {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, h->value, h->value_len);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
  return 1;
}

static int res_req_version(lua_State *L) {
  hconn_t *c = check_conn(L);
  lua_pushstring(L, c->rq->req.minor == 1 ? "1.1" : "1.0");
  return 1;
}

/* What TLS agreed on for this connection (see eddyL_tls_info), or nil. */
static int res_tls(lua_State *L) {
  hconn_t *c = check_conn(L);
  if (c->state == C_CLOSED) {
    lua_pushnil(L);
    return 1;
  }
  return eddyL_tls_info(L, &c->stream);
}

static int res_peer_addr(lua_State *L) {
  hconn_t *c = check_conn(L);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (c->state == C_CLOSED)
    return eddyL_error(L, EDDY_ECLOSED);
  return eddyL_pushname(
      L, uv_tcp_getpeername(&c->stream.tcp, (struct sockaddr *)&ss, &len), &ss);
}

static int res_tostring(lua_State *L) {
  hconn_t **box = eddyL_toobject(L, 1);
  lua_pushfstring(L, "eddy.http.response (%s)",
                  *box && (*box)->state != C_CLOSED ? "open" : "closed");
  return 1;
}

/* ======================================================================= */
/* WebSocket upgrades */

static int header_is(const hconn_t *c, const char *name, const char *value) {
  const eddy__http_header_t *h = eddy__http_find(&c->rq->req, name, strlen(name));
  return h != NULL && ieq(h->value, h->value_len, value);
}

/* _websocket(res[, opts]) -> ws: answers the upgrade (101) and hands the
   connection to a WebSocket session; or nil, err after refusing a request
   that is not a valid upgrade (400, or 426 for another version). */
static int res_websocket(lua_State *L) {
  hconn_t *c = check_conn(L);
  if (c->state != C_HANDLING || c->head_sent)
    return luaL_error(L, "no upgrade request is being handled");
  const eddy__http_header_t *key =
      eddy__http_find(&c->rq->req, "sec-websocket-key", 17);
  int ok = (c->rq->req.flags & EDDY__HTTP_UPGRADE) && c->rq->req.minor == 1 &&
           c->rq->req.method_len == 3 && memcmp(c->rq->req.method, "GET", 3) == 0 &&
           ieq(c->rq->req.upgrade, c->rq->req.upgrade_len, "websocket") &&
           key != NULL && key->value_len == 24;
  if (!ok || !header_is(c, "sec-websocket-version", "13")) {
    c->keep_alive = 0;
    if (ok) { /* a version we do not speak: say which we do */
      c->status = 426;
      append_header(c, "Sec-WebSocket-Version", 21, "13", 2);
    } else {
      c->status = 400;
    }
    send_whole(c, "not a websocket upgrade\n", 24);
    return eddyL_error(L, EDDY_EINVAL);
  }
  char accept[29];
  eddy__ws_accept(key->value, key->value_len, accept);
  char head[512];
  char *p = PUT_LITERAL(head, "HTTP/1.1 101 Switching Protocols\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: ");
  memcpy(p, accept, 28);
  p += 28;
  p = PUT_LITERAL(p, "\r\n");
  size_t n = (size_t)(p - head);
  uv_buf_t bufs[3] = {uv_buf_init(head, (unsigned)n),
                      uv_buf_init(c->hdrs ? c->hdrs : "", (unsigned)c->hdrs_len),
                      uv_buf_init("\r\n", 2)};
  int rc = put(c, bufs, 3);
  if (rc != 0)
    return eddyL_error(L, rc);
  c->head_sent = c->finished = 1;
  c->keep_alive = 0;
  c->state = C_UPGRADED;
  return eddyL_ws_new(L, &c->stream, 0, 2);
}

/* ======================================================================= */
/* Servers */

static void push_conn(lua_State *L, hconn_t *c) {
  hconn_t **box = eddyL_newobject(L, &res_class, sizeof *box);
  *box = c;
  c->lua_held = 1;
}

static int below_limit(const hserver_t *srv) {
  return srv->limits.max_connections == 0 ||
         srv->nconns < srv->limits.max_connections;
}

/* Accepts the waiting connection and runs the connection loop for it. */
static void serve_one(hserver_t *srv) {
  eddy_runtime_t *rt = srv->listener.rt;
  lua_State *L = rt->L;
  hconn_t *c = calloc(1, sizeof *c);
  int err = c ? eddy__stream_init(rt, &c->stream) : EDDY_ENOMEM;
  if (err != 0) {
    free(c);
    eddy__log(rt, EDDY_LOG_WARN, "http: accept failed: %s", eddy_strerror(err));
    return;
  }
  c->stream.on_read = on_stream_read;
  c->stream.on_drain = on_stream_drain;
  c->stream.on_close = on_stream_close;
  c->stream.wlow = srv->limits.write_buffer / 2;
  c->server = srv;
  c->state = C_WAIT_HEAD;
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  err = eddy__listener_accept(&srv->listener, &c->stream);
  if (err == 0 && srv->tls != NULL)
    err = eddy__tls_start(&c->stream, srv->tls, NULL, NULL,
                          srv->handshake_ms, NULL);
  if (err != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->stream.tcp, 1);
  eddy__getref(&rt->refs, L, srv->loop_ref);
  push_conn(L, c);
  eddy__task_t *t = eddy__task_spawn(&rt->sched, L, 1);
  if (t == NULL) {
    conn_close(c);
    return;
  }
  c->task_held = 1;
  t->on_done = conn_task_done;
  t->done_data = c;
}

static void accept_more(hserver_t *srv) {
  while (srv->listener.pending && !srv->closed && below_limit(srv))
    serve_one(srv);
}

static void on_connection(eddy__listener_t *l, int status) {
  if (status != 0) {
    eddy__log(l->rt, EDDY_LOG_WARN, "http: accept failed: %s",
              eddy_strerror(status));
    return;
  }
  accept_more((hserver_t *)l);
}

/* A graceful stop, or close: no new connections; idle keep-alive ones
   close now, busy ones after their current response, and fresh ones
   after their first (its bytes may be on the way: a request on a fresh
   connection must not fail), if it comes within FRESH_GRACE_MS. */
static void server_close(hserver_t *srv) {
  if (srv->closed)
    return;
  srv->closed = 1;
  eddy__listener_close(&srv->listener);
  for (hconn_t *c = srv->conns, *next; c != NULL; c = next) {
    next = c->next;
    int idle = c->state == C_WAIT_HEAD && eddy__rbuf_len(&c->stream.rbuf) == 0;
    if (idle && c->served > 0) {
      conn_close(c);
      continue;
    }
    c->keep_alive = 0;
    if (idle && c->wait_kind == W_HEAD &&
        eddy__waiter_is_current(c->reader))
      eddy__task_retime(c->reader.task, FRESH_GRACE_MS);
  }
}

static void on_listener_close(eddy__listener_t *l) {
  hserver_t *srv = (hserver_t *)l;
  l->closing = 2;
  if (l->rt->L != NULL)
    eddy__unref(&l->rt->refs, l->rt->L, srv->loop_ref);
  srv->loop_ref = EDDY__NOREF;
  server_close(srv);
  maybe_free_server(srv);
}

static hserver_t *check_server(lua_State *L) {
  hserver_t **box = eddyL_checkobject(L, 1, &server_class);
  return *box;
}

static int64_t opt_ms(lua_State *L, int idx, const char *field, double def) {
  return eddy__timeout_ms(eddyL_optfield_number(L, idx, field, def));
}

static void read_limits(lua_State *L, int idx, limits_t *lim) {
  lim->max_head = (size_t)eddyL_optfield_number(L, idx, "max_header_size", 8192);
  lim->max_headers = (size_t)eddyL_optfield_number(L, idx, "max_headers", 100);
  lim->max_body = (int64_t)eddyL_optfield_number(L, idx, "max_body", 1 << 20);
  lim->header_timeout_ms = opt_ms(L, idx, "header_timeout", 10);
  lim->body_timeout_ms = opt_ms(L, idx, "body_timeout", 30);
  lim->keepalive_timeout_ms = opt_ms(L, idx, "keepalive_timeout", 75);
  lim->write_timeout_ms = opt_ms(L, idx, "write_timeout", 30);
  lim->write_buffer = (size_t)eddyL_optfield_number(L, idx, "write_buffer", 65536);
  lim->max_connections =
      (int)eddyL_optfield_number(L, idx, "max_connections", 0);
  if (lim->max_head < 64 || lim->max_headers < 1 ||
      lim->max_headers > MAX_HEADERS_LIMIT || lim->max_body < 0)
    luaL_error(L, "bad http limits (max_header_size >= 64, 1 <= "
                  "max_headers <= %d, max_body >= 0)", MAX_HEADERS_LIMIT);
}

/* listen(ip, port, loop, opts) -> server, or nil, err. Each connection
   runs loop(res) in a task of its own. */
static int http_listen(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  struct sockaddr_storage addr;
  if (eddy__addr_parse(ip, port, &addr) != 0)
    return luaL_error(L, "bad address: %s port %d", ip, port);
  limits_t lim;
  read_limits(L, 4, &lim);
  int backlog = (int)eddyL_optfield_number(L, 4, "backlog", 511);
  unsigned flags = 0;
  if (eddyL_optfield_boolean(L, 4, "reuseport", 1))
    flags |= EDDY__LISTEN_REUSEPORT;
  if (eddyL_optfield_boolean(L, 4, "ipv6only", 0))
    flags |= EDDY__LISTEN_IPV6ONLY;
  eddy__tls_config_t *tls;
  uint64_t hs_ms;
  char reason[EDDY__TLS_REASON];
  if (eddyL_tls_listen(L, 4, &tls, &hs_ms, reason) != 0)
    return eddyL_tls_fail(L, EDDY_ETLS, reason);

  hserver_t **box = eddyL_newobject(L, &server_class, sizeof *box);
  *box = NULL;
  hserver_t *srv = calloc(1, sizeof *srv);
  if (srv == NULL) {
    eddy__tls_config_unref(tls);
    return eddyL_error(L, EDDY_ENOMEM);
  }
  srv->tls = tls;
  srv->handshake_ms = hs_ms;
  srv->limits = lim;
  srv->loop_ref = EDDY__NOREF;
  srv->listener.on_connection = on_connection;
  srv->listener.on_close = on_listener_close;
  int err = eddy__listener_start(rt, &srv->listener, (struct sockaddr *)&addr,
                                 backlog, flags);
  if (err != 0) {
    srv->closed = 1;
    if (!srv->listener.closing) {
      eddy__tls_config_unref(srv->tls);
      free(srv);
    }
    return eddyL_error(L, err);
  }
  lua_pushvalue(L, 3);
  srv->loop_ref = eddy__ref(&rt->refs, L);
  srv->lua_held = 1;
  *box = srv;
  return 1;
}

static int server_close_m(lua_State *L) {
  hserver_t *srv = check_server(L);
  int was_open = srv != NULL && !srv->closed;
  if (srv)
    server_close(srv);
  lua_pushboolean(L, was_open);
  return 1;
}

static int server_port(lua_State *L) {
  hserver_t *srv = check_server(L);
  if (srv == NULL || srv->closed)
    return eddyL_error(L, EDDY_ECLOSED);
  lua_pushinteger(L, eddy__listener_port(&srv->listener));
  return 1;
}

/* server:reload_tls(tls_opts) -> true, or nil, err, reason: new
   connections get the new certificate; open ones keep theirs. */
static int server_reload_tls(lua_State *L) {
  hserver_t *srv = check_server(L);
  if (srv == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  return eddyL_tls_reload(L, &srv->tls, 2);
}

static int server_connections(lua_State *L) {
  hserver_t *srv = check_server(L);
  lua_pushinteger(L, srv ? srv->nconns : 0);
  return 1;
}

/* A server keeps serving without a Lua reference; it ends by close or by
   the runtime's stop. */
static int server_gc(lua_State *L) {
  hserver_t **box = eddyL_toobject(L, 1);
  hserver_t *srv = *box;
  *box = NULL;
  if (srv == NULL)
    return 0;
  srv->lua_held = 0;
  maybe_free_server(srv);
  return 0;
}

/* unescape(s[, plus]) -> the percent-decoded string (with plus, '+' is a
   space, as in a query), or nil for a bad escape. */
static int http_unescape(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int plus = lua_toboolean(L, 2);
  if (memchr(s, '%', len) == NULL && (!plus || memchr(s, '+', len) == NULL)) {
    lua_settop(L, 1);
    return 1;
  }
  luaL_Buffer b;
  char *dst = malloc(2 * len + 1);
  if (dst == NULL)
    return luaL_error(L, "out of memory");
  const char *src = s;
  if (plus) {
    /* '+' is a space before decoding: "%2B" stays a plus. */
    char *tmp = dst + len;
    for (size_t i = 0; i < len; i++)
      tmp[i] = s[i] == '+' ? ' ' : s[i];
    src = tmp;
  }
  long n = eddy__http_unescape(src, len, dst);
  if (n < 0) {
    free(dst);
    return 0;
  }
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, dst, (size_t)n);
  free(dst);
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg http_funcs[] = {
    {"listen", http_listen},
    {"unescape", http_unescape},
    {NULL, NULL},
};

/* res:_outcome() -> status, bytes sent (head included), for access logs. */
static int res_outcome(lua_State *L) {
  hconn_t *c = check_conn(L);
  lua_pushinteger(L, c->status);
  lua_pushnumber(L, (lua_Number)c->sent);
  return 2;
}

static const luaL_Reg res_methods[] = {
    {"status", res_status},
    {"_outcome", res_outcome},
    {"header", res_header},
    {"send", res_send},
    {"write", res_write},
    {"finish", res_finish},
    {"started", res_started},
    {"_next", res_next},
    {"_read", res_read},
    {"_fail", res_fail},
    {"_target", res_req_target},
    {"_query", res_req_query},
    {"_header", res_req_header},
    {"_headers", res_req_headers},
    {"_version", res_req_version},
    {"_peer_addr", res_peer_addr},
    {"_tls", res_tls},
    {"_websocket", res_websocket},
    {"_send_head", res_send_head},
    {"_sendfile", res_sendfile},
    {"_drain", res_drain},
    {"_has_type", res_has_type},
    {NULL, NULL},
};

static const luaL_Reg res_meta[] = {
    {"__gc", conn_gc},
    {"__tostring", res_tostring},
    {NULL, NULL},
};

static const luaL_Reg server_methods[] = {
    {"close", server_close_m},
    {"port", server_port},
    {"connections", server_connections},
    {"reload_tls", server_reload_tls},
    {NULL, NULL},
};

static const luaL_Reg server_meta[] = {
    {"__gc", server_gc},
    {NULL, NULL},
};

int luaopen_eddy_c_http(lua_State *L) {
  eddyL_newclass(L, &res_class, res_methods, res_meta);
  eddyL_newclass(L, &server_class, server_methods, server_meta);
  eddyL_newlib(L, http_funcs);
  eddyL_setmethods(L, &res_class, "Response"); /* http.lua adds to it */
  return 1;
}

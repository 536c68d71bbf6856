/*
 * ws.c: WebSocket sessions for Lua (module eddy.c.ws; the handshakes and
 * rooms are in lua/eddy/ws.lua and lua/eddy/http.lua). A session takes
 * over a stream that an HTTP server connection or a TCP client connection
 * owns: it reads frames as long as it is open (answering pings and close
 * frames even when no task is receiving), keeps whole messages for recv up
 * to a bound, and fails the connection with the close code RFC 6455 names
 * for each fault: 1002 protocol, 1007 bad text, 1009 too big.
 *
 * Memory: a ws_t is freed when its stream has closed and its userdata is
 * gone. The stream's owner frees the stream; the session only borrows it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../core/stream.h"
#include "../core/ws.h"
#include "bindings.h"

#define CLOSE_WAIT_MS 2000 /* how long close waits for the peer's close */

static const eddyL_class_t ws_class = {"eddy.ws"};

/* A whole message kept until a task receives it. */
typedef struct ws_msg_s {
  struct ws_msg_s *next;
  int opcode;
  size_t len;
  char data[];
} ws_msg_t;

typedef struct ws_s {
  eddy__stream_t *stream; /* NULL once it has closed */
  eddy_runtime_t *rt;
  int client;             /* masks what it sends, expects unmasked */
  eddy__waiter_t reader;
  int reader_close;       /* the reader waits for the peer's close frame */
  eddy__waitq_t writers;
  size_t write_buffer;
  uint64_t max_message;
  /* The message being assembled from fragments. */
  int opcode;             /* 0 when none */
  char *frag;
  size_t frag_len;
  size_t frag_cap;
  uint32_t utf8;
  /* Whole messages nobody has received yet. */
  ws_msg_t *q_head;
  ws_msg_t *q_tail;
  size_t q_bytes;
  /* Closing. */
  int close_sent;
  int close_received;
  int close_code;    /* the peer's, or ours when we failed the connection */
  char reason[124];
  uint64_t rng;      /* for client masks */
  int lua_held;
} ws_t;

/* ======================================================================= */
/* Life */

static void maybe_free(ws_t *ws) {
  if (ws->stream == NULL && !ws->lua_held) {
    while (ws->q_head) {
      ws_msg_t *m = ws->q_head;
      ws->q_head = m->next;
      free(m);
    }
    free(ws->frag);
    free(ws);
  }
}

static void wake(eddy__task_t *t, int err, ws_t *ws);
static void wake_reader(ws_t *ws, int err);

/* The stream closed (by either side, or by a stop). */
static void on_layer_close(eddy__stream_t *s) {
  ws_t *ws = s->layer;
  ws->stream = NULL;
  eddy__sched_t *sched = &ws->rt->sched;
  eddy__sched_hold(sched);
  if (eddy__waiter_is_current(ws->reader))
    wake_reader(ws, EDDY_ECLOSED);
  eddy__task_t *t;
  while ((t = eddy__waitq_pop(&ws->writers)) != NULL)
    wake(t, EDDY_ECLOSED, ws);
  eddy__sched_unhold(sched);
  maybe_free(ws);
}

static int is_open(const ws_t *ws) {
  return ws->stream != NULL && !(ws->stream->flags & EDDY__STREAM_CLOSING);
}

/* Pushes nil, err and, once closed, the close code and reason. */
static int push_closed(lua_State *L, ws_t *ws, int err) {
  lua_pushnil(L);
  lua_pushstring(L, eddy_strerror(err));
  if (err != EDDY_ECLOSED || ws->close_code == 0)
    return 2;
  lua_pushinteger(L, ws->close_code);
  lua_pushstring(L, ws->reason);
  return 4;
}

static void wake(eddy__task_t *t, int err, ws_t *ws) {
  lua_State *co = eddy__task_wake_begin(t);
  eddy__task_wake_end(t, push_closed(co, ws, err));
}

/* Ends the reader's wait: a recv learns of the close; a close waiting for
   the peer's answer is done. */
static void wake_reader(ws_t *ws, int err) {
  eddy__task_t *t = ws->reader.task;
  ws->reader.task = NULL;
  if (ws->reader_close) {
    lua_State *co = eddy__task_wake_begin(t);
    lua_pushboolean(co, 1);
    eddy__task_wake_end(t, 1);
  } else {
    wake(t, err, ws);
  }
}

/* ======================================================================= */
/* Sending */

static uint32_t next_random(ws_t *ws) {
  /* xorshift64*, seeded from the kernel: masks need only be unpredictable
     to scripts in a browser, not secret (RFC 6455, 10.3). */
  ws->rng ^= ws->rng >> 12;
  ws->rng ^= ws->rng << 25;
  ws->rng ^= ws->rng >> 27;
  return (uint32_t)((ws->rng * 2685821657736338717ULL) >> 32);
}

/* Writes one frame. Returns 0 or an eddy error. */
static int send_frame(ws_t *ws, int opcode, const char *data, size_t len) {
  if (!is_open(ws))
    return EDDY_ECLOSED;
  uint8_t head[14];
  if (!ws->client) {
    size_t hl = eddy__ws_build_header(head, 1, opcode, len, NULL);
    uv_buf_t bufs[2] = {uv_buf_init((char *)head, (unsigned)hl),
                        uv_buf_init((char *)data, (unsigned)len)};
    return eddy__stream_write(ws->stream, bufs, len ? 2 : 1);
  }
  uint32_t r = next_random(ws);
  uint8_t mask[4];
  memcpy(mask, &r, 4);
  size_t hl = eddy__ws_build_header(head, 1, opcode, len, mask);
  char small[512];
  char *masked = len <= sizeof small ? small : malloc(len);
  if (masked == NULL)
    return EDDY_ENOMEM;
  memcpy(masked, data, len);
  eddy__ws_mask((uint8_t *)masked, len, mask, 0);
  uv_buf_t bufs[2] = {uv_buf_init((char *)head, (unsigned)hl),
                      uv_buf_init(masked, (unsigned)len)};
  int rc = eddy__stream_write(ws->stream, bufs, len ? 2 : 1);
  if (masked != small)
    free(masked);
  return rc;
}

static int send_close(ws_t *ws, int code, const char *reason, size_t rlen) {
  if (ws->close_sent)
    return 0;
  ws->close_sent = 1;
  char body[125];
  size_t n = 0;
  if (code) {
    body[0] = (char)(code >> 8);
    body[1] = (char)code;
    n = 2;
    if (rlen > sizeof body - 2)
      rlen = sizeof body - 2;
    memcpy(body + 2, reason, rlen);
    n += rlen;
  }
  return send_frame(ws, EDDY__WS_CLOSE, body, n);
}

/* Fails the connection (RFC 6455, 7.1.7): our close frame, then the end. */
static void fail(ws_t *ws, int code) {
  if (ws->close_code == 0)
    ws->close_code = code;
  send_close(ws, code, "", 0);
  if (ws->stream)
    eddy__stream_close(ws->stream, 1000);
}

/* ======================================================================= */
/* Receiving */

/* Queues a copy of a whole message for a later recv. */
static int enqueue(ws_t *ws, int opcode, const char *data, size_t len) {
  ws_msg_t *m = malloc(sizeof *m + len);
  if (m == NULL)
    return -1;
  m->next = NULL;
  m->opcode = opcode;
  m->len = len;
  memcpy(m->data, data, len);
  if (ws->q_tail)
    ws->q_tail->next = m;
  else
    ws->q_head = m;
  ws->q_tail = m;
  ws->q_bytes += len;
  return 0;
}

/* Hands a whole message to the waiting task, or queues it. */
static void deliver(ws_t *ws, int opcode, const char *data, size_t len) {
  if (eddy__waiter_is_current(ws->reader) && !ws->reader_close) {
    eddy__task_t *t = ws->reader.task;
    ws->reader.task = NULL;
    lua_State *co = eddy__task_wake_begin(t);
    lua_pushlstring(co, data, len);
    lua_pushstring(co, opcode == EDDY__WS_TEXT ? "text" : "binary");
    eddy__task_wake_end(t, 2);
    return;
  }
  if (enqueue(ws, opcode, data, len) < 0)
    fail(ws, EDDY__WS_INTERNAL);
}

static void on_close_frame(ws_t *ws, const uint8_t *p, size_t len) {
  ws->close_received = 1;
  int code = EDDY__WS_NORMAL;
  if (len == 1) {
    fail(ws, EDDY__WS_PROTOCOL_ERROR);
    return;
  }
  if (len >= 2) {
    code = p[0] << 8 | p[1];
    uint32_t st = 0;
    if (!eddy__ws_valid_close_code(code)) {
      fail(ws, EDDY__WS_PROTOCOL_ERROR);
      return;
    }
    if (eddy__utf8_check(&st, p + 2, len - 2) < 0 || st != 0) {
      fail(ws, EDDY__WS_BAD_DATA);
      return;
    }
    memcpy(ws->reason, p + 2, len - 2);
    ws->reason[len - 2] = '\0';
  }
  ws->close_code = len >= 2 ? code : 1005; /* 1005: no code was given */
  send_close(ws, len >= 2 ? code : 0, "", 0);
  /* A server closes the TCP connection first; a client waits for it, but
     not for ever. */
  eddy__stream_close(ws->stream, ws->client ? CLOSE_WAIT_MS : 1000);
}

/* One data frame's payload (unmasked): into the message in progress. */
static void on_data(ws_t *ws, const eddy__ws_frame_t *f, const char *p) {
  if (f->opcode != EDDY__WS_CONT) {
    if (ws->opcode != 0) {
      fail(ws, EDDY__WS_PROTOCOL_ERROR); /* a new message inside one */
      return;
    }
    ws->opcode = f->opcode;
    ws->utf8 = 0;
    ws->frag_len = 0;
  } else if (ws->opcode == 0) {
    fail(ws, EDDY__WS_PROTOCOL_ERROR); /* a continuation of nothing */
    return;
  }
  if (ws->opcode == EDDY__WS_TEXT &&
      (eddy__utf8_check(&ws->utf8, (const uint8_t *)p, (size_t)f->len) < 0 ||
       (f->fin && ws->utf8 != 0))) {
    fail(ws, EDDY__WS_BAD_DATA);
    return;
  }
  if (f->fin && ws->frag_len == 0) {
    int opcode = ws->opcode; /* a whole message in one frame: no copy */
    ws->opcode = 0;
    deliver(ws, opcode, p, (size_t)f->len);
    return;
  }
  if (ws->frag_len + f->len > ws->max_message) {
    fail(ws, EDDY__WS_TOO_BIG);
    return;
  }
  if (ws->frag_len + f->len > ws->frag_cap) {
    size_t cap = ws->frag_cap ? ws->frag_cap : 4096;
    while (cap < ws->frag_len + f->len)
      cap *= 2;
    char *b = realloc(ws->frag, cap);
    if (b == NULL) {
      fail(ws, EDDY__WS_INTERNAL);
      return;
    }
    ws->frag = b;
    ws->frag_cap = cap;
  }
  memcpy(ws->frag + ws->frag_len, p, (size_t)f->len);
  ws->frag_len += (size_t)f->len;
  if (f->fin) {
    int opcode = ws->opcode;
    ws->opcode = 0;
    deliver(ws, opcode, ws->frag, ws->frag_len);
    ws->frag_len = 0;
    if (ws->frag_cap > 65536) { /* do not keep a big buffer idle */
      free(ws->frag);
      ws->frag = NULL;
      ws->frag_cap = 0;
    }
  }
}

/* Handles every whole frame in the stream's buffer. */
static void process(ws_t *ws) {
  eddy__rbuf_t *b = &ws->stream->rbuf;
  while (is_open(ws) && !ws->close_received) {
    uint8_t *data = (uint8_t *)eddy__rbuf_data(b);
    size_t len = eddy__rbuf_len(b);
    eddy__ws_frame_t f;
    int hl = eddy__ws_parse_header(data, len, !ws->client, ws->max_message, &f);
    if (hl < 0) {
      fail(ws, -hl);
      return;
    }
    if (hl == 0 || len - (size_t)hl < f.len)
      return; /* the rest of the frame is still to come */
    char *payload = (char *)data + hl;
    if (f.masked)
      eddy__ws_mask((uint8_t *)payload, (size_t)f.len, f.mask, 0);
    switch (f.opcode) {
    case EDDY__WS_PING:
      send_frame(ws, EDDY__WS_PONG, payload, (size_t)f.len);
      break;
    case EDDY__WS_PONG:
      break;
    case EDDY__WS_CLOSE:
      on_close_frame(ws, (const uint8_t *)payload, (size_t)f.len);
      break;
    default:
      on_data(ws, &f, payload);
      break;
    }
    if (ws->stream)
      eddy__rbuf_consume(b, (size_t)hl + (size_t)f.len);
  }
}

/* Too many messages wait for a reader: stop reading, so that the peer's
   sends slow down instead of eddy's memory growing. */
static int backlogged(const ws_t *ws) {
  return ws->q_bytes > ws->max_message;
}

/* A graceful stop begins: the peer is told we are going away; its answer
   ends the session, and with it the handler's recv. */
static void on_layer_stop(eddy__stream_t *s) {
  ws_t *ws = s->layer;
  if (ws->close_sent)
    return;
  static const char reason[] = "stopping";
  send_close(ws, EDDY__WS_GOING_AWAY, reason, sizeof reason - 1);
  if (is_open(ws))
    eddy__stream_read_start(ws->stream);
}

static void on_read(eddy__stream_t *s) {
  ws_t *ws = s->layer;
  if (s->rerr) {
    /* The peer went without a close frame: 1006, as RFC 6455 says. */
    if (ws->close_code == 0)
      ws->close_code = 1006;
    eddy__stream_close(s, 0);
    return;
  }
  process(ws);
  if (ws->stream && backlogged(ws))
    eddy__stream_read_stop(ws->stream);
  if (ws->stream && ws->close_received && eddy__waiter_is_current(ws->reader))
    wake_reader(ws, EDDY_ECLOSED);
}

static void on_drain(eddy__stream_t *s) {
  ws_t *ws = s->layer;
  eddy__task_t *t;
  while ((t = eddy__waitq_pop(&ws->writers)) != NULL) {
    if (s->werr) {
      wake(t, s->werr, ws);
    } else {
      lua_State *co = eddy__task_wake_begin(t);
      lua_pushboolean(co, 1);
      eddy__task_wake_end(t, 1);
    }
  }
}

/* ======================================================================= */
/* Lua: the session */

int eddyL_ws_new(lua_State *L, eddy__stream_t *s, int client, int opts_idx) {
  ws_t *ws = calloc(1, sizeof *ws);
  if (ws == NULL)
    return luaL_error(L, "out of memory");
  ws->stream = s;
  ws->rt = s->rt;
  ws->client = client;
  ws->max_message =
      (uint64_t)eddyL_optfield_number(L, opts_idx, "max_message", 1 << 20);
  ws->write_buffer =
      (size_t)eddyL_optfield_number(L, opts_idx, "write_buffer", 65536);
  if (getrandom(&ws->rng, sizeof ws->rng, 0) != sizeof ws->rng || !ws->rng)
    ws->rng = uv_hrtime() | 1;
  s->layer = ws;
  s->on_layer_close = on_layer_close;
  s->on_read = on_read;
  s->on_drain = on_drain;
  s->on_layer_stop = on_layer_stop;
  s->wlow = ws->write_buffer / 2;
  eddy__stream_uncork(s);
  ws_t **box = eddyL_newobject(L, &ws_class, sizeof *box);
  *box = ws;
  ws->lua_held = 1;
  /* Frames may have come with the handshake; read on from there. */
  process(ws);
  if (is_open(ws))
    eddy__stream_read_start(s);
  return 1;
}

static ws_t *check_ws(lua_State *L) {
  ws_t **box = eddyL_checkobject(L, 1, &ws_class);
  return *box;
}

static const eddy__wait_ops_t recv_ops;

static void recv_detach(eddy__task_t *t) {
  ws_t *ws = t->wait_data;
  ws->reader.task = NULL;
}

static const eddy__wait_ops_t recv_ops = {"websocket recv", recv_detach, NULL};

/* ws:recv([timeout]) -> data, "text" or "binary"; or nil, "closed", code,
   reason; or nil, "timeout" / "cancelled". */
static int ws_recv(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  ws_t *ws = check_ws(L);
  int64_t ms = eddyL_opttimeout(L, 2, -1);
  if (eddy__waiter_is_current(ws->reader))
    return luaL_error(L, "another task is receiving on this websocket");
  if (ws->q_head) {
    ws_msg_t *m = ws->q_head;
    ws->q_head = m->next;
    if (ws->q_head == NULL)
      ws->q_tail = NULL;
    ws->q_bytes -= m->len;
    lua_pushlstring(L, m->data, m->len);
    lua_pushstring(L, m->opcode == EDDY__WS_TEXT ? "text" : "binary");
    free(m);
    if (is_open(ws) && !backlogged(ws) && !ws->close_received)
      eddy__stream_read_start(ws->stream);
    return 2;
  }
  if (!is_open(ws) || ws->close_received)
    return push_closed(L, ws, EDDY_ECLOSED);
  if (ms == 0)
    return eddyL_error(L, EDDY_ETIMEOUT);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &recv_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__stream_read_start(ws->stream);
  eddy__task_wait(t, &recv_ops, ws, ms);
  ws->reader = eddy__waiter_of(t);
  ws->reader_close = 0;
  return eddy__task_yield(&rt->sched, L);
}

static const eddy__wait_ops_t send_ops = {"websocket send", NULL, NULL};

/* The tail of a send: true, or wait (up to ms; -1: as long as it takes)
   while too much is queued. */
static int send_tail(lua_State *L, ws_t *ws, int rc, int64_t ms) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  if (rc != 0)
    return push_closed(L, ws, rc);
  if (ws->stream == NULL || ws->stream->wqueued <= ws->write_buffer ||
      ms == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  eddy__task_t *t = eddyL_begin_wait(L, rt, &send_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &send_ops, ws, ms);
  eddy__waitq_push(&ws->writers, t);
  return eddy__task_yield(&rt->sched, L);
}

/* ws:send(data[, "text" or "binary"[, opts]]) -> true, or nil, err. Text
   must be UTF-8 (the peer would have to fail the connection otherwise).
   opts.timeout 0: never wait; when the peer is behind by more than the
   write buffer, nothing is sent and the answer is nil, "full" (what a
   broadcast does with a slow member). */
static int ws_send(lua_State *L) {
  ws_t *ws = check_ws(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  static const char *const kinds[] = {"text", "binary", NULL};
  int binary = luaL_checkoption(L, 3, "text", kinds);
  int64_t ms = eddyL_opttimeout(L, 4, -1);
  if (ms == 0 && is_open(ws) && ws->stream->wqueued > ws->write_buffer)
    return eddyL_error(L, EDDY_EFULL);
  if (!binary) {
    uint32_t st = 0;
    if (eddy__utf8_check(&st, (const uint8_t *)data, len) < 0 || st != 0)
      return luaL_argerror(L, 2, "text must be UTF-8 (send it as \"binary\")");
  }
  if (!is_open(ws) || ws->close_sent)
    return push_closed(L, ws, EDDY_ECLOSED);
  int rc = send_frame(ws, binary ? EDDY__WS_BINARY : EDDY__WS_TEXT, data, len);
  return send_tail(L, ws, rc, ms);
}

/* ws:ping([data]) -> true, or nil, err. Pongs are taken in silence. */
static int ws_ping(lua_State *L) {
  ws_t *ws = check_ws(L);
  size_t len = 0;
  const char *data = luaL_optlstring(L, 2, "", &len);
  luaL_argcheck(L, len <= 125, 2, "at most 125 bytes");
  if (!is_open(ws) || ws->close_sent)
    return push_closed(L, ws, EDDY_ECLOSED);
  return send_tail(L, ws, send_frame(ws, EDDY__WS_PING, data, len), -1);
}

/* A close the peer never answered (or one given up): the connection ends
   anyway, and the close still counts as done (RFC 6455 7.1.1). */
static void close_detach(eddy__task_t *t) {
  ws_t *ws = t->wait_data;
  ws->reader.task = NULL;
  if (ws->stream != NULL)
    eddy__stream_close(ws->stream, 0);
}

static int close_fail(eddy__task_t *t, lua_State *co, int err) {
  (void)t;
  (void)err;
  lua_pushboolean(co, 1);
  return 1;
}

static const eddy__wait_ops_t close_ops = {"websocket close", close_detach,
                                           close_fail};

/* ws:close([code[, reason]]) -> true: sends a close frame and, inside a
   task, waits (briefly) for the peer's; messages that come meanwhile are
   dropped. */
static int ws_close(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  ws_t *ws = check_ws(L);
  int code = (int)luaL_optinteger(L, 2, EDDY__WS_NORMAL);
  size_t rlen = 0;
  const char *reason = luaL_optlstring(L, 3, "", &rlen);
  luaL_argcheck(L, eddy__ws_valid_close_code(code), 2, "not a close code");
  luaL_argcheck(L, rlen <= 123, 3, "at most 123 bytes");
  lua_pushboolean(L, 1);
  if (!is_open(ws))
    return 1;
  send_close(ws, code, reason, rlen);
  if (ws->close_received || ws->client == 0 || rt->sched.current == NULL ||
      !lua_isyieldable(L) || eddy__waiter_is_current(ws->reader)) {
    if (!ws->client || ws->close_received)
      eddy__stream_close(ws->stream, 1000);
    return 1;
  }
  eddy__task_t *t = eddyL_begin_wait(L, rt, &close_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__stream_read_start(ws->stream);
  eddy__task_wait(t, &close_ops, ws, CLOSE_WAIT_MS);
  ws->reader = eddy__waiter_of(t);
  ws->reader_close = 1;
  return eddy__task_yield(&rt->sched, L);
}

static int ws_closed(lua_State *L) {
  ws_t *ws = check_ws(L);
  lua_pushboolean(L, !is_open(ws) || ws->close_received || ws->close_sent);
  return 1;
}

static int ws_gc(lua_State *L) {
  ws_t **box = eddyL_toobject(L, 1);
  ws_t *ws = *box;
  *box = NULL;
  if (ws == NULL)
    return 0;
  ws->lua_held = 0;
  if (is_open(ws)) {
    send_close(ws, EDDY__WS_GOING_AWAY, "", 0);
    eddy__stream_close(ws->stream, 1000);
  }
  maybe_free(ws);
  return 0;
}

static int ws_tostring(lua_State *L) {
  ws_t *ws = check_ws(L);
  lua_pushfstring(L, "eddy.ws (%s)", is_open(ws) ? "open" : "closed");
  return 1;
}

/* accept(key) -> the Sec-WebSocket-Accept value for key. */
static int ws_accept(lua_State *L) {
  size_t len;
  const char *key = luaL_checklstring(L, 1, &len);
  char out[29];
  eddy__ws_accept(key, len, out);
  lua_pushstring(L, out);
  return 1;
}

/* key() -> a fresh Sec-WebSocket-Key: 16 random bytes in base64. */
static int ws_key(lua_State *L) {
  uint8_t raw[16];
  if (getrandom(raw, sizeof raw, 0) != sizeof raw)
    return luaL_error(L, "no randomness for a websocket key");
  char out[32];
  eddy__base64(raw, sizeof raw, out);
  lua_pushstring(L, out);
  return 1;
}

/* client(conn[, opts]) -> a session over a TCP connection whose upgrade
   handshake is done (lua/eddy/ws.lua does it). */
static int ws_client(lua_State *L) {
  eddy__stream_t *s = eddyL_tcp_take(L, 1);
  if (s == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  return eddyL_ws_new(L, s, 1, 2);
}

static const luaL_Reg ws_funcs[] = {
    {"client", ws_client},
    {"accept", ws_accept},
    {"key", ws_key},
    {NULL, NULL},
};

static const luaL_Reg ws_methods[] = {
    {"recv", ws_recv},
    {"send", ws_send},
    {"ping", ws_ping},
    {"close", ws_close},
    {"closed", ws_closed},
    {NULL, NULL},
};

static const luaL_Reg ws_meta[] = {
    {"__gc", ws_gc},
    {"__tostring", ws_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_ws(lua_State *L) {
  eddyL_newclass(L, &ws_class, ws_methods, ws_meta);
  eddyL_newlib(L, ws_funcs);
  return 1;
}

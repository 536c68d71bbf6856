/*
 * stream.c: a connection's I/O (see stream.h). Knows nothing of Lua.
 */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "tls.h"

#define stream_of(p, field) \
  ((eddy__stream_t *)((char *)(p) - offsetof(eddy__stream_t, field)))

typedef struct write_req_s {
  uv_write_t req;
  eddy__stream_t *stream;
  size_t len;
  char data[];
} write_req_t;

typedef struct connect_req_s {
  uv_connect_t req;
  eddy__stream_t *stream;
  void (*cb)(eddy__stream_t *s, int status);
} connect_req_t;

static void close_now(eddy__stream_t *s);

static void close_by_stop(eddy__closer_t *c) {
  eddy__stream_close(stream_of(c, closer), 0);
}

/* A graceful stop begins: the layer above, if it has a way to wind down,
   does (a WebSocket says it is going away); a plain stream waits. */
static void stop_layer(eddy__closer_t *c) {
  eddy__stream_t *s = stream_of(c, closer);
  if (s->on_layer_stop != NULL && !(s->flags & EDDY__STREAM_CLOSING))
    s->on_layer_stop(s);
}

static void init_fields(eddy_runtime_t *rt, eddy__stream_t *s) {
  memset(&s->rbuf, 0, sizeof s->rbuf);
  s->rt = rt;
  s->wqueued = 0;
  s->wlow = 0;
  s->rerr = s->werr = 0;
  s->flags = 0;
  s->linger.index = s->linger.weak = 0;
  s->cork = NULL;
  s->cork_len = s->cork_cap = 0;
  s->on_layer_close = NULL;
  s->on_layer_stop = NULL;
  s->layer = NULL;
  s->tls = NULL;
  s->closer.close = close_by_stop;
  s->closer.stop = stop_layer;
}

int eddy__stream_init(eddy_runtime_t *rt, eddy__stream_t *s) {
  init_fields(rt, s);
  s->tcp.data = s;
  int rc = uv_tcp_init(&rt->loop, &s->tcp);
  if (rc != 0)
    return eddy__error_from_uv(rc);
  s->flags |= EDDY__STREAM_TCP;
  rt->counters.streams_open++;
  eddy__closer_add(rt, &s->closer);
  return 0;
}

int eddy__stream_init_pipe(eddy_runtime_t *rt, eddy__stream_t *s) {
  init_fields(rt, s);
  s->pipe.data = s;
  int rc = uv_pipe_init(&rt->loop, &s->pipe, 0);
  if (rc != 0)
    return eddy__error_from_uv(rc);
  eddy__closer_add(rt, &s->closer);
  return 0;
}

/* ======================================================================= */
/* Reading */

static void on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf) {
  eddy__stream_t *s = handle->data;
  eddy__rbuf_t *b = s->tls != NULL ? eddy__tls_rbuf(s) : &s->rbuf;
  char *base;
  size_t len;
  (void)hint;
  if (eddy__rbuf_reserve(&s->rt->bufs, b, &base, &len) < 0) {
    buf->base = NULL;
    buf->len = 0; /* libuv answers UV_ENOBUFS */
    return;
  }
  buf->base = base;
  buf->len = len;
}

static void on_read(uv_stream_t *handle, ssize_t nread, const uv_buf_t *buf) {
  eddy__stream_t *s = handle->data;
  (void)buf;
  if (nread > 0) {
    s->rt->counters.bytes_in += (uint64_t)nread;
    if (s->tls == NULL) {
      eddy__rbuf_commit(&s->rbuf, (size_t)nread);
    } else if (!eddy__tls_input(s, (size_t)nread)) {
      eddy__stream_settle(s); /* ciphertext only: nothing for the owner */
      return;
    }
  } else if (nread < 0) {
    s->rerr = nread == UV_EOF ? EDDY_ECLOSED : eddy__error_from_uv((int)nread);
    eddy__stream_read_stop(s);
    if (s->tls != NULL && !eddy__tls_input_end(s))
      return;
  } else {
    eddy__stream_settle(s); /* EAGAIN: give the block back */
    return;
  }
  if (s->flags & EDDY__STREAM_CLOSING) {
    eddy__stream_settle(s); /* read for a handshake a close waits for */
    return;
  }
  s->on_read(s);
  eddy__stream_settle(s);
}

int eddy__stream_read_start(eddy__stream_t *s) {
  if (s->flags & EDDY__STREAM_IDLE) {
    s->flags &= ~EDDY__STREAM_IDLE;
    uv_ref((uv_handle_t *)&s->tcp);
  }
  if (s->flags & EDDY__STREAM_READING)
    return 0;
  if (s->rerr)
    return s->rerr;
  int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
  if (rc != 0)
    return eddy__error_from_uv(rc);
  s->flags |= EDDY__STREAM_READING;
  return 0;
}

void eddy__stream_read_stop(eddy__stream_t *s) {
  if (!(s->flags & EDDY__STREAM_READING))
    return;
  s->flags &= ~EDDY__STREAM_READING;
  uv_read_stop((uv_stream_t *)&s->tcp);
}

void eddy__stream_read_idle(eddy__stream_t *s) {
  if (!(s->flags & EDDY__STREAM_READING) || (s->flags & EDDY__STREAM_IDLE))
    return;
  s->flags |= EDDY__STREAM_IDLE;
  uv_unref((uv_handle_t *)&s->tcp);
}

void eddy__stream_settle(eddy__stream_t *s) {
  if (!(s->flags & EDDY__STREAM_CLOSED))
    eddy__rbuf_settle(&s->rt->bufs, &s->rbuf);
}

/* ======================================================================= */
/* Writing */

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  eddy__stream_t *s = w->stream;
  s->wqueued -= w->len;
  free(w);
  if (status < 0 && s->werr == 0)
    s->werr = eddy__error_from_uv(status);
  eddy__stream_check_drain(s);
}

void eddy__stream_check_drain(eddy__stream_t *s) {
  if (s->flags & EDDY__STREAM_CLOSING)
    return;
  /* The writers woken here run after this pass, not inside it: run at
     once, a writer would refill the queue and be woken again by the same
     loop, never waiting at all. */
  if (s->werr || s->wqueued <= s->wlow) {
    eddy__sched_hold(&s->rt->sched);
    s->on_drain(s);
    eddy__sched_unhold(&s->rt->sched);
  }
}

#define CORK_MAX (256 * 1024) /* past this, a corked stream writes anyway */

/* Appends to the cork buffer; returns 0, or -1 when it would grow past
   CORK_MAX (the caller then writes). */
static int cork_append(eddy__stream_t *s, const uv_buf_t *bufs, unsigned n,
                       size_t total) {
  if (s->cork_len + total > CORK_MAX)
    return -1;
  if (s->cork_len + total > s->cork_cap) {
    size_t cap = s->cork_cap ? s->cork_cap : 4096;
    while (cap < s->cork_len + total)
      cap *= 2;
    char *p = realloc(s->cork, cap);
    if (p == NULL)
      return -1;
    s->cork = p;
    s->cork_cap = cap;
  }
  for (unsigned i = 0; i < n; i++) {
    memcpy(s->cork + s->cork_len, bufs[i].base, bufs[i].len);
    s->cork_len += bufs[i].len;
  }
  return 0;
}

void eddy__stream_cork(eddy__stream_t *s) {
  s->flags |= EDDY__STREAM_CORKED;
}

int eddy__stream_uncork(eddy__stream_t *s) {
  s->flags &= ~EDDY__STREAM_CORKED;
  if (s->cork_len == 0)
    return s->werr;
  uv_buf_t buf = uv_buf_init(s->cork, (unsigned)s->cork_len);
  s->cork_len = 0;
  int rc = eddy__stream_write(s, &buf, 1);
  /* A big cork buffer is not kept for the idle time that may follow. */
  if (s->cork_cap > 16384) {
    free(s->cork);
    s->cork = NULL;
    s->cork_cap = 0;
  }
  return rc;
}

static int write_out(eddy__stream_t *s, const uv_buf_t *bufs, unsigned n,
                     size_t total);

int eddy__stream_write(eddy__stream_t *s, const uv_buf_t *bufs, unsigned n) {
  if (s->werr)
    return s->werr;
  if (s->flags & EDDY__STREAM_CLOSING)
    return EDDY_ECLOSED;
  size_t total = 0;
  for (unsigned i = 0; i < n; i++)
    total += bufs[i].len;
  if (total == 0)
    return 0;
  s->rt->counters.bytes_out += total;
  if (s->flags & EDDY__STREAM_CORKED) {
    if (cork_append(s, bufs, n, total) == 0)
      return 0;
    int rc = eddy__stream_uncork(s); /* too much held: out it goes */
    s->flags |= EDDY__STREAM_CORKED;
    if (rc != 0)
      return rc;
  }
  if (s->tls != NULL)
    return eddy__tls_write(s, bufs, n);
  return write_out(s, bufs, n, total);
}

int eddy__stream_write_raw(eddy__stream_t *s, const uv_buf_t *bufs,
                           unsigned n) {
  size_t total = 0;
  if (s->werr)
    return s->werr;
  for (unsigned i = 0; i < n; i++)
    total += bufs[i].len;
  return total == 0 ? 0 : write_out(s, bufs, n, total);
}

static int write_out(eddy__stream_t *s, const uv_buf_t *bufs, unsigned n,
                     size_t total) {
  size_t done = 0;
  if (s->wqueued == 0) {
    /* The common case: the socket takes it all now, with no copy and no
       request. */
    int rc = uv_try_write((uv_stream_t *)&s->tcp, bufs, n);
    if (rc >= 0)
      done = (size_t)rc;
    else if (rc != UV_EAGAIN)
      return s->werr = eddy__error_from_uv(rc);
    if (done == total)
      return 0;
  }
  write_req_t *w = malloc(sizeof *w + (total - done));
  if (w == NULL)
    return EDDY_ENOMEM;
  size_t off = 0, skip = done;
  for (unsigned i = 0; i < n; i++) {
    size_t len = bufs[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    memcpy(w->data + off, bufs[i].base + skip, len - skip);
    off += len - skip;
    skip = 0;
  }
  w->stream = s;
  w->len = total - done;
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &buf, 1, on_write);
  if (rc != 0) {
    free(w);
    return s->werr = eddy__error_from_uv(rc);
  }
  s->wqueued += w->len;
  return 0;
}

/* The queue has gone (or the handle is closing): a close that came
   meanwhile waited for this. */
static void on_shutdown(uv_shutdown_t *req, int status) {
  eddy__stream_t *s = req->data;
  (void)status;
  free(req);
  s->flags &= ~EDDY__STREAM_SHUTDOWN;
  if (s->flags & EDDY__STREAM_CLOSING)
    close_now(s);
}

int eddy__stream_shutdown(eddy__stream_t *s) {
  if (s->flags & EDDY__STREAM_CLOSING)
    return EDDY_ECLOSED;
  if (s->tls != NULL && eddy__tls_handshaking(s)) {
    /* The handshake still has to write, and held bytes wait for it. */
    s->flags |= EDDY__STREAM_WANT_SHUTDOWN;
    return 0;
  }
  if (s->tls != NULL)
    eddy__tls_close_notify(s);
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req == NULL)
    return EDDY_ENOMEM;
  req->data = s;
  int rc = uv_shutdown(req, (uv_stream_t *)&s->tcp, on_shutdown);
  if (rc != 0) {
    free(req);
    return eddy__error_from_uv(rc);
  }
  s->flags |= EDDY__STREAM_SHUTDOWN;
  return 0;
}

/* ======================================================================= */
/* sendfile */

#define SENDFILE_CHUNK (1 << 20)

#define SENDFILE_QUEUE (256 * 1024) /* over TLS: queued at most, at a time */

/* Over TLS: read and write through the layer while the queue is short.
   0 when done, 1 when the queue is full, or an error. */
static int sendfile_copy(eddy__sendfile_t *op) {
  eddy__stream_t *s = op->stream;
  char chunk[16384];
  while (op->left > 0 && s->wqueued < SENDFILE_QUEUE) {
    size_t n = op->left < (int64_t)sizeof chunk ? (size_t)op->left
                                                : sizeof chunk;
    ssize_t got = pread(op->filefd, chunk, n, (off_t)op->offset);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return eddy__error_from_uv(-errno);
    if (got == 0)
      return EDDY_EIO; /* the file is shorter than it said */
    uv_buf_t b = uv_buf_init(chunk, (unsigned)got);
    int rc = eddy__stream_write(s, &b, 1);
    if (rc != 0)
      return rc;
    op->offset += got;
    op->left -= got;
  }
  return op->left > 0 ? 1 : 0;
}

/* Sends what the socket takes: 0 when done, 1 when it is full, or an
   error. */
static int sendfile_some(eddy__sendfile_t *op) {
  if (op->stream->tls != NULL)
    return sendfile_copy(op);
  uv_os_fd_t sock;
  uv_fileno((uv_handle_t *)&op->stream->tcp, &sock);
  while (op->left > 0) {
    off_t off = (off_t)op->offset;
    size_t n = op->left < SENDFILE_CHUNK ? (size_t)op->left : SENDFILE_CHUNK;
    ssize_t sent = sendfile(sock, op->filefd, &off, n);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return errno == EAGAIN ? 1 : sendfile_some(op);
      return eddy__error_from_uv(-errno);
    }
    if (sent == 0)
      return EDDY_EIO; /* the file is shorter than it said */
    op->offset += sent;
    op->left -= sent;
    op->stream->rt->counters.bytes_out += (uint64_t)sent;
  }
  return 0;
}

static void sendfile_closed(uv_handle_t *handle) {
  eddy__sendfile_t *op = handle->data;
  close(op->dupfd);
  op->cb(op, op->status);
}

static void sendfile_end(eddy__sendfile_t *op, int status) {
  op->status = status;
  uv_poll_stop(&op->poll);
  uv_close((uv_handle_t *)&op->poll, sendfile_closed);
}

static void on_writable(uv_poll_t *poll, int status, int events) {
  eddy__sendfile_t *op = poll->data;
  (void)events;
  if (status < 0) {
    sendfile_end(op, eddy__error_from_uv(status));
    return;
  }
  int rc = sendfile_some(op);
  if (rc != 1)
    sendfile_end(op, rc);
}

int eddy__stream_sendfile(eddy__stream_t *s, eddy__sendfile_t *op, int filefd,
                          int64_t offset, int64_t len,
                          void (*cb)(eddy__sendfile_t *op, int status)) {
  if (s->flags & EDDY__STREAM_CLOSING)
    return EDDY_ECLOSED;
  if (s->wqueued > 0 || s->cork_len > 0)
    return EDDY_EBUSY;
  op->stream = s;
  op->filefd = filefd;
  op->offset = offset;
  op->left = len;
  op->cb = cb;
  op->status = 0;
  int rc = sendfile_some(op);
  if (rc != 1)
    return rc;
  /* The socket is full: wait until it takes more. libuv watches the
     socket's own descriptor for the stream, and epoll takes one watcher
     per descriptor, so the wait is on a duplicate of it (close-on-exec,
     or a child spawned meanwhile would keep the client's socket). */
  uv_os_fd_t sock;
  uv_fileno((uv_handle_t *)&s->tcp, &sock);
  op->dupfd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  if (op->dupfd < 0)
    return eddy__error_from_uv(-errno);
  if (uv_poll_init_socket(&s->rt->loop, &op->poll, op->dupfd) != 0) {
    close(op->dupfd);
    return EDDY_EIO;
  }
  op->poll.data = op;
  uv_poll_start(&op->poll, UV_WRITABLE, on_writable);
  return 1;
}

void eddy__sendfile_cancel(eddy__sendfile_t *op) {
  if (!uv_is_closing((uv_handle_t *)&op->poll))
    sendfile_end(op, EDDY_ECANCELLED);
}

/* ======================================================================= */
/* Connecting */

static void on_connect(uv_connect_t *req, int status) {
  connect_req_t *c = (connect_req_t *)req;
  eddy__stream_t *s = c->stream;
  void (*cb)(eddy__stream_t *, int) = c->cb;
  free(c);
  if (status == 0)
    s->rt->counters.connected++;
  cb(s, status == 0 ? 0 : eddy__error_from_uv(status));
}

int eddy__stream_connect(eddy__stream_t *s, const struct sockaddr *addr,
                         void (*cb)(eddy__stream_t *s, int status)) {
  connect_req_t *c = malloc(sizeof *c);
  if (c == NULL)
    return EDDY_ENOMEM;
  c->stream = s;
  c->cb = cb;
  int rc = uv_tcp_connect(&c->req, &s->tcp, addr, on_connect);
  if (rc != 0) {
    free(c);
    return eddy__error_from_uv(rc);
  }
  return 0;
}

/* ======================================================================= */
/* Closing */

static void on_closed(uv_handle_t *handle) {
  eddy__stream_t *s = handle->data;
  eddy__timer_stop(&s->rt->timers, &s->linger);
  eddy__closer_remove(s->rt, &s->closer);
  eddy__rbuf_free(&s->rt->bufs, &s->rbuf);
  free(s->cork);
  s->cork = NULL;
  s->flags |= EDDY__STREAM_CLOSED;
  if (s->flags & EDDY__STREAM_TCP)
    s->rt->counters.streams_open--;
  if (s->tls != NULL)
    eddy__tls_free(s);
  if (s->on_layer_close)
    s->on_layer_close(s);
  s->on_close(s);
}

static void close_now(eddy__stream_t *s) {
  if (!uv_is_closing((uv_handle_t *)&s->tcp))
    uv_close((uv_handle_t *)&s->tcp, on_closed);
}

static void on_linger_end(eddy__timer_t *t, uint64_t due) {
  (void)due;
  close_now(stream_of(t, linger));
}

static void on_flushed(uv_shutdown_t *req, int status) {
  eddy__stream_t *s = req->data;
  (void)status;
  free(req);
  close_now(s);
}

/* Waits for a flush in progress, for at most linger_ms. */
static void linger(eddy__stream_t *s, uint64_t linger_ms) {
  eddy__timer_start(&s->rt->timers, &s->linger, linger_ms, on_linger_end);
  /* Still to be closed by a stop, should one come first. */
  eddy__closer_add(s->rt, &s->closer);
}

/* Lets the queued bytes go out before the close, as close(2) would for
   bytes in the kernel. Returns 1 when a flush is in flight (the caller
   bounds it with the linger timer), 0 when nothing is to wait for. */
static int flush_first(eddy__stream_t *s) {
  if (s->werr != 0)
    return 0;
  if (s->flags & EDDY__STREAM_SHUTDOWN)
    return 1; /* a second shutdown would fail: the one in flight closes */
  if (s->wqueued == 0)
    return 0;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req == NULL)
    return 0;
  req->data = s;
  if (uv_shutdown(req, (uv_stream_t *)&s->tcp, on_flushed) == 0)
    return 1;
  free(req);
  return 0;
}

void eddy__stream_close(eddy__stream_t *s, uint64_t linger_ms) {
  if (s->flags & EDDY__STREAM_CLOSING) {
    if (linger_ms == 0)
      close_now(s); /* a stop does not wait for a flush in progress */
    return;
  }
  if (s->flags & EDDY__STREAM_CORKED)
    eddy__stream_uncork(s);
  s->flags |= EDDY__STREAM_CLOSING;
  eddy__closer_remove(s->rt, &s->closer);
  if (linger_ms > 0 && s->tls != NULL && eddy__tls_handshaking(s) &&
      s->wqueued > 0 && s->werr == 0 && eddy__stream_read_start(s) == 0) {
    /* Bytes written in the handshake wait for it: reading goes on so that
       it can end (eddy__stream_handshaken), all within linger_ms. */
    linger(s, linger_ms);
    return;
  }
  if (s->tls != NULL)
    eddy__tls_close_notify(s);
  eddy__stream_read_stop(s);
  if (linger_ms > 0 && flush_first(s)) {
    linger(s, linger_ms); /* a peer that never reads gets linger_ms */
    return;
  }
  close_now(s);
}

void eddy__stream_handshaken(eddy__stream_t *s) {
  if (s->flags & EDDY__STREAM_CLOSING) {
    /* A close waited for the handshake; its linger timer runs. */
    eddy__tls_close_notify(s);
    eddy__stream_read_stop(s);
    if (!flush_first(s))
      close_now(s);
    return;
  }
  if (s->flags & EDDY__STREAM_WANT_SHUTDOWN) {
    s->flags &= ~EDDY__STREAM_WANT_SHUTDOWN;
    eddy__stream_shutdown(s); /* a failure shows in the next write */
  }
  eddy__stream_check_drain(s);
}

/*
 * stream.h: a connection's I/O (TCP, or a pipe to a child process): a read
 * buffer filled only while its
 * owner asks for bytes, and a write path that writes at once when it can
 * and queues the rest, counting the queued bytes so that the owner can
 * make writers wait (backpressure). Knows nothing of Lua.
 */
#ifndef EDDY_STREAM_H
#define EDDY_STREAM_H

#include <stddef.h>
#include <uv.h>

#include "buffer.h"
#include "runtime.h"
#include "timer.h"

typedef struct eddy__stream_s eddy__stream_t;
struct eddy__tls_s;

#define EDDY__STREAM_READING 0x01
#define EDDY__STREAM_CLOSING 0x02 /* close requested */
#define EDDY__STREAM_CLOSED 0x04  /* the handle's close callback ran */
#define EDDY__STREAM_CORKED 0x08  /* writes are being held (see _cork) */
#define EDDY__STREAM_TCP 0x10     /* counted in streams_open (not a pipe) */
#define EDDY__STREAM_SHUTDOWN 0x20 /* a shutdown waits for the queue */
#define EDDY__STREAM_WANT_SHUTDOWN 0x40 /* asked for in a TLS handshake */
#define EDDY__STREAM_IDLE 0x80    /* reading, without keeping the loop up */

/*
 * Owned by its owner (a Lua connection): freed by the owner's on_close,
 * the last callback the stream makes.
 */
struct eddy__stream_s {
  union { /* which one: see eddy__stream_init and _init_pipe */
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  eddy_runtime_t *rt;
  eddy__rbuf_t rbuf;
  size_t wqueued;   /* bytes handed to libuv, not yet written */
  size_t wlow;      /* on_drain when wqueued falls to this or below */
  int rerr;         /* 0, or how the read side ended (EDDY_ECLOSED: EOF) */
  int werr;         /* 0, or the first write error */
  unsigned flags;
  eddy__timer_t linger; /* bounds the flush of queued writes at close */
  char *cork;       /* writes held back while corked (see _cork) */
  size_t cork_len;
  size_t cork_cap;
  eddy__closer_t closer;
  /* Bytes arrived or the read side ended (rerr set). */
  void (*on_read)(eddy__stream_t *s);
  /* The queue drained to wlow, or a write failed (werr set). */
  void (*on_drain)(eddy__stream_t *s);
  /* Closed: the stream may be freed now. */
  void (*on_close)(eddy__stream_t *s);
  void *data;
  /* A protocol that took the stream over (a WebSocket session) sets
     on_read and on_drain to its own and is told of the close, just before
     the owner's on_close; when a graceful stop begins, on_layer_stop
     (if set) lets it wind down. */
  void (*on_layer_close)(eddy__stream_t *s);
  void (*on_layer_stop)(eddy__stream_t *s);
  void *layer;
  /* TLS, when started on the stream (tls.h): reads decrypt into rbuf,
     writes encrypt on their way out. */
  struct eddy__tls_s *tls;
};

int eddy__stream_init(eddy_runtime_t *rt, eddy__stream_t *s);
/* The same over a pipe, not yet open: uv_spawn opens it as one end of a
   child's stdin, stdout or stderr. */
int eddy__stream_init_pipe(eddy_runtime_t *rt, eddy__stream_t *s);
int eddy__stream_read_start(eddy__stream_t *s);
void eddy__stream_read_stop(eddy__stream_t *s);
/* Between uses (a connection idle in a pool): the stream no longer keeps
   the loop running, and stays registered with the poller, so that the
   next use costs no system call; what arrives meanwhile (a server's
   close) stops the reading as it would with no reader. The next
   read_start makes it count again. */
void eddy__stream_read_idle(eddy__stream_t *s);
/* After the owner took bytes: give idle buffer memory back. */
void eddy__stream_settle(eddy__stream_t *s);

/* Writes what it can now and queues the rest (copied). Returns 0, or the
   sticky write error. */
int eddy__stream_write(eddy__stream_t *s, const uv_buf_t *bufs, unsigned n);
/* The same, past the TLS layer: for the layer's own output. */
int eddy__stream_write_raw(eddy__stream_t *s, const uv_buf_t *bufs,
                           unsigned n);
/* While corked, writes collect in one buffer; uncorking writes them at
   once. A server corks while it answers requests that came pipelined, so
   that eight answers cost one system call. */
void eddy__stream_cork(eddy__stream_t *s);
int eddy__stream_uncork(eddy__stream_t *s);

/* Half-closes after the queued writes (in a TLS handshake: once it is
   through). Returns 0 or an error. */
int eddy__stream_shutdown(eddy__stream_t *s);
/* Closes: queued writes still go out (for up to linger_ms; bytes written
   in a TLS handshake wait for it within that time), then the handle
   closes and on_close runs. */
void eddy__stream_close(eddy__stream_t *s, uint64_t linger_ms);
/* For the TLS layer: the handshake is through, its held bytes are out. A
   close or shutdown that waited for it goes on; writers may be woken. */
void eddy__stream_handshaken(eddy__stream_t *s);
/* on_drain, if the queue is down to wlow (or a write failed). */
void eddy__stream_check_drain(eddy__stream_t *s);

int eddy__stream_connect(eddy__stream_t *s, const struct sockaddr *addr,
                         void (*cb)(eddy__stream_t *s, int status));

/*
 * Sends len bytes of a file from offset with sendfile(2): no copy through
 * user space. The stream's write queue must be empty. Returns 0 when all
 * went out at once, 1 when the socket filled up (cb runs when the rest has
 * gone, or with an error), or an EDDY_E code. op is the caller's until cb,
 * or until eddy__sendfile_cancel's cb (EDDY_ECANCELLED).
 *
 * The file is read on the loop's thread: fast for files in the page
 * cache, a stall for cold files on slow disks (as nginx without aio).
 * Over TLS the bytes must pass through the layer: they are read and
 * written, a queue's worth at a time.
 */
typedef struct eddy__sendfile_s eddy__sendfile_t;
struct eddy__sendfile_s {
  eddy__stream_t *stream;
  uv_poll_t poll; /* on a dup of the socket: libuv's own watcher is busy */
  int dupfd;
  int filefd;
  int64_t offset;
  int64_t left;
  void (*cb)(eddy__sendfile_t *op, int status);
  void *data;
  int status;
};
int eddy__stream_sendfile(eddy__stream_t *s, eddy__sendfile_t *op, int filefd,
                          int64_t offset, int64_t len,
                          void (*cb)(eddy__sendfile_t *op, int status));
void eddy__sendfile_cancel(eddy__sendfile_t *op);

#endif

/*
 * echo_uv.c: the baseline for bench/echo: a minimal one-thread libuv echo
 * server in plain C. By default it is written the way libuv's own examples
 * write one: read into a fresh buffer, write that buffer back, free it when
 * written. With "try" it first tries uv_try_write, as eddy does, and queues
 * only what the socket did not take: the fastest plain libuv echo.
 * Usage: echo_uv PORT [try]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(hint);
  buf->len = buf->base ? hint : 0;
}

static void on_close(uv_handle_t *h) {
  free(h);
}

static void on_written(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  (void)status;
  free(w->buf.base);
  free(w);
}

static int try_first; /* set once by main, before the loop runs */

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n > 0) {
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    if (try_first) {
      int done = uv_try_write(s, &b, 1);
      if (done == n) {
        free(buf->base);
        return;
      }
      if (done > 0) {
        b.base += done;
        b.len -= (size_t)done;
      }
    }
    write_req_t *w = malloc(sizeof *w);
    w->buf = uv_buf_init(buf->base, (unsigned)n);
    uv_write(&w->req, s, &b, 1, on_written);
    return;
  }
  free(buf->base);
  if (n < 0)
    uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  uv_tcp_t *client = malloc(sizeof *client);
  uv_tcp_init(server->loop, client);
  if (uv_accept(server, (uv_stream_t *)client) == 0) {
    uv_tcp_nodelay(client, 1);
    uv_read_start((uv_stream_t *)client, on_alloc, on_read);
  } else {
    uv_close((uv_handle_t *)client, on_close);
  }
}

int main(int argc, char **argv) {
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 7001, &addr);
  try_first = argc > 2 && strcmp(argv[2], "try") == 0;
  uv_tcp_init(uv_default_loop(), &server);
  if (uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&server, 4096, on_connection) != 0) {
    fprintf(stderr, "echo_uv: cannot listen\n");
    return 1;
  }
  printf("listening\n");
  fflush(stdout);
  return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}

/*
 * thread.c: the blocking, thread-per-connection server model. One thread
 * accepts; each connection gets a new detached thread that reads, writes and
 * closes with blocking calls, then ends. Every connection is served at once,
 * each paying a thread (its stack, a kernel task, a switch per wake-up).
 *
 * The same responder as prefork.c, answering every connection with a fixed
 * HTTP reply and closing it:
 *
 *   mkdir -p build/models && cc -O2 -pthread -o build/models/thread examples/models/thread.c
 *   build/models/thread 8080      (0: any free port; it prints the one it got)
 *   curl http://127.0.0.1:8080/
 *
 * SIGTERM or SIGINT ends the process with status 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BACKLOG 4096      /* the kernel caps it at net.core.somaxconn */
#define MAX_REQUEST 8192  /* a longer request head is refused (closed) */
#define READ_TIMEOUT 10   /* seconds a client may take to send its request */

static const char reply[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Length: 6\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "hello\n";

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* Reads the request head, up to the blank line that ends it, from reads of
   any size. Returns 0 once it has come, -1 on an error, end of file, the
   timeout or a head longer than MAX_REQUEST. */
static int read_request(int fd) {
  char buf[MAX_REQUEST];
  size_t len = 0;
  while (len < sizeof buf) {
    ssize_t n = read(fd, buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    /* The "\r\n\r\n" may straddle two reads: look from 3 bytes back. */
    size_t from = len > 3 ? len - 3 : 0;
    len += (size_t)n;
    for (size_t i = from; i + 4 <= len; i++)
      if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
        return 0;
  }
  return -1;
}

static void write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* the peer left: nothing more to do */
    p += n;
    len -= (size_t)n;
  }
}

/* A connection's thread: the socket comes in the pointer itself. */
static void *serve(void *arg) {
  int fd = (int)(intptr_t)arg;
  struct timeval tv = {READ_TIMEOUT, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (read_request(fd) == 0)
    write_all(fd, reply, sizeof reply - 1);
  close(fd);
  return NULL;
}

static void *accept_loop(void *arg) {
  int lfd = (int)(intptr_t)arg;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
      continue; /* EINTR, ECONNABORTED, or out of descriptors: try again */
    pthread_t t;
    if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0)
      close(fd); /* no thread to be had: refuse this one */
  }
  return NULL;
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
    die("bind");
  if (listen(fd, BACKLOG) < 0)
    die("listen");
  socklen_t alen = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
    die("getsockname");
  printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8080;
  signal(SIGPIPE, SIG_IGN); /* a peer that left is write's EPIPE instead */
  int lfd = listen_on(port);

  /* Every thread inherits this mask, so SIGTERM and SIGINT stay pending
     until the main thread takes them with sigwait. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  pthread_t acceptor;
  if (pthread_create(&acceptor, NULL, accept_loop, (void *)(intptr_t)lfd))
    die("pthread_create");
  int sig;
  sigwait(&stop, &sig);
  return 0; /* ends every thread, mid-connection or not */
}

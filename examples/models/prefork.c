/*
 * prefork.c: the blocking, pre-forked server model. The parent listens, then
 * forks a fixed pool of workers; each worker loops in accept, read, write,
 * close, one connection at a time, and the kernel hands each new connection
 * to one of the workers blocked in accept. So at most WORKERS connections
 * are served at once, and the rest wait in the listen queue. This is the
 * shape of the seed's pcntl_fork server, in plain C11 and POSIX.
 *
 * It answers every connection with a fixed HTTP reply and closes it:
 *
 *   mkdir -p build/models && cc -O2 -o build/models/prefork examples/models/prefork.c
 *   build/models/prefork 8080     (0: any free port; it prints the one it got)
 *   curl http://127.0.0.1:8080/
 *
 * SIGTERM or SIGINT stops the workers and then the parent, which exits 0.
 * The same responder as a thread per connection is thread.c, on eddy's
 * reactor reactor.lua; bench/models.sh measures the three.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 5
#define BACKLOG 4096      /* the kernel caps it at net.core.somaxconn */
#define MAX_REQUEST 8192  /* a longer request head is refused (closed) */
#define READ_TIMEOUT 10   /* seconds a client may take to send its request */

static const char reply[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Length: 6\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "hello\n";

static volatile sig_atomic_t stopping;

static void on_stop(int sig) {
  (void)sig;
  stopping = 1;
}

/* Only there so that SIGCHLD, blocked and unblocked by sigsuspend, wakes the
   parent: its default action is to be ignored. */
static void on_child(int sig) { (void)sig; }

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

static void serve(int fd) {
  struct timeval tv = {READ_TIMEOUT, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (read_request(fd) == 0)
    write_all(fd, reply, sizeof reply - 1);
  close(fd);
}

/* A worker: the whole blocking model in five lines. It never returns. */
static void work(int lfd) {
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
      continue; /* EINTR, ECONNABORTED, or out of descriptors: try again */
    serve(fd);
  }
}

/* Forks a worker. The child gets back the default actions of the signals
   the parent handles and the mask from before they were blocked. */
static pid_t spawn_worker(int lfd, const sigset_t *mask) {
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    work(lfd);
  }
  return pid;
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
  return fd;
}

static void print_port(int fd) {
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
    die("getsockname");
  printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8080;
  signal(SIGPIPE, SIG_IGN); /* a peer that left is write's EPIPE instead */
  int lfd = listen_on(port);

  /* The signals stay blocked outside sigsuspend, so that none can arrive
     between the test of `stopping` and the wait. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &old);
  struct sigaction sa = {0};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_child;
  sigaction(SIGCHLD, &sa, NULL);

  pid_t workers[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    workers[i] = spawn_worker(lfd, &old);
  print_port(lfd); /* once the workers are there */

  /* Wait for a signal; a worker that died is replaced (0: reaped while
     stopping, nothing left to stop). */
  while (!stopping) {
    sigsuspend(&old);
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
      for (int i = 0; i < WORKERS; i++)
        if (workers[i] == pid)
          workers[i] = stopping ? 0 : spawn_worker(lfd, &old);
  }

  for (int i = 0; i < WORKERS; i++)
    if (workers[i] > 0)
      kill(workers[i], SIGTERM);
  for (int i = 0; i < WORKERS; i++)
    if (workers[i] > 0)
      waitpid(workers[i], NULL, 0);
  return 0;
}

/*
 * loadgen.c: the load generator of bench/echo, one thread on epoll.
 *
 *   loadgen ping PORT CONNS WARMUP SECONDS SIZE SERVER_PID
 *     CONNS connections each send SIZE bytes and wait for them to come
 *     back, over and over. After WARMUP seconds it counts round trips for
 *     SECONDS seconds and reads the server's CPU time (user + system, from
 *     /proc/SERVER_PID/stat) at both ends. Prints one line:
 *     msgs=N secs=S rate=R server_cpu=C per_server_cpu_s=P
 *
 *   loadgen idle PORT CONNS SIZE
 *     Opens CONNS connections, sends SIZE bytes on each and reads the echo,
 *     prints "ready", then holds them open until stdin closes.
 *
 *   loadgen idle_http PORT CONNS
 *     The same with one HTTP/1.1 keep-alive request on each connection
 *     ("GET / HTTP/1.1"), its whole response read.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  size_t got; /* bytes of the current echo received */
} conn_t;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_of(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  unsigned long utime = 0, stime = 0;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
     majflt cmajflt utime stime */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / sysconf(_SC_CLK_TCK);
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("loadgen: connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void send_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EAGAIN)
        continue;
      perror("loadgen: write");
      exit(1);
    }
    buf += n;
    len -= (size_t)n;
  }
}

static int ping(int port, int nconns, double warmup, double secs,
                size_t size, int server_pid) {
  char *msg = malloc(size), *buf = malloc(65536);
  memset(msg, 'x', size);
  int ep = epoll_create1(0);
  conn_t *conns = calloc((size_t)nconns, sizeof *conns);
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = connect_to(port);
    fcntl(conns[i].fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    send_all(conns[i].fd, msg, size);
  }
  struct epoll_event evs[256];
  double t0 = now(), start = t0 + warmup, end = start + secs;
  double cpu0 = -1, cpu1 = -1, t_start = 0, t_end = 0;
  long msgs = 0;
  int measuring = 0;
  for (;;) {
    double t = now();
    if (!measuring && t >= start) {
      measuring = 1;
      msgs = 0;
      cpu0 = cpu_of(server_pid);
      t_start = now();
    }
    if (measuring && t >= end) {
      cpu1 = cpu_of(server_pid);
      t_end = now();
      break;
    }
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      ssize_t r = read(c->fd, buf, 65536);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN)
          continue;
        fprintf(stderr, "loadgen: server closed a connection\n");
        return 1;
      }
      c->got += (size_t)r;
      while (c->got >= size) {
        c->got -= size;
        msgs++;
        send_all(c->fd, msg, size);
      }
    }
  }
  double elapsed = t_end - t_start;
  double cpu = cpu1 - cpu0;
  printf("msgs=%ld secs=%.3f rate=%.0f server_cpu=%.3f per_server_cpu_s=%.0f\n",
         msgs, elapsed, msgs / elapsed, cpu, cpu > 0 ? msgs / cpu : 0.0);
  return 0;
}

static int idle(int port, int nconns, size_t size) {
  char *msg = malloc(size), *buf = malloc(size);
  memset(msg, 'x', size);
  int *fds = calloc((size_t)nconns, sizeof *fds);
  for (int i = 0; i < nconns; i++) {
    fds[i] = connect_to(port);
    send_all(fds[i], msg, size);
    size_t got = 0;
    while (got < size) {
      ssize_t r = read(fds[i], buf, size - got);
      if (r <= 0) {
        perror("loadgen: read");
        return 1;
      }
      got += (size_t)r;
    }
  }
  printf("ready\n");
  fflush(stdout);
  while (read(0, buf, 1) > 0) {
  }
  return 0;
}

/* Reads one HTTP response (head and Content-Length body) from fd. */
static int read_response(int fd) {
  char buf[4096];
  size_t got = 0;
  long need = -1;
  while (need < 0 || (long)got < need) {
    ssize_t r = read(fd, buf + got, sizeof buf - got);
    if (r <= 0)
      return -1;
    got += (size_t)r;
    char *end = memmem(buf, got, "\r\n\r\n", 4);
    if (end && need < 0) {
      char *cl = memmem(buf, (size_t)(end - buf), "Content-Length: ", 16);
      need = (end - buf) + 4 + (cl ? atol(cl + 16) : 0);
    }
  }
  return 0;
}

static int idle_http(int port, int nconns) {
  static const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
  int *fds = calloc((size_t)nconns, sizeof *fds);
  char buf[1];
  for (int i = 0; i < nconns; i++) {
    fds[i] = connect_to(port);
    send_all(fds[i], req, sizeof req - 1);
    if (read_response(fds[i]) < 0) {
      fprintf(stderr, "loadgen: no response on connection %d\n", i);
      return 1;
    }
  }
  printf("ready\n");
  fflush(stdout);
  while (read(0, buf, 1) > 0) {
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 8 && strcmp(argv[1], "ping") == 0)
    return ping(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), atof(argv[5]),
                (size_t)atoi(argv[6]), atoi(argv[7]));
  if (argc >= 4 && strcmp(argv[1], "idle_http") == 0)
    return idle_http(atoi(argv[2]), atoi(argv[3]));
  if (argc >= 5 && strcmp(argv[1], "idle") == 0)
    return idle(atoi(argv[2]), atoi(argv[3]), (size_t)atoi(argv[4]));
  fprintf(stderr, "usage: loadgen ping PORT CONNS WARMUP SECONDS SIZE PID\n"
                  "       loadgen idle PORT CONNS SIZE\n"
                  "       loadgen idle_http PORT CONNS\n");
  return 2;
}

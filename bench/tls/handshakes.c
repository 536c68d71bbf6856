/*
 * handshakes.c: the load of bench/tls.sh's handshake test: CONC processes,
 * each opening TLS 1.3 connections one after another until SECS have
 * passed: connect, a full handshake (no resumption), GET / as HTTP/1.0,
 * read the answer to its end, close. Prints the number of connections
 * that got a whole answer.
 *
 *   handshakes HOST PORT SECS CONC CIPHERSUITE
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int one(SSL_CTX *ctx, const struct sockaddr_in *sa) {
  static const char req[] = "GET / HTTP/1.0\r\n\r\n";
  char buf[4096];
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, ok = 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
    close(fd);
    return 0;
  }
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, sizeof req - 1) > 0) {
    int n, got = 0;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
      got += n;
    ok = got > 0 && memcmp(buf, "HTTP/1.", 7) == 0;
  }
  SSL_free(ssl);
  close(fd);
  return ok;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: handshakes HOST PORT SECS CONC CIPHERSUITE\n");
    return 2;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(argv[2]))};
  inet_pton(AF_INET, argv[1], &sa.sin_addr);
  double secs = atof(argv[3]);
  int conc = atoi(argv[4]), fds[2];
  if (pipe(fds) != 0)
    return 1;
  for (int i = 0; i < conc; i++) {
    if (fork() != 0)
      continue;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(ctx, argv[5]);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    long count = 0;
    double end = now() + secs;
    while (now() < end)
      count += one(ctx, &sa);
    if (write(fds[1], &count, sizeof count) != sizeof count)
      return 1;
    return 0;
  }
  long total = 0, count;
  for (int i = 0; i < conc; i++)
    if (read(fds[0], &count, sizeof count) == sizeof count)
      total += count;
  while (wait(NULL) > 0)
    ;
  printf("%ld\n", total);
  return 0;
}

/*
 * tap.h: the smallest TAP producer, for the C tests: ok(cond, name)
 * prints "ok N - name" or "not ok N - name"; done() prints the plan and
 * returns the exit status.
 */
#ifndef EDDY_TAP_H
#define EDDY_TAP_H

#include <stdio.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                              \
  do {                                                             \
    int ok_ = (cond);                                              \
    printf("%sok %d - ", ok_ ? "" : "not ", ++tap_n);              \
    printf(__VA_ARGS__);                                           \
    printf("\n");                                                  \
    if (!ok_) {                                                    \
      tap_failed++;                                                \
      printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                              \
    fflush(stdout);                                                \
  } while (0)

static int done(void) {
  printf("1..%d\n", tap_n);
  return tap_failed ? 1 : 0;
}

#endif

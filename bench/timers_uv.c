/*
 * timers_uv.c: the baseline for bench/timers.lua: a million libuv timers
 * in plain C, one uv_timer_t each, with the same random delays (a margin
 * plus up to SPREAD seconds). Reports the bytes each pending timer costs
 * and how late the timers fire, measured the same way.
 * Usage: timers_uv [N] [SPREAD]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
  uv_timer_t handle;
  uint64_t due_ns;
} timer_t_;

static long fired, over_10ms, n;
static double max_late, sum_late;

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = atol(line + 6);
  if (f)
    fclose(f);
  return kb;
}

static void on_timer(uv_timer_t *h) {
  timer_t_ *t = (timer_t_ *)h;
  double late = (double)(int64_t)(uv_hrtime() - t->due_ns) / 1e9;
  if (late > max_late)
    max_late = late;
  if (late > 0.010)
    over_10ms++;
  sum_late += late;
  fired++;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 1000000;
  double spread = argc > 2 ? atof(argv[2]) : 10;
  uv_loop_t *loop = uv_default_loop();
  long rss0 = rss_kib();
  timer_t_ *timers = malloc((size_t)n * sizeof *timers);
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < n; i++)
    uv_timer_init(loop, &timers[i].handle);
  double make_s = (uv_hrtime() - t0) / 1e9;
  srand(42);
  double margin = 3 * make_s + 1;
  for (long i = 0; i < n; i++) {
    uint64_t delay_ms = (uint64_t)(margin * 1000) +
                        (uint64_t)((double)rand() / RAND_MAX * spread * 1000);
    uv_update_time(loop);
    timers[i].due_ns = uv_hrtime() + delay_ms * 1000000;
    uv_timer_start(&timers[i].handle, on_timer, delay_ms, 0);
  }
  double per_timer = (double)(rss_kib() - rss0) * 1024 / n;
  uv_run(loop, UV_RUN_DEFAULT);
  printf("timers=%ld bytes_per_pending_timer=%.0f fired=%ld max_late_ms=%.1f "
         "mean_late_ms=%.2f late_over_10ms=%ld\n",
         n, per_timer, fired, max_late * 1000, sum_late / n * 1000, over_10ms);
  return 0;
}

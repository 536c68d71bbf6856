/*
 * models_units.c: the unit costs of the two blocking server models, a
 * process (fork) and a thread: creating and finishing one, a switch between
 * two, and the memory one costs while it sleeps. bench/models_units.lua
 * measures the same for an eddy task; bench/models.sh units runs both and
 * prints one table. Plain C11, POSIX threads, and Linux's /proc for memory.
 *
 *   cc -O2 -pthread -o build/models/units bench/models_units.c
 *   taskset -c 0 build/models/units
 *
 * Run it on one core, as above: then each switch is a real context switch
 * on that core, as between tasks on eddy's one thread, and not a wake-up
 * of a peer spinning on the other core. Prints markdown table rows.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CREATES 5000   /* processes or threads created and finished */
#define SWITCHES 100000 /* round trips of the ping-pong (two switches each) */
#define IDLE 200       /* sleeping processes or threads held at once */

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* The value of field (e.g. "Pss:") in a /proc file, in KiB; 0 if absent. */
static long proc_kib(const char *path, const char *field) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  char line[256];
  long v = 0;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, n) == 0) {
      v = atol(line + n);
      break;
    }
  fclose(f);
  return v;
}

static long pss_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
  return proc_kib(path, "Pss:");
}

/* The kernel's own memory for tasks: their kernel stacks and page tables,
   system-wide, so other activity on the machine blurs it a little. */
static long kernel_kib(void) {
  return proc_kib("/proc/meminfo", "KernelStack:") +
         proc_kib("/proc/meminfo", "PageTables:");
}

/* Lets the kernel finish freeing what earlier tests left (the stacks of
   exited tasks go back after an RCU grace period), before a baseline. */
static void settle(void) {
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static void xwrite(int fd) {
  if (write(fd, "x", 1) != 1)
    die("write");
}

static void xread(int fd) {
  char c;
  if (read(fd, &c, 1) != 1)
    die("read");
}

/* ======================================================================= */
/* Creating and finishing */

static double fork_us(void) {
  double t0 = now_us();
  for (int i = 0; i < CREATES; i++) {
    pid_t pid = fork();
    if (pid < 0)
      die("fork");
    if (pid == 0)
      _exit(0);
    waitpid(pid, NULL, 0);
  }
  return (now_us() - t0) / CREATES;
}

static void *nothing(void *arg) { return arg; }

static double thread_us(void) {
  double t0 = now_us();
  for (int i = 0; i < CREATES; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0)
      die("pthread_create");
    pthread_join(t, NULL);
  }
  return (now_us() - t0) / CREATES;
}

/* ======================================================================= */
/* Switching: ping-pong of one byte over two pipes, so every hop blocks one
   side and wakes the other. */

static int ping[2], pong[2];

static void *echo(void *arg) {
  for (int i = 0; i < SWITCHES; i++) {
    xread(ping[0]);
    xwrite(pong[1]);
  }
  return arg;
}

static double ping_pong(void) {
  double t0 = now_us();
  for (int i = 0; i < SWITCHES; i++) {
    xwrite(ping[1]);
    xread(pong[0]);
  }
  return (now_us() - t0) / (2.0 * SWITCHES);
}

static double process_switch_us(void) {
  if (pipe(ping) < 0 || pipe(pong) < 0)
    die("pipe");
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    echo(NULL);
    _exit(0);
  }
  double us = ping_pong();
  waitpid(pid, NULL, 0);
  close(ping[0]), close(ping[1]), close(pong[0]), close(pong[1]);
  return us;
}

static double thread_switch_us(void) {
  if (pipe(ping) < 0 || pipe(pong) < 0)
    die("pipe");
  pthread_t t;
  if (pthread_create(&t, NULL, echo, NULL) != 0)
    die("pthread_create");
  double us = ping_pong();
  pthread_join(t, NULL);
  close(ping[0]), close(ping[1]), close(pong[0]), close(pong[1]);
  return us;
}

/* ======================================================================= */
/* Memory of an idle unit: IDLE of them, each blocked in read(2) on a pipe
   that closes to let them go. */

static int ready[2], release[2];

static void *idle(void *arg) {
  char c;
  xwrite(ready[1]);
  if (read(release[0], &c, 1) < 0) /* end of file: let go */
    die("read");
  return arg;
}

typedef struct {
  double user_kib, kernel_kib, virtual_kib;
} idle_cost_t;

/* Processes: PSS summed over this process and the children, so that pages
   the children share with it count once. */
static idle_cost_t idle_processes(void) {
  static pid_t kids[IDLE];
  if (pipe(ready) < 0 || pipe(release) < 0)
    die("pipe");
  settle();
  long pss0 = pss_of(getpid()), k0 = kernel_kib();
  for (int i = 0; i < IDLE; i++) {
    kids[i] = fork();
    if (kids[i] < 0)
      die("fork");
    if (kids[i] == 0) {
      close(release[1]);
      idle(NULL);
      _exit(0);
    }
  }
  for (int i = 0; i < IDLE; i++)
    xread(ready[0]);
  long pss1 = pss_of(getpid()), k1 = kernel_kib();
  for (int i = 0; i < IDLE; i++)
    pss1 += pss_of(kids[i]);
  close(release[1]);
  for (int i = 0; i < IDLE; i++)
    waitpid(kids[i], NULL, 0);
  close(ready[0]), close(ready[1]), close(release[0]);
  idle_cost_t c = {(double)(pss1 - pss0) / IDLE, (double)(k1 - k0) / IDLE, 0};
  return c;
}

/* Threads: this process's PSS (its pages are its own, so it is its RSS),
   and its virtual size, which grows by each thread's whole stack. */
static idle_cost_t idle_threads(void) {
  static pthread_t ts[IDLE];
  if (pipe(ready) < 0 || pipe(release) < 0)
    die("pipe");
  settle();
  long pss0 = pss_of(getpid()), k0 = kernel_kib();
  long vm0 = proc_kib("/proc/self/status", "VmSize:");
  for (int i = 0; i < IDLE; i++)
    if (pthread_create(&ts[i], NULL, idle, NULL) != 0)
      die("pthread_create");
  for (int i = 0; i < IDLE; i++)
    xread(ready[0]);
  long pss1 = pss_of(getpid()), k1 = kernel_kib();
  long vm1 = proc_kib("/proc/self/status", "VmSize:");
  close(release[1]);
  for (int i = 0; i < IDLE; i++)
    pthread_join(ts[i], NULL);
  close(ready[0]), close(ready[1]), close(release[0]);
  idle_cost_t c = {(double)(pss1 - pss0) / IDLE, (double)(k1 - k0) / IDLE,
                   (double)(vm1 - vm0) / IDLE};
  return c;
}

int main(void) {
  idle_cost_t p = idle_processes(), t = idle_threads();
  double pf = fork_us(), tc = thread_us();
  double ps = process_switch_us(), tsw = thread_switch_us();
  printf("| process (fork) | %.1f µs | %.2f µs | %.0f KiB PSS + %.0f KiB "
         "kernel |\n",
         pf, ps, p.user_kib, p.kernel_kib);
  printf("| thread (pthread, default stack) | %.1f µs | %.2f µs | %.0f KiB "
         "RSS + %.0f KiB kernel (%.0f KiB virtual) |\n",
         tc, tsw, t.user_kib, t.kernel_kib, t.virtual_kib);
  return 0;
}

/*
 * shdict_test.c: the shared dictionary's core across processes: a value
 * written by a child is read by the parent, and a child killed while it
 * holds the lock does not freeze the parent (the robust mutex).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/eddy.h"
#include "../../core/shdict.h"
#include "tap.h"

#define SIZE (256 * 1024)

/* Called under the dictionary's lock: the process dies holding it. */
static void die_holding_lock(void *ud, const char *key, size_t klen) {
  (void)ud;
  (void)key;
  (void)klen;
  kill(getpid(), SIGKILL);
}

int main(void) {
  void *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ok(mem != MAP_FAILED && eddy__shdict_format(mem, SIZE, EDDY__SHD_EVICT) == 0,
     "a block formats as a dictionary");
  eddy__shdict_t *d = eddy__shdict_of(mem, SIZE);
  ok(d != NULL, "and is one");

  pid_t pid = fork();
  if (pid == 0) {
    _exit(eddy__shdict_set(d, "k", 1, 's', "from the child", 14, 0, 0));
  }
  int status;
  waitpid(pid, &status, 0);
  eddy__shval_t v;
  v.data = v.small;
  int rc = eddy__shdict_get(d, "k", 1, &v, NULL);
  ok(rc == 0 && v.len == 14 && memcmp(v.data, "from the child", 14) == 0,
     "a value a child process wrote is read by its parent");
  eddy__shval_free(&v);

  pid = fork();
  if (pid == 0) {
    eddy__shdict_keys(d, 0, die_holding_lock, NULL);
    _exit(0);
  }
  waitpid(pid, &status, 0);
  ok(WIFSIGNALED(status), "a child was killed while holding the lock");
  double n = 0;
  rc = eddy__shdict_incr(d, "n", 1, 5, 1, 0, &n);
  ok(rc == 0 && n == 5, "the parent still writes (rc %d)", rc);
  eddy__shdict_stats_t st;
  eddy__shdict_stats(d, &st);
  ok(st.recovered == 1 && st.count == 2,
     "the lock was taken over once (recovered %llu, count %zu)",
     (unsigned long long)st.recovered, st.count);
  munmap(mem, SIZE);
  return done();
}

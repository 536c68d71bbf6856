/*
 * embed_test.c: drives the embedding API of eddy.h as a host program
 * would: runtimes, scripts, exit statuses, errors, eddy_stop from another
 * thread, two runtimes at once, host functions and the log callback, and
 * a group of reactor threads.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../core/eddy.h"
#include "../../core/pool.h"
#include "../../core/runtime.h"
#include "tap.h"

static eddy_runtime_t *run_code(const char *code, int *status) {
  eddy_runtime_t *rt = eddy_new(NULL);
  int rc = eddy_load_string(rt, code, "=test");
  *status = rc == EDDY_OK ? eddy_run(rt) : rc;
  return rt;
}

/* A host function the script calls: records its argument. */
static int host_report(lua_State *L) {
  int *seen = lua_touserdata(L, lua_upvalueindex(1));
  *seen = (int)luaL_checkinteger(L, 1);
  return 0;
}

static void test_basic(void) {
  eddy_runtime_t *rt = eddy_new(NULL);
  ok(rt != NULL, "eddy_new makes a runtime");
  int seen = 0;
  lua_State *L = eddy_lua_state(rt);
  lua_pushlightuserdata(L, &seen);
  lua_pushcclosure(L, host_report, 1);
  lua_setglobal(L, "report");
  int rc = eddy_load_string(rt,
      "local eddy = require 'eddy'\n"
      "local t = eddy.spawn(function(a) eddy.sleep(0.01) return a * 2 end, 21)\n"
      "local ok, v = t:join()\n"
      "report(v)\n", "=basic");
  ok(rc == EDDY_OK, "eddy_load_string loads a chunk");
  ok(eddy_run(rt) == 0, "eddy_run returns 0 when the script ends");
  ok(seen == 42, "the script ran tasks and called the host (saw %d)", seen);
  eddy_free(rt);
}

static void test_errors(void) {
  int status;
  eddy_runtime_t *rt = eddy_new(NULL);
  int rc = eddy_load_string(rt, "this is not lua", "=bad");
  ok(rc == EDDY_ELUA, "a syntax error is EDDY_ELUA");
  ok(strstr(eddy_last_error(rt), "bad:1") != NULL,
     "and the message names the chunk: %s", eddy_last_error(rt));
  eddy_free(rt);

  rt = eddy_new(NULL);
  rc = eddy_load_file(rt, "/nonexistent/script.lua", 0, NULL);
  ok(rc == EDDY_ELUA && strstr(eddy_last_error(rt), "nonexistent"),
     "a missing file is EDDY_ELUA with its name");
  eddy_free(rt);

  rt = run_code("error('boom')", &status);
  ok(status == 1, "an error in the main chunk gives status 1");
  ok(strstr(eddy_last_error(rt), "boom") != NULL &&
         strstr(eddy_last_error(rt), "traceback") != NULL,
     "with the error and its traceback as last error");
  eddy_free(rt);

  rt = run_code("require('eddy').exit(7)", &status);
  ok(status == 7, "eddy.exit(7) gives status 7 (got %d)", status);
  eddy_free(rt);

  rt = run_code("local eddy = require 'eddy'\n"
                "local ch = eddy.channel()\n"
                "ch:recv()\n", &status);
  ok(status == 1, "a deadlock gives status 1");
  ok(strncmp(eddy_last_error(rt), "deadlock: 1 task waiting", 24) == 0 &&
         strstr(eddy_last_error(rt), "channel recv at test:3"),
     "and says where each task waits: %s", eddy_last_error(rt));
  eddy_free(rt);
}

static void *stop_later(void *arg) {
  usleep(100 * 1000);
  eddy_stop(arg);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_stop(void) {
  eddy_options_t opts;
  eddy_options_init(&opts);
  opts.install_signal_handlers = 0;
  eddy_runtime_t *rt = eddy_new(&opts);
  eddy_load_string(rt,
      "local eddy = require 'eddy'\n"
      "local n = 0\n"
      "eddy.timer.every(0.01, function() n = n + 1 end)\n", "=stop");
  pthread_t th;
  pthread_create(&th, NULL, stop_later, rt);
  double t0 = now_s();
  int status = eddy_run(rt);
  double took = now_s() - t0;
  pthread_join(th, NULL);
  ok(status == 0, "eddy_stop from another thread ends the run with 0");
  ok(took > 0.05 && took < 2.0, "promptly (%.3f s)", took);
  eddy_free(rt);
}

static void *run_thread(void *arg) {
  int *status = arg;
  eddy_runtime_t *rt = eddy_new(NULL);
  eddy_load_string(rt,
      "local eddy = require 'eddy'\n"
      "local s = 0\n"
      "local wg = eddy.waitgroup()\n"
      "for i = 1, 100 do wg:spawn(function() eddy.sleep(0.001 * (i % 5)) s = s + i end) end\n"
      "wg:wait()\n"
      "if s ~= 5050 then error('sum ' .. s) end\n", "=thread");
  *status = eddy_run(rt);
  eddy_free(rt);
  return NULL;
}

static void test_two_runtimes(void) {
  pthread_t a, b;
  int sa = -1, sb = -1;
  pthread_create(&a, NULL, run_thread, &sa);
  pthread_create(&b, NULL, run_thread, &sb);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  ok(sa == 0 && sb == 0, "two runtimes run at once in two threads");
}

/* Runs code in rt with report(n) recording n; returns what it reported. */
static int report_of(eddy_runtime_t *rt, const char *code) {
  int seen = -1;
  lua_State *L = eddy_lua_state(rt);
  lua_pushlightuserdata(L, &seen);
  lua_pushcclosure(L, host_report, 1);
  lua_setglobal(L, "report");
  if (eddy_load_string(rt, code, "=hub") != EDDY_OK || eddy_run(rt) != 0)
    return -2;
  return seen;
}

/* Memory queues and topics belong to a runtime (or its group), not to
   the process: two runtimes a host makes apart do not see each other's. */
static void test_queues_apart(void) {
  eddy_runtime_t *a = eddy_new(NULL), *b = eddy_new(NULL);
  int pushed = report_of(a,
      "local eddy = require 'eddy'\n"
      "local q = eddy.queue.open('jobs')\n"
      "q:push('one') q:push('two')\n"
      "sub = eddy.pubsub.subscribe('news')\n"
      "report((q:length()))\n");
  int seen = report_of(b,
      "local eddy = require 'eddy'\n"
      "local ready = eddy.queue.open('jobs'):length()\n"
      "local reached = eddy.pubsub.publish('news', 'hello')\n"
      "report(ready * 10 + reached)\n");
  int again = report_of(a,
      "local eddy = require 'eddy'\n"
      "report((eddy.queue.open('jobs'):length()))\n");
  ok(pushed == 2, "a runtime's queue holds what it pushed (%d)", pushed);
  ok(seen == 0, "another runtime's queue and topic of the same names are "
     "its own (length*10 + subscribers = %d)", seen);
  ok(again == 2, "the first runtime's queue is still there (%d)", again);
  eddy_free(a);
  eddy_free(b);
}

typedef struct log_s {
  int count;
  char last[512];
} log_t;

static void capture_log(void *data, int level, const char *msg) {
  log_t *log = data;
  (void)level;
  log->count++;
  snprintf(log->last, sizeof log->last, "%s", msg);
}

static void test_log(void) {
  log_t log = {0};
  eddy_options_t opts;
  eddy_options_init(&opts);
  opts.log = capture_log;
  opts.log_data = &log;
  eddy_runtime_t *rt = eddy_new(&opts);
  eddy_load_string(rt,
      "local eddy = require 'eddy'\n"
      "local t = eddy.spawn(function() error('in a task') end)\n"
      "t:join()\n", "=log");
  int status = eddy_run(rt);
  ok(status == 0, "a failing task does not end the run");
  ok(log.count == 1 && strstr(log.last, "in a task"),
     "its error reaches the host's log callback: %s", log.last);
  eddy_free(rt);
}

static void test_args(void) {
  char path[] = "/tmp/eddy_embed_XXXXXX";
  int fd = mkstemp(path);
  const char *code = "local a, b = ...\n"
                     "assert(a == 'one' and b == 'two', 'varargs')\n"
                     "assert(arg[0]:find('eddy_embed'), 'arg[0]')\n"
                     "assert(arg[1] == 'one' and arg[2] == 'two', 'arg')\n";
  ok(write(fd, code, strlen(code)) == (ssize_t)strlen(code), "wrote script");
  close(fd);
  char *argv[] = {"one", "two"};
  eddy_runtime_t *rt = eddy_new(NULL);
  int rc = eddy_load_file(rt, path, 2, argv);
  int status = rc == EDDY_OK ? eddy_run(rt) : rc;
  ok(status == 0, "eddy_load_file passes arguments as ... and arg (%s)",
     eddy_last_error(rt));
  eddy_free(rt);
  unlink(path);
}

/* A host's thread function for a group: each thread reports its number
   into the host's array through a host function, then runs `code`. */
typedef struct group_host_s {
  const char *code;
  int seen[4];
} group_host_t;

static int host_seen(lua_State *L) {
  int *seen = lua_touserdata(L, lua_upvalueindex(1));
  seen[luaL_checkinteger(L, 1) - 1] = 1;
  return 0;
}

static int group_thread(eddy_group_t *g, int thread, void *data) {
  group_host_t *host = data;
  eddy_options_t opts;
  eddy_options_init(&opts);
  opts.group = g;
  opts.thread = thread;
  eddy_runtime_t *rt = eddy_new(&opts);
  lua_State *L = eddy_lua_state(rt);
  lua_pushlightuserdata(L, host->seen);
  lua_pushcclosure(L, host_seen, 1);
  lua_setglobal(L, "seen");
  int status = eddy_load_string(rt, host->code, "=group");
  if (status == EDDY_OK)
    status = eddy_run(rt);
  eddy_free(rt);
  return status;
}

static void *stop_group_later(void *arg) {
  usleep(100 * 1000);
  eddy_group_stop(arg);
  return NULL;
}

static void test_group(void) {
  eddy_group_t *g = eddy_group_new(4);
  ok(g != NULL && eddy_group_threads(g) == 4, "eddy_group_new(4)");
  group_host_t host = {
      "local eddy = require 'eddy'\n"
      "seen(eddy.worker.thread())\n"
      "assert(eddy.worker.threads() == 4)\n", {0}};
  int status = eddy_group_run(g, group_thread, &host);
  ok(status == 0 && host.seen[0] && host.seen[1] && host.seen[2] &&
         host.seen[3], "eddy_group_run runs threads 1 to 4 (status %d)",
     status);

  host.code = "local eddy = require 'eddy'\n"
              "if eddy.worker.thread() == 3 then eddy.exit(9) end\n"
              "eddy.timer.every(0.01, function() end)\n";
  status = eddy_group_run(g, group_thread, &host);
  ok(status == 9, "eddy.exit(9) in thread 3 ends the group with 9 (%d)",
     status);

  host.code = "local eddy = require 'eddy'\n"
              "eddy.timer.every(0.01, function() end)\n";
  pthread_t th;
  pthread_create(&th, NULL, stop_group_later, g);
  double t0 = now_s();
  status = eddy_group_run(g, group_thread, &host);
  double took = now_s() - t0;
  pthread_join(th, NULL);
  ok(status == 0 && took < 2.0,
     "eddy_group_stop from another thread ends every thread (%.3f s)", took);
  eddy_group_free(g);

  eddy_options_t opts;
  eddy_options_init(&opts);
  g = eddy_group_new(2);
  opts.group = g;
  opts.thread = 3;
  ok(eddy_new(&opts) == NULL, "eddy_new refuses a thread outside its group");
  eddy_group_free(g);
}

/* ======================================================================= */
/* The task pool's threads outlive eddy__pool_free when busy */

typedef struct pool_state_s {
  int ran; /* this thread ran a job */
} pool_state_t;

static atomic_int pool_job_running, pool_jobs_done;

static void *pool_state_new(void *arg) {
  (void)arg;
  return calloc(1, sizeof(pool_state_t));
}

/* An idle thread ends slowly, so that a busy one ends first. */
static void pool_state_free(void *state) {
  if (!((pool_state_t *)state)->ran)
    usleep(150 * 1000);
  free(state);
}

static void pool_job_run(eddy__job_t *job, void *state) {
  (void)job;
  ((pool_state_t *)state)->ran = 1;
  atomic_store(&pool_job_running, 1);
  usleep(30 * 1000);
}

static void pool_job_done(eddy__job_t *job) {
  atomic_fetch_add(&pool_jobs_done, 1);
  free(job);
}

static void test_pool_free(void) {
  static const eddy__pool_ops_t ops = {pool_state_new, pool_state_free, NULL,
                                       NULL};
  eddy_runtime_t *rt = eddy_new(NULL);
  eddy__pool_t *p = eddy__pool_new(2, &ops, NULL);
  eddy__job_t *job = calloc(1, sizeof *job);
  job->run = pool_job_run;
  job->done = pool_job_done;
  ok(eddy__pool_submit(p, rt, job) == 0, "a job goes to the pool");
  while (!atomic_load(&pool_job_running))
    usleep(1000);
  ok(eddy__pool_cancel(p, job) == 0, "a running job is not taken back");
  /* The busy thread ends while the idle one is being joined: it must not
     free the pool under eddy__pool_free (AddressSanitizer sees it). */
  double t0 = now_s();
  eddy__pool_free(p);
  ok(now_s() - t0 < 1.0, "eddy__pool_free does not wait for the job");
  usleep(100 * 1000);
  eddy_free(rt);
  ok(atomic_load(&pool_jobs_done) == 1, "the given-up job is freed once (%d)",
     atomic_load(&pool_jobs_done));
}

/* A job refused for want of a task is never made: LeakSanitizer would
   see it in the asan build. */
static void test_pool_refused(void) {
  int status;
  eddy_runtime_t *rt = run_code(
      "local eddy = require 'eddy'\n"
      "local ok, err\n"
      "table.sort({ 1, 2 }, function(a, b)\n"
      "  ok, err = pcall(eddy.task.run, 'm', 'f', { 1, 2 })\n"
      "  return a < b\n"
      "end)\n"
      "assert(not ok and err:match('cannot wait here'), err)\n",
      &status);
  ok(status == 0, "eddy.task.run raises where it cannot wait (%s)",
     eddy_last_error(rt));
  eddy_free(rt);
}

/* The Lua module face: a job given up on still runs in its pool thread
   when lua_close unloads eddy.so, and the host goes on; the thread must
   find eddy's code still there when its job ends. Run in a process of its
   own (forked first thing, while this one has no thread), so that a
   crash is a failed test. build is the build directory, with eddy.so. */
static void test_pool_unload(const char *build) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushfstring(L, "%s/?.so;", build);
    lua_setglobal(L, "build_cpath");
    int rc = luaL_dostring(L,
        "package.cpath = build_cpath .. package.cpath\n"
        "package.path = './tests/?.lua;' .. package.path\n"
        "local eddy = require 'eddy'\n"
        "local r, err = eddy.run(function()\n"
        "  return eddy.task.run({ 'fixtures.taskwork', 'sleep', timeout = 0.05 }, 0.3)\n"
        "end)\n"
        "assert(r == nil and err == 'timeout', tostring(err))\n");
    if (rc != 0)
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    usleep(600 * 1000); /* the job ends meanwhile */
    _exit(rc == 0 ? 0 : 2);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "a host goes on after lua_close while a given-up job ends (status %d)",
     status);
}

int main(int argc, char **argv) {
  /* This program is BUILD/tests/embed_test. */
  char build[4096];
  snprintf(build, sizeof build, "%s", argc > 0 ? argv[0] : "build/tests/x");
  for (int cut = 0; cut < 2; cut++) {
    char *slash = strrchr(build, '/');
    if (slash != NULL)
      *slash = '\0';
  }
  test_pool_unload(build);
  test_basic();
  test_group();
  test_pool_free();
  test_pool_refused();
  test_errors();
  test_stop();
  test_two_runtimes();
  test_queues_apart();
  test_log();
  test_args();
  ok(strcmp(eddy_version(), EDDY_VERSION) == 0, "eddy_version");
  ok(strcmp(eddy_strerror(EDDY_ETIMEOUT), "timeout") == 0 &&
         strcmp(eddy_strerror(EDDY_ECLOSED), "closed") == 0,
     "eddy_strerror gives the stable strings");
  return done();
}

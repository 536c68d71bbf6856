/*
 * main.c: the `eddy` command, a small host program over the C library:
 * it reads its options, loads the script (or -e code) into a runtime (one
 * per reactor thread with --threads), runs it and exits with the status
 * the run gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "../core/eddy.h"

static void usage(FILE *out) {
  fputs(
      "usage: eddy [options] script.lua [args...]\n"
      "       eddy [options] -e code [args...]\n"
      "\n"
      "Runs a Lua script on the eddy runtime: the script is the main task,\n"
      "and the program ends when nothing is left to do.\n"
      "\n"
      "options:\n"
      "  -e code           run code as a main chunk (may be repeated)\n"
      "  -                 read the script from standard input\n"
      "  --threads N|auto  run N reactor threads, each running the script in\n"
      "                    a Lua state of its own; auto: one per core\n"
      "                    (default 1)\n"
      "  --workers N|auto  run N worker processes under a master that holds\n"
      "                    the listening sockets, restarts a worker that\n"
      "                    dies, reloads on SIGHUP, stops on SIGTERM/SIGINT\n"
      "  --pid-file path   with --workers: write the master's pid there\n"
      "  --process file    with --workers: also run file.lua in a process of\n"
      "                    its own under the master (may be repeated); its\n"
      "                    eddy.worker.id() follows the workers'\n"
      "  --task-threads N  threads of the task pool (eddy.task.run); default\n"
      "                    one per core, started on first use\n"
      "  --grace seconds   time tasks get to finish after SIGINT or SIGTERM\n"
      "                    (default 5)\n"
      "  --no-signals      leave SIGINT and SIGTERM to their defaults\n"
      "  --allow-inspect   let `eddy --inspect` list this program's tasks\n"
      "  --inspect pid     print the tasks of every thread of program pid\n"
      "                    (started with --allow-inspect; a worker's pid\n"
      "                    under --workers); --inspect-traceback adds\n"
      "                    their tracebacks\n"
      "  --watchdog ms|off warn (with the task's traceback) when a task holds\n"
      "                    its thread's loop longer than ms (default 100)\n"
      "  --watchdog-abort ms  raise an error in a task that holds the loop\n"
      "                    longer than ms (default: never)\n"
      "  -v, --version     print the version and exit\n"
      "  -h, --help        print this help and exit\n",
      out);
}

/* "off" or a count of milliseconds (up to a day). */
static int parse_ms(const char *s, int *ms) {
  if (strcmp(s, "off") == 0) {
    *ms = 0;
    return 1;
  }
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 0 || v > 86400000L)
    return 0;
  *ms = (int)v;
  return 1;
}

static int fail(const char *what, const char *msg) {
  fprintf(stderr, "eddy: %s%s\n", what, msg);
  return 1;
}

/* What every thread runs: the -e codes, then the script. */
typedef struct program_s {
  eddy_options_t opts;
  const char *codes[64];
  int ncodes;
  const char *script; /* NULL: none */
  int argc;           /* the script's arguments */
  char **argv;
  int threads;        /* reactor threads per process */
  int workers;
  const char *processes[64]; /* --process scripts */
  int nprocesses;
} program_t;

/* Loads the program into a runtime of its own and runs it. A failure to
   load is the same in every thread: only thread 1 tells it. */
static int run_program(eddy_group_t *g, int thread, void *data) {
  program_t *p = data;
  eddy_options_t opts = p->opts;
  opts.group = g;
  opts.thread = thread;
  eddy_runtime_t *rt = eddy_new(&opts);
  if (rt == NULL)
    return fail("cannot start: ", "out of memory");
  int rc = EDDY_OK;
  for (int k = 0; k < p->ncodes && rc == EDDY_OK; k++)
    rc = eddy_load_string(rt, p->codes[k], "=(command line)");
  if (rc == EDDY_OK && p->script != NULL)
    rc = eddy_load_file(rt, p->script, p->argc, p->argv);
  int status;
  if (rc != EDDY_OK)
    status = thread <= 1 ? fail("", eddy_last_error(rt)) : 1;
  else
    status = eddy_run(rt);
  if (status < 0)
    status = fail("", eddy_last_error(rt));
  else if (status == 1 && strncmp(eddy_last_error(rt), "deadlock", 8) == 0)
    fail("", eddy_last_error(rt));
  eddy_free(rt);
  return status;
}

/* A process's threads (in a worker of its own, or the only process). */
static int run_process(eddy_worker_t *w, program_t *p) {
  p->opts.worker = w;
  if (p->threads == 1)
    return run_program(NULL, 0, p);
  eddy_group_t *g = eddy_group_new(p->threads);
  if (g == NULL)
    return fail("cannot start: ", "out of memory");
  int status = eddy_group_run(g, run_program, p);
  if (status < 0)
    status = fail("cannot start the threads: ", eddy_strerror(status));
  eddy_group_free(g);
  return status;
}

static int run_worker(eddy_worker_t *w, int id, void *data) {
  program_t *p = data;
  if (id <= p->workers)
    return run_process(w, p);
  /* One of the --process scripts: on a thread of its own, alone. */
  program_t other = *p;
  other.ncodes = 0;
  other.script = p->processes[id - p->workers - 1];
  other.argc = 0;
  other.argv = NULL;
  other.threads = 1;
  return run_process(w, &other);
}

static int parse_threads(const char *s, int *threads) {
  char *end;
  if (strcmp(s, "auto") == 0) {
    *threads = 0;
    return 1;
  }
  long n = strtol(s, &end, 10);
  if (*end != '\0' || n < 1 || n > 1024)
    return 0;
  *threads = (int)n;
  return 1;
}

int main(int argc, char **argv) {
  program_t p;
  memset(&p, 0, sizeof p);
  eddy_options_init(&p.opts);
  eddy_master_options_t master;
  eddy_master_options_init(&master);
  int threads = 1, workers = -1; /* -1: no master */
  char inspect_code[512];
  int inspecting = 0; /* --inspect: run only the inspector */
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("eddy %s\n", eddy_version());
      return 0;
    } else if (strcmp(a, "-e") == 0) {
      if (++i == argc)
        return fail("-e needs an argument", "");
      if (p.ncodes == 64)
        return fail("too many -e options", "");
      p.codes[p.ncodes++] = argv[i];
    } else if (strcmp(a, "--threads") == 0) {
      if (++i == argc)
        return fail("--threads needs a number or auto", "");
      if (!parse_threads(argv[i], &threads))
        return fail("bad --threads: ", argv[i]);
    } else if (strcmp(a, "--workers") == 0) {
      if (++i == argc)
        return fail("--workers needs a number or auto", "");
      if (!parse_threads(argv[i], &workers))
        return fail("bad --workers: ", argv[i]);
    } else if (strcmp(a, "--pid-file") == 0) {
      if (++i == argc)
        return fail("--pid-file needs a path", "");
      master.pid_file = argv[i];
    } else if (strcmp(a, "--process") == 0) {
      if (++i == argc)
        return fail("--process needs a script", "");
      if (p.nprocesses == 64)
        return fail("too many --process options", "");
      p.processes[p.nprocesses++] = argv[i];
    } else if (strcmp(a, "--task-threads") == 0) {
      int n;
      if (++i == argc)
        return fail("--task-threads needs a number", "");
      if (!parse_threads(argv[i], &n) || n == 0)
        return fail("bad --task-threads: ", argv[i]);
      p.opts.task_threads = n;
    } else if (strcmp(a, "--grace") == 0) {
      char *end;
      if (++i == argc)
        return fail("--grace needs a number of seconds", "");
      p.opts.shutdown_grace = strtod(argv[i], &end);
      if (*end != '\0' || !(p.opts.shutdown_grace >= 0)) /* NaN too */
        return fail("bad --grace: ", argv[i]);
    } else if (strcmp(a, "--no-signals") == 0) {
      p.opts.install_signal_handlers = 0;
    } else if (strcmp(a, "--allow-inspect") == 0) {
      if (p.ncodes == 64)
        return fail("too many -e options", "");
      p.codes[p.ncodes++] = "require('eddy.inspect').enable()";
    } else if (strcmp(a, "--inspect") == 0 ||
               strcmp(a, "--inspect-traceback") == 0) {
      char *end;
      if (++i == argc)
        return fail(a, " needs a process id");
      long pid = strtol(argv[i], &end, 10);
      if (*end != '\0' || pid <= 0)
        return fail("bad process id: ", argv[i]);
      snprintf(inspect_code, sizeof inspect_code,
               "local text, err = require('eddy.inspect').query(%ld, "
               "{traceback = %s}) if not text then io.stderr:write("
               "'eddy: cannot inspect %ld: ', err, ' (was it started "
               "with --allow-inspect?)\\n') os.exit(1) end "
               "io.write(text)",
               pid, a[9] == '\0' ? "false" : "true", pid);
      p.codes[0] = inspect_code;
      p.ncodes = 1;
      p.script = NULL;
      inspecting = 1;
    } else if (strcmp(a, "--watchdog") == 0 ||
               strcmp(a, "--watchdog-abort") == 0) {
      int *ms = a[10] == '\0' ? &p.opts.watchdog_ms
                              : &p.opts.watchdog_abort_ms;
      if (++i == argc)
        return fail(a, " needs milliseconds (or off)");
      if (!parse_ms(argv[i], ms))
        return fail("bad watchdog time: ", argv[i]);
    } else if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (a[0] == '-' && a[1] != '\0') {
      usage(stderr);
      return fail("unknown option: ", a);
    } else {
      break;
    }
  }
  if (p.ncodes == 0 && i == argc) {
    usage(stderr);
    return 1;
  }
  if (inspecting) {
    p.threads = 1;
    p.opts.watchdog_ms = 0;
    return run_process(NULL, &p);
  }
  if (i < argc) {
    p.script = argv[i];
    p.argc = argc - i - 1;
    p.argv = argv + i + 1;
    if ((threads != 1 || workers >= 0) && strcmp(p.script, "-") == 0)
      return fail("--threads, --workers: ",
                  "each thread and worker reads the script: give a file");
  }
  p.threads = threads;
  if (workers < 0) {
    if (master.pid_file != NULL || p.nprocesses > 0)
      return fail("--pid-file and --process go with --workers", "");
    return run_process(NULL, &p);
  }
  master.workers = workers > 0 ? workers : (int)uv_available_parallelism();
  master.processes = p.nprocesses;
  p.workers = master.workers;
  /* A worker is killed once its own grace period is well over. */
  master.kill_after = p.opts.shutdown_grace + 10;
  int status = eddy_master_run(&master, run_worker, &p);
  if (status < 0)
    status = fail("cannot start the workers: ", eddy_strerror(status));
  return status;
}

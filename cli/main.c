/*
 * main.c: the `eddy` command, a small host program over the C library:
 * it reads its options, loads the script (or -e code) into a runtime,
 * runs it and exits with the status the run gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
      "  --grace seconds   time tasks get to finish after SIGINT or SIGTERM\n"
      "                    (default 5)\n"
      "  --no-signals      leave SIGINT and SIGTERM to their defaults\n"
      "  -v, --version     print the version and exit\n"
      "  -h, --help        print this help and exit\n",
      out);
}

static int fail(const char *what, const char *msg) {
  fprintf(stderr, "eddy: %s%s\n", what, msg);
  return 1;
}

int main(int argc, char **argv) {
  eddy_options_t opts;
  eddy_options_init(&opts);
  const char *codes[64];
  int ncodes = 0;
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
      if (ncodes == 64)
        return fail("too many -e options", "");
      codes[ncodes++] = argv[i];
    } else if (strcmp(a, "--grace") == 0) {
      char *end;
      if (++i == argc)
        return fail("--grace needs a number of seconds", "");
      opts.shutdown_grace = strtod(argv[i], &end);
      if (*end != '\0' || opts.shutdown_grace < 0)
        return fail("bad --grace: ", argv[i]);
    } else if (strcmp(a, "--no-signals") == 0) {
      opts.install_signal_handlers = 0;
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
  if (ncodes == 0 && i == argc) {
    usage(stderr);
    return 1;
  }

  eddy_runtime_t *rt = eddy_new(&opts);
  if (rt == NULL)
    return fail("cannot start: ", "out of memory");
  int rc = EDDY_OK;
  for (int k = 0; k < ncodes && rc == EDDY_OK; k++)
    rc = eddy_load_string(rt, codes[k], "=(command line)");
  if (rc == EDDY_OK && i < argc)
    rc = eddy_load_file(rt, argv[i], argc - i - 1, argv + i + 1);
  int status;
  if (rc != EDDY_OK)
    status = fail("", eddy_last_error(rt));
  else
    status = eddy_run(rt);
  if (status < 0)
    status = fail("", eddy_last_error(rt));
  else if (status == 1 && eddy_last_error(rt)[0] != '\0' &&
           strncmp(eddy_last_error(rt), "deadlock", 8) == 0)
    fail("", eddy_last_error(rt));
  eddy_free(rt);
  return status;
}

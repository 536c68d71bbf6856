/*
 * process.h: child processes (uv_spawn). A child's stdin, stdout and
 * stderr are each a pipe (an eddy__stream_t its owner made with
 * eddy__stream_init_pipe), the parent's own descriptor, or /dev/null.
 * No shell: the file is run with the arguments as given. Knows nothing
 * of Lua.
 */
#ifndef EDDY_PROCESS_H
#define EDDY_PROCESS_H

#include <stdint.h>
#include <uv.h>

#include "runtime.h"
#include "stream.h"

enum eddy__stdio_mode {
  EDDY__STDIO_PIPE,    /* a pipe: stdio[i] */
  EDDY__STDIO_INHERIT, /* the parent's own descriptor */
  EDDY__STDIO_IGNORE   /* /dev/null */
};

typedef struct eddy__spawn_s {
  const char *file; /* looked up in PATH (of env, when given) */
  char **args;      /* NULL-terminated; args[0] is the program's name */
  char **env;       /* NULL-terminated "NAME=value"s; NULL: the parent's */
  const char *cwd;  /* NULL: the parent's */
  int group;        /* in a process group of its own (see _kill) */
  int mode[3];      /* of stdin, stdout, stderr */
  eddy__stream_t *stdio[3]; /* the pipes, for EDDY__STDIO_PIPE */
} eddy__spawn_t;

/*
 * A child. Owned by its owner; freed by the owner's on_close, its last
 * callback, which comes after on_exit (or after a spawn that failed).
 * The handle does not keep the loop alive unless held (a task waits for
 * the child). When the runtime ends, a child still running is sent
 * SIGKILL (its group too, when it has one), and the handle is held until
 * it has been reaped, so that no zombie is left.
 */
typedef struct eddy__process_s eddy__process_t;
struct eddy__process_s {
  uv_process_t handle;
  eddy_runtime_t *rt;
  eddy__closer_t closer;
  int pid;
  int exited;     /* on_exit ran: status and signal are set */
  int64_t status; /* the exit status */
  int signal;     /* the signal that ended it, or 0 */
  int group;      /* leads a process group of its own */
  int closing;
  void (*on_exit)(eddy__process_t *p);
  void (*on_close)(eddy__process_t *p);
  void *data;
};

/* Starts the child. Returns 0, or an EDDY_E code ("not found" for a
   missing program, "permission denied" for one that may not run), and
   then on_close follows. */
int eddy__process_spawn(eddy_runtime_t *rt, eddy__process_t *p,
                        const eddy__spawn_t *opts);

/* Sends signum to the child, or with group to its whole process group
   (what a shell started, say), which may outlive the child: EDDY_ENOTFOUND
   once the child has exited (for a group: once no member is left). */
int eddy__process_kill(eddy__process_t *p, int signum);

/* Whether the running child keeps the loop alive. */
void eddy__process_hold(eddy__process_t *p, int on);

#endif

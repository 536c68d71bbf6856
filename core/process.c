/*
 * process.c: child processes (see process.h). libuv reaps each child it
 * started with waitpid(pid) when SIGCHLD comes, so nothing else in the
 * process may reap with waitpid(-1): eddy's master process does, but it
 * runs no Lua and its children are the workers, never their children.
 * Knows nothing of Lua.
 */
#include "process.h"

#include <signal.h>
#include <stddef.h>

static void on_closed(uv_handle_t *handle) {
  eddy__process_t *p = handle->data;
  p->on_close(p);
}

static void close_handle(eddy__process_t *p) {
  if (p->closing)
    return;
  p->closing = 1;
  eddy__closer_remove(p->rt, &p->closer);
  uv_close((uv_handle_t *)&p->handle, on_closed);
}

static void on_child_exit(uv_process_t *handle, int64_t status, int signal) {
  eddy__process_t *p = handle->data;
  p->exited = 1;
  p->status = status;
  p->signal = signal;
  eddy__closer_remove(p->rt, &p->closer);
  p->on_exit(p);
  close_handle(p);
}

/* The runtime ends: the child dies with it, and the handle stays held
   until on_exit has reaped it. */
static void kill_by_stop(eddy__closer_t *c) {
  eddy__process_t *p =
      (eddy__process_t *)((char *)c - offsetof(eddy__process_t, closer));
  eddy__closer_remove(p->rt, &p->closer);
  eddy__process_hold(p, 1);
  if (p->group)
    uv_kill(-p->pid, SIGKILL);
  uv_process_kill(&p->handle, SIGKILL);
}

static void set_stdio(uv_stdio_container_t *c, const eddy__spawn_t *o,
                      int i) {
  switch (o->mode[i]) {
  case EDDY__STDIO_PIPE:
    c->flags = UV_CREATE_PIPE |
               (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
    c->data.stream = (uv_stream_t *)&o->stdio[i]->pipe;
    break;
  case EDDY__STDIO_INHERIT:
    c->flags = UV_INHERIT_FD;
    c->data.fd = i;
    break;
  default:
    c->flags = UV_IGNORE; /* libuv opens /dev/null for it */
    break;
  }
}

int eddy__process_spawn(eddy_runtime_t *rt, eddy__process_t *p,
                        const eddy__spawn_t *o) {
  uv_stdio_container_t stdio[3];
  uv_process_options_t opts = {0};
  for (int i = 0; i < 3; i++)
    set_stdio(&stdio[i], o, i);
  opts.exit_cb = on_child_exit;
  opts.file = o->file;
  opts.args = o->args;
  opts.env = o->env;
  opts.cwd = o->cwd;
  opts.stdio_count = 3;
  opts.stdio = stdio;
  /* setsid: a session and a process group of its own. */
  opts.flags = o->group ? UV_PROCESS_DETACHED : 0;
  p->group = o->group;
  p->rt = rt;
  p->exited = p->closing = 0;
  p->status = 0;
  p->signal = 0;
  p->pid = 0;
  p->closer.next = p->closer.prev = NULL;
  p->closer.close = kill_by_stop;
  p->closer.stop = NULL;
  p->handle.data = p;
  int rc = uv_spawn(&rt->loop, &p->handle, &opts);
  if (rc != 0) {
    /* The handle is initialised even so, and must be closed. */
    close_handle(p);
    return eddy__error_from_uv(rc);
  }
  p->pid = p->handle.pid;
  eddy__closer_add(rt, &p->closer);
  eddy__process_hold(p, 0);
  return 0;
}

int eddy__process_kill(eddy__process_t *p, int signum) {
  int rc;
  if (p->group && p->pid > 0)
    rc = uv_kill(-p->pid, signum); /* the group's id is the leader's pid */
  else if (p->exited || p->closing)
    return EDDY_ENOTFOUND;
  else
    rc = uv_process_kill(&p->handle, signum);
  return rc == 0 ? 0 : eddy__error_from_uv(rc);
}

void eddy__process_hold(eddy__process_t *p, int on) {
  if (on)
    uv_ref((uv_handle_t *)&p->handle);
  else
    uv_unref((uv_handle_t *)&p->handle);
}

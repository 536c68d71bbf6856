/*
 * master.c: the master process of eddy_master_run (eddy.h). It runs no
 * Lua and starts no thread, so that it can fork at any time: a plain loop
 * over poll(2), with signals read from a signalfd, the workers' links
 * (worker.h) and the deadlines of restarts and kills.
 *
 * Each worker slot (1 to W) has a current process, and during a reload a
 * next one; the next one replaces the current one once it says it runs,
 * so that a reload whose new code fails keeps the old workers serving.
 * Listening sockets are made on a worker's first request, one per slot,
 * reactor thread and address, all in one SO_REUSEPORT group, and kept for
 * the master's life: a replacement for a slot gets the same sockets, and
 * connections queued on them wait for it rather than being dropped.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "shared.h"
#include "worker.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 5000 /* a worker that lived this long starts afresh */
#define LINK_TIMEOUT_S 10 /* the longest a worker waits for an answer */

typedef struct proc_s {
  pid_t pid; /* 0: a free entry */
  int slot;
  int chan;  /* the master's end of the link; -1 once the worker closed it */
  int retiring; /* 1: asked to stop; 2: killed, not yet reaped */
  uint64_t started_ms;
  uint64_t kill_at; /* when retiring: SIGKILL then */
} proc_t;

typedef struct slot_s {
  proc_t *current;
  proc_t *next;      /* a reload's replacement, until it runs */
  int backoff_ms;
  uint64_t restart_at; /* 0: no restart pending */
} slot_t;

typedef struct sock_s {
  struct sockaddr_storage addr; /* as asked: port 0 stays 0 */
  int nth;
  int slot;
  int thread;
  int fd;
} sock_t;

/* A shared dictionary's block, made on a worker's first request. */
typedef struct shared_s {
  char name[64];
  uint64_t size;
  unsigned flags;
  int fd;
} shared_t;

typedef struct master_s {
  eddy_master_options_t opts;
  eddy_worker_fn fn;
  void *data;
  int workers;
  int nslots;    /* workers, then the host's other processes */
  proc_t *procs; /* 2 per slot: current and next */
  slot_t *slots;
  sock_t *socks;
  int nsocks;
  shared_t *shared;
  int nshared;
  int sigfd;
  sigset_t oldmask;
  int stopping;       /* 1: asked the workers to stop; 2: killed them */
  uint64_t stop_kill_at;
} master_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("eddy master: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  fflush(stderr);
  va_end(ap);
}

void eddy_master_options_init(eddy_master_options_t *opts) {
  memset(opts, 0, sizeof *opts);
  opts->workers = 1;
  opts->kill_after = 30;
}

/* ======================================================================= */
/* Listening sockets */

static int same_host_port(const struct sockaddr_storage *a,
                          const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_addr.s_addr == y->sin_addr.s_addr &&
           x->sin_port == y->sin_port;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
         x->sin6_port == y->sin6_port;
}

static socklen_t addr_len(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
}

/* The port a group of port-0 sockets got: that of any socket made for the
   same address and nth listen. */
static int group_port(master_t *m, const eddy__msg_t *req) {
  for (int i = 0; i < m->nsocks; i++) {
    sock_t *s = &m->socks[i];
    if (s->nth == req->nth && same_host_port(&s->addr, &req->addr)) {
      struct sockaddr_storage bound;
      socklen_t len = sizeof bound;
      if (getsockname(s->fd, (struct sockaddr *)&bound, &len) == 0)
        return ntohs(bound.ss_family == AF_INET
                         ? ((struct sockaddr_in *)&bound)->sin_port
                         : ((struct sockaddr_in6 *)&bound)->sin6_port);
    }
  }
  return 0;
}

static int open_socket(const struct sockaddr_storage *addr, int port,
                       const eddy__msg_t *req) {
  struct sockaddr_storage ss = *addr;
  if (ss.ss_family == AF_INET)
    ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      (ss.ss_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &req->ipv6only,
                  sizeof req->ipv6only) != 0) ||
      bind(fd, (struct sockaddr *)&ss, addr_len(&ss)) != 0 ||
      listen(fd, req->backlog > 0 ? req->backlog : 511) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

/* The socket for a worker's request: the one made before for its slot,
   thread and address, or a new one. Returns it or a negative errno. */
static int socket_for(master_t *m, int slot, const eddy__msg_t *req) {
  if (req->addr.ss_family != AF_INET && req->addr.ss_family != AF_INET6)
    return -EAFNOSUPPORT;
  for (int i = 0; i < m->nsocks; i++) {
    sock_t *s = &m->socks[i];
    if (s->slot == slot && s->thread == req->thread && s->nth == req->nth &&
        same_host_port(&s->addr, &req->addr))
      return s->fd;
  }
  int port = ntohs(req->addr.ss_family == AF_INET
                       ? ((const struct sockaddr_in *)&req->addr)->sin_port
                       : ((const struct sockaddr_in6 *)&req->addr)->sin6_port);
  if (port == 0)
    port = group_port(m, req);
  sock_t *socks = realloc(m->socks, (size_t)(m->nsocks + 1) * sizeof *socks);
  if (socks == NULL)
    return -ENOMEM;
  m->socks = socks;
  int fd = open_socket(&req->addr, port, req);
  if (fd < 0)
    return fd;
  sock_t *s = &socks[m->nsocks++];
  s->addr = req->addr;
  s->nth = req->nth;
  s->slot = slot;
  s->thread = req->thread;
  s->fd = fd;
  return fd;
}

static void send_reply(int chan, const eddy__reply_t *reply, int fd) {
  eddy__reply_t r = *reply;
  struct iovec iov = {&r, sizeof r};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  memset(control, 0, sizeof control);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (fd >= 0) {
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (sendmsg(chan, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
    ;
}

/* The block of a shared dictionary: the one made before under that name
   (a request of another size is refused), or a new one. */
static shared_t *shared_for(master_t *m, const eddy__msg_t *req, int *err) {
  char name[sizeof req->name];
  memcpy(name, req->name, sizeof name);
  name[sizeof name - 1] = '\0';
  for (int i = 0; i < m->nshared; i++)
    if (strcmp(m->shared[i].name, name) == 0) {
      if (req->size != 0 && req->size != m->shared[i].size) {
        *err = EDDY_EINVAL;
        return NULL;
      }
      return &m->shared[i];
    }
  if (req->size == 0) {
    *err = EDDY_ENOTFOUND;
    return NULL;
  }
  shared_t *list = realloc(m->shared, (size_t)(m->nshared + 1) * sizeof *list);
  if (list == NULL) {
    *err = EDDY_ENOMEM;
    return NULL;
  }
  m->shared = list;
  int fd;
  void *mem;
  *err = eddy__shared_make((size_t)req->size, req->flags, &fd, &mem);
  if (*err != 0)
    return NULL;
  munmap(mem, (size_t)req->size); /* the master itself never reads it */
  shared_t *sh = &list[m->nshared++];
  memcpy(sh->name, name, sizeof sh->name);
  sh->size = req->size;
  sh->flags = req->flags;
  sh->fd = fd;
  return sh;
}

/* ======================================================================= */
/* Workers */

static proc_t *free_proc(master_t *m) {
  for (int i = 0; i < 2 * m->nslots; i++)
    if (m->procs[i].pid == 0)
      return &m->procs[i];
  return NULL;
}

/* In the new process: let go of the master's things, and run. */
static void worker_main(master_t *m, int slot, int chan) {
  pid_t master_pid = getppid();
  close(m->sigfd);
  for (int i = 0; i < 2 * m->nslots; i++)
    if (m->procs[i].pid != 0 && m->procs[i].chan >= 0)
      close(m->procs[i].chan);
  for (int i = 0; i < m->nsocks; i++)
    close(m->socks[i].fd);
  for (int i = 0; i < m->nshared; i++)
    close(m->shared[i].fd);
  /* Its own process group: a Ctrl-C in the terminal reaches the master,
     which stops the workers once, gracefully. If the master dies, the
     worker is told to stop. */
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != master_pid)
    _exit(1);
  sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
  eddy_worker_t w;
  memset(&w, 0, sizeof w);
  w.id = slot + 1;
  w.count = m->workers;
  w.chan = chan;
  /* A worker asks on its loop thread and waits for the answer: bounded,
     should the master ever not answer. */
  struct timeval limit = {LINK_TIMEOUT_S, 0};
  setsockopt(chan, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(chan, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (uv_mutex_init(&w.lock) != 0)
    _exit(1);
  int status = m->fn(&w, w.id, m->data);
  uv_mutex_destroy(&w.lock);
  exit(status);
}

static proc_t *spawn(master_t *m, int slot) {
  proc_t *p = free_proc(m);
  int sv[2];
  if (p == NULL) {
    /* Every entry is taken by workers that still run, old ones that a
       reload asked to stop among them. */
    say("cannot start worker %d: too many workers still stopping", slot + 1);
    return NULL;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    say("cannot start worker %d: %s", slot + 1, strerror(errno));
    return NULL;
  }
  fflush(NULL); /* nothing buffered is written twice */
  pid_t pid = fork();
  if (pid < 0) {
    say("cannot start worker %d: %s", slot + 1, strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return NULL;
  }
  if (pid == 0) {
    close(sv[0]);
    worker_main(m, slot, sv[1]);
  }
  close(sv[1]);
  p->pid = pid;
  p->slot = slot;
  p->chan = sv[0];
  p->retiring = 0;
  p->started_ms = now_ms();
  p->kill_at = 0;
  return p;
}

/* Starts the slot's worker; one that cannot be started (fork failed)
   is tried again later, or the slot would stay empty for good. */
static void start_current(master_t *m, int slot) {
  slot_t *s = &m->slots[slot];
  s->current = spawn(m, slot);
  s->restart_at = s->current != NULL ? 0 : now_ms() + BACKOFF_MAX_MS;
}

/* The time a kill is due, kill_after seconds from now: a huge or bad
   setting must not overflow the clock. */
static uint64_t kill_time(master_t *m) {
  double ms = m->opts.kill_after * 1000;
  if (!(ms > 0))
    ms = 0;
  else if (ms > 1e15) /* some 30,000 years */
    ms = 1e15;
  return now_ms() + (uint64_t)ms;
}

static void retire(master_t *m, proc_t *p) {
  if (p->retiring)
    return;
  p->retiring = 1;
  p->kill_at = kill_time(m);
  kill(p->pid, SIGTERM);
}

static void close_link(proc_t *p) {
  if (p->chan >= 0)
    close(p->chan);
  p->chan = -1;
}

/* A worker ended: replace it if it died, unless stopping. */
static void reap(master_t *m, proc_t *p, int wstatus) {
  slot_t *s = &m->slots[p->slot];
  int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  int sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
  char how[64];
  if (sig)
    snprintf(how, sizeof how, "was killed by signal %d", sig);
  else
    snprintf(how, sizeof how, "exited with status %d", code);
  if (s->next == p) {
    s->next = NULL;
    if (!m->stopping)
      say("reload: the new worker %d (pid %d) %s before it ran; %s",
          p->slot + 1, (int)p->pid, how,
          s->current != NULL      ? "the old one keeps serving"
          : s->restart_at != 0    ? "the old one has gone too, and restarts"
                                  : "the old one has gone too");
  } else if (s->current == p) {
    s->current = NULL;
    if (!m->stopping && !p->retiring && (sig || code != 0)) {
      uint64_t lived = now_ms() - p->started_ms;
      s->backoff_ms = lived >= STABLE_MS ? 0
                      : s->backoff_ms == 0
                          ? BACKOFF_FIRST_MS
                          : (s->backoff_ms * 2 > BACKOFF_MAX_MS
                                 ? BACKOFF_MAX_MS
                                 : s->backoff_ms * 2);
      s->restart_at = now_ms() + (uint64_t)s->backoff_ms;
      say("worker %d (pid %d) %s; restarting it in %.1f s", p->slot + 1,
          (int)p->pid, how, s->backoff_ms / 1000.0);
    } else if (!m->stopping && !p->retiring) {
      say("worker %d (pid %d) ended", p->slot + 1, (int)p->pid);
    }
  }
  close_link(p);
  p->pid = 0;
}

static void reap_all(master_t *m) {
  int wstatus;
  pid_t pid;
  while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
    for (int i = 0; i < 2 * m->nslots; i++)
      if (m->procs[i].pid == pid)
        reap(m, &m->procs[i], wstatus);
}

/* A new worker runs: during a reload, it takes its slot over. */
static void on_ready(master_t *m, proc_t *p) {
  slot_t *s = &m->slots[p->slot];
  if (s->next != p || p->retiring) /* gave up on it already */
    return;
  proc_t *old = s->current;
  s->current = p;
  s->next = NULL;
  /* The current worker may have died while this one started: this one
     replaces it, and the restart that was pending would make a second
     worker for the slot. */
  s->restart_at = 0;
  if (old != NULL) {
    say("worker %d: pid %d took over from pid %d", p->slot + 1,
        (int)p->pid, (int)old->pid);
    retire(m, old);
  }
}

static void on_message(master_t *m, proc_t *p) {
  eddy__msg_t msg;
  ssize_t n;
  do
    n = recv(p->chan, &msg, sizeof msg, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    close_link(p); /* the worker has gone: SIGCHLD follows */
    return;
  }
  if (n != (ssize_t)sizeof msg)
    return;
  if (msg.type == EDDY__MSG_READY) {
    on_ready(m, p);
  } else if (msg.type == EDDY__MSG_LISTEN) {
    int fd = socket_for(m, p->slot, &msg);
    eddy__reply_t r = {fd < 0 ? eddy__error_from_uv(fd) : 0, 0, 0};
    send_reply(p->chan, &r, fd);
  } else if (msg.type == EDDY__MSG_SHARED) {
    eddy__reply_t r = {0, 0, 0};
    shared_t *sh = shared_for(m, &msg, &r.err);
    if (sh != NULL) {
      r.size = sh->size;
      r.flags = sh->flags;
    }
    send_reply(p->chan, &r, sh != NULL ? sh->fd : -1);
  }
}

static void reload(master_t *m) {
  say("reloading: starting %d new workers", m->nslots);
  for (int i = 0; i < m->nslots; i++) {
    slot_t *s = &m->slots[i];
    if (s->next != NULL)
      continue;
    if (s->current == NULL) {
      start_current(m, i); /* it was waiting for a restart */
    } else {
      s->next = spawn(m, i);
    }
  }
}

static void stop_all(master_t *m, int sig) {
  for (int i = 0; i < 2 * m->nslots; i++)
    if (m->procs[i].pid != 0)
      kill(m->procs[i].pid, sig);
}

static void on_signal(master_t *m, int sig) {
  if (sig == SIGCHLD) {
    reap_all(m);
  } else if (sig == SIGHUP) {
    if (!m->stopping)
      reload(m);
  } else if (m->stopping == 0) {
    say("stopping the workers");
    m->stopping = 1;
    m->stop_kill_at = kill_time(m);
    stop_all(m, SIGTERM);
  } else {
    say("second stop request: killing the workers");
    m->stopping = 2;
    stop_all(m, SIGKILL);
  }
}

/* ======================================================================= */
/* The loop */

static int live_procs(master_t *m) {
  int n = 0;
  for (int i = 0; i < 2 * m->nslots; i++)
    n += m->procs[i].pid != 0;
  return n;
}

static int pending_restarts(master_t *m) {
  for (int i = 0; i < m->nslots; i++)
    if (m->slots[i].restart_at != 0)
      return 1;
  return 0;
}

/* Restarts that are due, and kills of workers past their time. Returns
   the milliseconds until the next deadline, or -1. */
static int run_deadlines(master_t *m) {
  uint64_t now = now_ms(), next = 0;
  for (int i = 0; i < m->nslots && !m->stopping; i++) {
    slot_t *s = &m->slots[i];
    if (s->restart_at != 0 && s->restart_at <= now) {
      start_current(m, i);
      if (s->restart_at != 0 && (next == 0 || s->restart_at < next))
        next = s->restart_at;
    } else if (s->restart_at != 0 && (next == 0 || s->restart_at < next)) {
      next = s->restart_at;
    }
    /* A reload's replacement that never gets to run (stuck in its start)
       must not hold its slot's reloads back for good. */
    proc_t *nx = s->next;
    if (nx != NULL && !nx->retiring) {
      uint64_t at = nx->started_ms + (kill_time(m) - now);
      if (at <= now) {
        say("reload: the new worker %d (pid %d) did not start running in "
            "time; the old one keeps serving", i + 1, (int)nx->pid);
        retire(m, nx);
      } else if (next == 0 || at < next) {
        next = at;
      }
    }
  }
  for (int i = 0; i < 2 * m->nslots; i++) {
    proc_t *p = &m->procs[i];
    uint64_t at = m->stopping == 1 ? m->stop_kill_at
                  : p->retiring    ? p->kill_at
                                   : 0;
    /* retiring 2: killed already, only not reaped yet. */
    if (p->pid == 0 || at == 0 || m->stopping == 2 || p->retiring == 2)
      continue;
    if (at <= now) {
      say("worker %d (pid %d) did not stop in time: killing it",
          p->slot + 1, (int)p->pid);
      kill(p->pid, SIGKILL);
      p->kill_at = 0;
      p->retiring = 2;
    } else if (next == 0 || at < next) {
      next = at;
    }
  }
  if (next == 0)
    return -1;
  return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static void master_loop(master_t *m) {
  struct pollfd *fds = calloc((size_t)(1 + 2 * m->nslots), sizeof *fds);
  proc_t **owners = calloc((size_t)(1 + 2 * m->nslots), sizeof *owners);
  if (fds == NULL || owners == NULL)
    abort();
  for (;;) {
    if (live_procs(m) == 0 && (m->stopping || !pending_restarts(m)))
      break;
    int timeout = run_deadlines(m);
    int n = 0;
    fds[n++] = (struct pollfd){m->sigfd, POLLIN, 0};
    for (int i = 0; i < 2 * m->nslots; i++)
      if (m->procs[i].pid != 0 && m->procs[i].chan >= 0) {
        owners[n] = &m->procs[i];
        fds[n++] = (struct pollfd){m->procs[i].chan, POLLIN, 0};
      }
    if (poll(fds, (nfds_t)n, timeout) <= 0)
      continue;
    for (int i = 1; i < n; i++)
      if (fds[i].revents && owners[i]->pid != 0 && owners[i]->chan >= 0)
        on_message(m, owners[i]);
    struct signalfd_siginfo si;
    if (fds[0].revents & POLLIN)
      while (read(m->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        on_signal(m, (int)si.ssi_signo);
  }
  free(fds);
  free(owners);
}

static int write_pid_file(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fprintf(f, "%d\n", (int)getpid());
  return fclose(f);
}

int eddy_master_run(const eddy_master_options_t *opts, eddy_worker_fn fn,
                    void *data) {
  master_t m;
  memset(&m, 0, sizeof m);
  m.opts = *opts;
  m.fn = fn;
  m.data = data;
  m.workers = opts->workers > 0 ? opts->workers
                                : (int)uv_available_parallelism();
  m.nslots = m.workers + (opts->processes > 0 ? opts->processes : 0);
  if (m.workers > 4096 || m.nslots > 4096)
    return EDDY_EINVAL;
  m.procs = calloc((size_t)(2 * m.nslots), sizeof *m.procs);
  m.slots = calloc((size_t)m.nslots, sizeof *m.slots);
  if (m.procs == NULL || m.slots == NULL) {
    free(m.procs);
    free(m.slots);
    return EDDY_ENOMEM;
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, &m.oldmask);
  signal(SIGPIPE, SIG_IGN);
  m.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  int status = 0;
  if (m.sigfd < 0) {
    say("cannot watch signals: %s", strerror(errno));
    status = 1;
  } else if (opts->pid_file && write_pid_file(opts->pid_file) != 0) {
    say("cannot write the pid file %s: %s", opts->pid_file, strerror(errno));
    status = 1;
  } else {
    for (int i = 0; i < m.nslots; i++)
      start_current(&m, i);
    master_loop(&m);
    if (opts->pid_file)
      unlink(opts->pid_file);
  }
  for (int i = 0; i < m.nsocks; i++)
    close(m.socks[i].fd);
  for (int i = 0; i < m.nshared; i++)
    close(m.shared[i].fd);
  if (m.sigfd >= 0)
    close(m.sigfd);
  sigprocmask(SIG_SETMASK, &m.oldmask, NULL);
  free(m.socks);
  free(m.shared);
  free(m.procs);
  free(m.slots);
  return status;
}

/*
 * mysql.c: a MySQL connection on the loop (see mysql.h). An operation is a
 * phase number; run() calls the phase's _start (once) or _cont (after each
 * wait) until the connector asks to wait, then the poll handle and the
 * timer watch for what it asked. The poll handle stays on the socket for
 * the connection's life: between operations it watches for reading only,
 * so the next operation's first wait (almost always for a reply) costs no
 * system call; anything readable while idle means the server went away.
 */
#include "mysql.h"

#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>

enum {
  IDLE,
  CONNECT,
  QUERY,
  STORE,
  NEXT,
  PREPARE,
  EXECUTE,
  STMT_STORE,
  STMT_NEXT,
  PING
};

/* The connector's library state is process-wide, set up once. */
static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_init(void) {
  mysql_library_init(0, NULL, NULL);
}

static eddy__mysql_t *of_closer(eddy__closer_t *c) {
  return (eddy__mysql_t *)((char *)c - offsetof(eddy__mysql_t, closer));
}

static eddy__mysql_t *of_timer(eddy__timer_t *t) {
  return (eddy__mysql_t *)((char *)t - offsetof(eddy__mysql_t, timer));
}

/* A stop of the runtime closes the connection. */
static void close_by_stop(eddy__closer_t *c) {
  eddy__mysql_close(of_closer(c));
}

int eddy__mysql_init(eddy_runtime_t *rt, eddy__mysql_t *m) {
  pthread_once(&library_once, library_init);
  m->my = mysql_init(NULL);
  if (m->my == NULL)
    return EDDY_ENOMEM;
  /* Non-blocking mode, and nothing that could read a local file for the
     server or reconnect behind the owner's back. */
  my_bool off = 0;
  unsigned int no = 0;
  if (mysql_options(m->my, MYSQL_OPT_NONBLOCK, 0) != 0) {
    mysql_close(m->my);
    m->my = NULL;
    return EDDY_ENOMEM;
  }
  mysql_options(m->my, MYSQL_OPT_RECONNECT, &off);
  mysql_options(m->my, MYSQL_OPT_LOCAL_INFILE, &no);
  m->rt = rt;
  m->fd = -1;
  m->poll_closing = 0;
  m->events = 0;
  m->timer.index = m->timer.weak = 0;
  m->phase = IDLE;
  m->started = m->broken = m->closed = 0;
  m->res = NULL;
  m->stmt = NULL;
  m->closer.close = close_by_stop;
  m->closer.stop = NULL;
  eddy__closer_add(rt, &m->closer);
  return 0;
}

/* Ends the operation: its results are in m. Returns 0 for run(). */
static int finish(eddy__mysql_t *m, int failed) {
  m->failed = failed;
  m->phase = IDLE;
  m->started = 0;
  return 0;
}

/* The next phase of the same operation. */
static void go(eddy__mysql_t *m, int phase) {
  m->phase = phase;
  m->started = 0;
}

/* A lost connection cannot serve again, and its socket may be closed. */
static int lost(unsigned err) {
  return err >= 2000 || err == 1927 /* ER_CONNECTION_KILLED */ ||
         err == 1053 /* ER_SERVER_SHUTDOWN */;
}

/* The phase's call: _start the first time, _cont after a wait. Returns
   what the connector waits for, or 0 when the call returned. */
static int call(eddy__mysql_t *m, int ready) {
  int first = !m->started;
  m->started = 1;
  MYSQL *my = m->my;
  const eddy__mysql_target_t *t = m->target;
  switch (m->phase) {
  case CONNECT:
    return first ? mysql_real_connect_start(&m->cret, my, t->ip, t->user,
                                            t->password, t->database,
                                            t->port, NULL, t->flags)
                 : mysql_real_connect_cont(&m->cret, my, ready);
  case QUERY:
    return first ? mysql_real_query_start(&m->iret, my, m->sql, m->len)
                 : mysql_real_query_cont(&m->iret, my, ready);
  case STORE:
    return first ? mysql_store_result_start(&m->res, my)
                 : mysql_store_result_cont(&m->res, my, ready);
  case NEXT:
    return first ? mysql_next_result_start(&m->iret, my)
                 : mysql_next_result_cont(&m->iret, my, ready);
  case PREPARE:
    return first ? mysql_stmt_prepare_start(&m->iret, m->stmt, m->sql, m->len)
                 : mysql_stmt_prepare_cont(&m->iret, m->stmt, ready);
  case EXECUTE:
    return first ? mysql_stmt_execute_start(&m->iret, m->stmt)
                 : mysql_stmt_execute_cont(&m->iret, m->stmt, ready);
  case STMT_STORE:
    return first ? mysql_stmt_store_result_start(&m->iret, m->stmt)
                 : mysql_stmt_store_result_cont(&m->iret, m->stmt, ready);
  case STMT_NEXT:
    return first ? mysql_stmt_next_result_start(&m->iret, m->stmt)
                 : mysql_stmt_next_result_cont(&m->iret, m->stmt, ready);
  case PING:
    return first ? mysql_ping_start(&m->iret, my)
                 : mysql_ping_cont(&m->iret, my, ready);
  }
  return 0;
}

/* Runs the operation until the connector waits (returns what for) or the
   operation ends (returns 0). */
static int run(eddy__mysql_t *m, int ready) {
  for (;;) {
    int wait = call(m, ready);
    if (wait != 0)
      return wait;
    switch (m->phase) {
    case CONNECT:
      return finish(m, m->cret == NULL);
    case QUERY:
      if (m->iret != 0)
        return finish(m, 1);
      go(m, STORE);
      break;
    case STORE:
      /* No result set and no error: a statement without rows. */
      return finish(m, m->res == NULL && mysql_errno(m->my) != 0);
    case NEXT:
      if (m->iret != 0) /* > 0: failed; -1 (no more) is not asked for */
        return finish(m, 1);
      go(m, STORE);
      break;
    case PREPARE:
      return finish(m, m->iret != 0);
    case EXECUTE:
    case STMT_NEXT:
      if (m->iret != 0)
        return finish(m, 1);
      if (mysql_stmt_field_count(m->stmt) == 0)
        return finish(m, 0);
      go(m, STMT_STORE);
      break;
    case STMT_STORE:
    case PING:
      return finish(m, m->iret != 0);
    default:
      return finish(m, 1);
    }
  }
}

static void on_poll(uv_poll_t *poll, int status, int events);
static void on_timer(eddy__timer_t *timer, uint64_t due);

/* Watches for what the connector waits for. */
static void arm(eddy__mysql_t *m, int wait) {
  int events = ((wait & MYSQL_WAIT_READ) ? UV_READABLE : 0) |
               ((wait & MYSQL_WAIT_WRITE) ? UV_WRITABLE : 0);
  if (m->fd < 0 && !m->poll_closing) {
    /* The connector made its socket in the connect's first call. A socket
       that cannot be watched leaves the operation to its time limit. */
    int fd = mysql_get_socket(m->my);
    /* The connector makes it without CLOEXEC: a child process spawned
       later must not inherit the connection. */
    if (fd >= 0)
      fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (fd >= 0 && uv_poll_init_socket(&m->rt->loop, &m->poll, fd) == 0) {
      m->fd = fd;
      m->poll.data = m;
    }
  }
  if (m->fd >= 0 && events != 0 && events != m->events) {
    uv_poll_start(&m->poll, events, on_poll);
    m->events = events;
  }
  if (wait & MYSQL_WAIT_TIMEOUT)
    eddy__timer_start(&m->rt->timers, &m->timer,
                      mysql_get_timeout_value_ms(m->my), on_timer);
  else
    eddy__timer_stop(&m->rt->timers, &m->timer);
}

static void on_poll_closed(uv_handle_t *handle);

/* The poll handle leaves the socket. It must do so before the socket is
   closed, or at once after the connector closed it: libuv's close takes
   the descriptor's number out of the loop's epoll set, and a number used
   again (by another connection) would be taken out instead. */
static void unwatch(eddy__mysql_t *m) {
  if (m->fd < 0)
    return;
  m->fd = -1;
  m->events = 0;
  m->poll_closing = 1;
  uv_close((uv_handle_t *)&m->poll, on_poll_closed);
}

/* The operation ended: the poll handle stays on the socket, watching for
   reading (see the top), unless the connection was lost: then the
   connector may have closed the socket already. */
static void settle(eddy__mysql_t *m) {
  eddy__timer_stop(&m->rt->timers, &m->timer);
  if (m->failed) {
    unsigned err = m->stmt ? mysql_stmt_errno(m->stmt) : 0;
    if (err == 0)
      err = mysql_errno(m->my);
    if (lost(err))
      m->broken = 1;
  }
  if (m->fd < 0)
    return;
  if (mysql_get_socket(m->my) != m->fd) {
    m->broken = 1;
    unwatch(m);
    return;
  }
  if (m->broken) {
    uv_poll_stop(&m->poll);
    m->events = 0;
  } else if (m->events != UV_READABLE) {
    uv_poll_start(&m->poll, UV_READABLE, on_poll);
    m->events = UV_READABLE;
  }
  /* An idle connection does not keep the loop running. */
  uv_unref((uv_handle_t *)&m->poll);
}

/* Goes on with the operation after a wait. */
static void drive(eddy__mysql_t *m, int ready) {
  int wait = run(m, ready);
  if (wait != 0) {
    arm(m, wait);
    return;
  }
  settle(m);
  m->on_done(m); /* the last touch: the owner may start or close */
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  eddy__mysql_t *m = poll->data;
  if (m->phase == IDLE) {
    /* Nothing was asked. Either the next result of a query is coming, to
       be read when the owner asks, or the server closed or sent what it
       sends before it goes (a kill, a shutdown). */
    uv_poll_stop(&m->poll);
    m->events = 0;
    if (!mysql_more_results(m->my))
      m->broken = 1;
    return;
  }
  int ready = 0;
  if (status < 0) /* let the connector find the error on the socket */
    ready = MYSQL_WAIT_READ | MYSQL_WAIT_WRITE;
  if (events & UV_READABLE)
    ready |= MYSQL_WAIT_READ;
  if (events & UV_WRITABLE)
    ready |= MYSQL_WAIT_WRITE;
  eddy__timer_stop(&m->rt->timers, &m->timer);
  drive(m, ready);
}

static void on_timer(eddy__timer_t *timer, uint64_t due) {
  (void)due;
  eddy__mysql_t *m = of_timer(timer);
  if (m->phase != IDLE)
    drive(m, MYSQL_WAIT_TIMEOUT);
}

/* Starts phase; 1 if it waits, 0 if it ended at once. */
static int begin(eddy__mysql_t *m, int phase) {
  m->failed = 0;
  m->not_run = 0;
  m->res = NULL;
  if (m->broken || m->closed) {
    /* The connector would try the dead socket: answer as it would. */
    m->not_run = 1;
    m->phase = phase;
    m->started = 1;
    finish(m, 1);
    return 0;
  }
  go(m, phase);
  if (m->fd >= 0)
    uv_ref((uv_handle_t *)&m->poll);
  int wait = run(m, 0);
  if (wait != 0) {
    arm(m, wait);
    return 1;
  }
  settle(m);
  return 0;
}

int eddy__mysql_connect(eddy__mysql_t *m, const eddy__mysql_target_t *t) {
  m->target = t;
  mysql_options(m->my, MYSQL_SET_CHARSET_NAME, t->charset);
  if (t->connect_timeout_s > 0)
    mysql_options(m->my, MYSQL_OPT_CONNECT_TIMEOUT, &t->connect_timeout_s);
  return begin(m, CONNECT);
}

int eddy__mysql_query(eddy__mysql_t *m, const char *sql, unsigned long len) {
  m->sql = sql;
  m->len = len;
  m->stmt = NULL;
  return begin(m, QUERY);
}

int eddy__mysql_next(eddy__mysql_t *m, MYSQL_STMT *stmt) {
  m->stmt = stmt;
  return begin(m, stmt ? STMT_NEXT : NEXT);
}

int eddy__mysql_prepare(eddy__mysql_t *m, MYSQL_STMT *stmt, const char *sql,
                        unsigned long len) {
  m->stmt = stmt;
  m->sql = sql;
  m->len = len;
  return begin(m, PREPARE);
}

int eddy__mysql_execute(eddy__mysql_t *m, MYSQL_STMT *stmt) {
  m->stmt = stmt;
  return begin(m, EXECUTE);
}

int eddy__mysql_ping(eddy__mysql_t *m) {
  m->stmt = NULL;
  return begin(m, PING);
}

static void on_poll_closed(uv_handle_t *handle) {
  eddy__mysql_t *m = handle->data;
  m->poll_closing = 0;
  if (m->closed)
    m->on_closed(m);
}

void eddy__mysql_close(eddy__mysql_t *m) {
  if (m->closed)
    return;
  m->closed = 1;
  eddy__closer_remove(m->rt, &m->closer);
  eddy__timer_stop(&m->rt->timers, &m->timer);
  int fd = mysql_get_socket(m->my);
  if (m->phase != IDLE || m->broken) {
    /* Given up midway, or lost: whatever the connector still writes (its
       goodbye) must fail at once rather than wait on the socket. */
    if (fd >= 0 && fd == m->fd)
      shutdown(fd, SHUT_RDWR);
    m->phase = IDLE;
    m->broken = 1;
  }
  unwatch(m);
  mysql_close(m->my);
  m->my = NULL;
  if (!m->poll_closing)
    m->on_closed(m);
}

/*
 * mysql.h: one MySQL/MariaDB connection driven by the loop, on MariaDB
 * Connector/C's non-blocking API. Each operation (connect, a query and its
 * first result, the next result, a statement's prepare or execute, a
 * ping) is a chain of the connector's _start/_cont calls: the connector
 * says what it waits for (its socket readable or writable, a timeout of
 * its own), the loop watches for that and calls it again. The owner hears
 * once when the operation ends. Knows nothing of Lua.
 *
 * The connector cannot abandon an operation midway, so an operation given
 * up (timeout, cancellation) closes its connection.
 */
#ifndef EDDY_MYSQL_H
#define EDDY_MYSQL_H

#include <mysql.h>
#include <uv.h>

#include "runtime.h"
#include "timer.h"

typedef struct eddy__mysql_s eddy__mysql_t;

/* Where and how to connect; strings are the caller's while connect runs. */
typedef struct eddy__mysql_target_s {
  const char *ip; /* an address: names are resolved before (the
                     connector's own lookup blocks) */
  unsigned port;
  const char *user;
  const char *password;
  const char *database; /* or NULL */
  const char *charset;
  unsigned long flags;  /* CLIENT_* */
  unsigned connect_timeout_s; /* the connector's own limit (a backstop) */
} eddy__mysql_target_t;

/*
 * Embedded in its owner, which frees it once on_closed was called. The
 * fields below "results" are the last operation's and are read by the
 * owner in on_done.
 */
struct eddy__mysql_s {
  MYSQL *my;
  eddy_runtime_t *rt;
  uv_poll_t poll;     /* on the connector's socket, once it has one */
  int fd;             /* what poll watches; -1: no poll handle (not made
                         yet, or closing) */
  int poll_closing;   /* the poll handle's close callback is to come */
  int events;         /* what poll watches for now (UV_READABLE...) */
  eddy__timer_t timer; /* the connector's own timeouts */
  eddy__closer_t closer;
  int phase;          /* the operation running (a step of it); 0: none */
  int started;        /* the phase's _start was called */
  int broken;         /* lost, or given up midway: cannot be used again */
  int closed;         /* eddy__mysql_close was called */
  /* The operation's input, the owner's until it ends. */
  const char *sql;
  unsigned long len;
  const eddy__mysql_target_t *target;
  MYSQL_STMT *stmt;
  /* results */
  int failed;         /* the operation failed: see mysql_errno or the
                         statement's */
  int not_run;        /* it failed without running (the connection was
                         lost before): mysql_errno is an earlier one's */
  MYSQL_RES *res;     /* query, next: the result set, the owner's to free
                         (NULL for a statement without one) */
  int iret;           /* what the last call returned, by kind */
  MYSQL *cret;
  /* The operation ended (on the loop, not inside a call of the owner's).
     The owner may start another or close from here. */
  void (*on_done)(eddy__mysql_t *m);
  /* The connection is closed and its handle gone: the owner may free it.
     May come from inside eddy__mysql_close. */
  void (*on_closed)(eddy__mysql_t *m);
};

/* Sets up m, not yet connected: 0, or EDDY_ENOMEM (then m needs no
   close). */
int eddy__mysql_init(eddy_runtime_t *rt, eddy__mysql_t *m);

/* Operations, one at a time. Each returns 1 when it goes on (on_done
   comes later), 0 when it ended at once (its results are in m, and
   on_done does not come). */
int eddy__mysql_connect(eddy__mysql_t *m, const eddy__mysql_target_t *t);
/* A text query (one or more statements) up to its first result. */
int eddy__mysql_query(eddy__mysql_t *m, const char *sql, unsigned long len);
/* The next result of a query (stmt NULL) or of a statement's execution,
   when mysql_more_results says there is one. */
int eddy__mysql_next(eddy__mysql_t *m, MYSQL_STMT *stmt);
int eddy__mysql_prepare(eddy__mysql_t *m, MYSQL_STMT *stmt, const char *sql,
                        unsigned long len);
/* Executes (parameters bound) and stores the first result's rows. */
int eddy__mysql_execute(eddy__mysql_t *m, MYSQL_STMT *stmt);
int eddy__mysql_ping(eddy__mysql_t *m);

static inline int eddy__mysql_busy(const eddy__mysql_t *m) {
  return m->phase != 0;
}

/* Closes the connection, at any time: an operation in progress is given
   up (on_done never comes). on_closed follows, perhaps at once. */
void eddy__mysql_close(eddy__mysql_t *m);

#endif

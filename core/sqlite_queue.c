/*
 * sqlite_queue.c: the durable queue store (see sqlite_queue.h). Everything
 * here that touches SQLite runs in the store's writer thread.
 *
 * Layout: one table of messages for every queue of the file, ordered for
 * pop by (queue, visible_at, id): a ready message is visible from its
 * push (or its delay, or its backoff), one in flight from its visibility
 * deadline, so that the first row due is the next to deliver and an
 * expired delivery comes back without anyone calling anything. A table of
 * counters per queue (all messages, those in flight) makes "full" and
 * length() one row, not a count. Ids come from AUTOINCREMENT: never
 * reused, so a late ack cannot hit a newer message.
 */
#include "sqlite_queue.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eddy.h"
#include "hub.h"

/* What the store and its writer thread share. Freed by the pool, after
   the writer has ended (arg_free). */
typedef struct shared_s {
  char *path;
  int sync_full;
  eddy__hub_t *hub;         /* a reference: where commits are signalled */
  uv_mutex_t lock;          /* guards pending and draining */
  eddy__sqlq_op_t *pending; /* submitted, not yet run: newest first */
  int draining;             /* a drain job is queued or running */
  atomic_uint_fast64_t commits;
  atomic_uint_fast64_t ops;
} shared_t;

/* A store: made by the first open of its path in the hub, freed by the
   last close (refs, next: under the hub's lock). */
struct eddy__sqlq_s {
  eddy__pool_t *pool;
  shared_t *shared; /* the pool's: valid while the pool is */
  int refs;
  eddy__sqlq_t *next;
};

enum stmt_id {
  S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVE, S_RELEASE, S_UNDO,
  S_ENSURE, S_GROW, S_INSERT, S_DUE, S_NEXT, S_TAKE, S_COUNT_TAKE,
  S_ACK, S_COUNT_ACK, S_FIND, S_RETRY, S_COUNT_RETRY, S_TO_DEAD,
  S_COUNT_LEAVE, S_COUNT_ARRIVE, S_LENGTH, S_COUNT
};

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVE] = "SAVEPOINT op",
    [S_RELEASE] = "RELEASE op",
    [S_UNDO] = "ROLLBACK TO op",
    [S_ENSURE] = "INSERT OR IGNORE INTO eddy_queue_counts(queue) VALUES(?1)",
    [S_GROW] = "UPDATE eddy_queue_counts SET n = n + 1 "
               "WHERE queue = ?1 AND (?2 <= 0 OR n < ?2)",
    [S_INSERT] = "INSERT INTO eddy_queue_msgs(queue, payload, visible_at) "
                 "VALUES(?1, ?2, ?3)",
    [S_DUE] = "SELECT id, payload, attempts, state FROM eddy_queue_msgs "
              "WHERE queue = ?1 AND visible_at <= ?2 "
              "ORDER BY visible_at, id LIMIT 1",
    [S_NEXT] = "SELECT min(visible_at) FROM eddy_queue_msgs WHERE queue = ?1",
    [S_TAKE] = "UPDATE eddy_queue_msgs SET state = 1, "
               "attempts = attempts + 1, visible_at = ?2 WHERE id = ?1",
    [S_COUNT_TAKE] = "UPDATE eddy_queue_counts SET inflight = inflight + 1 "
                     "WHERE queue = ?1",
    [S_ACK] = "DELETE FROM eddy_queue_msgs WHERE id = ?1 AND queue = ?2 "
              "AND state = 1 AND (?3 = 0 OR attempts = ?3)",
    [S_COUNT_ACK] = "UPDATE eddy_queue_counts SET n = n - 1, "
                    "inflight = inflight - 1 WHERE queue = ?1",
    [S_FIND] = "SELECT attempts FROM eddy_queue_msgs WHERE id = ?1 AND "
               "queue = ?2 AND state = 1 AND (?3 = 0 OR attempts = ?3)",
    [S_RETRY] = "UPDATE eddy_queue_msgs SET state = 0, visible_at = ?2 "
                "WHERE id = ?1",
    [S_COUNT_RETRY] = "UPDATE eddy_queue_counts SET inflight = inflight - 1 "
                      "WHERE queue = ?1",
    [S_TO_DEAD] = "UPDATE eddy_queue_msgs SET queue = ?2, state = 0, "
                  "attempts = 0, visible_at = ?3 WHERE id = ?1",
    [S_COUNT_LEAVE] = "UPDATE eddy_queue_counts SET n = n - 1, "
                      "inflight = inflight - ?2 WHERE queue = ?1",
    [S_COUNT_ARRIVE] = "UPDATE eddy_queue_counts SET n = n + 1 "
                       "WHERE queue = ?1",
    [S_LENGTH] = "SELECT n, inflight FROM eddy_queue_counts WHERE queue = ?1",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS eddy_queue_msgs("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  queue TEXT NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  state INTEGER NOT NULL DEFAULT 0," /* 0 ready, 1 in flight */
    "  visible_at INTEGER NOT NULL);"      /* ms since the epoch */
    "CREATE INDEX IF NOT EXISTS eddy_queue_due "
    "  ON eddy_queue_msgs(queue, visible_at, id);"
    "CREATE TABLE IF NOT EXISTS eddy_queue_counts("
    "  queue TEXT PRIMARY KEY,"
    "  n INTEGER NOT NULL DEFAULT 0,"
    "  inflight INTEGER NOT NULL DEFAULT 0);";

/* The writer thread's state. */
typedef struct writer_s {
  shared_t *shared;
  sqlite3 *db;         /* NULL when the file could not be opened */
  char err[128];       /* why, then */
  sqlite3_stmt *stmt[S_COUNT];
} writer_t;

/* ======================================================================= */
/* In the writer thread */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* WAL mode and the schema. Two processes opening a new file at once race
   for the switch to WAL, and SQLite answers the loser "database is locked"
   without calling the busy handler: try again for a while (this is the
   writer thread; it may sleep). */
static int setup(sqlite3 *db, const char *pragmas) {
  int rc = SQLITE_BUSY;
  for (int i = 0; i < 1000 && (rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
       i++) {
    if (i > 0)
      uv_sleep(10);
    rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
  }
  return rc;
}

static void *writer_new(void *arg) {
  writer_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->shared = arg;
  char pragmas[160];
  snprintf(pragmas, sizeof pragmas,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
           w->shared->sync_full ? "FULL" : "NORMAL");
  int rc = sqlite3_open_v2(w->shared->path, &w->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX, NULL);
  /* Other processes may write the same file: wait for their
     transactions rather than fail. */
  if (rc == SQLITE_OK)
    rc = sqlite3_busy_timeout(w->db, 10000);
  /* Closing would checkpoint the WAL into the file, while the loop thread
     that frees the store waits for this thread to end; commits
     checkpoint as they go (every 1000 pages) instead. */
  if (rc == SQLITE_OK)
    rc = sqlite3_db_config(w->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  if (rc == SQLITE_OK)
    rc = setup(w->db, pragmas);
  for (int i = 0; rc == SQLITE_OK && i < S_COUNT; i++)
    rc = sqlite3_prepare_v3(w->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &w->stmt[i], NULL);
  if (rc != SQLITE_OK) {
    snprintf(w->err, sizeof w->err, "%s: %s", w->shared->path,
             w->db ? sqlite3_errmsg(w->db) : sqlite3_errstr(rc));
    for (int i = 0; i < S_COUNT; i++)
      sqlite3_finalize(w->stmt[i]);
    memset(w->stmt, 0, sizeof w->stmt);
    sqlite3_close(w->db);
    w->db = NULL;
  }
  return w;
}

static void writer_free(void *state) {
  writer_t *w = state;
  for (int i = 0; i < S_COUNT; i++)
    sqlite3_finalize(w->stmt[i]);
  sqlite3_close(w->db);
  free(w);
}

static void shared_free(void *arg) {
  shared_t *s = arg;
  uv_mutex_destroy(&s->lock);
  eddy__hub_unref(s->hub);
  free(s->path);
  free(s);
}

/* The statement, reset and bound with the integers and texts given by
   fmt ('i' int64, 't' text, 'b' blob then its length). */
static sqlite3_stmt *prep(writer_t *w, int id, const char *fmt, ...) {
  sqlite3_stmt *st = w->stmt[id];
  sqlite3_reset(st);
  va_list ap;
  va_start(ap, fmt);
  for (int i = 1; *fmt; fmt++, i++) {
    if (*fmt == 'i') {
      sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
    } else if (*fmt == 't') {
      sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_STATIC);
    } else {
      const void *p = va_arg(ap, const void *);
      sqlite3_bind_blob64(st, i, p, va_arg(ap, size_t), SQLITE_STATIC);
    }
  }
  va_end(ap);
  return st;
}

/* Runs a statement that returns no row; SQLITE_DONE becomes SQLITE_OK. */
static int run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

#define TRY(expr)                                                          \
  do {                                                                     \
    int rc_ = (expr);                                                      \
    if (rc_ != SQLITE_OK)                                                  \
      return rc_;                                                          \
  } while (0)

static int do_push(writer_t *w, eddy__sqlq_op_t *op, int64_t now) {
  sqlite3_stmt *grow = prep(w, S_GROW, "ti", op->queue, op->max);
  TRY(run(grow));
  if (sqlite3_changes(w->db) == 0) {
    /* A queue never opened in this file gets its counters now. */
    TRY(run(prep(w, S_ENSURE, "t", op->queue)));
    if (sqlite3_changes(w->db) == 1)
      TRY(run(prep(w, S_GROW, "ti", op->queue, op->max)));
    if (sqlite3_changes(w->db) == 0) {
      op->rc = EDDY__SQLQ_FULL;
      return SQLITE_OK;
    }
  }
  int64_t at = now + (op->delay > 0 ? op->delay : 0);
  TRY(run(prep(w, S_INSERT, "tbi", op->queue, op->payload, op->len, at)));
  op->out_id = sqlite3_last_insert_rowid(w->db);
  return SQLITE_OK;
}

/* Moves message id (in flight when inflight is 1) to the dead-letter
   queue, ready at once, its attempts cleared. */
static int to_dead(writer_t *w, eddy__sqlq_op_t *op, int64_t id,
                   int inflight, int64_t now) {
  TRY(run(prep(w, S_TO_DEAD, "iti", id, op->dead, now)));
  TRY(run(prep(w, S_COUNT_LEAVE, "ti", op->queue, (int64_t)inflight)));
  TRY(run(prep(w, S_ENSURE, "t", op->dead)));
  return run(prep(w, S_COUNT_ARRIVE, "t", op->dead));
}

/* Copies the due row of st into the op's messages. */
static int take_row(eddy__sqlq_op_t *op, sqlite3_stmt *st) {
  eddy__sqlq_msg_t *m = &op->msgs[op->nmsgs];
  m->id = sqlite3_column_int64(st, 0);
  m->len = (size_t)sqlite3_column_bytes(st, 1);
  m->payload = malloc(m->len + 1);
  if (m->payload == NULL)
    return SQLITE_NOMEM;
  if (m->len > 0)
    memcpy(m->payload, sqlite3_column_blob(st, 1), m->len);
  m->attempts = sqlite3_column_int(st, 2) + 1;
  op->nmsgs++;
  return SQLITE_OK;
}

/* Takes up to n due messages. One whose delivery expired after its last
   allowed attempt goes to the dead-letter queue instead. */
static int do_pop(writer_t *w, eddy__sqlq_op_t *op, int64_t now) {
  if (op->msgs == NULL &&
      (op->msgs = calloc((size_t)op->n, sizeof *op->msgs)) == NULL)
    return SQLITE_NOMEM;
  while (op->nmsgs < op->n) {
    sqlite3_stmt *st = prep(w, S_DUE, "ti", op->queue, now);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
      break;
    if (rc != SQLITE_ROW) {
      sqlite3_reset(st);
      return rc;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    int attempts = sqlite3_column_int(st, 2);
    int inflight = sqlite3_column_int(st, 3);
    if (inflight && attempts >= op->max_attempts) {
      sqlite3_reset(st);
      TRY(to_dead(w, op, id, 1, now));
      op->dead_lettered = 1;
      continue;
    }
    rc = take_row(op, st);
    sqlite3_reset(st);
    TRY(rc);
    TRY(run(prep(w, S_TAKE, "ii", id, now + op->visibility)));
    if (!inflight)
      TRY(run(prep(w, S_COUNT_TAKE, "t", op->queue)));
  }
  if (op->nmsgs > 0)
    return SQLITE_OK;
  op->rc = EDDY__SQLQ_EMPTY;
  sqlite3_stmt *st = prep(w, S_NEXT, "t", op->queue);
  int rc = sqlite3_step(st);
  op->next_ms = -1;
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    op->next_ms = sqlite3_column_int64(st, 0) - now;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int do_ack(writer_t *w, eddy__sqlq_op_t *op) {
  TRY(run(prep(w, S_ACK, "iti", op->id, op->queue, (int64_t)op->attempts)));
  if (sqlite3_changes(w->db) == 0) {
    op->rc = EDDY__SQLQ_NOTFOUND;
    return SQLITE_OK;
  }
  return run(prep(w, S_COUNT_ACK, "t", op->queue));
}

/* The backoff before attempt+1: base doubled per attempt made, capped. */
static int64_t backoff(const eddy__sqlq_op_t *op, int attempts) {
  int64_t d = op->backoff;
  for (int i = 1; i < attempts && d < op->backoff_max; i++)
    d *= 2;
  return d < op->backoff_max ? d : op->backoff_max;
}

static int do_nack(writer_t *w, eddy__sqlq_op_t *op, int64_t now) {
  sqlite3_stmt *st =
      prep(w, S_FIND, "iti", op->id, op->queue, (int64_t)op->attempts);
  int rc = sqlite3_step(st);
  int attempts = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) {
    op->rc = EDDY__SQLQ_NOTFOUND;
    return SQLITE_OK;
  }
  if (rc != SQLITE_ROW)
    return rc;
  if (attempts >= op->max_attempts) {
    op->dead_lettered = 1;
    return to_dead(w, op, op->id, 1, now);
  }
  int64_t delay = op->delay >= 0 ? op->delay : backoff(op, attempts);
  TRY(run(prep(w, S_RETRY, "ii", op->id, now + delay)));
  return run(prep(w, S_COUNT_RETRY, "t", op->queue));
}

static int do_length(writer_t *w, eddy__sqlq_op_t *op) {
  sqlite3_stmt *st = prep(w, S_LENGTH, "t", op->queue);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    op->in_flight = sqlite3_column_int64(st, 1);
    op->ready = sqlite3_column_int64(st, 0) - op->in_flight;
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int exec_op(writer_t *w, eddy__sqlq_op_t *op, int64_t now) {
  switch (op->kind) {
  case EDDY__SQLQ_OPEN:
    TRY(run(prep(w, S_ENSURE, "t", op->queue)));
    return run(prep(w, S_ENSURE, "t", op->dead));
  case EDDY__SQLQ_PUSH:
    return do_push(w, op, now);
  case EDDY__SQLQ_POP:
    if (atomic_load(&op->abandoned)) {
      op->rc = EDDY__SQLQ_EMPTY;
      op->next_ms = -1;
      return SQLITE_OK;
    }
    return do_pop(w, op, now);
  case EDDY__SQLQ_ACK:
    return do_ack(w, op);
  case EDDY__SQLQ_NACK:
    return do_nack(w, op, now);
  default:
    return do_length(w, op);
  }
}

static void fail(eddy__sqlq_op_t *op, const char *what, const char *why) {
  op->rc = EDDY__SQLQ_ERROR;
  snprintf(op->err, sizeof op->err, "%s: %s", what, why);
}

static void clear_msgs(eddy__sqlq_op_t *op) {
  for (int i = 0; i < op->nmsgs; i++)
    free(op->msgs[i].payload);
  op->nmsgs = 0;
}

/* One op inside the batch's transaction, under a savepoint: an op that
   fails leaves nothing half done, and the others still commit. */
static void apply(writer_t *w, eddy__sqlq_op_t *op, int64_t now) {
  int rc = run(w->stmt[S_SAVE]);
  if (rc == SQLITE_OK)
    rc = exec_op(w, op, now);
  if (rc == SQLITE_OK) {
    run(w->stmt[S_RELEASE]);
    return;
  }
  fail(op, "sqlite", sqlite3_errstr(rc));
  clear_msgs(op);
  run(w->stmt[S_UNDO]);
  run(w->stmt[S_RELEASE]);
}

/* The batch in submission order (the pending list is newest first); NULL
   when none is pending, and the drain job then ends: the next submit
   queues another. */
static eddy__sqlq_op_t *take_pending(shared_t *s) {
  uv_mutex_lock(&s->lock);
  eddy__sqlq_op_t *list = s->pending, *rev = NULL;
  s->pending = NULL;
  if (list == NULL)
    s->draining = 0;
  uv_mutex_unlock(&s->lock);
  while (list != NULL) {
    eddy__sqlq_op_t *next = list->next;
    list->next = rev;
    rev = list;
    list = next;
  }
  return rev;
}

/* ======================================================================= */
/* Signals: a queue's change wakes its waiters in every thread (hub.h) */

typedef struct signal_name_s {
  char *name;
  size_t len;
  char room[256];
} signal_name_t;

/* The hub's signal for a queue of the file: "<path>\0<queue>". NULL when
   out of memory. */
static const char *signal_name(signal_name_t *sn, const char *path,
                               const char *queue) {
  size_t plen = strlen(path), qlen = strlen(queue);
  sn->len = plen + 1 + qlen;
  sn->name = sn->len <= sizeof sn->room ? sn->room : malloc(sn->len);
  if (sn->name != NULL) {
    memcpy(sn->name, path, plen + 1);
    memcpy(sn->name + plen + 1, queue, qlen);
  }
  return sn->name;
}

static void signal_name_free(signal_name_t *sn) {
  if (sn->name != sn->room)
    free(sn->name);
}

static void signal_queue(shared_t *s, const char *queue, int givers) {
  signal_name_t sn;
  if (signal_name(&sn, s->path, queue) != NULL)
    eddy__hub_signal(s->hub, sn.name, sn.len, givers, 0);
  signal_name_free(&sn);
}

/* After a commit: what each op changed is there for others to see. A
   push, or a delivery made ready again, is for a taker; an ack, or a
   move to the dead letters, makes room for a giver. */
static void signal_batch(shared_t *s, eddy__sqlq_op_t *batch) {
  for (eddy__sqlq_op_t *op = batch; op != NULL; op = op->next) {
    if (op->kind == EDDY__SQLQ_POP && op->dead_lettered &&
        (op->rc == 0 || op->rc == EDDY__SQLQ_EMPTY)) {
      signal_queue(s, op->queue, 1); /* expired past its attempts */
      signal_queue(s, op->dead, 0);
    }
    if (op->rc != 0)
      continue;
    if (op->kind == EDDY__SQLQ_PUSH) {
      signal_queue(s, op->queue, 0);
    } else if (op->kind == EDDY__SQLQ_ACK) {
      signal_queue(s, op->queue, 1);
    } else if (op->kind == EDDY__SQLQ_NACK) {
      signal_queue(s, op->queue, op->dead_lettered);
      if (op->dead_lettered)
        signal_queue(s, op->dead, 0);
    }
  }
}

/* Runs a batch of ops in one transaction. */
static void run_batch(writer_t *w, eddy__sqlq_op_t *batch) {
  eddy__sqlq_op_t *op;
  if (w == NULL || w->db == NULL) {
    for (op = batch; op != NULL; op = op->next)
      fail(op, "cannot open", w ? w->err : "out of memory");
    return;
  }
  int rc = run(w->stmt[S_BEGIN]);
  if (rc != SQLITE_OK) {
    for (op = batch; op != NULL; op = op->next)
      fail(op, "sqlite", sqlite3_errmsg(w->db));
    return;
  }
  int64_t now = now_ms();
  uint64_t n = 0;
  for (op = batch; op != NULL; op = op->next, n++)
    apply(w, op, now);
  rc = run(w->stmt[S_COMMIT]);
  atomic_fetch_add(&w->shared->commits, 1);
  atomic_fetch_add(&w->shared->ops, n);
  if (rc != SQLITE_OK) {
    const char *why = sqlite3_errmsg(w->db);
    for (op = batch; op != NULL; op = op->next) {
      fail(op, "commit", why);
      clear_msgs(op);
    }
    run(w->stmt[S_ROLLBACK]);
    return;
  }
  signal_batch(w->shared, batch);
}

/* Hands each op of the list back to its runtime. */
static void post_all(eddy__sqlq_op_t *list) {
  while (list != NULL) {
    eddy__sqlq_op_t *next = list->next; /* op may be freed once posted */
    eddy__job_post(&list->job);
    list = next;
  }
}

/* The drain job: one at a time per store, it commits what is pending, one
   transaction per turn, until nothing is: what is submitted while a
   transaction runs goes into the next (group commit). Each op comes back
   on its own once its transaction has committed. */
typedef struct drain_s {
  eddy__job_t job;
  shared_t *shared;
} drain_t;

static void drain_run(eddy__job_t *job, void *state) {
  shared_t *s = ((drain_t *)job)->shared;
  eddy__sqlq_op_t *batch;
  while ((batch = take_pending(s)) != NULL) {
    run_batch(state, batch);
    post_all(batch);
  }
}

static void drain_done(eddy__job_t *job) {
  free(job);
}

/* ======================================================================= */
/* On the loop thread */

static const eddy__pool_ops_t writer_ops = {writer_new, writer_free, NULL,
                                            shared_free};

static eddy__sqlq_t *store_new(eddy__hub_t *hub, const char *path,
                               int sync_full) {
  eddy__sqlq_t *q = calloc(1, sizeof *q);
  shared_t *s = calloc(1, sizeof *s);
  if (q == NULL || s == NULL || (s->path = strdup(path)) == NULL ||
      uv_mutex_init(&s->lock) != 0)
    goto fail;
  s->sync_full = sync_full;
  s->hub = eddy__hub_ref(hub);
  q->pool = eddy__pool_new(1, &writer_ops, s);
  if (q->pool == NULL) {
    eddy__hub_unref(hub);
    uv_mutex_destroy(&s->lock);
    goto fail;
  }
  q->shared = s;
  q->refs = 1;
  return q;
fail:
  if (s != NULL)
    free(s->path);
  free(s);
  free(q);
  return NULL;
}

/* The stores of a hub are listed by path, so that a file has one writer
   whichever reactor thread opens it. */
eddy__sqlq_t *eddy__sqlq_new(eddy__hub_t *hub, const char *path,
                            int sync_full) {
  uv_mutex_lock(&hub->lock);
  eddy__sqlq_t *q = hub->stores;
  while (q != NULL && strcmp(q->shared->path, path) != 0)
    q = q->next;
  if (q != NULL) {
    q->refs++;
  } else if ((q = store_new(hub, path, sync_full)) != NULL) {
    q->next = hub->stores;
    hub->stores = q;
  }
  uv_mutex_unlock(&hub->lock);
  return q;
}

void eddy__sqlq_free(eddy__sqlq_t *q) {
  if (q == NULL)
    return;
  eddy__hub_t *hub = q->shared->hub;
  uv_mutex_lock(&hub->lock);
  int last = --q->refs == 0;
  if (last) {
    eddy__sqlq_t **link = &hub->stores;
    while (*link != q)
      link = &(*link)->next;
    *link = q->next;
  }
  uv_mutex_unlock(&hub->lock);
  if (!last)
    return;
  eddy__pool_free(q->pool);
  free(q);
}

void eddy__sqlq_abandon(eddy__sqlq_op_t *op) {
  atomic_store(&op->abandoned, 1);
}

void eddy__sqlq_stats(eddy__sqlq_t *q, uint64_t *commits, uint64_t *ops) {
  *commits = atomic_load(&q->shared->commits);
  *ops = atomic_load(&q->shared->ops);
}

eddy__sqlq_op_t *eddy__sqlq_op_new(int kind, const char *queue,
                                   const char *dead) {
  eddy__sqlq_op_t *op = calloc(1, sizeof *op);
  if (op == NULL)
    return NULL;
  op->kind = kind;
  op->queue = strdup(queue);
  op->dead = strdup(dead);
  if (op->queue == NULL || op->dead == NULL) {
    eddy__sqlq_op_free(op);
    return NULL;
  }
  return op;
}

void eddy__sqlq_op_free(eddy__sqlq_op_t *op) {
  clear_msgs(op);
  free(op->msgs);
  free(op->queue);
  free(op->dead);
  free(op->payload);
  free(op);
}

int eddy__sqlq_submit(eddy__sqlq_t *q, eddy_runtime_t *rt,
                      eddy__sqlq_op_t *op) {
  shared_t *s = q->shared;
  /* Held on the runtime's job port: the loop lives until it comes back,
     and the writer posts it. */
  int rc = eddy__jobport_hold(rt, &op->job);
  if (rc != 0)
    return rc;
  uv_mutex_lock(&s->lock);
  op->next = s->pending;
  s->pending = op;
  int start = !s->draining;
  s->draining = 1;
  uv_mutex_unlock(&s->lock);
  if (!start)
    return 0;
  drain_t *d = calloc(1, sizeof *d);
  if (d != NULL) {
    d->shared = s;
    d->job.run = drain_run;
    d->job.done = drain_done;
    if (eddy__pool_submit(q->pool, rt, &d->job) == 0) {
      /* The drain serves every thread's ops, for as long as they come:
         it must not keep this loop alive (each op, held, keeps its own). */
      eddy__job_unhold(&d->job, 1);
      return 0;
    }
    free(d);
  }
  /* No drain: what is pending (this op, and any submitted meanwhile,
     which counted on this drain) answers the failure. */
  /* Taking them and ending the drain are one step: an op submitted
     after it starts a drain of its own. */
  uv_mutex_lock(&s->lock);
  eddy__sqlq_op_t *list = s->pending, *o;
  s->pending = NULL;
  s->draining = 0;
  uv_mutex_unlock(&s->lock);
  for (o = list; o != NULL; o = o->next)
    fail(o, "sqlite", "out of memory");
  post_all(list);
  return 0;
}

int64_t eddy__sqlq_version(eddy__sqlq_t *q, const char *queue) {
  signal_name_t sn;
  int64_t version = -1;
  if (signal_name(&sn, q->shared->path, queue) != NULL)
    version = eddy__hub_version(q->shared->hub, sn.name, sn.len);
  signal_name_free(&sn);
  return version;
}

eddy__xwaiter_t *eddy__sqlq_wait(eddy__sqlq_t *q, const char *queue,
                                 int givers, uint64_t seen,
                                 eddy_runtime_t *rt, eddy__task_t *t,
                                 int *err) {
  signal_name_t sn;
  eddy__xwaiter_t *w = NULL;
  *err = EDDY_ENOMEM;
  if (signal_name(&sn, q->shared->path, queue) != NULL)
    w = eddy__hub_wait(q->shared->hub, sn.name, sn.len, givers, seen, rt, t,
                       err);
  signal_name_free(&sn);
  return w;
}

void eddy__sqlq_wake_all(eddy__sqlq_t *q, const char *queue) {
  signal_name_t sn;
  if (signal_name(&sn, q->shared->path, queue) != NULL)
    eddy__hub_signal(q->shared->hub, sn.name, sn.len, 0, 1);
  signal_name_free(&sn);
}

/*
 * bench/queue_sqlite.c: the reference for eddy.queue's SQLite backend in
 * bench/queue.sh: a bare loop over the same schema and statements, one
 * thread, no event loop, batched as eddy's writer batched (the batch sizes
 * eddy reported). Prints "name value" lines like bench/queue.lua.
 *   queue_sqlite PATH N PUSH_BATCH POPACK_BATCH full|normal
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sqlite3 *db;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void check(int rc, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
  }
}

static sqlite3_stmt *prep(const char *sql) {
  sqlite3_stmt *st;
  check(sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
  return st;
}

static void step(sqlite3_stmt *st) {
  check(sqlite3_step(st), sqlite3_sql(st));
  sqlite3_reset(st);
}

static sqlite3_stmt *begin, *commit, *grow, *insert, *due, *take, *ctake,
    *ack, *cack;
static const char payload[] =
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

static void push(void) {
  sqlite3_bind_text(grow, 1, "bench", -1, SQLITE_STATIC);
  sqlite3_bind_int64(grow, 2, 0);
  step(grow);
  sqlite3_bind_text(insert, 1, "bench", -1, SQLITE_STATIC);
  sqlite3_bind_blob(insert, 2, payload, 64, SQLITE_STATIC);
  sqlite3_bind_int64(insert, 3, wall_ms());
  step(insert);
}

static long long pop(void) {
  sqlite3_bind_text(due, 1, "bench", -1, SQLITE_STATIC);
  sqlite3_bind_int64(due, 2, wall_ms());
  if (sqlite3_step(due) != SQLITE_ROW) {
    fprintf(stderr, "pop: empty\n");
    exit(1);
  }
  long long id = sqlite3_column_int64(due, 0);
  char copy[64];
  memcpy(copy, sqlite3_column_blob(due, 1), 64); /* as eddy copies it out */
  sqlite3_reset(due);
  sqlite3_bind_int64(take, 1, id);
  sqlite3_bind_int64(take, 2, wall_ms() + 30000);
  step(take);
  sqlite3_bind_text(ctake, 1, "bench", -1, SQLITE_STATIC);
  step(ctake);
  return id;
}

static void do_ack(long long id) {
  sqlite3_bind_int64(ack, 1, id);
  sqlite3_bind_text(ack, 2, "bench", -1, SQLITE_STATIC);
  sqlite3_bind_int64(ack, 3, 1);
  step(ack);
  sqlite3_bind_text(cack, 1, "bench", -1, SQLITE_STATIC);
  step(cack);
}

int main(int argc, char **argv) {
  if (argc != 6)
    return fprintf(stderr, "usage: %s PATH N PUSH_BATCH POPACK_BATCH full|normal\n", argv[0]), 2;
  int n = atoi(argv[2]);
  int pb = (int)(atof(argv[3]) + 0.5), ab = (int)(atof(argv[4]) + 0.5);
  if (pb < 1) pb = 1;
  if (ab < 2) ab = 2;
  check(sqlite3_open(argv[1], &db), "open");
  char pragmas[128];
  snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
           strcmp(argv[5], "full") == 0 ? "FULL" : "NORMAL");
  check(sqlite3_exec(db, pragmas, NULL, NULL, NULL), "pragmas");
  check(sqlite3_exec(db,
    "CREATE TABLE IF NOT EXISTS eddy_queue_msgs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue TEXT NOT NULL, payload BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " state INTEGER NOT NULL DEFAULT 0, visible_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS eddy_queue_due ON eddy_queue_msgs(queue, visible_at, id);"
    "CREATE TABLE IF NOT EXISTS eddy_queue_counts(queue TEXT PRIMARY KEY,"
    " n INTEGER NOT NULL DEFAULT 0, inflight INTEGER NOT NULL DEFAULT 0);"
    "INSERT OR IGNORE INTO eddy_queue_counts(queue) VALUES('bench');", NULL, NULL, NULL), "schema");
  begin = prep("BEGIN IMMEDIATE");
  commit = prep("COMMIT");
  grow = prep("UPDATE eddy_queue_counts SET n = n + 1 WHERE queue = ?1 AND (?2 <= 0 OR n < ?2)");
  insert = prep("INSERT INTO eddy_queue_msgs(queue, payload, visible_at) VALUES(?1, ?2, ?3)");
  due = prep("SELECT id, payload, attempts, state FROM eddy_queue_msgs WHERE queue = ?1"
             " AND visible_at <= ?2 ORDER BY visible_at, id LIMIT 1");
  take = prep("UPDATE eddy_queue_msgs SET state = 1, attempts = attempts + 1, visible_at = ?2 WHERE id = ?1");
  ctake = prep("UPDATE eddy_queue_counts SET inflight = inflight + 1 WHERE queue = ?1");
  ack = prep("DELETE FROM eddy_queue_msgs WHERE id = ?1 AND queue = ?2 AND state = 1 AND (?3 = 0 OR attempts = ?3)");
  cack = prep("UPDATE eddy_queue_counts SET n = n - 1, inflight = inflight - 1 WHERE queue = ?1");

  double t0 = now();
  for (int done = 0; done < n;) {
    step(begin);
    for (int i = 0; i < pb && done < n; i++, done++)
      push();
    step(commit);
  }
  printf("push_rate %f\n", n / (now() - t0));
  /* A pop and its ack are two ops: a batch of ab ops holds ab/2 of each. */
  long long *ids = malloc(sizeof *ids * (size_t)ab);
  t0 = now();
  for (int done = 0; done < n;) {
    step(begin);
    int k = 0;
    for (; k < ab / 2 && done < n; k++, done++)
      ids[k] = pop();
    for (int i = 0; i < k; i++)
      do_ack(ids[i]);
    step(commit);
  }
  printf("popack_rate %f\n", n / (now() - t0));
  double lat[1000];
  for (int i = 0; i < 1000; i++) {
    double s = now();
    step(begin); push(); step(commit);
    step(begin); long long id = pop(); step(commit);
    step(begin); do_ack(id); step(commit);
    lat[i] = now() - s;
  }
  for (int i = 0; i < 1000; i++) /* insertion sort: 1000 values */
    for (int j = i; j > 0 && lat[j] < lat[j - 1]; j--) {
      double t = lat[j]; lat[j] = lat[j - 1]; lat[j - 1] = t;
    }
  printf("lat_p50_ms %f\nlat_p99_ms %f\n", lat[499] * 1000, lat[989] * 1000);
  free(ids);
  sqlite3_close(db);
  return 0;
}

/*
 * sqlite_queue.c: eddy.c.sqlite_queue, the C half of eddy.queue's SQLite
 * backend (lua/eddy/queue/sqlite.lua). open(path) makes a store (a file
 * and its writer thread, core/sqlite_queue.h); each method submits one
 * operation and the calling task waits until its transaction has
 * committed. A task that is cancelled stops waiting at once; its
 * operation still runs (a push may land: at-least-once) and its answer is
 * dropped. Times cross as seconds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/sqlite_queue.h"
#include "bindings.h"

static const eddyL_class_t store_class = {"eddy.sqlite_queue.store"};

typedef struct store_s {
  eddy__sqlq_t *q; /* NULL once closed */
} store_t;

static store_t *check_store(lua_State *L) {
  return eddyL_checkobject(L, 1, &store_class);
}

/* Seconds at idx → ms; def when nil. */
static int64_t opt_ms(lua_State *L, int idx, int64_t def) {
  if (lua_isnoneornil(L, idx))
    return def;
  double s = luaL_checknumber(L, idx);
  luaL_argcheck(L, s >= 0 && s < 1e12, idx, "seconds out of range");
  return (int64_t)ceil(s * 1000.0);
}

/* ======================================================================= */
/* Answers */

static void push_msgs(lua_State *co, eddy__sqlq_op_t *op) {
  lua_createtable(co, op->nmsgs, 0);
  for (int i = 0; i < op->nmsgs; i++) {
    eddy__sqlq_msg_t *m = &op->msgs[i];
    lua_createtable(co, 0, 3);
    lua_pushnumber(co, (lua_Number)m->id);
    lua_setfield(co, -2, "id");
    lua_pushlstring(co, m->payload, m->len);
    lua_setfield(co, -2, "payload");
    lua_pushinteger(co, m->attempts);
    lua_setfield(co, -2, "attempts");
    lua_rawseti(co, -2, i + 1);
  }
}

/* Pushes what the op answers; returns the count. */
static int push_answer(lua_State *co, eddy__sqlq_op_t *op) {
  switch (op->rc) {
  case EDDY__SQLQ_FULL:
    lua_pushnil(co);
    lua_pushliteral(co, "full");
    return 2;
  case EDDY__SQLQ_NOTFOUND:
    lua_pushnil(co);
    lua_pushliteral(co, "not found");
    return 2;
  case EDDY__SQLQ_EMPTY:
    lua_pushnil(co);
    lua_pushliteral(co, "empty");
    if (op->next_ms < 0)
      lua_pushnil(co);
    else
      lua_pushnumber(co, (lua_Number)op->next_ms / 1000.0);
    return 3;
  case EDDY__SQLQ_ERROR:
    lua_pushnil(co);
    lua_pushstring(co, op->err);
    return 2;
  }
  switch (op->kind) {
  case EDDY__SQLQ_PUSH:
    lua_pushnumber(co, (lua_Number)op->out_id);
    return 1;
  case EDDY__SQLQ_POP:
    push_msgs(co, op);
    return 1;
  case EDDY__SQLQ_NACK:
    lua_pushboolean(co, 1);
    lua_pushboolean(co, op->dead_lettered);
    return 2;
  case EDDY__SQLQ_LENGTH:
    lua_pushnumber(co, (lua_Number)op->ready);
    lua_pushnumber(co, (lua_Number)op->in_flight);
    return 2;
  default:
    lua_pushboolean(co, 1);
    return 1;
  }
}

/* Back from the writer, the transaction committed: on the loop thread, or
   in the writer when the runtime has gone (the waiter was detached). */
static void op_done(eddy__job_t *job) {
  eddy__sqlq_op_t *op = (eddy__sqlq_op_t *)job;
  eddy__task_t *t = op->data;
  if (t != NULL) {
    lua_State *co = eddy__task_wake_begin(t);
    eddy__task_wake_end(t, push_answer(co, op));
  }
  eddy__sqlq_op_free(op);
}

/* The waiter timed out or was cancelled: the op runs on, unanswered (a
   pop not yet begun takes nothing). */
static void op_detach(eddy__task_t *t) {
  eddy__sqlq_op_t *op = t->wait_data;
  op->data = NULL;
  eddy__sqlq_abandon(op);
}

static const eddy__wait_ops_t op_ops = {"sqlite queue", op_detach, NULL};

/* Submits op and makes the current task wait for it, timeout_ms at most
   (-1: no limit): past it the op runs on unanswered (op_detach). */
static int submit(lua_State *L, store_t *s, eddy__sqlq_op_t *op,
                  int64_t timeout_ms) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &op_ops);
  if (t == NULL) {
    eddy__sqlq_op_free(op);
    return eddy__task_yield(&rt->sched, L);
  }
  op->job.done = op_done;
  int rc = eddy__sqlq_submit(s->q, rt, op);
  if (rc != 0) {
    eddy__sqlq_op_free(op);
    return eddyL_error(L, rc);
  }
  op->data = t;
  eddy__task_wait(t, &op_ops, op, timeout_ms);
  return eddy__task_yield(&rt->sched, L);
}

/* A new op of kind for the store at 1 and the queue named at 2 (dead
   letters to the name at dead_idx, 0: none); raises outside a task before
   anything is made. Pushes nil, "closed" and returns NULL when the store
   is closed. */
static eddy__sqlq_op_t *new_op(lua_State *L, int kind, int dead_idx) {
  store_t *s = check_store(L);
  const char *queue = luaL_checkstring(L, 2);
  const char *dead = dead_idx ? luaL_checkstring(L, dead_idx) : "";
  eddy__task_check_wait(&eddyL_runtime(L)->sched, L);
  if (s->q == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return NULL;
  }
  eddy__sqlq_op_t *op = eddy__sqlq_op_new(kind, queue, dead);
  if (op == NULL)
    luaL_error(L, "eddy.queue.sqlite: out of memory");
  return op;
}

/* ======================================================================= */
/* Methods */

/* store:ensure(queue, dead) -> true | nil, err */
static int store_ensure(lua_State *L) {
  eddy__sqlq_op_t *op = new_op(L, EDDY__SQLQ_OPEN, 3);
  return op ? submit(L, check_store(L), op, -1) : 2;
}

/* store:push(queue, payload, delay, max[, timeout]) -> id | nil, "full" |
   nil, err ("timeout": the push may still be made) */
static int store_push(lua_State *L) {
  size_t len;
  const char *payload = luaL_checklstring(L, 3, &len);
  int64_t delay = opt_ms(L, 4, 0);
  int64_t max = (int64_t)luaL_optnumber(L, 5, 0);
  int64_t timeout = opt_ms(L, 6, -1);
  eddy__sqlq_op_t *op = new_op(L, EDDY__SQLQ_PUSH, 0);
  if (op == NULL)
    return 2;
  op->payload = malloc(len + 1);
  if (op->payload == NULL) {
    eddy__sqlq_op_free(op);
    return luaL_error(L, "eddy.queue.sqlite: out of memory");
  }
  memcpy(op->payload, payload, len);
  op->len = len;
  op->delay = delay;
  op->max = max;
  return submit(L, check_store(L), op, timeout);
}

/* store:pop(queue, dead, n, visibility, max_attempts[, timeout]) -> msgs
   | nil, "empty", seconds until one is due (nil: none) | nil, err */
static int store_pop(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 4);
  luaL_argcheck(L, n >= 1 && n <= 10000, 4, "1 to 10000 messages");
  int64_t vis = opt_ms(L, 5, 30000);
  int max_attempts = (int)luaL_optinteger(L, 6, 5);
  int64_t timeout = opt_ms(L, 7, -1);
  eddy__sqlq_op_t *op = new_op(L, EDDY__SQLQ_POP, 3);
  if (op == NULL)
    return 2;
  op->n = n;
  op->visibility = vis;
  op->max_attempts = max_attempts;
  return submit(L, check_store(L), op, timeout);
}

/* store:ack(queue, id, attempts) -> true | nil, "not found" */
static int store_ack(lua_State *L) {
  int64_t id = (int64_t)luaL_checknumber(L, 3);
  int attempts = (int)luaL_optinteger(L, 4, 0);
  eddy__sqlq_op_t *op = new_op(L, EDDY__SQLQ_ACK, 0);
  if (op == NULL)
    return 2;
  op->id = id;
  op->attempts = attempts;
  return submit(L, check_store(L), op, -1);
}

/* store:nack(queue, dead, id, attempts, delay, max_attempts, backoff,
   backoff_max) -> true, dead_lettered | nil, "not found" */
static int store_nack(lua_State *L) {
  int64_t id = (int64_t)luaL_checknumber(L, 4);
  int attempts = (int)luaL_optinteger(L, 5, 0);
  int64_t delay = opt_ms(L, 6, -1);
  int max_attempts = (int)luaL_optinteger(L, 7, 5);
  int64_t backoff = opt_ms(L, 8, 1000);
  int64_t backoff_max = opt_ms(L, 9, 60000);
  eddy__sqlq_op_t *op = new_op(L, EDDY__SQLQ_NACK, 3);
  if (op == NULL)
    return 2;
  op->id = id;
  op->attempts = attempts;
  op->delay = delay;
  op->max_attempts = max_attempts;
  op->backoff = backoff;
  op->backoff_max = backoff_max;
  return submit(L, check_store(L), op, -1);
}

/* store:length(queue) -> ready, in_flight */
static int store_length(lua_State *L) {
  eddy__sqlq_op_t *op = new_op(L, EDDY__SQLQ_LENGTH, 0);
  return op ? submit(L, check_store(L), op, -1) : 2;
}

/* store:version(queue) -> n: read before a look that may end in a wait,
   so that a change made meanwhile ends the wait at once. */
static int store_version(lua_State *L) {
  store_t *s = check_store(L);
  const char *queue = luaL_checkstring(L, 2);
  int64_t version = s->q != NULL ? eddy__sqlq_version(s->q, queue) : 0;
  if (version < 0)
    return luaL_error(L, "eddy.queue.sqlite: out of memory");
  lua_pushnumber(L, (lua_Number)version);
  return 1;
}

/* store:wait(queue, room, seen[, timeout]) -> true (look again) | nil,
   "timeout" / "cancelled" / "closed": waits, in any thread, for a commit
   that brings the queue something to take (room: makes room in it). */
static int store_wait(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  store_t *s = check_store(L);
  const char *queue = luaL_checkstring(L, 2);
  int room = lua_toboolean(L, 3);
  lua_Number seen = luaL_checknumber(L, 4);
  int64_t timeout = eddyL_opttimeout(L, 5, -1);
  if (s->q == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &eddy__xwait_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int err;
  eddy__xwaiter_t *w =
      eddy__sqlq_wait(s->q, queue, room, (uint64_t)seen, rt, t, &err);
  return eddyL_xwait(L, rt, t, w, err, timeout);
}

/* store:wake_all(queue): every task waiting on the queue looks again. */
static int store_wake_all(lua_State *L) {
  store_t *s = check_store(L);
  const char *queue = luaL_checkstring(L, 2);
  if (s->q != NULL)
    eddy__sqlq_wake_all(s->q, queue);
  return 0;
}

/* store:stats() -> { commits, ops } (nil when closed) */
static int store_stats(lua_State *L) {
  store_t *s = check_store(L);
  if (s->q == NULL)
    return 0;
  uint64_t commits, ops;
  eddy__sqlq_stats(s->q, &commits, &ops);
  lua_createtable(L, 0, 2);
  lua_pushnumber(L, (lua_Number)commits);
  lua_setfield(L, -2, "commits");
  lua_pushnumber(L, (lua_Number)ops);
  lua_setfield(L, -2, "ops");
  return 1;
}

/* Operations still out come back on their own: the pool lets a busy
   writer finish its batch. */
static int store_gc(lua_State *L) {
  store_t *s = eddyL_toobject(L, 1);
  eddy__sqlq_free(s->q);
  s->q = NULL;
  return 0;
}

static int store_close(lua_State *L) {
  check_store(L);
  return store_gc(L);
}

/* open(path, sync_full) -> store. The file is opened by the writer, with
   the first operation (ensure). */
static int sqlq_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int sync_full = lua_toboolean(L, 2);
  store_t *s = eddyL_newobject(L, &store_class, sizeof *s);
  s->q = eddy__sqlq_new(eddy__runtime_hub(eddyL_runtime(L)), path,
                        sync_full);
  if (s->q == NULL)
    return luaL_error(L, "eddy.queue.sqlite: out of memory");
  return 1;
}

static const luaL_Reg store_methods[] = {
    {"ensure", store_ensure}, {"push", store_push},
    {"pop", store_pop},       {"ack", store_ack},
    {"nack", store_nack},     {"length", store_length},
    {"version", store_version}, {"wait", store_wait},
    {"wake_all", store_wake_all},
    {"stats", store_stats},   {"close", store_close},
    {NULL, NULL},
};

static const luaL_Reg store_meta[] = {
    {"__gc", store_gc},
    {NULL, NULL},
};

static const luaL_Reg sqlq_funcs[] = {
    {"open", sqlq_open},
    {NULL, NULL},
};

int luaopen_eddy_c_sqlite_queue(lua_State *L) {
  eddyL_newclass(L, &store_class, store_methods, store_meta);
  eddyL_newlib(L, sqlq_funcs);
  return 1;
}

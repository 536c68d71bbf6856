/*
 * queue.c: the memory backend of eddy.queue (module eddy.c.queue) over
 * core/mqueue.h, and the cross-thread wait both it and eddy.c.pubsub use.
 * Payloads are bytes: lua/eddy/queue.lua encodes and decodes them, and
 * lua/eddy/queue/memory.lua loops over pop and wait to make a pop with a
 * timeout.
 */
#include <stdlib.h>

#include "../core/hub.h"
#include "../core/mqueue.h"
#include "bindings.h"

static const eddyL_class_t queue_class = {"eddy.queue.memory"};

typedef struct lqueue_s {
  eddy__mq_t *q;
  eddy__hub_t *hub; /* a reference: q lives as long as its hub */
} lqueue_t;

static eddy__mq_t *check_queue(lua_State *L) {
  return ((lqueue_t *)eddyL_checkobject(L, 1, &queue_class))->q;
}

static uint64_t opt_ms(lua_State *L, int idx, const char *field,
                       double def) {
  double s = eddyL_optfield_number(L, idx, field, def);
  if (!(s >= 0 && s < 1e9))
    luaL_error(L, "bad %s: expected seconds >= 0", field);
  return (uint64_t)(s * 1000 + 0.5);
}

/* open(name, {max, max_attempts, backoff, backoff_max, visibility}) ->
   queue | nil, err */
static int queue_open(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  double max = eddyL_optfield_number(L, 2, "max", 0);
  double attempts = eddyL_optfield_number(L, 2, "max_attempts", 5);
  luaL_argcheck(L, max >= 0 && max <= 9007199254740992.0, 2,
                "max must be a count >= 0");
  luaL_argcheck(L, attempts >= 1 && attempts <= 4294967295.0, 2,
                "max_attempts must be a count >= 1");
  eddy__mq_opts_t opts = {(size_t)max, (uint32_t)attempts,
                          opt_ms(L, 2, "backoff", 1),
                          opt_ms(L, 2, "backoff_max", 60),
                          opt_ms(L, 2, "visibility", 30)};
  /* As the durable backends have it: a message may be in flight for a
     while, however short. */
  luaL_argcheck(L, opts.visibility_ms > 0, 2, "visibility must be > 0");
  eddy__hub_t *hub = eddy__runtime_hub(eddyL_runtime(L));
  eddy__mq_t *q;
  int rc = eddy__mq_open(hub, name, &opts, &q);
  if (rc != 0)
    return eddyL_error(L, rc);
  lqueue_t *lq = eddyL_newobject(L, &queue_class, sizeof *lq);
  lq->q = q;
  lq->hub = eddy__hub_ref(hub);
  return 1;
}

static int queue_gc(lua_State *L) {
  lqueue_t *lq = eddyL_toobject(L, 1);
  eddy__hub_unref(lq->hub);
  lq->hub = NULL;
  return 0;
}

/* q:push(bytes[, delay]) -> true | nil, "full" */
static int queue_push(lua_State *L) {
  eddy__mq_t *q = check_queue(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int64_t delay = eddyL_opttimeout(L, 3, 0);
  int rc = eddy__mq_push(q, data, len, delay > 0 ? (uint64_t)delay : 0);
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* q:pop() -> id, bytes, attempts | nil, "empty", seconds until something
   may come due (nil: nothing will by itself) */
static int queue_pop(lua_State *L) {
  eddy__mq_t *q = check_queue(L);
  eddy__mq_msg_t m;
  int64_t due;
  int rc = eddy__mq_pop(q, &m, &due);
  if (rc == EDDY_ENOTFOUND) {
    lua_pushnil(L);
    lua_pushliteral(L, "empty");
    if (due < 0)
      return 2;
    lua_pushnumber(L, (double)due / 1000);
    return 3;
  }
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushnumber(L, (double)m.id);
  lua_pushlstring(L, m.data, m.len);
  free(m.data);
  lua_pushinteger(L, m.attempts);
  return 3;
}

static uint64_t check_id(lua_State *L) {
  lua_Number id = luaL_checknumber(L, 2);
  luaL_argcheck(L, id >= 1 && id <= 9007199254740992.0, 2,
                "not a message id");
  return (uint64_t)id;
}

/* q:ack(id) -> true | nil, "not found" */
static int queue_ack(lua_State *L) {
  eddy__mq_t *q = check_queue(L);
  int rc = eddy__mq_ack(q, check_id(L));
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* q:nack(id[, delay]) -> true, dead | nil, "not found"; without a delay
   the backoff for its attempts. */
static int queue_nack(lua_State *L) {
  eddy__mq_t *q = check_queue(L);
  uint64_t id = check_id(L);
  int64_t delay = lua_isnoneornil(L, 3) ? -1 : eddyL_checkseconds(L, 3);
  int dead;
  int rc = eddy__mq_nack(q, id, delay, &dead);
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushboolean(L, 1);
  lua_pushboolean(L, dead);
  return 2;
}

/* q:length() -> ready, in_flight, delayed, bytes (of their payloads) */
static int queue_length(lua_State *L) {
  size_t ready, in_flight, delayed, bytes;
  eddy__mq_length(check_queue(L), &ready, &in_flight, &delayed, &bytes);
  lua_pushnumber(L, (double)ready);
  lua_pushnumber(L, (double)in_flight);
  lua_pushnumber(L, (double)delayed);
  lua_pushnumber(L, (double)bytes);
  return 4;
}

/* Waits with the xwaiter w made for task t (NULL: no need to wait). */
int eddyL_xwait(lua_State *L, eddy_runtime_t *rt, eddy__task_t *t,
                eddy__xwaiter_t *w, int err, int64_t timeout) {
  if (w == NULL) {
    if (err != 0)
      return eddyL_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
  }
  eddy__task_wait(t, &eddy__xwait_ops, w, timeout);
  return eddy__task_yield(&rt->sched, L);
}

/* q:wait(room[, timeout]) -> true (look again) | nil, "timeout" /
   "cancelled": waits for a message (room false) or for room. */
static int queue_wait(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  eddy__mq_t *q = check_queue(L);
  int room = lua_toboolean(L, 2);
  int64_t timeout = eddyL_opttimeout(L, 3, -1);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &eddy__xwait_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int err;
  int64_t due;
  eddy__xwaiter_t *w = eddy__mq_wait(q, room, rt, t, &err, &due);
  /* Past due, a delayed message is ready or an expired delivery back:
     the taker looks again then (a ms late, so that it finds it due). */
  if (due >= 0 && (timeout < 0 || due + 1 < timeout))
    timeout = due + 1;
  return eddyL_xwait(L, rt, t, w, err, timeout);
}

static int queue_name(lua_State *L) {
  lua_pushstring(L, eddy__mq_name(check_queue(L)));
  return 1;
}

static int queue_tostring(lua_State *L) {
  lua_pushfstring(L, "eddy.queue.memory (%s)", eddy__mq_name(check_queue(L)));
  return 1;
}

static const luaL_Reg queue_funcs[] = {
    {"open", queue_open},
    {NULL, NULL},
};

static const luaL_Reg queue_methods[] = {
    {"push", queue_push},     {"pop", queue_pop},   {"ack", queue_ack},
    {"nack", queue_nack},     {"length", queue_length},
    {"wait", queue_wait},     {"name", queue_name}, {NULL, NULL},
};

static const luaL_Reg queue_meta[] = {
    {"__tostring", queue_tostring},
    {"__gc", queue_gc},
    {NULL, NULL},
};

int luaopen_eddy_c_queue(lua_State *L) {
  eddyL_newclass(L, &queue_class, queue_methods, queue_meta);
  eddyL_newlib(L, queue_funcs);
  return 1;
}

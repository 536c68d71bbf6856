/*
 * pubsub.c: eddy.pubsub's topics (module eddy.c.pubsub) over
 * core/topic.h: publish bytes to every subscriber of the program, each
 * with a bounded ring that drops its oldest message when full.
 * lua/eddy/pubsub.lua encodes, decodes, and loops over next and wait.
 */
#include <stdlib.h>

#include "../core/hub.h"
#include "../core/topic.h"
#include "bindings.h"

static const eddyL_class_t sub_class = {"eddy.pubsub.subscription"};

#define DEFAULT_BUFFER 1024

typedef struct lsub_s {
  eddy__sub_t *sub; /* NULL once closed */
  eddy__hub_t *hub; /* a reference: the topic's, while sub is open */
} lsub_t;

static eddy__topic_t *check_topic(lua_State *L) {
  eddy__topic_t *t;
  int rc = eddy__topic_open(eddy__runtime_hub(eddyL_runtime(L)),
                            luaL_checkstring(L, 1), &t);
  if (rc == EDDY_EINVAL)
    luaL_argerror(L, 1, "a topic name is 1 to 127 bytes");
  return rc == 0 ? t : NULL;
}

/* publish(topic, bytes[, only]) -> subscribers reached | nil, err; only:
   the subscribers tagged so. */
static int pubsub_publish(lua_State *L) {
  eddy__topic_t *t = check_topic(L);
  size_t len, n;
  const char *data = luaL_checklstring(L, 2, &len);
  int only = (int)luaL_optinteger(L, 3, 0);
  int rc = t == NULL ? EDDY_ENOMEM
                     : eddy__topic_publish(t, data, len, only, &n);
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushnumber(L, (double)n);
  return 1;
}

/* subscribe(topic[, buffer[, tag]]) -> subscription */
static int pubsub_subscribe(lua_State *L) {
  eddy__topic_t *t = check_topic(L);
  lua_Integer cap = luaL_optinteger(L, 2, DEFAULT_BUFFER);
  int tag = (int)luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, cap >= 1 && cap <= (1 << 24), 2,
                "a buffer of 1 to 2^24 messages");
  lsub_t *ls = eddyL_newobject(L, &sub_class, sizeof *ls);
  ls->sub = t != NULL ? eddy__sub_new(t, (size_t)cap, tag) : NULL;
  if (ls->sub == NULL)
    return luaL_error(L, "eddy.pubsub.subscribe: out of memory");
  ls->hub = eddy__hub_ref(eddy__runtime_hub(eddyL_runtime(L)));
  return 1;
}

static lsub_t *check_sub(lua_State *L) {
  return eddyL_checkobject(L, 1, &sub_class);
}

/* sub:next() -> bytes | nil, "empty" / "closed" */
static int sub_next(lua_State *L) {
  lsub_t *ls = check_sub(L);
  if (ls->sub == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  char *data;
  size_t len;
  int rc = eddy__sub_next(ls->sub, &data, &len);
  if (rc == EDDY_ENOTFOUND) {
    lua_pushnil(L);
    lua_pushliteral(L, "empty");
    return 2;
  }
  if (rc != 0)
    return eddyL_error(L, rc);
  lua_pushlstring(L, data, len);
  free(data);
  return 1;
}

/* sub:wait([timeout]) -> true (look again) | nil, err */
static int sub_wait(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  lsub_t *ls = check_sub(L);
  int64_t timeout = eddyL_opttimeout(L, 2, -1);
  if (ls->sub == NULL)
    return eddyL_error(L, EDDY_ECLOSED);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &eddy__xwait_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  int err;
  eddy__xwaiter_t *w = eddy__sub_wait(ls->sub, rt, t, &err);
  return eddyL_xwait(L, rt, t, w, err, timeout);
}

/* sub:dropped() -> messages dropped, messages waiting */
static int sub_dropped(lua_State *L) {
  lsub_t *ls = check_sub(L);
  uint64_t dropped = 0;
  size_t waiting = 0;
  if (ls->sub != NULL)
    eddy__sub_counts(ls->sub, &dropped, &waiting);
  lua_pushnumber(L, (double)dropped);
  lua_pushnumber(L, (double)waiting);
  return 2;
}

static int sub_gc(lua_State *L) {
  lsub_t *ls = eddyL_toobject(L, 1);
  if (ls->sub != NULL) {
    eddy__sub_close(ls->sub);
    eddy__hub_unref(ls->hub);
  }
  ls->sub = NULL;
  ls->hub = NULL;
  return 0;
}

static int sub_close(lua_State *L) {
  check_sub(L);
  return sub_gc(L);
}

static const luaL_Reg pubsub_funcs[] = {
    {"publish", pubsub_publish},
    {"subscribe", pubsub_subscribe},
    {NULL, NULL},
};

static const luaL_Reg sub_methods[] = {
    {"next", sub_next},       {"wait", sub_wait}, {"dropped", sub_dropped},
    {"close", sub_close},     {NULL, NULL},
};

static const luaL_Reg sub_meta[] = {
    {"__gc", sub_gc},
    {NULL, NULL},
};

int luaopen_eddy_c_pubsub(lua_State *L) {
  eddyL_newclass(L, &sub_class, sub_methods, sub_meta);
  eddyL_newlib(L, pubsub_funcs);
  return 1;
}

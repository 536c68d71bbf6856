/*
 * dns.c: eddy.dns.resolve (module eddy.c.dns): a name's addresses, as an
 * array of strings, from the cache or from a c-ares lookup on the loop.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/addr.h"
#include "../core/dns.h"
#include "bindings.h"

#define DEFAULT_TIMEOUT_MS 10000

/* One task's wait for a lookup; freed by the answer or by the detach. */
typedef struct dns_wait_s {
  eddy__dns_req_t req;
  eddy__waiter_t waiter;
} dns_wait_t;

static int push_addrs(lua_State *L, int status, const eddy__dns_addrs_t *a) {
  if (status != EDDY_OK)
    return eddyL_error(L, status);
  lua_createtable(L, a->count, 0);
  for (int i = 0; i < a->count; i++) {
    eddyL_pushaddr(L, (const struct sockaddr *)&a->addr[i]);
    lua_pop(L, 1); /* the port */
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static void on_answer(eddy__dns_req_t *req, int status,
                      const eddy__dns_addrs_t *addrs) {
  dns_wait_t *w = (dns_wait_t *)req;
  if (eddy__waiter_is_current(w->waiter)) {
    eddy__task_t *t = w->waiter.task;
    lua_State *co = eddy__task_wake_begin(t);
    int n = push_addrs(co, status, addrs);
    eddy__task_wake_end(t, n);
  }
  free(w);
}

static void resolve_detach(eddy__task_t *t) {
  dns_wait_t *w = t->wait_data;
  eddy__dns_cancel(&w->req);
  free(w);
}

static const eddy__wait_ops_t resolve_ops = {"dns resolve", resolve_detach,
                                             NULL};

static int family_of(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return AF_UNSPEC;
  lua_getfield(L, idx, "family");
  const char *f = lua_tostring(L, -1);
  int family = AF_UNSPEC;
  if (f == NULL || strcmp(f, "any") == 0)
    family = AF_UNSPEC;
  else if (strcmp(f, "inet") == 0 || strcmp(f, "ipv4") == 0)
    family = AF_INET;
  else if (strcmp(f, "inet6") == 0 || strcmp(f, "ipv6") == 0)
    family = AF_INET6;
  else
    luaL_error(L, "bad family '%s' (expected \"inet\", \"inet6\" or \"any\")", f);
  lua_pop(L, 1);
  return family;
}

/* resolve(name[, opts]): an array of addresses, or nil, err ("not found",
   "timeout", "dns failure"). opts: timeout, family. */
static int dns_resolve(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  int family = family_of(L, 2);
  int64_t ms = eddyL_opttimeout(L, 2, DEFAULT_TIMEOUT_MS);
  luaL_argcheck(L, len > 0 && len < 256 && strlen(name) == len, 1,
                "not a host name");
  struct sockaddr_storage literal;
  if (eddy__addr_parse(name, 0, &literal) == 0) {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    return 1;
  }
  const eddy__dns_addrs_t *addrs;
  int status = eddy__dns_cached(rt, name, family, &addrs);
  if (status != EDDY_EBUSY)
    return push_addrs(L, status, addrs);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &resolve_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  dns_wait_t *w = malloc(sizeof *w);
  if (w == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  w->req.cb = on_answer;
  int rc = eddy__dns_resolve(rt, &w->req, name, family);
  if (rc != 0) {
    free(w);
    return eddyL_error(L, rc);
  }
  eddy__task_wait(t, &resolve_ops, w, ms);
  w->waiter = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

static const luaL_Reg dns_funcs[] = {
    {"resolve", dns_resolve},
    {NULL, NULL},
};

int luaopen_eddy_c_dns(lua_State *L) {
  eddyL_newlib(L, dns_funcs);
  return 1;
}

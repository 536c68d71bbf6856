/*
 * auxlib.c: the helpers every binding shares (see bindings.h). Uses only
 * the Lua API and the runtime's public fields.
 */
#include <math.h>
#include <string.h>

#include "../core/addr.h"

#include "bindings.h"

void eddyL_setfuncs(lua_State *L, const luaL_Reg *funcs) {
  for (; funcs->name != NULL; funcs++) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, funcs->func, 1);
    lua_setfield(L, -2, funcs->name);
  }
}

void eddyL_newlib(lua_State *L, const luaL_Reg *funcs) {
  lua_newtable(L);
  eddyL_setfuncs(L, funcs);
}

void eddyL_newclass(lua_State *L, const eddyL_class_t *cls,
                    const luaL_Reg *methods, const luaL_Reg *metamethods) {
  lua_newtable(L);
  if (metamethods)
    eddyL_setfuncs(L, metamethods);
  eddyL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, cls->name);
  lua_setfield(L, -2, "__name");
  lua_pushlightuserdata(L, (void *)cls);
  lua_insert(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void *eddyL_newobject(lua_State *L, const eddyL_class_t *cls, size_t size) {
  eddyL_object_t *o = lua_newuserdata(L, sizeof *o + size);
  o->cls = cls;
  o->self = o;
  lua_pushlightuserdata(L, (void *)cls);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_setmetatable(L, -2);
  return o + 1;
}

void *eddyL_testobject(lua_State *L, int idx, const eddyL_class_t *cls) {
  eddyL_object_t *o = lua_touserdata(L, idx);
  if (o == NULL || o->self != o || o->cls != cls)
    return NULL;
  return o + 1;
}

void *eddyL_checkobject(lua_State *L, int idx, const eddyL_class_t *cls) {
  void *p = eddyL_testobject(L, idx, cls);
  if (p == NULL)
    luaL_typerror(L, idx, cls->name);
  return p;
}

int eddyL_error(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, eddy_strerror(err));
  return 2;
}

int eddyL_pushaddr(lua_State *L, const struct sockaddr *addr) {
  char ip[EDDY__ADDR_TEXT];
  int port;
  if (eddy__addr_name(addr, ip, &port) != 0)
    return eddyL_error(L, EDDY_EINVAL);
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

int eddyL_pushname(lua_State *L, int rc, const struct sockaddr_storage *ss) {
  if (rc != 0)
    return eddyL_error(L, eddy__error_from_uv(rc));
  return eddyL_pushaddr(L, (const struct sockaddr *)ss);
}

void eddyL_setmethods(lua_State *L, const eddyL_class_t *cls,
                      const char *field) {
  lua_pushlightuserdata(L, (void *)cls);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, field);
  lua_pop(L, 1);
}

static int64_t seconds_at(lua_State *L, int idx, const char *what) {
  double s = lua_tonumber(L, idx);
  if (isnan(s) || s < 0)
    luaL_error(L, "bad %s: expected seconds >= 0, got %f", what, s);
  return eddy__timeout_ms(s);
}

int64_t eddyL_checkseconds(lua_State *L, int idx) {
  luaL_checktype(L, idx, LUA_TNUMBER);
  return seconds_at(L, idx, "time");
}

int64_t eddyL_opttimeout(lua_State *L, int idx, int64_t def_ms) {
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL:
    return def_ms;
  case LUA_TNUMBER:
    return seconds_at(L, idx, "timeout");
  case LUA_TTABLE: {
    lua_getfield(L, idx, "timeout");
    int64_t ms = def_ms;
    if (lua_type(L, -1) == LUA_TNUMBER)
      ms = seconds_at(L, -1, "timeout");
    else if (!lua_isnil(L, -1))
      luaL_error(L, "bad timeout: expected a number of seconds, got %s",
                 luaL_typename(L, -1));
    lua_pop(L, 1);
    return ms;
  }
  }
  luaL_typerror(L, idx, "timeout in seconds or options table");
  return def_ms;
}

double eddyL_optfield_number(lua_State *L, int idx, const char *field,
                             double def) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return def;
  lua_getfield(L, idx, field);
  double v = def;
  if (lua_type(L, -1) == LUA_TNUMBER)
    v = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "bad option '%s': expected a number, got %s", field,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

int eddyL_optfield_boolean(lua_State *L, int idx, const char *field,
                           int def) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return def;
  lua_getfield(L, idx, field);
  int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

eddy__task_t *eddyL_begin_wait(lua_State *L, eddy_runtime_t *rt,
                               const eddy__wait_ops_t *ops) {
  eddy__task_t *t = eddy__task_check_wait(&rt->sched, L);
  if (t->flags & EDDY__TASK_CANCELLED) {
    eddy__task_wait_cancelled(t, ops);
    return NULL;
  }
  return t;
}

/*
 * eddy.c: luaopen_eddy, the entry of `require "eddy"`. It finds the
 * runtime of this Lua state (made by eddy_new in the C and CLI faces) or
 * makes one (the module face, under stock luajit), registers eddy's
 * modules in package.preload, and returns the table of lua/eddy/api.lua.
 */
#include <string.h>

#include "../core/hub.h"
#include "bindings.h"

/* The box lives until the Lua state closes. It is made before any other
   eddy userdata, and Lua finalizes userdata in the reverse order of their
   making, so its __gc runs after theirs: the runtime they point to is
   still there when they let go of it. */
static int box_gc(lua_State *L) {
  eddy_runtime_t **box = lua_touserdata(L, 1);
  if (*box != NULL && !(*box)->owns_lua)
    eddy__runtime_release(*box, 1);
  *box = NULL;
  return 0;
}

void eddyL_newbox(lua_State *L, eddy_runtime_t *rt) {
  eddy_runtime_t **box = lua_newuserdata(L, sizeof *box);
  *box = rt;
  if (luaL_newmetatable(L, EDDYL_RUNTIME_KEY)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, EDDYL_RUNTIME_KEY);
}

/* Loads an embedded Lua module: upvalue 2 is its index in eddyL_sources. */
static int load_embedded(lua_State *L) {
  const eddyL_source_t *src =
      &eddyL_sources[(int)lua_tointeger(L, lua_upvalueindex(2))];
  if (luaL_loadbuffer(L, (const char *)src->code, src->len, src->chunk) != 0)
    return lua_error(L);
  lua_pushstring(L, src->name);
  lua_call(L, 1, 1);
  return 1;
}

static const luaL_Reg c_modules[] = {
    {"eddy.c.task", luaopen_eddy_c_task},
    {"eddy.c.inspect", luaopen_eddy_c_inspect},
    {"eddy.c.threads", luaopen_eddy_c_threads},
    {"eddy.c.reactor", luaopen_eddy_c_reactor},
    {"eddy.c.codec", luaopen_eddy_c_codec},
    {"eddy.c.taskpool", luaopen_eddy_c_taskpool},
    {"eddy.c.shared", luaopen_eddy_c_shared},
    {"eddy.c.mailbox", luaopen_eddy_c_mailbox},
    {"eddy.c.fetch", luaopen_eddy_c_fetch},
    {"eddy.c.timer", luaopen_eddy_c_timer},
    {"eddy.c.tcp", luaopen_eddy_c_tcp},
    {"eddy.c.udp", luaopen_eddy_c_udp},
    {"eddy.c.dns", luaopen_eddy_c_dns},
    {"eddy.c.signal", luaopen_eddy_c_signal},
    {"eddy.c.http", luaopen_eddy_c_http},
    {"eddy.c.ws", luaopen_eddy_c_ws},
    {"eddy.c.fs", luaopen_eddy_c_fs},
    {"eddy.c.mysql", luaopen_eddy_c_mysql},
    {"eddy.c.resp", luaopen_eddy_c_resp},
    {"eddy.c.process", luaopen_eddy_c_process},
    {"eddy.c.sqlite_queue", luaopen_eddy_c_sqlite_queue},
    {"eddy.c.queue", luaopen_eddy_c_queue},
    {"eddy.c.pubsub", luaopen_eddy_c_pubsub},
    {NULL, NULL},
};

void eddyL_preload(lua_State *L) {
  int box = lua_gettop(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  for (const luaL_Reg *m = c_modules; m->name != NULL; m++) {
    lua_pushvalue(L, box);
    lua_pushcclosure(L, m->func, 1);
    lua_setfield(L, -2, m->name);
  }
  for (int i = 0; eddyL_sources[i].name != NULL; i++) {
    lua_pushvalue(L, box);
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 2);
    lua_setfield(L, -2, eddyL_sources[i].name);
  }
  lua_pop(L, 2);
}

EDDY_API int luaopen_eddy(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, EDDYL_RUNTIME_KEY);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    eddy_runtime_t *rt = eddy__runtime_attach(L, NULL);
    if (rt == NULL)
      return luaL_error(L, "eddy: cannot make a runtime (out of memory)");
    eddyL_newbox(L, rt);
    /* In a task pool's thread: the queues and topics are those of the
       runtime that made the pool. */
    lua_getfield(L, LUA_REGISTRYINDEX, EDDYL_HUB_KEY);
    if (lua_islightuserdata(L, -1))
      eddy__hub_replace(&rt->hub, lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  eddyL_preload(L);
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "eddy.api");
  lua_call(L, 1, 1);
  return 1;
}

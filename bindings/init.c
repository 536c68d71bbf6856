/*
 * init.c: the embedding API of eddy.h. eddy_new makes a runtime with a Lua
 * state of its own and opens eddy in it; loaded chunks become main tasks;
 * eddy_run runs the loop; eddy_free closes it all. The `eddy` command
 * (cli/main.c) is a small host over these functions.
 */
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "bindings.h"

int luaopen_eddy(lua_State *L);

eddy_runtime_t *eddy_new(const eddy_options_t *opts) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  luaL_openlibs(L);
  eddy_runtime_t *rt = eddy__runtime_attach(L, opts);
  if (rt == NULL) {
    lua_close(L);
    return NULL;
  }
  rt->owns_lua = 1;
  eddyL_newbox(L, rt);
  eddyL_preload(L);
  /* require "eddy" finds it already loaded-to-be: preload the opener. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_eddy);
  lua_setfield(L, -2, "eddy");
  lua_pop(L, 3);
  return rt;
}

static int opened(eddy_runtime_t *rt) {
  lua_State *L = rt->L;
  /* Opening eddy installs its coroutine wrappers and require, which the
     script's own code must see from its first line. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "eddy");
  if (lua_pcall(L, 1, 0, 0) != 0) {
    eddy__set_error(rt, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return EDDY_ELUA;
  }
  return EDDY_OK;
}

/* The chunk at the top of the stack, called with nargs arguments below
   it, becomes a main task. */
static int spawn_main(eddy_runtime_t *rt, int nargs) {
  lua_State *L = rt->L;
  lua_insert(L, -(nargs + 1));
  eddy__task_t *t = eddy__task_spawn(&rt->sched, L, nargs);
  if (t == NULL) {
    eddy__set_error(rt, "out of memory");
    return EDDY_ENOMEM;
  }
  t->flags |= EDDY__TASK_MAIN;
  return EDDY_OK;
}

int eddy_load_string(eddy_runtime_t *rt, const char *code,
                     const char *chunkname) {
  return eddy_load_buffer(rt, code, strlen(code), chunkname);
}

int eddy_load_buffer(eddy_runtime_t *rt, const char *code, size_t len,
                     const char *chunkname) {
  return eddyL_load_main(rt, code, len, chunkname, 0);
}

int eddyL_load_main(eddy_runtime_t *rt, const char *code, size_t len,
                    const char *chunkname, int nargs) {
  int rc = opened(rt);
  if (rc == EDDY_OK && luaL_loadbuffer(rt->L, code, len,
                                       chunkname ? chunkname : "=(string)")) {
    eddy__set_error(rt, "%s", lua_tostring(rt->L, -1));
    lua_pop(rt->L, 1);
    rc = EDDY_ELUA;
  }
  if (rc != EDDY_OK) {
    lua_pop(rt->L, nargs);
    return rc;
  }
  return spawn_main(rt, nargs);
}

int eddy_load_file(eddy_runtime_t *rt, const char *path, int argc,
                   char **argv) {
  lua_State *L = rt->L;
  int rc = opened(rt);
  if (rc != EDDY_OK)
    return rc;
  /* The `arg` table, as luajit makes it: arg[0] is the script. */
  lua_createtable(L, argc, 1);
  lua_pushstring(L, path);
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
  for (int i = 0; i < argc; i++)
    lua_pushstring(L, argv[i]);
  if (luaL_loadfile(L, strcmp(path, "-") == 0 ? NULL : path) != 0) {
    eddy__set_error(rt, "%s", lua_tostring(L, -1));
    lua_pop(L, 1 + argc);
    return EDDY_ELUA;
  }
  return spawn_main(rt, argc);
}

int eddy_run(eddy_runtime_t *rt) {
  return eddy__runtime_run(rt);
}

int eddy_stop(eddy_runtime_t *rt) {
  return uv_async_send(&rt->stop_async) == 0 ? EDDY_OK : EDDY_EINVAL;
}

void eddy_free(eddy_runtime_t *rt) {
  if (rt == NULL || rt->running)
    return;
  lua_State *L = rt->L;
  /* End tasks and close what they held while Lua is still there, so
     that registry references are dropped properly; then close Lua, whose
     finalizers let go of the runtime's objects; then the runtime. */
  eddy__sched_abandon(&rt->sched);
  lua_close(L);
  eddy__runtime_release(rt, 1);
}

const char *eddy_last_error(const eddy_runtime_t *rt) {
  return rt->error;
}

lua_State *eddy_lua_state(eddy_runtime_t *rt) {
  return rt->L;
}

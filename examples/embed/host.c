/*
 * host.c: a tiny host program that embeds eddy. It gives the script a
 * function of its own (host_greet), runs the script, and stops the runtime
 * from another thread after a while, as a real host would on shutdown.
 *
 *   build/examples/host examples/embed/app.lua [seconds]
 */
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "eddy.h"

/* host_greet(name) -> "hello, name (from the host)" */
static int host_greet(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_pushfstring(L, "hello, %s (from the host)", name);
  return 1;
}

typedef struct {
  eddy_runtime_t *rt;
  double seconds;
} stopper_t;

static void *stop_later(void *arg) {
  stopper_t *s = arg;
  usleep((useconds_t)(s->seconds * 1e6));
  eddy_stop(s->rt); /* safe from any thread */
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua [seconds]\n", argv[0]);
    return 2;
  }
  eddy_options_t opts;
  eddy_options_init(&opts);
  opts.install_signal_handlers = 0; /* this host owns its signals */
  eddy_runtime_t *rt = eddy_new(&opts);
  if (rt == NULL)
    return 1;
  lua_State *L = eddy_lua_state(rt);
  lua_pushcfunction(L, host_greet);
  lua_setglobal(L, "host_greet");

  if (eddy_load_file(rt, argv[1], argc - 2, argv + 2) != EDDY_OK) {
    fprintf(stderr, "host: %s\n", eddy_last_error(rt));
    eddy_free(rt);
    return 1;
  }
  stopper_t stopper = {rt, argc > 2 ? atof(argv[2]) : 1.0};
  pthread_t thread;
  pthread_create(&thread, NULL, stop_later, &stopper);
  int status = eddy_run(rt);
  pthread_join(thread, NULL);
  if (status != 0)
    fprintf(stderr, "host: the script ended with %d: %s\n", status,
            eddy_last_error(rt));
  else
    printf("host: the runtime stopped cleanly\n");
  eddy_free(rt);
  return status;
}

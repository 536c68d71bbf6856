/*
 * mailbox_test.c: the host sends to a runtime's mailbox from a thread of
 * its own (eddy_mailbox_send), as an embedding program would.
 */
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "../../core/eddy.h"
#include "tap.h"

static char got[128];

static int host_report(lua_State *L) {
  snprintf(got, sizeof got, "%s from %d.%d", luaL_checkstring(L, 1),
           (int)luaL_checkinteger(L, 2), (int)luaL_checkinteger(L, 3));
  return 0;
}

static int send_rc;

static void *host_thread(void *arg) {
  (void)arg;
  /* The script opens its mailbox when it first waits on it. */
  for (int i = 0; i < 500; i++) {
    send_rc = eddy_mailbox_send((long)getpid(), 1, "hello\0host", 10);
    if (send_rc != EDDY_ENOTFOUND)
      break;
    usleep(10 * 1000);
  }
  return NULL;
}

int main(void) {
  ok(eddy_mailbox_send((long)getpid(), 7, "x", 1) == EDDY_ENOTFOUND,
     "no mailbox open: not found");
  static char big[70 * 1024];
  ok(eddy_mailbox_send((long)getpid(), 1, big, sizeof big) == EDDY_ETOOLARGE,
     "over 64 KiB: too large");

  eddy_runtime_t *rt = eddy_new(NULL);
  lua_State *L = eddy_lua_state(rt);
  lua_pushcfunction(L, host_report);
  lua_setglobal(L, "report");
  int rc = eddy_load_string(rt,
      "local eddy = require 'eddy'\n"
      "local msg, w, t = eddy.mailbox.recv(5)\n"
      "report(msg and msg:gsub('%z', '|') or 'nothing', w or -1, t or -1)\n"
      "eddy.mailbox.close()\n",
      "=mailbox");
  pthread_t th;
  pthread_create(&th, NULL, host_thread, NULL);
  int status = rc == EDDY_OK ? eddy_run(rt) : rc;
  pthread_join(th, NULL);
  ok(status == 0 && send_rc == EDDY_OK, "the run ends well (%d, send %d)",
     status, send_rc);
  ok(strcmp(got, "hello|host from 0.0") == 0,
     "the script received the host's bytes, from worker 0 thread 0 (%s)",
     got);
  eddy_free(rt);
  return done();
}

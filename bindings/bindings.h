/*
 * bindings.h: what every Lua binding of eddy shares, in the manner of
 * lauxlib: reaching the runtime, making modules and classes, reading
 * timeouts and options, and returning failures as nil, err.
 *
 * Every function of a binding module carries the runtime's box (a full
 * userdata holding the eddy_runtime_t pointer) as upvalue 1.
 */
#ifndef EDDY_BINDINGS_H
#define EDDY_BINDINGS_H

#include <lauxlib.h>
#include <lua.h>
#include <sys/socket.h>

#include "../core/eddy.h"
#include "../core/runtime.h"
#include "../core/stream.h"
#include "../core/task.h"

#define EDDYL_RUNTIME_KEY EDDY__RUNTIME_KEY
/* In a task pool's Lua state: the hub (core/hub.h) its runtime shares. */
#define EDDYL_HUB_KEY "eddy.hub"

/* require "eddy" (bindings/eddy.c). */
int luaopen_eddy(lua_State *L);

static inline eddy_runtime_t *eddyL_runtime(lua_State *L) {
  return *(eddy_runtime_t **)lua_touserdata(L, lua_upvalueindex(1));
}

/* A table with funcs, each closing over the runtime box (which must be
   upvalue 1 of the calling function). Leaves the table on the stack. */
void eddyL_newlib(lua_State *L, const luaL_Reg *funcs);
/* Adds funcs to the table at the top, closing over the runtime box. */
void eddyL_setfuncs(lua_State *L, const luaL_Reg *funcs);
/*
 * A class of userdata. Every object of eddy's begins with a small header
 * naming its class and pointing at itself, so that checking an argument
 * is two compares: no metatable lookup and no string hashing, which
 * luaL_checkudata pays on every call. (A foreign userdata would have to
 * hold its own address and the class's by design to pass.) The
 * metatable is kept in the registry under the class's address.
 */
typedef struct eddyL_class_s {
  const char *name; /* e.g. "eddy.tcp.conn", for messages and __name */
} eddyL_class_t;

typedef struct eddyL_object_s {
  const eddyL_class_t *cls;
  const void *self;
} eddyL_object_t;

/* The payload of the eddy object at idx, known to be one (in its own
   metamethods). */
static inline void *eddyL_toobject(lua_State *L, int idx) {
  return (eddyL_object_t *)lua_touserdata(L, idx) + 1;
}

/* Makes the class's metatable with __index pointing at a table of methods;
   metamethods go straight in the metatable. Leaves nothing on the stack. */
void eddyL_newclass(lua_State *L, const eddyL_class_t *cls,
                    const luaL_Reg *methods, const luaL_Reg *metamethods);
/* A new userdata of the class, pushed. */
void *eddyL_newobject(lua_State *L, const eddyL_class_t *cls, size_t size);
/* The userdata at idx if it is of the class; else raises (check) or
   returns NULL (test). */
void *eddyL_checkobject(lua_State *L, int idx, const eddyL_class_t *cls);
void *eddyL_testobject(lua_State *L, int idx, const eddyL_class_t *cls);

/* Pushes nil and the error's string; returns 2. */
int eddyL_error(lua_State *L, int err);

/* Pushes an address as ip, port; returns 2 (nil, err for an address of
   another family). */
int eddyL_pushaddr(lua_State *L, const struct sockaddr *addr);

/* A socket's own or its peer's address, from a libuv getter such as
   uv_tcp_getsockname: pushes ip, port, or nil, err. */
int eddyL_pushname(lua_State *L, int rc, const struct sockaddr_storage *ss);

/* Sets field of the table at the top to the method table of class, so
   that a module's Lua part can add to it. */
void eddyL_setmethods(lua_State *L, const eddyL_class_t *cls,
                      const char *field);

/*
 * The timeout of a call, in ms (-1: none). The argument at idx may be
 * absent or nil (def_ms), a number of seconds, or an options table whose
 * `timeout` field is read. math.huge means none.
 */
int64_t eddyL_opttimeout(lua_State *L, int idx, int64_t def_ms);
/* Seconds → ms for a required timeout argument. */
int64_t eddyL_checkseconds(lua_State *L, int idx);

/* Reads opts[field] at idx (a table or nil) as a number, boolean or
   integer; def when absent. */
double eddyL_optfield_number(lua_State *L, int idx, const char *field,
                             double def);
int eddyL_optfield_boolean(lua_State *L, int idx, const char *field, int def);

/* The current task, after checking that L may wait (else raises). Returns
   NULL when the task has been cancelled: it is then queued to answer
   "cancelled" through ops, and the caller returns
   eddy__task_yield(&rt->sched, L). */
eddy__task_t *eddyL_begin_wait(lua_State *L, eddy_runtime_t *rt,
                               const eddy__wait_ops_t *ops);

/* Registers the loaders of eddy's modules (C and embedded Lua) in
   package.preload; the runtime box is at the top of the stack. */
void eddyL_preload(lua_State *L);

/* Makes the runtime's box and remembers it in the registry. */
void eddyL_newbox(lua_State *L, eddy_runtime_t *rt);

/* A TCP connection's stream, for a protocol that takes it over (the
   connection answers "closed" from then on); NULL when it is closed. */
eddy__stream_t *eddyL_tcp_take(lua_State *L, int idx);

/* Makes a WebSocket session over s (client: masks its frames) and pushes
   it; opts at opts_idx: max_message, write_buffer. */
int eddyL_ws_new(lua_State *L, eddy__stream_t *s, int client, int opts_idx);

/* A signal given by name ("term", "SIGTERM", any case) or number at idx;
   raises for an unknown one (bindings/signal.c). */
int eddyL_checksignal(lua_State *L, int idx);
/* Pushes a signal's name ("term"), or its number when it has none. */
void eddyL_pushsignal(lua_State *L, int signum);

/* A connection over a new pipe, for a child's stdin, stdout or stderr:
   pushes it (an eddy.process.pipe, with a TCP connection's read and
   write methods) and returns its stream, to be opened by the spawn; NULL
   with *err (bindings/tcp.c). eddy.c.tcp must have been opened. */
eddy__stream_t *eddyL_pipe_new(lua_State *L, int *err);

/* TLS for the bindings (bindings/tls.c). A server's configuration from
   the tls options table at idx (new, one reference), or a client's (kept
   per option set by the runtime: borrowed); NULL with the reason. Bad
   options raise. */
struct eddy__tls_config_s;
/* How long a handshake may take when nothing says otherwise. */
#define EDDYL_TLS_HANDSHAKE_S 10.0
struct eddy__tls_config_s *eddyL_tls_server(lua_State *L, int idx,
                                            char *reason);
struct eddy__tls_config_s *eddyL_tls_client(lua_State *L, int idx,
                                            char *reason);
/* A listener's TLS, from opts.tls of the options table at idx (NULL when
   absent) and its handshake_timeout; 0, or -1 with the reason. */
int eddyL_tls_listen(lua_State *L, int idx, struct eddy__tls_config_s **cfg,
                     uint64_t *handshake_ms, char *reason);
/* server:reload_tls(opts) for the configuration in *slot: swaps in the
   one made from the table at idx; pushes true, or nil, err, reason. */
int eddyL_tls_reload(lua_State *L, struct eddy__tls_config_s **slot, int idx);
/* Pushes nil, the error's string and, for a TLS failure, its reason. */
int eddyL_tls_fail(lua_State *L, int err, const char *reason);
/* Pushes what the stream's TLS agreed on (version, cipher, alpn,
   server_name, resumed, peer) as a table, or nil. */
int eddyL_tls_info(lua_State *L, eddy__stream_t *s);

/* The openers of the C modules, named eddy.c.<mod>. */
/* Runs the loop with the function at index `first` as the main task, the
   loop run by run_loop (one thread, or a group's first); pushes true,
   results... or false, err (bindings/task.c). */
int eddyL_run_main(lua_State *L, int first,
                   int (*run_loop)(eddy_runtime_t *rt, void *arg), void *arg);

/* Loads a chunk of len bytes and spawns it as a main task with the nargs
   values on the top of rt's stack as arguments (bindings/init.c). */
int eddyL_load_main(eddy_runtime_t *rt, const char *code, size_t len,
                    const char *chunkname, int nargs);

/* Encodes the n values from index first as a list (core/codec.h); 0, or
   -1 with the reason in err (bindings/codec.c). */
struct eddy__enc_s;
int eddyL_encode_values(lua_State *L, int first, int n,
                        struct eddy__enc_s *enc, char *err, size_t errlen);
/* Pushes the values of an encoded list; their count, or -1 with *err. */
int eddyL_decode_values(lua_State *L, const char *data, size_t len,
                        const char **err);

int luaopen_eddy_c_task(lua_State *L);
int luaopen_eddy_c_inspect(lua_State *L);
int luaopen_eddy_c_threads(lua_State *L);
int luaopen_eddy_c_reactor(lua_State *L);
int luaopen_eddy_c_codec(lua_State *L);
int luaopen_eddy_c_taskpool(lua_State *L);
int luaopen_eddy_c_shared(lua_State *L);
int luaopen_eddy_c_mailbox(lua_State *L);
int luaopen_eddy_c_fetch(lua_State *L);
int luaopen_eddy_c_timer(lua_State *L);
int luaopen_eddy_c_tcp(lua_State *L);
int luaopen_eddy_c_udp(lua_State *L);
int luaopen_eddy_c_dns(lua_State *L);
int luaopen_eddy_c_signal(lua_State *L);
int luaopen_eddy_c_http(lua_State *L);
int luaopen_eddy_c_ws(lua_State *L);
int luaopen_eddy_c_fs(lua_State *L);
int luaopen_eddy_c_mysql(lua_State *L);
int luaopen_eddy_c_resp(lua_State *L);
int luaopen_eddy_c_process(lua_State *L);
int luaopen_eddy_c_sqlite_queue(lua_State *L);
int luaopen_eddy_c_queue(lua_State *L);
int luaopen_eddy_c_pubsub(lua_State *L);

/* Ends a cross-thread wait begun for task t (core/xwait.h): w NULL means
   none was needed (true at once, or nil, err for err), else the task
   waits with timeout and yields (bindings/queue.c). */
struct eddy__xwaiter_s;
int eddyL_xwait(lua_State *L, eddy_runtime_t *rt, eddy__task_t *t,
                struct eddy__xwaiter_s *w, int err, int64_t timeout);

/* The embedded Lua sources of lua/eddy/ (generated at build time). */
typedef struct eddyL_source_s {
  const char *name;  /* module name, e.g. "eddy.api" */
  const char *chunk; /* chunk name, e.g. "=eddy/api.lua" */
  const unsigned char *code;
  size_t len;
} eddyL_source_t;
extern const eddyL_source_t eddyL_sources[];

#endif

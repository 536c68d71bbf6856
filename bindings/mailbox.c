/*
 * mailbox.c: the sockets under eddy.mailbox (module eddy.c.mailbox). A
 * thread's mailbox is a datagram socket in Linux's abstract namespace,
 * named by the process and thread that own it, so that any thread of any
 * process can send to it without a file on disk; the kernel keeps each
 * message whole and bounds the queue, and a full queue answers "full" at
 * once. lua/eddy/mailbox.lua does the rest (where a mailbox is, the codec,
 * the receiving task).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/codec.h"
#include "bindings.h"

#define MAX_MESSAGE (64 * 1024)

static const eddyL_class_t box_class = {"eddy.mailbox.socket"};

typedef struct box_s {
  int fd;
  char *buf; /* one message, read before it is pushed */
} box_t;

/* The sender's worker and thread, before the message. */
typedef struct from_s {
  int32_t worker;
  int32_t thread;
} from_t;

static int box_gc(lua_State *L);

/* A thread's mailbox for a purpose: "" for eddy.mailbox, others for
   eddy's own (a room's relay). */
static socklen_t name_of(struct sockaddr_un *sa, long pid, long thread,
                         const char *purpose) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  /* sun_path[0] stays 0: the abstract namespace. */
  int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1,
                   "eddy-mailbox-%ld-%ld%s%.40s", pid, thread,
                   purpose[0] ? "-" : "", purpose);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* open(thread[, purpose]) -> socket, fd | nil, err: this thread's
   mailbox. */
static int mailbox_open(lua_State *L) {
  lua_Integer thread = luaL_checkinteger(L, 1);
  const char *purpose = luaL_optstring(L, 2, "");
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return eddyL_error(L, eddy__error_from_uv(-errno));
  struct sockaddr_un sa;
  socklen_t len = name_of(&sa, (long)getpid(), (long)thread, purpose);
  if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
    int err = errno;
    close(fd);
    return eddyL_error(L, eddy__error_from_uv(-err));
  }
  box_t *box = eddyL_newobject(L, &box_class, sizeof *box);
  box->fd = fd;
  box->buf = malloc(sizeof(from_t) + MAX_MESSAGE);
  if (box->buf == NULL)
    return luaL_error(L, "eddy.mailbox: out of memory"); /* __gc closes */
  lua_pushinteger(L, fd);
  return 2;
}

/* Sends one datagram on fd (an unbound datagram socket): the sender,
   then the encoded message. Returns 0 or an EDDY_E code: FULL, NOTFOUND
   (no such mailbox open), or what else the kernel said. */
static int send_datagram(int fd, long pid, long thread, const char *purpose,
                         from_t from, const char *data, size_t len) {
  struct sockaddr_un sa;
  socklen_t salen = name_of(&sa, pid, thread, purpose);
  struct iovec iov[2] = {{&from, sizeof from}, {(void *)data, len}};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_name = &sa;
  mh.msg_namelen = salen;
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
    return 0;
  return errno == EAGAIN || errno == EWOULDBLOCK     ? EDDY_EFULL
         : errno == ECONNREFUSED || errno == ENOENT ? EDDY_ENOTFOUND
                                                    : eddy__error_from_uv(-errno);
}

static int new_sender(void) {
  return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

int eddy_mailbox_send(long pid, int thread, const char *msg, size_t len) {
  eddy__enc_t enc;
  eddy__enc_init(&enc);
  eddy__enc_table(&enc, 1, 0);
  eddy__enc_string(&enc, msg, len);
  int rc = enc.failed ? EDDY_ENOMEM
           : enc.len > MAX_MESSAGE ? EDDY_ETOOLARGE
                                   : 0;
  if (rc == 0) {
    /* The host may call from any thread: a socket of the call's own. */
    int fd = new_sender();
    from_t host = {0, 0};
    rc = fd < 0 ? eddy__error_from_uv(-errno)
                : send_datagram(fd, pid, thread, "", host, enc.data, enc.len);
    if (fd >= 0)
      close(fd);
  }
  eddy__enc_free(&enc);
  return rc;
}

/* The Lua state's socket for sending, made on its first send and kept in
   the registry, so that a message costs one system call. */
static int lua_sender(lua_State *L) {
  static const char key = 0; /* its address names the registry slot */
  lua_pushlightuserdata(L, (void *)&key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  box_t *box = lua_isnil(L, -1) ? NULL : eddyL_toobject(L, -1);
  lua_pop(L, 1);
  if (box != NULL)
    return box->fd;
  lua_pushlightuserdata(L, (void *)&key);
  box = eddyL_newobject(L, &box_class, sizeof *box);
  box->fd = new_sender();
  box->buf = NULL;
  lua_rawset(L, LUA_REGISTRYINDEX);
  return box->fd;
}

/* send(pid, thread, from_worker, from_thread, bytes[, purpose]) -> true
   | nil, err ("full", "not found" when no such mailbox, "too large") */
static int mailbox_send(lua_State *L) {
  const char *purpose = luaL_optstring(L, 6, "");
  lua_Integer pid = luaL_checkinteger(L, 1);
  lua_Integer thread = luaL_checkinteger(L, 2);
  from_t from = {(int32_t)luaL_checkinteger(L, 3),
                 (int32_t)luaL_checkinteger(L, 4)};
  size_t len;
  const char *data = luaL_checklstring(L, 5, &len);
  if (len > MAX_MESSAGE)
    return eddyL_error(L, EDDY_ETOOLARGE);
  int fd = lua_sender(L);
  int err = fd < 0 ? eddy__error_from_uv(-errno)
                   : send_datagram(fd, (long)pid, (long)thread, purpose, from,
                                   data, len);
  if (err != 0)
    return eddyL_error(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* recv(socket) -> bytes, from_worker, from_thread | nil (none waiting) */
static int mailbox_recv(lua_State *L) {
  box_t *box = eddyL_checkobject(L, 1, &box_class);
  const size_t cap = sizeof(from_t) + MAX_MESSAGE;
  char *data = box->buf;
  ssize_t n;
  do
    n = recv(box->fd, data, cap, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < (ssize_t)sizeof(from_t))
    return 0;
  from_t from;
  memcpy(&from, data, sizeof from);
  lua_pushlstring(L, data + sizeof from, (size_t)n - sizeof from);
  lua_pushinteger(L, from.worker);
  lua_pushinteger(L, from.thread);
  return 3;
}

static int box_gc(lua_State *L) {
  box_t *box = eddyL_toobject(L, 1);
  if (box->fd >= 0)
    close(box->fd);
  box->fd = -1;
  free(box->buf);
  box->buf = NULL;
  return 0;
}

/* close(socket): the mailbox is gone for senders at once. */
static int mailbox_close(lua_State *L) {
  eddyL_checkobject(L, 1, &box_class);
  return box_gc(L);
}

static const luaL_Reg mailbox_funcs[] = {
    {"open", mailbox_open},
    {"close", mailbox_close},
    {"send", mailbox_send},
    {"recv", mailbox_recv},
    {NULL, NULL},
};

static const luaL_Reg box_methods[] = {
    {NULL, NULL},
};

static const luaL_Reg box_meta[] = {
    {"__gc", box_gc},
    {NULL, NULL},
};

int luaopen_eddy_c_mailbox(lua_State *L) {
  eddyL_newclass(L, &box_class, box_methods, box_meta);
  eddyL_newlib(L, mailbox_funcs);
  return 1;
}

/*
 * resp.c: the Redis protocol for Lua (module eddy.c.resp), under
 * lua/eddy/redis.lua, which drives it over an eddy.tcp connection. A
 * reader turns received bytes into replies as Lua values (core/resp.c
 * parses); encode frames a command's arguments as one RESP string.
 *
 * Replies in Lua: a bulk or simple string is a string, an integer a
 * number (past +-2^53, where a double skips integers, its decimal
 * string), an array a table; a nil is nil at the top and resp.null (the
 * light userdata NULL, as cjson.null) inside an array, so arrays keep
 * their length; an error reply is false, message at the top and an error
 * object ({err = message} with resp.error_mt) inside an array.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/resp.h"
#include "bindings.h"

static const eddyL_class_t reader_class = {"eddy.resp.reader"};

/* The registry key of the error objects' metatable. */
static const char error_mt_key = 'e';

#define DEFAULT_MAX_REPLY (512.0 * 1024 * 1024) /* Redis's own bulk limit */

/* ======================================================================= */
/* Replies */

static void push_value(lua_State *L, const eddy__resp_value_t *v, int top);

#define EXACT 9007199254740992LL /* 2^53: past it a double skips integers */

static void push_integer(lua_State *L, long long v) {
  if (v >= -EXACT && v <= EXACT) {
    lua_pushnumber(L, (lua_Number)v);
  } else {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    lua_pushstring(L, buf);
  }
}

static void push_array(lua_State *L, const eddy__resp_value_t *v) {
  luaL_checkstack(L, 4, "nested reply");
  lua_createtable(L, v->len > INT32_MAX ? 0 : (int)v->len, 0);
  for (size_t i = 0; i < v->len; i++) {
    push_value(L, v->elements[i], 0);
    lua_rawseti(L, -2, (int)(i + 1));
  }
}

/* Pushes one value; top says whether it is a whole reply (nil stays nil)
   or an element (nil becomes null, an error an error object). */
static void push_value(lua_State *L, const eddy__resp_value_t *v, int top) {
  switch (v->type) {
  case EDDY__RESP_STRING:
  case EDDY__RESP_STATUS:
    lua_pushlstring(L, v->str, v->len);
    break;
  case EDDY__RESP_INTEGER:
    push_integer(L, v->integer);
    break;
  case EDDY__RESP_NIL:
    if (top)
      lua_pushnil(L);
    else
      lua_pushlightuserdata(L, NULL);
    break;
  case EDDY__RESP_ERROR:
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, v->str, v->len);
    lua_setfield(L, -2, "err");
    lua_pushlightuserdata(L, (void *)&error_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);
    break;
  case EDDY__RESP_ARRAY:
    push_array(L, v);
    break;
  }
}

static eddy__resp_reader_t **check_reader(lua_State *L) {
  eddy__resp_reader_t **box = eddyL_checkobject(L, 1, &reader_class);
  if (*box == NULL)
    luaL_argerror(L, 1, "reader is freed");
  return box;
}

static int reader_failed(lua_State *L, const eddy__resp_reader_t *r) {
  lua_pushnil(L);
  lua_pushstring(L, eddy__resp_reader_error(r));
  lua_pushstring(L, eddy__resp_reader_detail(r));
  return 3;
}

/* reader:get([bytes]): adds the bytes, if any, then takes the next reply:
   true, value; false, message (an error reply); nothing (more bytes are
   needed); or nil, "protocol error" | "too large", detail, after which
   the reader stays failed. */
static int reader_get(lua_State *L) {
  eddy__resp_reader_t *r = *check_reader(L);
  size_t len;
  const char *bytes = luaL_optlstring(L, 2, NULL, &len);
  if (bytes != NULL && eddy__resp_feed(r, bytes, len) != 0)
    return reader_failed(L, r);
  eddy__resp_value_t *v;
  int rc = eddy__resp_get(r, &v);
  if (rc == 0)
    return 0;
  if (rc < 0)
    return reader_failed(L, r);
  if (v->type == EDDY__RESP_ERROR) {
    lua_pushboolean(L, 0);
    lua_pushlstring(L, v->str, v->len);
  } else {
    lua_pushboolean(L, 1);
    push_value(L, v, 1);
  }
  eddy__resp_value_free(v);
  return 2;
}

static int reader_gc(lua_State *L) {
  eddy__resp_reader_t **box = eddyL_toobject(L, 1);
  eddy__resp_reader_free(*box);
  *box = NULL;
  return 0;
}

/* reader([max_reply]): a reader whose replies may take max_reply bytes
   each (default 512 MiB). */
static int resp_reader(lua_State *L) {
  double max = luaL_optnumber(L, 1, DEFAULT_MAX_REPLY);
  luaL_argcheck(L, max >= 64, 1, "must be >= 64");
  eddy__resp_reader_t **box = eddyL_newobject(L, &reader_class, sizeof *box);
  *box = eddy__resp_reader_new((size_t)max);
  if (*box == NULL)
    return eddyL_error(L, EDDY_ENOMEM);
  return 1;
}

/* ======================================================================= */
/* Commands */

/* An argument as the bytes Redis gets: strings as they are, integral
   numbers without an exponent (1e15 is "1000000000000000"). */
static const char *arg_bytes(lua_State *L, int i, size_t *len, char *tmp) {
  if (lua_type(L, i) == LUA_TNUMBER) {
    double n = lua_tonumber(L, i);
    int w = (n == floor(n) && fabs(n) < 9.2e18)
                ? snprintf(tmp, 32, "%lld", (long long)n)
                : snprintf(tmp, 32, "%.17g", n);
    *len = (size_t)w;
    return tmp;
  }
  if (lua_type(L, i) != LUA_TSTRING)
    luaL_argerror(L, i, lua_pushfstring(L, "string or number expected, got %s",
                                        luaL_typename(L, i)));
  return lua_tolstring(L, i, len);
}

/* encode(name, args...): the command as one RESP array of bulk strings. */
static int resp_encode(lua_State *L) {
  int n = lua_gettop(L);
  luaL_argcheck(L, n >= 1, 1, "command name expected");
  char head[EDDY__RESP_HEADER_MAX], tmp[32];
  luaL_Buffer b;
  /* luaL_Buffer keeps its pieces on the stack above the arguments. */
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, head, eddy__resp_header(head, '*', (size_t)n));
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *p = arg_bytes(L, i, &len, tmp);
    luaL_addlstring(&b, head, eddy__resp_header(head, '$', len));
    luaL_addlstring(&b, p, len);
    luaL_addlstring(&b, "\r\n", 2);
  }
  luaL_pushresult(&b);
  return 1;
}

/* ======================================================================= */

static const luaL_Reg resp_funcs[] = {
    {"reader", resp_reader},
    {"encode", resp_encode},
    {NULL, NULL},
};

static const luaL_Reg reader_methods[] = {
    {"get", reader_get},
    {NULL, NULL},
};

static const luaL_Reg reader_meta[] = {
    {"__gc", reader_gc},
    {NULL, NULL},
};

int luaopen_eddy_c_resp(lua_State *L) {
  eddyL_newclass(L, &reader_class, reader_methods, reader_meta);
  eddyL_newlib(L, resp_funcs);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushlightuserdata(L, (void *)&error_mt_key);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "error_mt"); /* module.error_mt = the metatable */
  lua_rawset(L, LUA_REGISTRYINDEX);
  return 1;
}

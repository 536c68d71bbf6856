/*
 * tls.c: the Lua side of TLS that the TCP and HTTP bindings share: a
 * `tls = {...}` options table made into a configuration (core/tls.h), a
 * client's configurations kept per option set in the runtime's Lua state
 * (so that its sessions are there to resume), a connection's TLS facts as
 * a table, and failures as nil, "tls failure", reason.
 */
#include <string.h>

#include "../core/tls.h"
#include "bindings.h"

#define CONFIG_META "eddy.tls.config"
#define MAX_ALPN 255

static int absindex(lua_State *L, int idx) {
  return idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : lua_gettop(L) + idx + 1;
}

/* The cache of client configurations, by option set, in the registry. */
static const char cache_key = 'c';

static const char *opt_string(lua_State *L, int idx, const char *field) {
  lua_getfield(L, idx, field);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING)
    s = lua_tostring(L, -1); /* kept alive by the options table */
  else if (!lua_isnil(L, -1))
    luaL_error(L, "bad tls option '%s': expected a string, got %s", field,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

static int opt_version(lua_State *L, int idx, const char *field) {
  lua_getfield(L, idx, field);
  int v = 0;
  if (!lua_isnil(L, -1)) {
    const char *s = lua_tostring(L, -1);
    if (s != NULL && strcmp(s, "1.2") == 0)
      v = 12;
    else if (s != NULL && strcmp(s, "1.3") == 0)
      v = 13;
    else
      luaL_error(L, "bad tls option '%s': \"1.2\" or \"1.3\" expected", field);
  }
  lua_pop(L, 1);
  return v;
}

/* opts.alpn, an array of protocol names, in ALPN's wire form. */
static size_t opt_alpn(lua_State *L, int idx, unsigned char *wire,
                       size_t cap) {
  size_t len = 0;
  lua_getfield(L, idx, "alpn");
  if (lua_type(L, -1) == LUA_TTABLE) {
    for (int i = 1;; i++) {
      lua_rawgeti(L, -1, i);
      size_t n;
      const char *p = lua_tolstring(L, -1, &n);
      lua_pop(L, 1);
      if (p == NULL)
        break;
      if (n == 0 || n > 255 || len + 1 + n > cap)
        luaL_error(L, "bad tls option 'alpn': names of 1 to 255 bytes");
      wire[len++] = (unsigned char)n;
      memcpy(wire + len, p, n);
      len += n;
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "bad tls option 'alpn': expected an array of names");
  }
  lua_pop(L, 1);
  return len;
}

/* Reads the table at idx (absolute). Raises on bad arguments. */
static void read_opts(lua_State *L, int idx, int server, eddy__tls_opts_t *o,
                      unsigned char *alpn) {
  memset(o, 0, sizeof *o);
  o->server = server;
  o->verify = eddyL_optfield_boolean(L, idx, "verify", !server);
  o->ca = opt_string(L, idx, "ca");
  o->cert = opt_string(L, idx, "cert");
  o->key = opt_string(L, idx, "key");
  o->alpn = alpn;
  o->alpn_len = opt_alpn(L, idx, alpn, MAX_ALPN * 2);
  o->min_version = opt_version(L, idx, "min_version");
  o->max_version = opt_version(L, idx, "max_version");
  o->ciphers = opt_string(L, idx, "ciphers");
  o->ciphersuites = opt_string(L, idx, "ciphersuites");
  if ((o->cert == NULL) != (o->key == NULL) && o->key != NULL)
    luaL_error(L, "bad tls options: a key needs its cert");
}

/* opts.names: { ["name"] = { cert = ..., key = ... } }, each name's
   certificate, chosen by the name the client asks for (SNI). */
static int add_names(lua_State *L, int idx, eddy__tls_config_t *cfg,
                     unsigned char *alpn, char *reason) {
  lua_getfield(L, idx, "names");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  luaL_argcheck(L, lua_istable(L, -1), idx, "tls 'names' must be a table");
  int names = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, names) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
      luaL_error(L, "bad tls option 'names': name = { cert = ..., key = ... }");
    eddy__tls_opts_t o;
    read_opts(L, idx, 1, &o, alpn);
    o.cert = opt_string(L, lua_gettop(L), "cert");
    o.key = opt_string(L, lua_gettop(L), "key");
    if (o.cert == NULL)
      luaL_error(L, "bad tls option 'names': each name needs a cert");
    if (eddy__tls_config_add_name(cfg, lua_tostring(L, -2), &o, reason) != 0) {
      lua_pop(L, 3);
      return -1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

eddy__tls_config_t *eddyL_tls_server(lua_State *L, int idx, char *reason) {
  unsigned char alpn[MAX_ALPN * 2];
  eddy__tls_opts_t o;
  idx = absindex(L, idx);
  luaL_argcheck(L, lua_istable(L, idx), idx, "tls options table expected");
  read_opts(L, idx, 1, &o, alpn);
  if (o.cert == NULL)
    luaL_error(L, "bad tls options: a server needs cert and key");
  eddy__tls_config_t *cfg = eddy__tls_config_new(&o, reason);
  if (cfg != NULL && add_names(L, idx, cfg, alpn, reason) != 0) {
    eddy__tls_config_unref(cfg);
    return NULL;
  }
  return cfg;
}

int eddyL_tls_listen(lua_State *L, int idx, eddy__tls_config_t **cfg,
                     uint64_t *handshake_ms, char *reason) {
  *cfg = NULL;
  *handshake_ms = 0;
  if (lua_type(L, idx) != LUA_TTABLE)
    return 0;
  lua_getfield(L, idx, "tls");
  if (!lua_isnil(L, -1)) {
    /* 0, a negative or an infinite time: no limit (not a wrapped one). */
    int64_t ms = eddy__timeout_ms(eddyL_optfield_number(
        L, -1, "handshake_timeout", EDDYL_TLS_HANDSHAKE_S));
    *handshake_ms = ms > 0 ? (uint64_t)ms : 0;
    *cfg = eddyL_tls_server(L, -1, reason);
    if (*cfg == NULL) {
      lua_pop(L, 1);
      return -1;
    }
  }
  lua_pop(L, 1);
  return 0;
}

int eddyL_tls_reload(lua_State *L, eddy__tls_config_t **slot, int idx) {
  char reason[EDDY__TLS_REASON];
  if (*slot == NULL)
    return luaL_error(L, "the server does not speak TLS");
  eddy__tls_config_t *cfg = eddyL_tls_server(L, idx, reason);
  if (cfg == NULL)
    return eddyL_tls_fail(L, EDDY_ETLS, reason);
  eddy__tls_config_unref(*slot);
  *slot = cfg;
  lua_pushboolean(L, 1);
  return 1;
}

static int config_gc(lua_State *L) {
  eddy__tls_config_t **box = lua_touserdata(L, 1);
  eddy__tls_config_unref(*box);
  *box = NULL;
  return 0;
}

/* The cache key of an option set: every field that shapes the context. */
static void push_cache_key(lua_State *L, const eddy__tls_opts_t *o) {
  lua_pushfstring(L, "%d|%s|%s|%s|%d|%d|%s|%s|", o->verify,
                  o->ca ? o->ca : "", o->cert ? o->cert : "",
                  o->key ? o->key : "", o->min_version, o->max_version,
                  o->ciphers ? o->ciphers : "",
                  o->ciphersuites ? o->ciphersuites : "");
  lua_pushlstring(L, (const char *)o->alpn, o->alpn_len);
  lua_concat(L, 2);
}

eddy__tls_config_t *eddyL_tls_client(lua_State *L, int idx, char *reason) {
  unsigned char alpn[MAX_ALPN * 2];
  eddy__tls_opts_t o;
  idx = absindex(L, idx);
  if (lua_istable(L, idx))
    read_opts(L, idx, 0, &o, alpn);
  else {
    memset(&o, 0, sizeof o);
    o.verify = 1;
  }
  lua_pushlightuserdata(L, (void *)&cache_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, (void *)&cache_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  push_cache_key(L, &o);
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);
  if (!lua_isnil(L, -1)) {
    eddy__tls_config_t *cfg = *(eddy__tls_config_t **)lua_touserdata(L, -1);
    lua_pop(L, 3);
    return cfg;
  }
  lua_pop(L, 1);
  eddy__tls_config_t *cfg = eddy__tls_config_new(&o, reason);
  if (cfg == NULL) {
    lua_pop(L, 2);
    return NULL;
  }
  eddy__tls_config_t **box = lua_newuserdata(L, sizeof *box);
  *box = cfg;
  if (luaL_newmetatable(L, CONFIG_META)) {
    lua_pushcfunction(L, config_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return cfg; /* the cache holds its reference */
}

int eddyL_tls_fail(lua_State *L, int err, const char *reason) {
  lua_pushnil(L);
  lua_pushstring(L, eddy_strerror(err));
  if (err != EDDY_ETLS || reason == NULL || reason[0] == '\0')
    return 2;
  lua_pushstring(L, reason);
  return 3;
}

int eddyL_tls_info(lua_State *L, eddy__stream_t *s) {
  eddy__tls_info_t info;
  eddy__tls_info(s, &info);
  if (!info.done) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 6);
  lua_pushstring(L, info.version);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, info.cipher);
  lua_setfield(L, -2, "cipher");
  if (info.alpn != NULL) {
    lua_pushlstring(L, info.alpn, info.alpn_len);
    lua_setfield(L, -2, "alpn");
  }
  if (info.server_name != NULL) {
    lua_pushstring(L, info.server_name);
    lua_setfield(L, -2, "server_name");
  }
  if (info.peer[0] != '\0') {
    lua_pushstring(L, info.peer);
    lua_setfield(L, -2, "peer");
  }
  lua_pushboolean(L, info.resumed);
  lua_setfield(L, -2, "resumed");
  return 1;
}

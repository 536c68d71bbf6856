/*
 * shared.c: eddy.shared.dict (module eddy.c.shared): dictionaries in
 * shared memory, seen by every reactor thread and worker process (see
 * core/shared.h and core/shdict.h). Strings, numbers and booleans are
 * stored as they are; tables go through the codec.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/codec.h"
#include "../core/shared.h"
#include "bindings.h"

static const eddyL_class_t dict_class = {"eddy.shared.dict"};
static const eddyL_class_t atomic_class = {"eddy.shared.atomic"};

/* Cells live in a dictionary of their own, which never evicts. */
#define SYNC_DICT "eddy.sync"
#define SYNC_SIZE (1024 * 1024)

typedef struct dict_box_s {
  eddy__shmap_t *map;
} dict_box_t;

#define KIND_STRING 's'
#define KIND_BOOLEAN 'b'
#define KIND_TABLE 'E'

static eddy__shdict_t *check_dict(lua_State *L) {
  return ((dict_box_t *)eddyL_checkobject(L, 1, &dict_class))->map->dict;
}

/* nil, err in the words of the dictionary. */
static int dict_error(lua_State *L, int err, const char *mismatch) {
  lua_pushnil(L);
  switch (err) {
  case EDDY_EFULL: lua_pushliteral(L, "no memory"); break;
  case EDDY_EBUSY: lua_pushliteral(L, "exists"); break;
  case EDDY_EINVAL: lua_pushstring(L, mismatch); break;
  default: lua_pushstring(L, eddy_strerror(err)); break;
  }
  return 2;
}

/* Sizes in bytes, or with a suffix: "64k", "10m", "1g". */
static size_t check_size(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER)
    return (size_t)lua_tonumber(L, idx);
  const char *s = luaL_checkstring(L, idx);
  char *end;
  double n = strtod(s, &end);
  double unit = *end == 'k' || *end == 'K'   ? 1024.0
                : *end == 'm' || *end == 'M' ? 1024.0 * 1024
                : *end == 'g' || *end == 'G' ? 1024.0 * 1024 * 1024
                : *end == '\0'               ? 1.0
                                             : -1.0;
  if (unit < 0 || (unit != 1.0 && end[1] != '\0') || n <= 0)
    luaL_error(L, "bad size '%s' (bytes, or a number with k, m or g)", s);
  return (size_t)(n * unit);
}

/* dict(name[, {size = ..., evict = true}]) -> dict | nil, err */
static int shared_dict(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  const char *name = luaL_checkstring(L, 1);
  size_t size = 0;
  unsigned flags = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "size");
    if (!lua_isnil(L, -1))
      size = check_size(L, -1);
    lua_pop(L, 1);
    if (eddyL_optfield_boolean(L, 2, "evict", 1))
      flags |= EDDY__SHD_EVICT;
  }
  eddy__shmap_t *map;
  int err = eddy__shared_open(rt, name, size, flags, &map);
  if (err == EDDY_ENOTFOUND)
    return luaL_error(L, "eddy.shared.dict: no dictionary '%s' yet: "
                      "declare it with a size", name);
  if (err == EDDY_EINVAL)
    return luaL_error(L, "eddy.shared.dict: '%s': a name of 1 to 63 bytes, "
                      "a size of at least 64k, and the size it was made "
                      "with", name);
  if (err != 0)
    return eddyL_error(L, err);
  dict_box_t *box = eddyL_newobject(L, &dict_class, sizeof *box);
  box->map = map;
  return 1;
}

/* ======================================================================= */
/* Values */

/* The value at idx as a kind and bytes; tables are encoded into enc. */
static const char *to_bytes(lua_State *L, int idx, char *kind, size_t *len,
                            double *num, char *b, eddy__enc_t *enc) {
  char err[200];
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    *kind = KIND_STRING;
    return lua_tolstring(L, idx, len);
  case LUA_TNUMBER:
    *kind = EDDY__SHD_NUMBER;
    *num = lua_tonumber(L, idx);
    *len = sizeof *num;
    return (const char *)num;
  case LUA_TBOOLEAN:
    *kind = KIND_BOOLEAN;
    *b = (char)lua_toboolean(L, idx);
    *len = 1;
    return b;
  case LUA_TTABLE:
    *kind = KIND_TABLE;
    eddy__enc_init(enc);
    if (eddyL_encode_values(L, idx, 1, enc, err, sizeof err) != 0) {
      eddy__enc_free(enc);
      luaL_error(L, "eddy.shared: %s", err);
    }
    *len = enc->len;
    return enc->data;
  }
  luaL_argerror(L, idx, "a string, number, boolean or table expected");
  return NULL;
}

static int push_value(lua_State *L, eddy__shval_t *v) {
  const char *err;
  int n = 1;
  switch (v->kind) {
  case EDDY__SHD_NUMBER: {
    double d = 0;
    memcpy(&d, v->data, v->len < sizeof d ? v->len : sizeof d);
    lua_pushnumber(L, d);
    break;
  }
  case KIND_BOOLEAN: lua_pushboolean(L, v->len > 0 && v->data[0]); break;
  case KIND_TABLE:
    n = eddyL_decode_values(L, v->data, v->len, &err);
    if (n != 1) {
      lua_pushnil(L);
      n = 1;
    }
    break;
  default: lua_pushlstring(L, v->data, v->len); break;
  }
  eddy__shval_free(v);
  return n;
}

static int64_t opt_ttl(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx))
    return 0;
  double s = luaL_checknumber(L, idx);
  return s > 0 ? eddy__timeout_ms(s) : 0;
}

/* ======================================================================= */
/* Methods */

/* get(key) -> value | nil (absent) | nil, "not a value" (a list) */
static int dict_get(lua_State *L) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  eddy__shval_t v;
  v.data = v.small;
  int err = eddy__shdict_get(d, key, klen, &v, NULL);
  if (err == EDDY_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (err != 0)
    return dict_error(L, err, "a list: use lpop or llen");
  return push_value(L, &v);
}

static int store(lua_State *L, int mode) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen, vlen;
  const char *key = luaL_checklstring(L, 2, &klen);
  if (lua_isnoneornil(L, 3) && mode == 0) {
    eddy__shdict_delete(d, key, klen); /* set(k, nil) deletes */
    lua_pushboolean(L, 1);
    return 1;
  }
  char kind, b;
  double num;
  eddy__enc_t enc = {0};
  const char *val = to_bytes(L, 3, &kind, &vlen, &num, &b, &enc);
  int err = eddy__shdict_set(d, key, klen, kind, val, vlen, opt_ttl(L, 4),
                             mode);
  eddy__enc_free(&enc);
  if (err != 0)
    return dict_error(L, err, "");
  lua_pushboolean(L, 1);
  return 1;
}

/* set(key, value[, ttl]) / add / replace -> true | nil, err */
static int dict_set(lua_State *L) { return store(L, 0); }
static int dict_add(lua_State *L) { return store(L, 1); }
static int dict_replace(lua_State *L) { return store(L, 2); }

/* incr(key, n[, init]) -> the new value | nil, err */
static int dict_incr(lua_State *L) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  double n = luaL_optnumber(L, 3, 1);
  int has_init = !lua_isnoneornil(L, 4);
  double init = has_init ? luaL_checknumber(L, 4) : 0, result;
  int err = eddy__shdict_incr(d, key, klen, n, has_init, init, &result);
  if (err != 0)
    return dict_error(L, err, "not a number");
  lua_pushnumber(L, result);
  return 1;
}

/* delete(key) -> whether it was there */
static int dict_delete(lua_State *L) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  lua_pushboolean(L, eddy__shdict_delete(d, key, klen) == 0);
  return 1;
}

/* ttl(key) -> seconds left, or false (no expiry) | nil, "not found" */
static int dict_ttl(lua_State *L) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  int64_t ms;
  int err = eddy__shdict_ttl(d, key, klen, &ms);
  if (err != 0)
    return dict_error(L, err, "");
  if (ms < 0)
    lua_pushboolean(L, 0);
  else
    lua_pushnumber(L, (double)ms / 1000.0);
  return 1;
}

/* expire(key, ttl) -> true | nil, "not found"; a ttl of 0 keeps it. */
static int dict_expire(lua_State *L) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  int err = eddy__shdict_expire(d, key, klen, opt_ttl(L, 3));
  if (err != 0)
    return dict_error(L, err, "");
  lua_pushboolean(L, 1);
  return 1;
}

typedef struct keys_s {
  char **keys;
  size_t *lens;
  size_t n, cap;
} keys_t;

static void collect_key(void *ud, const char *key, size_t klen) {
  keys_t *k = ud;
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 64;
    char **keys = realloc(k->keys, cap * sizeof *keys);
    size_t *lens = keys ? realloc(k->lens, cap * sizeof *lens) : NULL;
    if (keys)
      k->keys = keys;
    if (lens == NULL)
      return;
    k->lens = lens;
    k->cap = cap;
  }
  char *copy = malloc(klen ? klen : 1);
  if (copy == NULL)
    return;
  memcpy(copy, key, klen);
  k->keys[k->n] = copy;
  k->lens[k->n++] = klen;
}

/* keys([max]) -> the live keys, most recently used first (max 0: all) */
static int dict_keys(lua_State *L) {
  eddy__shdict_t *d = check_dict(L);
  lua_Integer max = luaL_optinteger(L, 2, 1024);
  keys_t k = {NULL, NULL, 0, 0};
  /* Copied under the lock, pushed after it: Lua may raise. */
  eddy__shdict_keys(d, max < 0 ? 0 : (size_t)max, collect_key, &k);
  lua_createtable(L, (int)k.n, 0);
  for (size_t i = 0; i < k.n; i++) {
    lua_pushlstring(L, k.keys[i], k.lens[i]);
    lua_rawseti(L, -2, (int)i + 1);
    free(k.keys[i]);
  }
  free(k.keys);
  free(k.lens);
  return 1;
}

static int dict_flush_all(lua_State *L) {
  eddy__shdict_flush_all(check_dict(L));
  return 0;
}

static int push(lua_State *L, int left) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen, vlen, len = 0;
  const char *key = luaL_checklstring(L, 2, &klen);
  char kind, b;
  double num;
  eddy__enc_t enc = {0};
  const char *val = to_bytes(L, 3, &kind, &vlen, &num, &b, &enc);
  int err = eddy__shdict_push(d, key, klen, left, kind, val, vlen, &len);
  eddy__enc_free(&enc);
  if (err != 0)
    return dict_error(L, err, "not a list");
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}

static int pop(lua_State *L, int left) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen;
  const char *key = luaL_checklstring(L, 2, &klen);
  eddy__shval_t v;
  v.data = v.small;
  int err = eddy__shdict_pop(d, key, klen, left, &v);
  if (err == EDDY_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (err != 0)
    return dict_error(L, err, "not a list");
  return push_value(L, &v);
}

/* lpush/rpush(key, value) -> length | nil, err; lpop/rpop(key) -> value
   | nil (empty) */
static int dict_lpush(lua_State *L) { return push(L, 1); }
static int dict_rpush(lua_State *L) { return push(L, 0); }
static int dict_lpop(lua_State *L) { return pop(L, 1); }
static int dict_rpop(lua_State *L) { return pop(L, 0); }

static int dict_llen(lua_State *L) {
  eddy__shdict_t *d = check_dict(L);
  size_t klen, len;
  const char *key = luaL_checklstring(L, 2, &klen);
  int err = eddy__shdict_llen(d, key, klen, &len);
  if (err != 0)
    return dict_error(L, err, "not a list");
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}

/* stats() -> {capacity, used, count, evicted, recovered} */
static int dict_stats(lua_State *L) {
  eddy__shdict_stats_t st;
  eddy__shdict_stats(check_dict(L), &st);
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, (double)st.capacity);
  lua_setfield(L, -2, "capacity");
  lua_pushnumber(L, (double)st.used);
  lua_setfield(L, -2, "used");
  lua_pushnumber(L, (double)st.count);
  lua_setfield(L, -2, "count");
  lua_pushnumber(L, (double)st.evicted);
  lua_setfield(L, -2, "evicted");
  lua_pushnumber(L, (double)st.recovered);
  lua_setfield(L, -2, "recovered");
  return 1;
}

static int dict_gc(lua_State *L) {
  dict_box_t *box = eddyL_toobject(L, 1);
  eddy__shmap_unref(box->map);
  box->map = NULL;
  return 0;
}

static int dict_tostring(lua_State *L) {
  dict_box_t *box = eddyL_checkobject(L, 1, &dict_class);
  lua_pushfstring(L, "eddy.shared.dict (%s)", box->map->name);
  return 1;
}

/* ======================================================================= */
/* Atomics: 64-bit integers in shared memory */

typedef struct atomic_box_s {
  eddy__shmap_t *map; /* keeps the block mapped */
  int64_t *cell;
} atomic_box_t;

static int64_t *check_cell(lua_State *L) {
  return ((atomic_box_t *)eddyL_checkobject(L, 1, &atomic_class))->cell;
}

/* Numbers cross as 64-bit integers: exact up to 2^53. */
static int64_t check_int(lua_State *L, int idx) {
  double n = luaL_checknumber(L, idx);
  if (n != (double)(int64_t)n || n > 9007199254740992.0 ||
      n < -9007199254740992.0)
    luaL_argerror(L, idx, "an integer within 2^53 expected");
  return (int64_t)n;
}

/* atomic(name[, init]) -> atomic */
static int shared_atomic(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  size_t klen;
  const char *name = luaL_checklstring(L, 1, &klen);
  int64_t init = lua_isnoneornil(L, 2) ? 0 : check_int(L, 2);
  eddy__shmap_t *map;
  int err = eddy__shared_open(rt, SYNC_DICT, SYNC_SIZE, 0, &map);
  if (err != 0)
    return luaL_error(L, "eddy.shared.atomic: %s", eddy_strerror(err));
  int64_t *cell = eddy__shdict_cell(map->dict, name, klen, init, &err);
  if (cell == NULL) {
    eddy__shmap_unref(map);
    return luaL_error(L, "eddy.shared.atomic: '%s': %s", name,
                      err == EDDY_EFULL ? "no memory" : eddy_strerror(err));
  }
  atomic_box_t *box = eddyL_newobject(L, &atomic_class, sizeof *box);
  box->map = map;
  box->cell = cell;
  return 1;
}

static int atomic_get(lua_State *L) {
  lua_pushnumber(L, (double)__atomic_load_n(check_cell(L), __ATOMIC_SEQ_CST));
  return 1;
}

static int atomic_set(lua_State *L) {
  int64_t *cell = check_cell(L);
  __atomic_store_n(cell, check_int(L, 2), __ATOMIC_SEQ_CST);
  return 0;
}

/* add([n]) -> the new value */
static int atomic_add(lua_State *L) {
  int64_t *cell = check_cell(L);
  int64_t n = lua_isnoneornil(L, 2) ? 1 : check_int(L, 2);
  lua_pushnumber(L, (double)__atomic_add_fetch(cell, n, __ATOMIC_SEQ_CST));
  return 1;
}

/* cas(expected, new) -> true | false, the current value */
static int atomic_cas(lua_State *L) {
  int64_t *cell = check_cell(L);
  int64_t expected = check_int(L, 2), desired = check_int(L, 3);
  if (__atomic_compare_exchange_n(cell, &expected, desired, 0,
                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushnumber(L, (double)expected);
  return 2;
}

static int atomic_gc(lua_State *L) {
  atomic_box_t *box = eddyL_toobject(L, 1);
  eddy__shmap_unref(box->map);
  box->map = NULL;
  return 0;
}

/* alive(pid) -> whether a process is there (a lock's owner may be gone). */
static int shared_alive(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  lua_pushboolean(L, pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH));
  return 1;
}

static int shared_pid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

static const luaL_Reg atomic_methods[] = {
    {"get", atomic_get}, {"set", atomic_set}, {"add", atomic_add},
    {"cas", atomic_cas}, {NULL, NULL},
};

static const luaL_Reg atomic_meta[] = {
    {"__gc", atomic_gc},
    {NULL, NULL},
};

static const luaL_Reg shared_funcs[] = {
    {"dict", shared_dict},
    {"atomic", shared_atomic},
    {"alive", shared_alive},
    {"pid", shared_pid},
    {NULL, NULL},
};

static const luaL_Reg dict_methods[] = {
    {"get", dict_get},         {"set", dict_set},
    {"add", dict_add},         {"replace", dict_replace},
    {"incr", dict_incr},       {"delete", dict_delete},
    {"ttl", dict_ttl},         {"expire", dict_expire},
    {"keys", dict_keys},       {"flush_all", dict_flush_all},
    {"lpush", dict_lpush},     {"rpush", dict_rpush},
    {"lpop", dict_lpop},       {"rpop", dict_rpop},
    {"llen", dict_llen},       {"stats", dict_stats},
    {NULL, NULL},
};

static const luaL_Reg dict_meta[] = {
    {"__gc", dict_gc},
    {"__tostring", dict_tostring},
    {NULL, NULL},
};

int luaopen_eddy_c_shared(lua_State *L) {
  eddyL_newclass(L, &dict_class, dict_methods, dict_meta);
  eddyL_newclass(L, &atomic_class, atomic_methods, atomic_meta);
  eddyL_newlib(L, shared_funcs);
  return 1;
}

/*
 * codec.c: Lua values to and from the codec of core/codec.h (module
 * eddy.c.codec, and the helpers the task pool and mailboxes use). Nil,
 * booleans, numbers, strings and tables (nested, any keys) cross; a
 * function, userdata, coroutine or cdata, a table that contains itself,
 * or nesting past EDDY__CODEC_MAX_DEPTH is a clear error.
 */
#include <math.h>
#include <string.h>

#include "../core/codec.h"
#include "bindings.h"

typedef struct encoder_s {
  lua_State *L;
  eddy__enc_t *enc;
  const void *path[EDDY__CODEC_MAX_DEPTH]; /* tables being encoded */
  int depth;
  const char *error;
  const char *bad_type; /* the type that cannot be encoded, if that's why */
} encoder_t;

static int encode(encoder_t *e, int idx);

static int encode_table(encoder_t *e, int idx) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  for (int i = 0; i < e->depth; i++)
    if (e->path[i] == self) {
      e->error = "a table that contains itself cannot be encoded";
      return -1;
    }
  if (e->depth == EDDY__CODEC_MAX_DEPTH) {
    e->error = "tables nested too deep to encode";
    return -1;
  }
  luaL_checkstack(L, 4, "encoding");
  e->path[e->depth++] = self;
  size_t narray = lua_objlen(L, idx);
  uint32_t npairs = 0;
  size_t count_at = eddy__enc_table_begin(e->enc, (uint32_t)narray);
  for (size_t i = 1; i <= narray; i++) {
    lua_rawgeti(L, idx, (int)i);
    int rc = encode(e, lua_gettop(L));
    lua_pop(L, 1);
    if (rc != 0)
      return -1;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    double k = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
    if (!(k >= 1 && k <= (double)narray && k == floor(k))) {
      if (encode(e, lua_gettop(L) - 1) != 0 || encode(e, lua_gettop(L)) != 0) {
        lua_pop(L, 2);
        return -1;
      }
      npairs++;
    }
    lua_pop(L, 1);
  }
  eddy__enc_table_end(e->enc, count_at, npairs);
  e->depth--;
  return 0;
}

static int encode(encoder_t *e, int idx) {
  lua_State *L = e->L;
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    eddy__enc_nil(e->enc);
    return 0;
  case LUA_TBOOLEAN:
    eddy__enc_boolean(e->enc, lua_toboolean(L, idx));
    return 0;
  case LUA_TNUMBER:
    eddy__enc_number(e->enc, lua_tonumber(L, idx));
    return 0;
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    eddy__enc_string(e->enc, s, len);
    return 0;
  case LUA_TTABLE:
    return encode_table(e, idx);
  }
  e->error = "cannot be encoded";
  e->bad_type = luaL_typename(L, idx); /* a static string */
  return -1;
}

int eddyL_encode_values(lua_State *L, int first, int n, eddy__enc_t *enc,
                        char *err, size_t errlen) {
  encoder_t e;
  e.L = L;
  e.enc = enc;
  e.depth = 0;
  e.error = NULL;
  e.bad_type = NULL;
  if (n > EDDY__CODEC_MAX_VALUES) {
    snprintf(err, errlen, "too many values (at most %d)",
             EDDY__CODEC_MAX_VALUES);
    return -1;
  }
  eddy__enc_table(enc, (uint32_t)n, 0);
  for (int i = 0; i < n; i++) {
    int top = lua_gettop(L);
    if (encode(&e, first + i) != 0) {
      if (e.bad_type != NULL)
        snprintf(err, errlen, "value %d: a %s %s", i + 1, e.bad_type,
                 e.error);
      else
        snprintf(err, errlen, "value %d: %s", i + 1, e.error);
      lua_settop(L, top);
      return -1;
    }
  }
  if (enc->failed) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

/* ======================================================================= */
/* Decoding */

static int decode(lua_State *L, eddy__dec_t *d, int depth);

static int decode_table(lua_State *L, eddy__dec_t *d,
                        const eddy__dec_value_t *v, int depth) {
  if (depth >= EDDY__CODEC_MAX_DEPTH) {
    d->error = "tables nested too deep";
    return -1;
  }
  luaL_checkstack(L, 4, "decoding");
  /* Sized by what the bytes claim only up to a point: a hostile encoding
     would make nested claims add up long before it ran out of bytes. */
  lua_createtable(L, v->narray < 1024 ? (int)v->narray : 1024,
                  v->npairs < 1024 ? (int)v->npairs : 1024);
  uint32_t narray = v->narray, npairs = v->npairs;
  for (uint32_t i = 1; i <= narray; i++) {
    if (decode(L, d, depth + 1) != 0)
      return -1;
    lua_rawseti(L, -2, (int)i);
  }
  for (uint32_t i = 0; i < npairs; i++) {
    if (decode(L, d, depth + 1) != 0 || decode(L, d, depth + 1) != 0)
      return -1;
    if (lua_isnil(L, -2) || (lua_type(L, -2) == LUA_TNUMBER &&
                             isnan(lua_tonumber(L, -2)))) {
      d->error = "a table key is nil or NaN";
      return -1;
    }
    lua_rawset(L, -3);
  }
  return 0;
}

static int decode(lua_State *L, eddy__dec_t *d, int depth) {
  eddy__dec_value_t v;
  if (eddy__dec_next(d, &v) != 0)
    return -1;
  switch (v.type) {
  case EDDY__DEC_NIL: lua_pushnil(L); return 0;
  case EDDY__DEC_BOOLEAN: lua_pushboolean(L, v.boolean); return 0;
  case EDDY__DEC_NUMBER: lua_pushnumber(L, v.number); return 0;
  case EDDY__DEC_STRING: lua_pushlstring(L, v.string, v.len); return 0;
  case EDDY__DEC_TABLE: return decode_table(L, d, &v, depth);
  }
  return -1;
}

int eddyL_decode_values(lua_State *L, const char *data, size_t len,
                        const char **err) {
  int top = lua_gettop(L);
  eddy__dec_t d;
  eddy__dec_value_t v;
  if (eddy__dec_init(&d, data, len) != 0 || eddy__dec_next(&d, &v) != 0)
    goto fail;
  if (v.type != EDDY__DEC_TABLE || v.npairs != 0) {
    d.error = "not a list of values";
    goto fail;
  }
  if (v.narray > EDDY__CODEC_MAX_VALUES) {
    d.error = "too many values";
    goto fail;
  }
  luaL_checkstack(L, (int)v.narray + 4, "decoding");
  for (uint32_t i = 0; i < v.narray; i++)
    if (decode(L, &d, 0) != 0)
      goto fail;
  if (!eddy__dec_done(&d)) {
    d.error = "bytes after the values";
    goto fail;
  }
  return (int)v.narray;
fail:
  lua_settop(L, top);
  *err = d.error;
  return -1;
}

/* ======================================================================= */
/* eddy.codec */

/* encode(...) -> bytes | nil, err */
static int codec_encode(lua_State *L) {
  char err[256], buf[512];
  eddy__enc_t enc;
  eddy__enc_init_buffer(&enc, buf, sizeof buf);
  int n = lua_gettop(L);
  if (eddyL_encode_values(L, 1, n, &enc, err, sizeof err) != 0) {
    eddy__enc_free(&enc);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, enc.data, enc.len);
  eddy__enc_free(&enc);
  return 1;
}

/* decode(bytes) -> values... ; raises on a damaged encoding */
static int codec_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *err;
  int n = eddyL_decode_values(L, s, len, &err);
  if (n < 0)
    return luaL_error(L, "eddy.codec.decode: %s", err);
  return n;
}

static const luaL_Reg codec_funcs[] = {
    {"encode", codec_encode},
    {"decode", codec_decode},
    {NULL, NULL},
};

int luaopen_eddy_c_codec(lua_State *L) {
  eddyL_newlib(L, codec_funcs);
  return 1;
}

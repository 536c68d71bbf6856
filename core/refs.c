/*
 * refs.c: references from C to Lua values in tables of 1024 slots (see
 * refs.h).
 */
#include "refs.h"

#include <lauxlib.h>
#include <stdlib.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)

int eddy__ref(eddy__refs_t *r, lua_State *L) {
  uint32_t id;
  if (r->nfree > 0) {
    id = r->free[--r->nfree];
  } else {
    id = ++r->next;
    uint32_t chunk = id >> CHUNK_BITS;
    if (chunk >= r->nchunks) {
      int *chunks = realloc(r->chunks, (chunk + 1) * sizeof *chunks);
      if (chunks == NULL) {
        r->next--;
        lua_pop(L, 1);
        return EDDY__NOREF;
      }
      r->chunks = chunks;
      lua_createtable(L, (int)CHUNK_SIZE, 0);
      chunks[chunk] = luaL_ref(L, LUA_REGISTRYINDEX);
      r->nchunks = chunk + 1;
    }
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->chunks[id >> CHUNK_BITS]);
  lua_insert(L, -2);
  lua_rawseti(L, -2, (int)(id & (CHUNK_SIZE - 1)) + 1);
  lua_pop(L, 1);
  return (int)id;
}

void eddy__unref(eddy__refs_t *r, lua_State *L, int id) {
  if (id == EDDY__NOREF)
    return;
  if (r->nfree == r->cap_free) {
    uint32_t cap = r->cap_free ? r->cap_free * 2 : 256;
    uint32_t *f = realloc(r->free, cap * sizeof *f);
    if (f == NULL)
      return; /* the slot stays taken: a leak of one slot, not a fault */
    r->free = f;
    r->cap_free = cap;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->chunks[(uint32_t)id >> CHUNK_BITS]);
  lua_pushnil(L);
  lua_rawseti(L, -2, (int)((uint32_t)id & (CHUNK_SIZE - 1)) + 1);
  lua_pop(L, 1);
  r->free[r->nfree++] = (uint32_t)id;
}

void eddy__getref(eddy__refs_t *r, lua_State *L, int id) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->chunks[(uint32_t)id >> CHUNK_BITS]);
  lua_rawgeti(L, -1, (int)((uint32_t)id & (CHUNK_SIZE - 1)) + 1);
  lua_remove(L, -2);
}

void eddy__refs_free(eddy__refs_t *r) {
  free(r->chunks);
  free(r->free);
  r->chunks = NULL;
  r->free = NULL;
  r->nchunks = r->next = r->nfree = r->cap_free = 0;
}

/*
 * refs.h: references from C to Lua values, like luaL_ref, but spread over
 * tables of 1024 slots. LuaJIT's collector traverses a table in one step,
 * so a million refs in the registry itself (a million parked tasks or
 * pending timers) would stall the loop for tens of milliseconds in each
 * collection cycle; small tables keep every step short.
 */
#ifndef EDDY_REFS_H
#define EDDY_REFS_H

#include <stdint.h>
#include <lua.h>

#define EDDY__NOREF 0

typedef struct eddy__refs_s {
  int *chunks;      /* registry refs of the slot tables */
  uint32_t nchunks;
  uint32_t next;    /* ids handed out so far (id 0 is never used) */
  uint32_t *free;   /* ids given back, reused last-in first-out */
  uint32_t nfree;
  uint32_t cap_free;
} eddy__refs_t;

/* Pops the value at the top of L and returns its id, or EDDY__NOREF when
   out of memory (the value is popped either way). */
int eddy__ref(eddy__refs_t *r, lua_State *L);
void eddy__unref(eddy__refs_t *r, lua_State *L, int id);
/* Pushes the value of id. */
void eddy__getref(eddy__refs_t *r, lua_State *L, int id);
/* Forgets everything (the Lua state is closing or closed). */
void eddy__refs_free(eddy__refs_t *r);

#endif

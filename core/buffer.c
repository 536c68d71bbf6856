/*
 * buffer.c: read buffers and the block pool (see buffer.h). Knows nothing
 * of Lua.
 */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

#define MIN_ROOM 4096  /* less free space than this: compact or grow */
#define SMALL_KEEP 4096 /* remainders up to this move out of a pool block */

static char *block_take(eddy__bufpool_t *pool) {
  if (pool->count > 0)
    return pool->blocks[--pool->count];
  return malloc(EDDY__BUF_BLOCK);
}

static void block_give(eddy__bufpool_t *pool, char *block, size_t cap) {
  if (cap == EDDY__BUF_BLOCK && pool->count < EDDY__BUF_POOL)
    pool->blocks[pool->count++] = block;
  else
    free(block);
}

void eddy__bufpool_free(eddy__bufpool_t *pool) {
  while (pool->count > 0)
    free(pool->blocks[--pool->count]);
}

int eddy__rbuf_reserve(eddy__bufpool_t *pool, eddy__rbuf_t *b, char **ptr,
                       size_t *len) {
  size_t used = eddy__rbuf_len(b);
  if (b->base == NULL) {
    b->base = block_take(pool);
    if (b->base == NULL)
      return -1;
    b->cap = EDDY__BUF_BLOCK;
    b->start = b->end = 0;
  } else if (b->cap - b->end < MIN_ROOM) {
    if (b->start > 0 && b->cap - used >= MIN_ROOM) {
      memmove(b->base, b->base + b->start, used);
    } else {
      /* A small private block first grows into a pool block; after that
         the buffer doubles (its reader bounds how far). */
      size_t cap = b->cap < EDDY__BUF_BLOCK ? EDDY__BUF_BLOCK : b->cap * 2;
      char *base = cap == EDDY__BUF_BLOCK ? block_take(pool) : malloc(cap);
      if (base == NULL)
        return -1;
      memcpy(base, b->base + b->start, used);
      block_give(pool, b->base, b->cap);
      b->base = base;
      b->cap = cap;
    }
    b->start = 0;
    b->end = used;
  }
  *ptr = b->base + b->end;
  *len = b->cap - b->end;
  return 0;
}

void eddy__rbuf_consume(eddy__rbuf_t *b, size_t n) {
  b->start += n;
  if (b->start == b->end)
    b->start = b->end = 0;
}

void eddy__rbuf_settle(eddy__bufpool_t *pool, eddy__rbuf_t *b) {
  size_t used = eddy__rbuf_len(b);
  if (b->base == NULL)
    return;
  if (used == 0) {
    eddy__rbuf_free(pool, b);
    return;
  }
  if (used <= SMALL_KEEP && b->cap >= EDDY__BUF_BLOCK) {
    char *small = malloc(used);
    if (small == NULL)
      return; /* keep the big block; nothing is lost */
    memcpy(small, b->base + b->start, used);
    block_give(pool, b->base, b->cap);
    b->base = small;
    b->cap = used;
    b->start = 0;
    b->end = used;
  }
}

void eddy__rbuf_free(eddy__bufpool_t *pool, eddy__rbuf_t *b) {
  if (b->base != NULL)
    block_give(pool, b->base, b->cap);
  b->base = NULL;
  b->cap = b->start = b->end = 0;
}

long eddy__rbuf_find(const eddy__rbuf_t *b, size_t from, const char *delim,
                     size_t dlen) {
  size_t used = eddy__rbuf_len(b);
  if (from >= used)
    return -1;
  const char *data = b->base + b->start;
  const char *hit;
  if (dlen == 1)
    hit = memchr(data + from, delim[0], used - from);
  else
    hit = memmem(data + from, used - from, delim, dlen);
  return hit ? (long)(hit - data) : -1;
}

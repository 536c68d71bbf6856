/*
 * buffer.h: per-connection read buffers and the thread's pool of read
 * blocks. A connection borrows a pool block only while bytes arrive; once
 * its reader has taken what it asked for, the block goes back to the pool,
 * and a small remainder moves to a block of its own size, so an idle
 * connection holds little or no buffer memory. Knows nothing of Lua.
 */
#ifndef EDDY_BUFFER_H
#define EDDY_BUFFER_H

#include <stddef.h>

#define EDDY__BUF_BLOCK 65536 /* size of a pool block: one read's worth */
#define EDDY__BUF_POOL 32     /* blocks kept for reuse */

typedef struct eddy__bufpool_s {
  char *blocks[EDDY__BUF_POOL];
  int count;
} eddy__bufpool_t;

/* Bytes read but not yet consumed are base[start, end). */
typedef struct eddy__rbuf_s {
  char *base;
  size_t cap;
  size_t start;
  size_t end;
} eddy__rbuf_t;

void eddy__bufpool_free(eddy__bufpool_t *pool);

static inline size_t eddy__rbuf_len(const eddy__rbuf_t *b) {
  return b->end - b->start;
}
static inline const char *eddy__rbuf_data(const eddy__rbuf_t *b) {
  return b->base + b->start;
}

/* Room for the next read: at least a few KiB at the end of the buffer,
   taking a pool block, compacting or growing as needed. Returns 0, or -1
   when out of memory. */
int eddy__rbuf_reserve(eddy__bufpool_t *pool, eddy__rbuf_t *b, char **ptr,
                       size_t *len);
static inline void eddy__rbuf_commit(eddy__rbuf_t *b, size_t n) {
  b->end += n;
}
void eddy__rbuf_consume(eddy__rbuf_t *b, size_t n);

/* Gives memory back after a burst: an empty buffer returns its block, a
   small remainder moves into a block of its own size. */
void eddy__rbuf_settle(eddy__bufpool_t *pool, eddy__rbuf_t *b);
void eddy__rbuf_free(eddy__bufpool_t *pool, eddy__rbuf_t *b);

/* Offset of delim in the unread bytes, searching from offset `from`, or
   -1 if it is not there yet. */
long eddy__rbuf_find(const eddy__rbuf_t *b, size_t from, const char *delim,
                     size_t dlen);

#endif

/*
 * shdict.h: a dictionary in a block of shared memory, seen by every thread
 * and process that maps the block (eddy.shared.dict). Keys are strings;
 * values are bytes with a one-byte kind that the caller chooses (core
 * reads only EDDY__SHD_NUMBER, a double, for incr), or lists of such
 * values. Entries may expire; when memory runs out the least recently
 * used entries go, or the write fails, as the dictionary was made.
 * A robust process-shared mutex guards it: a process killed while holding
 * it does not freeze the others. Knows nothing of Lua.
 */
#ifndef EDDY_SHDICT_H
#define EDDY_SHDICT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define EDDY__SHD_EVICT 0x01 /* evict LRU entries when full */

#define EDDY__SHD_NUMBER 'n' /* a double, 8 bytes */
#define EDDY__SHD_LIST 'L'   /* reserved: a list */

/* The smallest block a dictionary needs, and the largest value. */
#define EDDY__SHD_MIN_SIZE (64 * 1024)
#define EDDY__SHD_MAX_ITEM (1024 * 1024 - 64)

typedef struct eddy__shdict_s eddy__shdict_t;

/* A value copied out: small ones in place, large ones on the heap. */
typedef struct eddy__shval_s {
  char kind;
  char *data;
  size_t len;
  char small[256];
} eddy__shval_t;

static inline void eddy__shval_free(eddy__shval_t *v) {
  if (v->data != v->small)
    free(v->data);
  v->data = v->small;
}

/* Formats mem (size bytes, shared) as an empty dictionary. 0 or -1. */
int eddy__shdict_format(void *mem, size_t size, unsigned flags);
/* The dictionary in a formatted block, or NULL if it is not one. */
eddy__shdict_t *eddy__shdict_of(void *mem, size_t size);

/* Results are 0 or an EDDY_E code: NOTFOUND, FULL ("no memory" at the
   Lua face), TOOLARGE, INVAL (the entry is of another kind), BUSY (add:
   the key exists). ttl_ms <= 0: no expiry. */
int eddy__shdict_get(eddy__shdict_t *d, const char *key, size_t klen,
                     eddy__shval_t *out, int64_t *ttl_ms);
/* mode: 0 set, 1 add (only if absent), 2 replace (only if present). */
int eddy__shdict_set(eddy__shdict_t *d, const char *key, size_t klen,
                     char kind, const char *val, size_t vlen, int64_t ttl_ms,
                     int mode);
/* Adds n to a number; an absent key starts at init when has_init, else
   NOTFOUND. The new value in *result. */
int eddy__shdict_incr(eddy__shdict_t *d, const char *key, size_t klen,
                      double n, int has_init, double init, double *result);
int eddy__shdict_delete(eddy__shdict_t *d, const char *key, size_t klen);
/* The time left (-1: none) / a new expiry (ttl_ms <= 0: none). */
int eddy__shdict_ttl(eddy__shdict_t *d, const char *key, size_t klen,
                     int64_t *ttl_ms);
int eddy__shdict_expire(eddy__shdict_t *d, const char *key, size_t klen,
                        int64_t ttl_ms);
/* Calls fn for up to max live keys (0: all), under the lock: fn must not
   block or call back. */
int eddy__shdict_keys(eddy__shdict_t *d, size_t max,
                      void (*fn)(void *ud, const char *key, size_t klen),
                      void *ud);
void eddy__shdict_flush_all(eddy__shdict_t *d);

/* Lists: push at the left (front) or right (back); pop from either. The
   length after a push in *len. */
int eddy__shdict_push(eddy__shdict_t *d, const char *key, size_t klen,
                      int left, char kind, const char *val, size_t vlen,
                      size_t *len);
int eddy__shdict_pop(eddy__shdict_t *d, const char *key, size_t klen,
                     int left, eddy__shval_t *out);
int eddy__shdict_llen(eddy__shdict_t *d, const char *key, size_t klen,
                      size_t *len);

/* An 8-byte cell for atomic operations (__atomic builtins, which work
   across processes on shared memory): the entry of kind 'a' under key,
   made with init if absent. It never moves while the dictionary lives,
   unless deleted, so a dictionary of cells must not evict. NULL with
   *err when it cannot be made, or the key holds something else. */
#define EDDY__SHD_CELL 'a'
int64_t *eddy__shdict_cell(eddy__shdict_t *d, const char *key, size_t klen,
                           int64_t init, int *err);

/* Figures: capacity, bytes in use, entries, evictions, and locks taken
   over from a process that died holding them. */
typedef struct eddy__shdict_stats_s {
  size_t capacity;
  size_t used;
  size_t count;
  uint64_t evicted;
  uint64_t recovered;
} eddy__shdict_stats_t;
void eddy__shdict_stats(eddy__shdict_t *d, eddy__shdict_stats_t *st);

#endif

/*
 * shdict.c: the shared dictionary of shdict.h. Everything lives in the
 * block and points by offset (the block maps at different addresses in
 * different processes). Memory is cut into chunks of power-of-two size
 * classes, each class with a free list; new chunks come from a bump
 * pointer. When a class runs dry and nothing is left to cut, entries are
 * evicted from the cold end of the LRU list (those of the wanted class
 * first), if the dictionary evicts; else the write fails.
 */
#include "shdict.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eddy.h"

#define MAGIC 0x65646479u /* "eddy" */
#define MIN_SHIFT 6       /* 64-byte chunks */
#define NCLASSES 15       /* up to 1 MiB */
#define EVICT_TRIES 64

typedef uint32_t off_t32; /* offset in the block; 0 is "none" */

typedef struct header_s {
  uint32_t magic;
  uint32_t flags;
  uint64_t size;
  pthread_mutex_t lock;
  uint32_t nbuckets; /* a power of two */
  off_t32 buckets;   /* nbuckets offsets of chains */
  off_t32 arena;     /* where chunks begin */
  off_t32 next;      /* the bump pointer */
  off_t32 free[NCLASSES];
  off_t32 lru_head;  /* most recently used */
  off_t32 lru_tail;
  uint64_t count;
  uint64_t used;     /* bytes in chunks given out */
  uint64_t evicted;
  uint64_t recovered;
} header_t;

/* Every chunk starts with its class; an entry or a list node follows. */
typedef struct entry_s {
  uint32_t cls;
  off_t32 hnext; /* the bucket's chain */
  off_t32 lru_prev, lru_next;
  uint32_t hash;
  uint32_t klen;
  uint32_t vlen;
  uint8_t kind;
  uint8_t pad[3];
  int64_t expires; /* monotonic ms; 0: never */
  /* the key, then the value; a list's value is a list_t */
} entry_t;

typedef struct list_s {
  off_t32 head, tail;
  uint32_t len;
} list_t;

typedef struct node_s {
  uint32_t cls;
  off_t32 prev, next;
  uint32_t vlen;
  uint8_t kind;
  /* the value */
} node_t;

struct eddy__shdict_s {
  header_t h;
};

#define AT(d, off) ((void *)((char *)(d) + (off)))
#define OFF(d, p) ((off_t32)((char *)(p) - (char *)(d)))

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t hash_of(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* ======================================================================= */
/* The lock */

static void lock(eddy__shdict_t *d) {
  int rc = pthread_mutex_lock(&d->h.lock);
  if (rc == EOWNERDEAD) {
    /* Its holder died: take it over. What that holder was changing may be
       half done; every change here is short and keeps the lists linked
       at each step, which is the best a lock can do. */
    pthread_mutex_consistent(&d->h.lock);
    d->h.recovered++;
  }
}

static void unlock(eddy__shdict_t *d) {
  pthread_mutex_unlock(&d->h.lock);
}

/* ======================================================================= */
/* Chunks */

static int class_of(size_t n) {
  for (int c = 0; c < NCLASSES; c++)
    if (n <= ((size_t)1 << (c + MIN_SHIFT)))
      return c;
  return -1;
}

static size_t class_size(int c) {
  return (size_t)1 << (c + MIN_SHIFT);
}

static void *cut(eddy__shdict_t *d, int c) {
  header_t *h = &d->h;
  if (h->free[c] != 0) {
    uint32_t *chunk = AT(d, h->free[c]);
    h->free[c] = chunk[1]; /* the free list runs through the second word */
    h->used += class_size(c);
    return chunk;
  }
  if ((uint64_t)h->next + class_size(c) > h->size)
    return NULL;
  uint32_t *chunk = AT(d, h->next);
  h->next += (off_t32)class_size(c);
  h->used += class_size(c);
  return chunk;
}

static void release(eddy__shdict_t *d, void *p) {
  uint32_t *chunk = p;
  int c = (int)chunk[0];
  chunk[1] = d->h.free[c];
  d->h.free[c] = OFF(d, chunk);
  d->h.used -= class_size(c);
}

/* ======================================================================= */
/* Entries */

static char *key_of(entry_t *e) {
  return (char *)(e + 1);
}

static char *value_of(entry_t *e) {
  return key_of(e) + e->klen;
}

/* A list's head follows a key of any length: kept aligned, with room. */
#define LIST_ROOM (sizeof(list_t) + sizeof(uint32_t) - 1)

static list_t *list_of(entry_t *e) {
  uintptr_t p = (uintptr_t)value_of(e);
  return (list_t *)((p + sizeof(uint32_t) - 1) & ~(uintptr_t)(sizeof(uint32_t) - 1));
}

static void lru_unlink(eddy__shdict_t *d, entry_t *e) {
  header_t *h = &d->h;
  if (e->lru_prev)
    ((entry_t *)AT(d, e->lru_prev))->lru_next = e->lru_next;
  else
    h->lru_head = e->lru_next;
  if (e->lru_next)
    ((entry_t *)AT(d, e->lru_next))->lru_prev = e->lru_prev;
  else
    h->lru_tail = e->lru_prev;
  e->lru_prev = e->lru_next = 0;
}

static void lru_push(eddy__shdict_t *d, entry_t *e) {
  header_t *h = &d->h;
  e->lru_prev = 0;
  e->lru_next = h->lru_head;
  if (h->lru_head)
    ((entry_t *)AT(d, h->lru_head))->lru_prev = OFF(d, e);
  h->lru_head = OFF(d, e);
  if (!h->lru_tail)
    h->lru_tail = OFF(d, e);
}

static off_t32 *bucket(eddy__shdict_t *d, uint32_t hash) {
  off_t32 *b = AT(d, d->h.buckets);
  return &b[hash & (d->h.nbuckets - 1)];
}

/* Unlinks and frees e, and a list's nodes. */
static void remove_entry(eddy__shdict_t *d, entry_t *e) {
  off_t32 *link = bucket(d, e->hash);
  while (*link != OFF(d, e))
    link = &((entry_t *)AT(d, *link))->hnext;
  *link = e->hnext;
  lru_unlink(d, e);
  if (e->kind == EDDY__SHD_LIST) {
    list_t *l = list_of(e);
    for (off_t32 n = l->head; n != 0;) {
      node_t *node = AT(d, n);
      n = node->next;
      release(d, node);
    }
  }
  release(d, e);
  d->h.count--;
}

static int expired(const entry_t *e, int64_t now) {
  return e->expires != 0 && e->expires <= now;
}

/* The live entry of a key (an expired one is removed on the way), made
   the most recently used. */
static entry_t *find(eddy__shdict_t *d, const char *key, size_t klen) {
  uint32_t hash = hash_of(key, klen);
  for (off_t32 o = *bucket(d, hash); o != 0;) {
    entry_t *e = AT(d, o);
    o = e->hnext;
    if (e->hash != hash || e->klen != klen || memcmp(key_of(e), key, klen))
      continue;
    if (expired(e, now_ms())) {
      remove_entry(d, e);
      return NULL;
    }
    lru_unlink(d, e);
    lru_push(d, e);
    return e;
  }
  return NULL;
}

/* Makes room for a chunk of class c: evicts expired entries and entries
   of that class from the cold end first, else the coldest of all; never
   `keep` (the list a node is for). */
static void *cut_or_evict(eddy__shdict_t *d, int c, entry_t *keep) {
  void *p = cut(d, c);
  if (p != NULL || !(d->h.flags & EDDY__SHD_EVICT))
    return p;
  for (int tries = 0; p == NULL && tries < EVICT_TRIES && d->h.lru_tail &&
                      d->h.lru_tail != (keep ? OFF(d, keep) : 0);
       tries++) {
    entry_t *victim = AT(d, d->h.lru_tail);
    int64_t now = now_ms();
    entry_t *e = victim;
    for (int scan = 0; e != NULL && scan < 32; scan++) {
      if (e != keep && (expired(e, now) || (int)e->cls == c)) {
        victim = e;
        break;
      }
      e = e->lru_prev ? AT(d, e->lru_prev) : NULL;
    }
    remove_entry(d, victim);
    d->h.evicted++;
    p = cut(d, c);
  }
  return p;
}

/* A new entry for a key known to be absent, with room for vlen bytes. */
static entry_t *new_entry(eddy__shdict_t *d, const char *key, size_t klen,
                          size_t vlen, int *err) {
  size_t need = sizeof(entry_t) + klen + vlen;
  int c = need <= EDDY__SHD_MAX_ITEM + 64 ? class_of(need) : -1;
  if (c < 0) {
    *err = EDDY_ETOOLARGE;
    return NULL;
  }
  entry_t *e = cut_or_evict(d, c, NULL);
  if (e == NULL) {
    *err = EDDY_EFULL;
    return NULL;
  }
  memset(e, 0, sizeof *e);
  e->cls = (uint32_t)c;
  e->hash = hash_of(key, klen);
  e->klen = (uint32_t)klen;
  e->vlen = (uint32_t)vlen;
  memcpy(key_of(e), key, klen);
  off_t32 *b = bucket(d, e->hash);
  e->hnext = *b;
  *b = OFF(d, e);
  lru_push(d, e);
  d->h.count++;
  return e;
}

static void copy_out(eddy__shval_t *out, char kind, const char *p,
                     size_t n) {
  out->kind = kind;
  out->data = n <= sizeof out->small ? out->small : malloc(n);
  if (out->data == NULL) {
    out->data = out->small;
    out->len = 0;
    return;
  }
  memcpy(out->data, p, n);
  out->len = n;
}

/* ======================================================================= */
/* The operations */

int eddy__shdict_format(void *mem, size_t size, unsigned flags) {
  if (size < EDDY__SHD_MIN_SIZE || size > UINT32_MAX)
    return -1;
  eddy__shdict_t *d = mem;
  memset(&d->h, 0, sizeof d->h);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  int rc = pthread_mutex_init(&d->h.lock, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0)
    return -1;
  d->h.flags = flags;
  d->h.size = size;
  uint32_t nb = 64;
  while (nb < size / 512)
    nb *= 2;
  d->h.nbuckets = nb;
  d->h.buckets = (off_t32)((sizeof d->h + 63) & ~(size_t)63);
  d->h.arena = d->h.buckets + nb * (off_t32)sizeof(off_t32);
  d->h.arena = (d->h.arena + 63) & ~(off_t32)63;
  d->h.next = d->h.arena;
  memset(AT(d, d->h.buckets), 0, nb * sizeof(off_t32));
  d->h.magic = MAGIC; /* last: a half-formatted block is not one */
  return 0;
}

eddy__shdict_t *eddy__shdict_of(void *mem, size_t size) {
  eddy__shdict_t *d = mem;
  if (size < sizeof d->h || d->h.magic != MAGIC || d->h.size != size)
    return NULL;
  return d;
}

int eddy__shdict_get(eddy__shdict_t *d, const char *key, size_t klen,
                     eddy__shval_t *out, int64_t *ttl_ms) {
  lock(d);
  entry_t *e = find(d, key, klen);
  int rc = EDDY_ENOTFOUND;
  if (e != NULL && e->kind == EDDY__SHD_LIST) {
    rc = EDDY_EINVAL;
  } else if (e != NULL) {
    copy_out(out, (char)e->kind, value_of(e), e->vlen);
    if (ttl_ms)
      *ttl_ms = e->expires ? e->expires - now_ms() : -1;
    rc = 0;
  }
  unlock(d);
  return rc;
}

int eddy__shdict_set(eddy__shdict_t *d, const char *key, size_t klen,
                     char kind, const char *val, size_t vlen, int64_t ttl_ms,
                     int mode) {
  int rc = 0;
  lock(d);
  entry_t *e = find(d, key, klen);
  if ((mode == 1 && e != NULL) || (mode == 2 && e == NULL)) {
    unlock(d);
    return mode == 1 ? EDDY_EBUSY : EDDY_ENOTFOUND;
  }
  /* In place when it fits its chunk; else a new entry. */
  if (e != NULL && e->kind != EDDY__SHD_LIST &&
      sizeof *e + klen + vlen <= class_size((int)e->cls)) {
    e->vlen = (uint32_t)vlen;
  } else {
    if (e != NULL)
      remove_entry(d, e);
    e = new_entry(d, key, klen, vlen, &rc);
  }
  if (e != NULL) {
    e->kind = (uint8_t)kind;
    memcpy(value_of(e), val, vlen);
    e->expires = ttl_ms > 0 ? now_ms() + ttl_ms : 0;
  }
  unlock(d);
  return rc;
}

int eddy__shdict_incr(eddy__shdict_t *d, const char *key, size_t klen,
                      double n, int has_init, double init, double *result) {
  int rc = 0;
  lock(d);
  entry_t *e = find(d, key, klen);
  if (e == NULL && has_init) {
    e = new_entry(d, key, klen, sizeof(double), &rc);
    if (e != NULL) {
      e->kind = EDDY__SHD_NUMBER;
      memcpy(value_of(e), &init, sizeof init);
    }
  } else if (e == NULL) {
    rc = EDDY_ENOTFOUND;
  } else if (e->kind != EDDY__SHD_NUMBER || e->vlen != sizeof(double)) {
    rc = EDDY_EINVAL;
    e = NULL;
  }
  if (e != NULL) {
    double v;
    memcpy(&v, value_of(e), sizeof v);
    v += n;
    memcpy(value_of(e), &v, sizeof v);
    *result = v;
  }
  unlock(d);
  return rc;
}

int eddy__shdict_delete(eddy__shdict_t *d, const char *key, size_t klen) {
  lock(d);
  entry_t *e = find(d, key, klen);
  if (e != NULL)
    remove_entry(d, e);
  unlock(d);
  return e != NULL ? 0 : EDDY_ENOTFOUND;
}

int eddy__shdict_ttl(eddy__shdict_t *d, const char *key, size_t klen,
                     int64_t *ttl_ms) {
  lock(d);
  entry_t *e = find(d, key, klen);
  if (e != NULL)
    *ttl_ms = e->expires ? e->expires - now_ms() : -1;
  unlock(d);
  return e != NULL ? 0 : EDDY_ENOTFOUND;
}

int eddy__shdict_expire(eddy__shdict_t *d, const char *key, size_t klen,
                        int64_t ttl_ms) {
  lock(d);
  entry_t *e = find(d, key, klen);
  if (e != NULL)
    e->expires = ttl_ms > 0 ? now_ms() + ttl_ms : 0;
  unlock(d);
  return e != NULL ? 0 : EDDY_ENOTFOUND;
}

int eddy__shdict_keys(eddy__shdict_t *d, size_t max,
                      void (*fn)(void *ud, const char *key, size_t klen),
                      void *ud) {
  size_t n = 0;
  lock(d);
  int64_t now = now_ms();
  for (off_t32 o = d->h.lru_head; o != 0 && (max == 0 || n < max);) {
    entry_t *e = AT(d, o);
    o = e->lru_next;
    if (!expired(e, now)) {
      fn(ud, key_of(e), e->klen);
      n++;
    }
  }
  unlock(d);
  return (int)n;
}

void eddy__shdict_flush_all(eddy__shdict_t *d) {
  lock(d);
  header_t *h = &d->h;
  memset(AT(d, h->buckets), 0, h->nbuckets * sizeof(off_t32));
  memset(h->free, 0, sizeof h->free);
  h->next = h->arena;
  h->lru_head = h->lru_tail = 0;
  h->count = 0;
  h->used = 0;
  unlock(d);
}

/* ======================================================================= */
/* Lists */

int eddy__shdict_push(eddy__shdict_t *d, const char *key, size_t klen,
                      int left, char kind, const char *val, size_t vlen,
                      size_t *len) {
  int rc = 0;
  int c = class_of(sizeof(node_t) + vlen);
  if (c < 0 || vlen > EDDY__SHD_MAX_ITEM)
    return EDDY_ETOOLARGE;
  lock(d);
  entry_t *e = find(d, key, klen);
  if (e == NULL) {
    e = new_entry(d, key, klen, LIST_ROOM, &rc);
    if (e != NULL) {
      e->kind = EDDY__SHD_LIST;
      memset(list_of(e), 0, sizeof(list_t));
    }
  } else if (e->kind != EDDY__SHD_LIST) {
    rc = EDDY_EINVAL;
    e = NULL;
  }
  node_t *node = e != NULL ? cut_or_evict(d, c, e) : NULL;
  if (e != NULL && node == NULL) {
    rc = EDDY_EFULL;
    list_t *l = list_of(e);
    if (l->len == 0)
      remove_entry(d, e);
  } else if (node != NULL) {
    list_t *l = list_of(e);
    node->cls = (uint32_t)c;
    node->vlen = (uint32_t)vlen;
    node->kind = (uint8_t)kind;
    memcpy(node + 1, val, vlen);
    off_t32 o = OFF(d, node);
    if (left) {
      node->prev = 0;
      node->next = l->head;
      if (l->head)
        ((node_t *)AT(d, l->head))->prev = o;
      l->head = o;
      if (!l->tail)
        l->tail = o;
    } else {
      node->next = 0;
      node->prev = l->tail;
      if (l->tail)
        ((node_t *)AT(d, l->tail))->next = o;
      l->tail = o;
      if (!l->head)
        l->head = o;
    }
    *len = ++l->len;
  }
  unlock(d);
  return rc;
}

int eddy__shdict_pop(eddy__shdict_t *d, const char *key, size_t klen,
                     int left, eddy__shval_t *out) {
  int rc = EDDY_ENOTFOUND;
  lock(d);
  entry_t *e = find(d, key, klen);
  if (e != NULL && e->kind != EDDY__SHD_LIST) {
    rc = EDDY_EINVAL;
  } else if (e != NULL) {
    list_t *l = list_of(e);
    node_t *node = AT(d, left ? l->head : l->tail);
    copy_out(out, (char)node->kind, (char *)(node + 1), node->vlen);
    if (left) {
      l->head = node->next;
      if (l->head)
        ((node_t *)AT(d, l->head))->prev = 0;
      else
        l->tail = 0;
    } else {
      l->tail = node->prev;
      if (l->tail)
        ((node_t *)AT(d, l->tail))->next = 0;
      else
        l->head = 0;
    }
    release(d, node);
    if (--l->len == 0)
      remove_entry(d, e); /* an empty list is no entry */
    rc = 0;
  }
  unlock(d);
  return rc;
}

int eddy__shdict_llen(eddy__shdict_t *d, const char *key, size_t klen,
                      size_t *len) {
  lock(d);
  entry_t *e = find(d, key, klen);
  int rc = 0;
  if (e == NULL)
    *len = 0;
  else if (e->kind != EDDY__SHD_LIST)
    rc = EDDY_EINVAL;
  else
    *len = (list_of(e))->len;
  unlock(d);
  return rc;
}

int64_t *eddy__shdict_cell(eddy__shdict_t *d, const char *key, size_t klen,
                           int64_t init, int *err) {
  *err = 0;
  lock(d);
  entry_t *e = find(d, key, klen);
  if (e == NULL) {
    /* Room to align the cell: the value follows a key of any length. */
    e = new_entry(d, key, klen, 2 * sizeof(int64_t), err);
    if (e != NULL)
      e->kind = EDDY__SHD_CELL;
  } else if (e->kind != EDDY__SHD_CELL) {
    *err = EDDY_EINVAL;
    e = NULL;
  }
  int64_t *cell = NULL;
  if (e != NULL) {
    uintptr_t p = (uintptr_t)value_of(e);
    cell = (int64_t *)((p + 7) & ~(uintptr_t)7);
    if (e->pad[0] == 0) { /* new: pad[0] marks a cell initialised */
      __atomic_store_n(cell, init, __ATOMIC_SEQ_CST);
      e->pad[0] = 1;
    }
  }
  unlock(d);
  return cell;
}

void eddy__shdict_stats(eddy__shdict_t *d, eddy__shdict_stats_t *st) {
  lock(d);
  st->capacity = d->h.size - d->h.arena;
  st->used = d->h.used;
  st->count = d->h.count;
  st->evicted = d->h.evicted;
  st->recovered = d->h.recovered;
  unlock(d);
}

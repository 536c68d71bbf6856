/*
 * shared.h: named shared dictionaries (shdict.h), made on first
 * declaration and found by name afterwards. A block is mapped once per
 * program: its mappings are listed in the hub (hub.h) that the threads
 * and the task pool share; in a worker process the
 * master makes the block (a memfd it keeps for its whole life, so that
 * every worker, and each one that replaces another, maps the same), and
 * passes it over the worker's link.
 */
#ifndef EDDY_SHARED_H
#define EDDY_SHARED_H

#include <stdatomic.h>
#include <stddef.h>

#include "shdict.h"

#define EDDY__SHARED_NAME 64

/* A mapping of a dictionary's block in this process. */
typedef struct eddy__shmap_s {
  struct eddy__shmap_s *next;
  atomic_int refs; /* the registry's, and one per user */
  char name[EDDY__SHARED_NAME];
  size_t size;
  unsigned flags;
  void *mem;
  eddy__shdict_t *dict;
} eddy__shmap_t;

typedef struct eddy_runtime_s eddy_runtime_t;

/* The dictionary `name`: the existing one (size 0, or the same size), or
   a new one of `size` bytes. Returns 0 with a reference in *out, or an
   EDDY_E code: NOTFOUND (size 0 and none yet), INVAL (another size, or a
   bad name or size). */
int eddy__shared_open(eddy_runtime_t *rt, const char *name, size_t size,
                      unsigned flags, eddy__shmap_t **out);
void eddy__shmap_unref(eddy__shmap_t *m);
/* Drops a hub's references, at its end. */
void eddy__shmaps_free(eddy__shmap_t *list);

/* A new block of size bytes formatted as a dictionary, in a memfd (fd)
   and mapped (mem); for the master and for a process of its own. */
int eddy__shared_make(size_t size, unsigned flags, int *fd, void **mem);

#endif

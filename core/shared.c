/*
 * shared.c: the registry of named shared dictionaries (see shared.h).
 */
#include "shared.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hub.h"
#include "runtime.h"
#include "worker.h"

int eddy__shared_make(size_t size, unsigned flags, int *fd, void **mem) {
  *fd = memfd_create("eddy-shared", MFD_CLOEXEC);
  if (*fd < 0)
    return EDDY_ENOMEM;
  *mem = MAP_FAILED;
  if (ftruncate(*fd, (off_t)size) == 0)
    *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  if (*mem == MAP_FAILED || eddy__shdict_format(*mem, size, flags) != 0) {
    if (*mem != MAP_FAILED)
      munmap(*mem, size);
    close(*fd);
    return EDDY_ENOMEM;
  }
  return 0;
}

static eddy__shmap_t *map_new(const char *name, size_t size, unsigned flags,
                              void *mem) {
  eddy__shmap_t *m = calloc(1, sizeof *m);
  if (m == NULL)
    return NULL;
  atomic_init(&m->refs, 1);
  strncpy(m->name, name, sizeof m->name - 1);
  m->size = size;
  m->flags = flags;
  m->mem = mem;
  m->dict = eddy__shdict_of(mem, size);
  return m;
}

void eddy__shmap_unref(eddy__shmap_t *m) {
  if (m != NULL && atomic_fetch_sub(&m->refs, 1) == 1) {
    munmap(m->mem, m->size);
    free(m);
  }
}

void eddy__shmaps_free(eddy__shmap_t *list) {
  while (list != NULL) {
    eddy__shmap_t *next = list->next;
    eddy__shmap_unref(list);
    list = next;
  }
}

/* Maps a block: from the master in a worker process, else a new one. */
static int map_block(eddy_worker_t *worker, const char *name, size_t *size,
                     unsigned *flags, void **mem) {
  int fd, rc;
  if (worker != NULL) {
    rc = eddy__worker_shared(worker, name, size, flags, &fd);
    if (rc != 0)
      return rc;
    *mem = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return *mem == MAP_FAILED ? EDDY_ENOMEM : 0;
  }
  if (*size == 0)
    return EDDY_ENOTFOUND;
  rc = eddy__shared_make(*size, *flags, &fd, mem);
  if (rc == 0)
    close(fd); /* the mapping keeps the block */
  return rc;
}

int eddy__shared_open(eddy_runtime_t *rt, const char *name, size_t size,
                      unsigned flags, eddy__shmap_t **out) {
  if (name[0] == '\0' || strlen(name) >= EDDY__SHARED_NAME ||
      (size != 0 && (size < EDDY__SHD_MIN_SIZE || size > UINT32_MAX)))
    return EDDY_EINVAL;
  eddy__hub_t *hub = eddy__runtime_hub(rt);
  eddy__shmap_t **list = &hub->shmaps;
  /* The master's answer comes under the lock: one block per name. */
  uv_mutex_lock(&hub->shmaps_lock);
  eddy__shmap_t *m = *list;
  while (m != NULL && strcmp(m->name, name) != 0)
    m = m->next;
  int rc = 0;
  if (m == NULL) {
    void *mem;
    /* A reactor thread asks through its own link; a task-pool thread
       through the one its program's runtimes left in the hub. */
    eddy_worker_t *link = rt->opts.worker ? rt->opts.worker : hub->worker;
    rc = map_block(link, name, &size, &flags, &mem);
    if (rc == 0 && (m = map_new(name, size, flags, mem)) == NULL) {
      munmap(mem, size);
      rc = EDDY_ENOMEM;
    }
    if (m != NULL && m->dict == NULL) {
      eddy__shmap_unref(m);
      m = NULL;
      rc = EDDY_EINVAL;
    }
    if (m != NULL) {
      m->next = *list;
      *list = m;
    }
  } else if (size != 0 && size != m->size) {
    rc = EDDY_EINVAL;
  }
  if (rc == 0) {
    atomic_fetch_add(&m->refs, 1);
    *out = m;
  }
  uv_mutex_unlock(&hub->shmaps_lock);
  return rc;
}

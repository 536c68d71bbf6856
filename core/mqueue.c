/*
 * mqueue.c: memory queues (see mqueue.h). One lock per queue guards its
 * lists and its waiters; the hub's lock guards its list of queues, and is
 * taken under a queue's lock (to find a dead-letter queue), never the
 * other way round.
 */
#include "mqueue.h"

#include "eddy.h"
#include "hub.h"

#include <stdlib.h>
#include <string.h>

typedef struct msg_s msg_t;
struct msg_s {
  msg_t *next;
  msg_t *prev;       /* in flight only */
  msg_t *hnext;      /* in flight: the id map's chain */
  uint64_t id;       /* the delivery's id while in flight */
  uint64_t due;      /* delayed: visible at; in flight: the deadline (ms) */
  uint32_t attempts; /* deliveries so far */
  size_t len;
  char data[];
};

/* A FIFO, or a list kept in order of due. */
typedef struct list_s {
  msg_t *head;
  msg_t *tail;
  size_t n;
} list_t;

/* In-flight messages by delivery id, so that an ack finds its message
   whatever the order acks come in. Chained; as many slots as messages at
   most, a power of two. */
typedef struct idmap_s {
  msg_t **slots;
  size_t cap;
} idmap_t;

struct eddy__mq_s {
  eddy__mq_t *next_queue; /* the hub's list */
  eddy__hub_t *hub;       /* which owns the queue */
  char name[EDDY__MQ_NAME];
  eddy__mq_opts_t opts;
  uv_mutex_t lock;      /* guards all below */
  list_t ready;
  list_t delayed;       /* by due */
  list_t in_flight;     /* by deadline: every pop appends the latest */
  idmap_t ids;          /* the same, by id */
  size_t bytes;         /* the payloads held, for stats */
  uint64_t next_id;
  eddy__mq_t *dead;     /* <name>.dead, opened on first use */
  eddy__xwaitq_t takers; /* tasks waiting for a message */
  eddy__xwaitq_t givers; /* tasks waiting for room */
};

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000;
}

/* ======================================================================= */
/* Lists */

static void list_append(list_t *l, msg_t *m) {
  m->next = NULL;
  m->prev = l->tail;
  if (l->tail != NULL)
    l->tail->next = m;
  else
    l->head = m;
  l->tail = m;
  l->n++;
}

static void list_remove(list_t *l, msg_t *m) {
  if (m->prev != NULL)
    m->prev->next = m->next;
  else
    l->head = m->next;
  if (m->next != NULL)
    m->next->prev = m->prev;
  else
    l->tail = m->prev;
  m->next = m->prev = NULL;
  l->n--;
}

/* Inserts m by due, after those due at the same time. Delays are mostly
   alike, so the search starts from the back. */
static void list_insert_due(list_t *l, msg_t *m) {
  msg_t *after = l->tail;
  while (after != NULL && after->due > m->due)
    after = after->prev;
  if (after == NULL) {
    m->prev = NULL;
    m->next = l->head;
    if (l->head != NULL)
      l->head->prev = m;
    else
      l->tail = m;
    l->head = m;
    l->n++;
    return;
  }
  m->prev = after;
  m->next = after->next;
  if (after->next != NULL)
    after->next->prev = m;
  else
    l->tail = m;
  after->next = m;
  l->n++;
}

/* Room for n in-flight messages: 0, or -1 when out of memory. */
static int idmap_reserve(idmap_t *map, size_t n) {
  if (n <= map->cap)
    return 0;
  size_t cap = map->cap ? map->cap * 2 : 64;
  msg_t **slots = calloc(cap, sizeof *slots);
  if (slots == NULL)
    return -1;
  for (size_t i = 0; i < map->cap; i++) {
    msg_t *m = map->slots[i];
    while (m != NULL) {
      msg_t *next = m->hnext;
      m->hnext = slots[m->id & (cap - 1)];
      slots[m->id & (cap - 1)] = m;
      m = next;
    }
  }
  free(map->slots);
  map->slots = slots;
  map->cap = cap;
  return 0;
}

/* After idmap_reserve. */
static void idmap_put(idmap_t *map, msg_t *m) {
  msg_t **slot = &map->slots[m->id & (map->cap - 1)];
  m->hnext = *slot;
  *slot = m;
}

/* Takes the message of id out of the map; NULL if none. */
static msg_t *idmap_take(idmap_t *map, uint64_t id) {
  if (map->cap == 0)
    return NULL;
  msg_t **link = &map->slots[id & (map->cap - 1)];
  while (*link != NULL && (*link)->id != id)
    link = &(*link)->hnext;
  msg_t *m = *link;
  if (m != NULL)
    *link = m->hnext;
  return m;
}

/* ======================================================================= */
/* Names */

static int is_dead_name(const char *name) {
  size_t n = strlen(name);
  return n >= 5 && strcmp(name + n - 5, ".dead") == 0;
}

/* Under the hub's lock. */
static eddy__mq_t *find_or_make(eddy__hub_t *hub, const char *name,
                                const eddy__mq_opts_t *opts, int *err) {
  for (eddy__mq_t *q = hub->queues; q != NULL; q = q->next_queue)
    if (strcmp(q->name, name) == 0)
      return q;
  eddy__mq_t *q = calloc(1, sizeof *q);
  if (q == NULL || uv_mutex_init(&q->lock) != 0) {
    free(q);
    *err = EDDY_ENOMEM;
    return NULL;
  }
  strcpy(q->name, name);
  q->opts = *opts;
  if (is_dead_name(name)) {
    q->opts.max = 0;          /* a dead letter is never refused ... */
    q->opts.max_attempts = 0; /* ... nor dropped */
  }
  q->next_id = 1;
  q->hub = hub;
  q->next_queue = hub->queues;
  hub->queues = q;
  return q;
}

int eddy__mq_open(eddy__hub_t *hub, const char *name,
                  const eddy__mq_opts_t *opts, eddy__mq_t **out) {
  if (name[0] == '\0' || strlen(name) + 5 >= EDDY__MQ_NAME)
    return EDDY_EINVAL;
  int err = 0;
  uv_mutex_lock(&hub->lock);
  *out = find_or_make(hub, name, opts, &err);
  uv_mutex_unlock(&hub->lock);
  return *out != NULL ? 0 : err;
}

static void free_msgs(list_t *l) {
  msg_t *m = l->head;
  while (m != NULL) {
    msg_t *next = m->next;
    free(m);
    m = next;
  }
}

void eddy__mq_free_all(eddy__mq_t *q) {
  while (q != NULL) {
    eddy__mq_t *next = q->next_queue;
    free_msgs(&q->ready);
    free_msgs(&q->delayed);
    free_msgs(&q->in_flight);
    free(q->ids.slots);
    uv_mutex_destroy(&q->lock);
    free(q);
    q = next;
  }
}

const char *eddy__mq_name(const eddy__mq_t *q) {
  return q->name;
}

/* The dead-letter queue of q, made with q's options on first use. */
static eddy__mq_t *dead_of(eddy__mq_t *q) {
  if (q->dead == NULL) {
    char name[EDDY__MQ_NAME];
    strcpy(name, q->name);
    strcat(name, ".dead");
    eddy__mq_open(q->hub, name, &q->opts, &q->dead);
  }
  return q->dead;
}

/* ======================================================================= */
/* Operations, under q->lock */

static size_t held(const eddy__mq_t *q) {
  return q->ready.n + q->delayed.n + q->in_flight.n;
}

/* Gives m to the dead-letter queue; q->lock is held, and a dead queue has
   none of its own, so the locks nest one way. Frees m when there is none
   to be had (out of memory). */
static void bury(eddy__mq_t *q, msg_t *m) {
  eddy__mq_t *dead = dead_of(q);
  if (dead == NULL) {
    q->bytes -= m->len;
    free(m);
    return;
  }
  m->attempts = 0;
  q->bytes -= m->len;
  uv_mutex_lock(&dead->lock);
  list_append(&dead->ready, m);
  dead->bytes += m->len;
  eddy__xwaiter_t *w = eddy__xwaitq_take(&dead->takers, 0);
  uv_mutex_unlock(&dead->lock);
  eddy__xwait_post(w);
}

/* Makes m ready again after delay_ms, or buries it past max_attempts. */
static int retry(eddy__mq_t *q, msg_t *m, uint64_t now, int64_t delay_ms) {
  if (q->opts.max_attempts > 0 && m->attempts >= q->opts.max_attempts) {
    bury(q, m);
    return 1;
  }
  if (delay_ms < 0) {
    uint64_t d = q->opts.backoff_ms;
    for (uint32_t i = 1; i < m->attempts && d < q->opts.backoff_max_ms; i++)
      d *= 2;
    delay_ms = (int64_t)(d < q->opts.backoff_max_ms ? d
                                                     : q->opts.backoff_max_ms);
  }
  if (delay_ms == 0) {
    list_append(&q->ready, m);
  } else {
    m->due = now + (uint64_t)delay_ms;
    list_insert_due(&q->delayed, m);
  }
  return 0;
}

/* Moves what has come due to ready: delayed messages, and those whose
   consumer let the visibility deadline pass. */
static void promote(eddy__mq_t *q, uint64_t now) {
  while (q->delayed.head != NULL && q->delayed.head->due <= now) {
    msg_t *m = q->delayed.head;
    list_remove(&q->delayed, m);
    list_append(&q->ready, m);
  }
  while (q->in_flight.head != NULL && q->in_flight.head->due <= now) {
    msg_t *m = q->in_flight.head;
    list_remove(&q->in_flight, m);
    idmap_take(&q->ids, m->id);
    retry(q, m, now, 0);
  }
}

static int64_t next_due(const eddy__mq_t *q, uint64_t now) {
  uint64_t due = UINT64_MAX;
  if (q->delayed.head != NULL)
    due = q->delayed.head->due;
  if (q->in_flight.head != NULL && q->in_flight.head->due < due)
    due = q->in_flight.head->due;
  return due == UINT64_MAX ? -1 : due <= now ? 0 : (int64_t)(due - now);
}

/* Takes the message in flight under id out; NULL if none. */
static msg_t *take_in_flight(eddy__mq_t *q, uint64_t id) {
  msg_t *m = idmap_take(&q->ids, id);
  if (m != NULL)
    list_remove(&q->in_flight, m);
  return m;
}

/* Whether the queue's next change of state without a call (next_due)
   has come earlier: the takers asleep until the old one must look again. */
static int moved_earlier(int64_t before, int64_t after) {
  return after >= 0 && (before < 0 || after < before);
}

/* Unlocks q and posts the wake-ups its state calls for: a message ready
   for a taker, or one due sooner than the takers wait for (due_moved);
   room for a giver. One of each: a woken taker that pops wakes the next
   while messages remain. A wake-up that finds nothing costs a look. */
static void unlock_waking(eddy__mq_t *q, int due_moved) {
  eddy__xwaiter_t *t = q->ready.n > 0 || due_moved
                           ? eddy__xwaitq_take(&q->takers, 0)
                           : NULL;
  eddy__xwaiter_t *g = q->opts.max == 0 || held(q) < q->opts.max
                           ? eddy__xwaitq_take(&q->givers, 0)
                           : NULL;
  uv_mutex_unlock(&q->lock);
  eddy__xwait_post(t);
  eddy__xwait_post(g);
}

int eddy__mq_push(eddy__mq_t *q, const char *data, size_t len,
                  uint64_t delay_ms) {
  uint64_t now = now_ms();
  uv_mutex_lock(&q->lock);
  promote(q, now);
  int64_t due_before = next_due(q, now);
  /* A refused push allocates nothing: a burst against a full queue
     leaves memory as it was. */
  msg_t *m = q->opts.max > 0 && held(q) >= q->opts.max
                 ? NULL
                 : malloc(sizeof *m + len);
  if (m == NULL) {
    int full = q->opts.max > 0 && held(q) >= q->opts.max;
    unlock_waking(q, 0);
    return full ? EDDY_EFULL : EDDY_ENOMEM;
  }
  memcpy(m->data, data, len);
  m->len = len;
  m->attempts = 0;
  m->id = 0;
  q->bytes += len;
  if (delay_ms > 0) {
    m->due = now + delay_ms;
    list_insert_due(&q->delayed, m);
  } else {
    list_append(&q->ready, m);
  }
  unlock_waking(q, moved_earlier(due_before, next_due(q, now)));
  return 0;
}

int eddy__mq_pop(eddy__mq_t *q, eddy__mq_msg_t *out, int64_t *due_ms) {
  uint64_t now = now_ms();
  uv_mutex_lock(&q->lock);
  promote(q, now);
  msg_t *m = q->ready.head;
  char *copy = m != NULL && idmap_reserve(&q->ids, q->in_flight.n + 1) == 0
                   ? malloc(m->len + 1)
                   : NULL;
  if (m == NULL || copy == NULL) {
    *due_ms = next_due(q, now);
    unlock_waking(q, 0);
    return m == NULL ? EDDY_ENOTFOUND : EDDY_ENOMEM;
  }
  int64_t due_before = next_due(q, now);
  q->ready.head = m->next;
  if (q->ready.head == NULL)
    q->ready.tail = NULL;
  q->ready.n--;
  m->attempts++;
  m->id = q->next_id++;
  m->due = q->opts.visibility_ms > 0 ? now + q->opts.visibility_ms
                                     : UINT64_MAX; /* 0: no deadline */
  list_append(&q->in_flight, m);
  idmap_put(&q->ids, m);
  memcpy(copy, m->data, m->len);
  out->id = m->id;
  out->attempts = m->attempts;
  out->data = copy;
  out->len = m->len;
  /* Another message may be ready for another taker woken with this one;
     and this one's visibility deadline may be the queue's next. */
  unlock_waking(q, moved_earlier(due_before, next_due(q, now)));
  return 0;
}

int eddy__mq_ack(eddy__mq_t *q, uint64_t id) {
  uv_mutex_lock(&q->lock);
  msg_t *m = take_in_flight(q, id);
  if (m != NULL)
    q->bytes -= m->len;
  unlock_waking(q, 0);
  free(m);
  return m != NULL ? 0 : EDDY_ENOTFOUND;
}

int eddy__mq_nack(eddy__mq_t *q, uint64_t id, int64_t delay_ms, int *dead) {
  uint64_t now = now_ms();
  uv_mutex_lock(&q->lock);
  msg_t *m = take_in_flight(q, id);
  *dead = 0;
  if (m == NULL) {
    uv_mutex_unlock(&q->lock);
    return EDDY_ENOTFOUND;
  }
  int64_t due_before = next_due(q, now);
  *dead = retry(q, m, now, delay_ms);
  unlock_waking(q, moved_earlier(due_before, next_due(q, now)));
  return 0;
}

void eddy__mq_length(eddy__mq_t *q, size_t *ready, size_t *in_flight,
                     size_t *delayed, size_t *bytes) {
  uv_mutex_lock(&q->lock);
  promote(q, now_ms());
  *ready = q->ready.n;
  *in_flight = q->in_flight.n;
  *delayed = q->delayed.n;
  *bytes = q->bytes;
  unlock_waking(q, 0);
}

/* A waiter woken after its task went passes the wake-up on. */
static void pass_on(void *owner) {
  eddy__mq_t *q = owner;
  uv_mutex_lock(&q->lock);
  unlock_waking(q, 0);
}

eddy__xwaiter_t *eddy__mq_wait(eddy__mq_t *q, int room, eddy_runtime_t *rt,
                               eddy__task_t *t, int *err, int64_t *due_ms) {
  eddy__xwaiter_t *w = NULL;
  *err = 0;
  uint64_t now = now_ms();
  uv_mutex_lock(&q->lock);
  promote(q, now);
  *due_ms = room ? -1 : next_due(q, now);
  int changed = room ? q->opts.max == 0 || held(q) < q->opts.max
                     : q->ready.n > 0;
  if (!changed) {
    w = eddy__xwait_new(rt, t, room ? &q->givers : &q->takers, &q->lock,
                        pass_on, q);
    if (w == NULL)
      *err = EDDY_ENOMEM;
  }
  uv_mutex_unlock(&q->lock);
  return w;
}

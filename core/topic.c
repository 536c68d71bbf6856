/*
 * topic.c: publish/subscribe topics (see topic.h). One lock per topic
 * guards its subscribers and their rings.
 */
#include "topic.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"
#include "hub.h"

typedef struct tmsg_s {
  atomic_int refs; /* the rings holding it */
  size_t len;
  char data[];
} tmsg_t;

struct eddy__sub_s {
  eddy__sub_t *next; /* the topic's subscribers */
  eddy__sub_t *prev;
  eddy__topic_t *topic;
  int tag;
  tmsg_t **ring;
  size_t cap;
  size_t head;       /* the oldest */
  size_t count;
  uint64_t dropped;
  eddy__xwaitq_t waiters;
};

struct eddy__topic_s {
  eddy__topic_t *next_topic;
  char name[EDDY__TOPIC_NAME];
  uv_mutex_t lock;
  eddy__sub_t *subs;
};

static void msg_unref(tmsg_t *m) {
  if (atomic_fetch_sub(&m->refs, 1) == 1)
    free(m);
}

int eddy__topic_open(eddy__hub_t *hub, const char *name,
                     eddy__topic_t **out) {
  if (name[0] == '\0' || strlen(name) >= EDDY__TOPIC_NAME)
    return EDDY_EINVAL;
  uv_mutex_lock(&hub->lock);
  eddy__topic_t *t = hub->topics;
  while (t != NULL && strcmp(t->name, name) != 0)
    t = t->next_topic;
  if (t == NULL && (t = calloc(1, sizeof *t)) != NULL) {
    if (uv_mutex_init(&t->lock) != 0) {
      free(t);
      t = NULL;
    } else {
      strcpy(t->name, name);
      t->next_topic = hub->topics;
      hub->topics = t;
    }
  }
  uv_mutex_unlock(&hub->lock);
  *out = t;
  return t != NULL ? 0 : EDDY_ENOMEM;
}

void eddy__topic_free_all(eddy__topic_t *t) {
  while (t != NULL) {
    eddy__topic_t *next = t->next_topic;
    uv_mutex_destroy(&t->lock);
    free(t);
    t = next;
  }
}

int eddy__topic_publish(eddy__topic_t *t, const char *data, size_t len,
                        int only, size_t *delivered) {
  tmsg_t *m = malloc(sizeof *m + len);
  if (m == NULL)
    return EDDY_ENOMEM;
  memcpy(m->data, data, len);
  m->len = len;
  atomic_init(&m->refs, 1); /* ours, until every ring has it */
  eddy__xwaiter_t *wake = NULL;
  size_t n = 0;
  uv_mutex_lock(&t->lock);
  for (eddy__sub_t *s = t->subs; s != NULL; s = s->next) {
    if (only > 0 && s->tag != only)
      continue;
    n++;
    if (s->count == s->cap) { /* drop the oldest: the policy of topic.h */
      msg_unref(s->ring[s->head]);
      s->head = (s->head + 1) % s->cap;
      s->count--;
      s->dropped++;
    }
    atomic_fetch_add(&m->refs, 1);
    s->ring[(s->head + s->count) % s->cap] = m;
    s->count++;
    eddy__xwaiter_t *w = eddy__xwaitq_take(&s->waiters, 1);
    while (w != NULL) {
      eddy__xwaiter_t *next = w->next;
      w->next = wake;
      wake = w;
      w = next;
    }
  }
  uv_mutex_unlock(&t->lock);
  msg_unref(m);
  eddy__xwait_post(wake);
  *delivered = n;
  return 0;
}

eddy__sub_t *eddy__sub_new(eddy__topic_t *t, size_t cap, int tag) {
  eddy__sub_t *s = calloc(1, sizeof *s);
  if (s == NULL || (s->ring = calloc(cap, sizeof *s->ring)) == NULL) {
    free(s);
    return NULL;
  }
  s->cap = cap;
  s->topic = t;
  s->tag = tag;
  uv_mutex_lock(&t->lock);
  s->next = t->subs;
  if (t->subs != NULL)
    t->subs->prev = s;
  t->subs = s;
  uv_mutex_unlock(&t->lock);
  return s;
}

void eddy__sub_close(eddy__sub_t *s) {
  eddy__topic_t *t = s->topic;
  uv_mutex_lock(&t->lock);
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    t->subs = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  eddy__xwaiter_t *wake = eddy__xwaitq_take(&s->waiters, 1);
  uv_mutex_unlock(&t->lock);
  eddy__xwait_post(wake);
  for (size_t i = 0; i < s->count; i++)
    msg_unref(s->ring[(s->head + i) % s->cap]);
  free(s->ring);
  free(s);
}

int eddy__sub_next(eddy__sub_t *s, char **data, size_t *len) {
  uv_mutex_lock(&s->topic->lock);
  tmsg_t *m = s->count > 0 ? s->ring[s->head] : NULL;
  char *copy = m != NULL ? malloc(m->len + 1) : NULL;
  if (copy != NULL) {
    s->head = (s->head + 1) % s->cap;
    s->count--;
  }
  uv_mutex_unlock(&s->topic->lock);
  if (copy == NULL)
    return m == NULL ? EDDY_ENOTFOUND : EDDY_ENOMEM;
  memcpy(copy, m->data, m->len);
  *data = copy;
  *len = m->len;
  msg_unref(m);
  return 0;
}

void eddy__sub_counts(eddy__sub_t *s, uint64_t *dropped, size_t *waiting) {
  uv_mutex_lock(&s->topic->lock);
  *dropped = s->dropped;
  *waiting = s->count;
  uv_mutex_unlock(&s->topic->lock);
}

eddy__xwaiter_t *eddy__sub_wait(eddy__sub_t *s, eddy_runtime_t *rt,
                                eddy__task_t *task, int *err) {
  eddy__xwaiter_t *w = NULL;
  *err = 0;
  uv_mutex_lock(&s->topic->lock);
  if (s->count == 0 &&
      (w = eddy__xwait_new(rt, task, &s->waiters, &s->topic->lock, NULL,
                           NULL)) == NULL)
    *err = EDDY_ENOMEM;
  uv_mutex_unlock(&s->topic->lock);
  return w;
}

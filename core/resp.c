/*
 * resp.c: RESP2 replies through hiredis's reader, built into eddy's own
 * value tree (resp.h) by reply functions of ours, which count what each
 * reply takes so that one reply cannot exhaust memory; and the headers of
 * the commands eddy sends. hiredis itself bounds the nesting of arrays
 * (seven levels).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/read.h>

#include "resp.h"

struct eddy__resp_reader_s {
  redisReader *r;
  size_t max_reply;
  size_t used;  /* bytes the reply being read takes so far */
  int toolarge; /* a limit stopped the reader */
};

/* ======================================================================= */
/* The reply tree, made by hiredis's callbacks */

static eddy__resp_value_t *new_value(const redisReadTask *task,
                                     eddy__resp_type_t type, size_t extra) {
  eddy__resp_reader_t *rr = task->privdata;
  size_t size = sizeof(eddy__resp_value_t) + extra;
  if (size > rr->max_reply || rr->used > rr->max_reply - size) {
    rr->toolarge = 1;
    return NULL; /* hiredis fails the reader (as out of memory) */
  }
  eddy__resp_value_t *v = calloc(1, size);
  if (v == NULL)
    return NULL;
  rr->used += size;
  v->type = type;
  if (task->parent != NULL) {
    eddy__resp_value_t *parent = task->parent->obj;
    parent->elements[task->idx] = v;
  }
  return v;
}

static void *create_string(const redisReadTask *task, char *s, size_t len) {
  eddy__resp_type_t type = task->type == REDIS_REPLY_ERROR    ? EDDY__RESP_ERROR
                           : task->type == REDIS_REPLY_STATUS ? EDDY__RESP_STATUS
                                                              : EDDY__RESP_STRING;
  if (len > SIZE_MAX / 2)
    return NULL;
  eddy__resp_value_t *v = new_value(task, type, len + 1);
  if (v == NULL)
    return NULL;
  v->str = (char *)(v + 1); /* the bytes follow the value in one block */
  memcpy(v->str, s, len);
  v->str[len] = '\0';
  v->len = len;
  return v;
}

static void *create_array(const redisReadTask *task, int n) {
  if (n < 0)
    return NULL;
  size_t bytes = (size_t)n * sizeof(eddy__resp_value_t *);
  eddy__resp_value_t *v = new_value(task, EDDY__RESP_ARRAY, bytes);
  if (v == NULL)
    return NULL;
  v->elements = (eddy__resp_value_t **)(v + 1);
  v->len = (size_t)n;
  return v;
}

static void *create_integer(const redisReadTask *task, long long n) {
  eddy__resp_value_t *v = new_value(task, EDDY__RESP_INTEGER, 0);
  if (v != NULL)
    v->integer = n;
  return v;
}

static void *create_nil(const redisReadTask *task) {
  return new_value(task, EDDY__RESP_NIL, 0);
}

void eddy__resp_value_free(eddy__resp_value_t *v) {
  if (v == NULL)
    return;
  if (v->type == EDDY__RESP_ARRAY) {
    /* Elements not reached yet (a reply cut short by an error) are NULL:
       calloc made them so. */
    for (size_t i = 0; i < v->len; i++)
      eddy__resp_value_free(v->elements[i]);
  }
  free(v);
}

static void free_object(void *obj) {
  eddy__resp_value_free(obj);
}

static redisReplyObjectFunctions reply_functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

/* ======================================================================= */
/* The reader */

eddy__resp_reader_t *eddy__resp_reader_new(size_t max_reply) {
  eddy__resp_reader_t *rr = calloc(1, sizeof *rr);
  if (rr == NULL)
    return NULL;
  rr->r = redisReaderCreateWithFunctions(&reply_functions);
  if (rr->r == NULL) {
    free(rr);
    return NULL;
  }
  rr->r->privdata = rr;
  rr->max_reply = max_reply;
  return rr;
}

void eddy__resp_reader_free(eddy__resp_reader_t *rr) {
  if (rr == NULL)
    return;
  redisReaderFree(rr->r);
  free(rr);
}

int eddy__resp_feed(eddy__resp_reader_t *rr, const char *buf, size_t len) {
  redisReader *r = rr->r;
  if (r->err)
    return -1;
  /* The bytes of a bulk string wait in hiredis's buffer until all have
     come: bound them before they are copied in. */
  size_t buffered = r->len - r->pos;
  if (buffered + len > rr->max_reply) {
    rr->toolarge = 1;
    r->err = REDIS_ERR_OTHER;
    return -1;
  }
  return redisReaderFeed(r, buf, len) == REDIS_OK ? 0 : -1;
}

int eddy__resp_get(eddy__resp_reader_t *rr, eddy__resp_value_t **out) {
  void *reply = NULL;
  *out = NULL;
  if (rr->r->err || redisReaderGetReply(rr->r, &reply) != REDIS_OK)
    return -1;
  if (reply == NULL)
    return 0;
  rr->used = 0;
  *out = reply;
  return 1;
}

const char *eddy__resp_reader_error(const eddy__resp_reader_t *rr) {
  return rr->toolarge ? "too large" : "protocol error";
}

const char *eddy__resp_reader_detail(const eddy__resp_reader_t *rr) {
  return rr->toolarge ? "a reply over the reader's limit" : rr->r->errstr;
}

/* ======================================================================= */
/* Commands */

size_t eddy__resp_header(char *out, char kind, size_t n) {
  char digits[24];
  size_t nd = 0, len = 0;
  do {
    digits[nd++] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  out[len++] = kind;
  while (nd > 0)
    out[len++] = digits[--nd];
  out[len++] = '\r';
  out[len++] = '\n';
  return len;
}

/*
 * resp.h: the Redis protocol (RESP2) for eddy's Redis client. Replies are
 * parsed by hiredis's reader into a small tree of values, with limits a
 * hostile or broken server cannot push past; commands are framed as RESP
 * arrays of bulk strings. Knows nothing of Lua or of sockets: bytes go in
 * and values come out.
 */
#ifndef EDDY_RESP_H
#define EDDY_RESP_H

#include <stddef.h>

typedef enum eddy__resp_type_e {
  EDDY__RESP_STRING,  /* a bulk string: binary-safe */
  EDDY__RESP_STATUS,  /* a simple string, e.g. OK */
  EDDY__RESP_ERROR,   /* an error reply: Redis's message */
  EDDY__RESP_INTEGER,
  EDDY__RESP_NIL,     /* a nil bulk string or nil array */
  EDDY__RESP_ARRAY
} eddy__resp_type_t;

/* One reply or one element of an array reply. A value owns its elements;
   eddy__resp_value_free frees the whole tree. */
typedef struct eddy__resp_value_s {
  eddy__resp_type_t type;
  size_t len;        /* bytes of a string; elements of an array */
  long long integer; /* EDDY__RESP_INTEGER */
  char *str;         /* STRING, STATUS, ERROR: len bytes (and a NUL) */
  struct eddy__resp_value_s **elements; /* ARRAY: len of them */
} eddy__resp_value_t;

typedef struct eddy__resp_reader_s eddy__resp_reader_t;

/* A reader whose replies may take at most max_reply bytes each, counting
   the bytes buffered for it and the memory of its tree. NULL when out of
   memory. */
eddy__resp_reader_t *eddy__resp_reader_new(size_t max_reply);
void eddy__resp_reader_free(eddy__resp_reader_t *r);

/* Adds received bytes. 0, or -1 when the reply being read would go past
   the limit (the reader is then failed: see eddy__resp_reader_error). */
int eddy__resp_feed(eddy__resp_reader_t *r, const char *buf, size_t len);

/* The next complete reply: 1 and *out (the caller frees it), 0 when more
   bytes are needed, -1 when the bytes are not RESP or go past a limit.
   After -1 the reader stays failed: the connection cannot be trusted. */
int eddy__resp_get(eddy__resp_reader_t *r, eddy__resp_value_t **out);

/* Why the reader failed: "protocol error" or "too large" (stable), and
   hiredis's words for it. */
const char *eddy__resp_reader_error(const eddy__resp_reader_t *r);
const char *eddy__resp_reader_detail(const eddy__resp_reader_t *r);

void eddy__resp_value_free(eddy__resp_value_t *v);

/* The longest header eddy__resp_header writes. */
#define EDDY__RESP_HEADER_MAX 24

/* Writes a RESP header, `*n\r\n` (kind '*', an array of n) or `$n\r\n`
   (kind '$', a bulk string of n bytes, which the caller follows with the
   bytes and "\r\n") into out; returns its length. */
size_t eddy__resp_header(char *out, char kind, size_t n);

#endif

/*
 * resp_test.c: the Redis protocol engine (core/resp.c): every reply type,
 * replies split anywhere, pipelined replies, nesting, malformed bytes and
 * the per-reply limit; and command headers.
 */
#include <string.h>

#include "../../core/resp.h"
#include "tap.h"

/* Feeds s in pieces of `step` bytes; returns the first reply or NULL. */
static eddy__resp_value_t *parse(eddy__resp_reader_t *r, const char *s,
                                 size_t len, size_t step, int *rc) {
  eddy__resp_value_t *v = NULL;
  *rc = 0;
  for (size_t at = 0; at < len && *rc == 0; at += step) {
    size_t n = len - at < step ? len - at : step;
    if (eddy__resp_feed(r, s + at, n) != 0) {
      *rc = -1;
      break;
    }
    *rc = eddy__resp_get(r, &v);
  }
  return v;
}

static eddy__resp_value_t *one(const char *s, size_t step, int *rc) {
  eddy__resp_reader_t *r = eddy__resp_reader_new(1 << 20);
  eddy__resp_value_t *v = parse(r, s, strlen(s), step, rc);
  eddy__resp_reader_free(r);
  return v;
}

int main(void) {
  int rc;
  eddy__resp_value_t *v;

  v = one("+OK\r\n", 1, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_STATUS && strcmp(v->str, "OK") == 0,
     "a status reply, fed a byte at a time");
  eddy__resp_value_free(v);
  v = one("-ERR wrong\r\n", 100, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_ERROR && strcmp(v->str, "ERR wrong") == 0,
     "an error reply keeps Redis's message");
  eddy__resp_value_free(v);
  v = one(":-42\r\n", 2, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_INTEGER && v->integer == -42,
     "an integer");
  eddy__resp_value_free(v);
  v = one("$-1\r\n", 3, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_NIL, "a nil bulk string");
  eddy__resp_value_free(v);
  v = one("*-1\r\n", 3, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_NIL, "a nil array");
  eddy__resp_value_free(v);

  eddy__resp_reader_t *r = eddy__resp_reader_new(1 << 20);
  static const char bin[] = "$5\r\na\0b\r\n\r\n";
  v = parse(r, bin, sizeof bin - 1, 1, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_STRING && v->len == 5 &&
         memcmp(v->str, "a\0b\r\n", 5) == 0,
     "a bulk string is binary-safe");
  eddy__resp_value_free(v);
  static const char arr[] = "*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n-E x\r\n";
  v = parse(r, arr, sizeof arr - 1, 4, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_ARRAY && v->len == 3 &&
         v->elements[1]->type == EDDY__RESP_ARRAY &&
         v->elements[1]->elements[1]->type == EDDY__RESP_NIL &&
         v->elements[2]->type == EDDY__RESP_ERROR,
     "nested arrays with nils and errors inside");
  eddy__resp_value_free(v);
  static const char two[] = "+A\r\n+B\r\n+C";
  v = parse(r, two, sizeof two - 1, sizeof two - 1, &rc);
  ok(rc == 1 && strcmp(v->str, "A") == 0, "the first of pipelined replies");
  eddy__resp_value_free(v);
  ok(eddy__resp_get(r, &v) == 1 && strcmp(v->str, "B") == 0,
     "then the second");
  eddy__resp_value_free(v);
  ok(eddy__resp_get(r, &v) == 0, "and the third waits for its end");
  ok(eddy__resp_feed(r, "\r\n", 2) == 0 && eddy__resp_get(r, &v) == 1 &&
         strcmp(v->str, "C") == 0,
     "which completes it");
  eddy__resp_value_free(v);
  v = parse(r, "*0\r\n", 4, 4, &rc);
  ok(rc == 1 && v->type == EDDY__RESP_ARRAY && v->len == 0, "an empty array");
  eddy__resp_value_free(v);
  eddy__resp_reader_free(r);

  v = one("?what\r\n", 10, &rc);
  ok(rc == -1 && v == NULL, "an unknown type byte is a protocol error");
  r = eddy__resp_reader_new(1 << 20);
  v = parse(r, "$abc\r\n", 6, 6, &rc);
  ok(rc == -1 && strcmp(eddy__resp_reader_error(r), "protocol error") == 0,
     "a bad length is a protocol error");
  ok(eddy__resp_feed(r, "+OK\r\n", 5) == -1 && eddy__resp_get(r, &v) == -1,
     "and the reader stays failed");
  eddy__resp_reader_free(r);
  v = one("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 64, &rc);
  ok(rc == -1, "nesting past hiredis's depth is refused");

  r = eddy__resp_reader_new(100);
  v = parse(r, "$200\r\n", 6, 6, &rc);
  ok(rc == 0, "a bulk string's header alone is fine");
  char big[200];
  memset(big, 'x', sizeof big);
  ok(eddy__resp_feed(r, big, sizeof big) == -1 &&
         strcmp(eddy__resp_reader_error(r), "too large") == 0,
     "its bytes past the limit are refused before they are buffered");
  eddy__resp_reader_free(r);
  r = eddy__resp_reader_new(1000);
  v = parse(r, "*1000000\r\n", 10, 10, &rc);
  ok(rc == -1 && strcmp(eddy__resp_reader_error(r), "too large") == 0,
     "an array too long for the limit is refused before it is allocated");
  eddy__resp_reader_free(r);

  char head[EDDY__RESP_HEADER_MAX];
  size_t n = eddy__resp_header(head, '*', 3);
  ok(n == 4 && memcmp(head, "*3\r\n", 4) == 0, "an array header");
  n = eddy__resp_header(head, '$', 1048576);
  ok(n == 10 && memcmp(head, "$1048576\r\n", 10) == 0, "a bulk header");
  n = eddy__resp_header(head, '$', 0);
  ok(n == 4 && memcmp(head, "$0\r\n", 4) == 0, "an empty bulk header");
  return done();
}

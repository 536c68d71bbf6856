/*
 * codec.c: the binary format of codec.h: writing values into a growing
 * byte string, and reading them back with every length checked against
 * what is left, so that a damaged or hostile encoding is an error, never
 * a read out of bounds or a huge allocation.
 */
#include "codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int reserve(eddy__enc_t *e, size_t n) {
  if (e->failed)
    return -1;
  if (e->cap - e->len >= n)
    return 0;
  size_t cap = e->cap ? e->cap : 64;
  while (cap - e->len < n)
    cap *= 2;
  char *data = e->borrowed ? malloc(cap) : realloc(e->data, cap);
  if (data == NULL) {
    e->failed = 1;
    return -1;
  }
  if (e->borrowed)
    memcpy(data, e->data, e->len);
  e->borrowed = 0;
  e->data = data;
  e->cap = cap;
  return 0;
}

static void put(eddy__enc_t *e, const void *p, size_t n) {
  if (reserve(e, n) == 0) {
    memcpy(e->data + e->len, p, n);
    e->len += n;
  }
}

/* The tags: one byte, most often with room for it. */
static void put_byte(eddy__enc_t *e, char c) {
  if (e->len < e->cap && !e->failed)
    e->data[e->len++] = c;
  else
    put(e, &c, 1);
}

static void put_varint(eddy__enc_t *e, uint64_t v) {
  unsigned char b[10];
  int n = 0;
  do {
    b[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v)
      b[n] |= 0x80;
    n++;
  } while (v);
  put(e, b, (size_t)n);
}

void eddy__enc_init(eddy__enc_t *e) {
  memset(e, 0, sizeof *e);
  put_byte(e, EDDY__CODEC_FORMAT);
}

void eddy__enc_init_buffer(eddy__enc_t *e, char *buf, size_t cap) {
  memset(e, 0, sizeof *e);
  e->data = buf;
  e->cap = cap;
  e->borrowed = 1;
  put_byte(e, EDDY__CODEC_FORMAT);
}

void eddy__enc_free(eddy__enc_t *e) {
  if (!e->borrowed)
    free(e->data);
  memset(e, 0, sizeof *e);
}

void eddy__enc_nil(eddy__enc_t *e) {
  put_byte(e, 'n');
}

void eddy__enc_boolean(eddy__enc_t *e, int b) {
  put_byte(e, b ? 't' : 'f');
}

void eddy__enc_number(eddy__enc_t *e, double n) {
  /* Integral numbers in the exact range go short; -0 keeps its sign. */
  if (n == floor(n) && fabs(n) <= 9007199254740992.0 && !(n == 0 && signbit(n))) {
    int64_t i = (int64_t)n;
    put_byte(e, 'i');
    put_varint(e, ((uint64_t)i << 1) ^ (uint64_t)(i >> 63));
    return;
  }
  unsigned char b[9];
  uint64_t bits;
  memcpy(&bits, &n, sizeof bits);
  b[0] = 'd';
  for (int k = 0; k < 8; k++)
    b[1 + k] = (unsigned char)(bits >> (8 * k));
  put(e, b, sizeof b);
}

void eddy__enc_string(eddy__enc_t *e, const char *s, size_t len) {
  put_byte(e, 's');
  put_varint(e, len);
  put(e, s, len);
}

void eddy__enc_table(eddy__enc_t *e, uint32_t narray, uint32_t npairs) {
  put_byte(e, 'T');
  put_varint(e, narray);
  put_varint(e, npairs);
}

size_t eddy__enc_table_begin(eddy__enc_t *e, uint32_t narray) {
  put_byte(e, 'T');
  put_varint(e, narray);
  put_byte(e, 0); /* the count's first byte: all of it, below 128 */
  return e->len - 1;
}

void eddy__enc_table_end(eddy__enc_t *e, size_t at, uint32_t npairs) {
  if (e->failed)
    return;
  if (npairs < 0x80) {
    e->data[at] = (char)npairs;
    return;
  }
  unsigned char b[5];
  size_t n = 0;
  for (uint32_t v = npairs; v != 0; v >>= 7)
    b[n++] = (unsigned char)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
  if (reserve(e, n - 1) != 0)
    return;
  memmove(e->data + at + n, e->data + at + 1, e->len - at - 1);
  memcpy(e->data + at, b, n);
  e->len += n - 1;
}

/* ======================================================================= */
/* Reading */

int eddy__dec_init(eddy__dec_t *d, const char *data, size_t len) {
  d->p = (const unsigned char *)data;
  d->end = d->p + len;
  d->error = NULL;
  if (len == 0 || d->p[0] != EDDY__CODEC_FORMAT) {
    d->error = "not an eddy encoding";
    return -1;
  }
  d->p++;
  return 0;
}

static int fail(eddy__dec_t *d, const char *why) {
  d->error = why;
  return -1;
}

static int get_varint(eddy__dec_t *d, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (d->p == d->end)
      return fail(d, "truncated");
    unsigned char b = *d->p++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return fail(d, "bad length");
}

static size_t left(const eddy__dec_t *d) {
  return (size_t)(d->end - d->p);
}

int eddy__dec_next(eddy__dec_t *d, eddy__dec_value_t *v) {
  uint64_t x, y;
  if (d->p == d->end)
    return fail(d, "truncated");
  memset(v, 0, sizeof *v);
  switch (*d->p++) {
  case 'n':
    v->type = EDDY__DEC_NIL;
    return 0;
  case 'f':
  case 't':
    v->type = EDDY__DEC_BOOLEAN;
    v->boolean = d->p[-1] == 't';
    return 0;
  case 'i':
    if (get_varint(d, &x) != 0)
      return -1;
    v->type = EDDY__DEC_NUMBER;
    v->number = (double)(int64_t)((x >> 1) ^ (~(x & 1) + 1));
    return 0;
  case 'd': {
    if (left(d) < 8)
      return fail(d, "truncated");
    uint64_t bits = 0;
    for (int k = 0; k < 8; k++)
      bits |= (uint64_t)d->p[k] << (8 * k);
    d->p += 8;
    memcpy(&v->number, &bits, sizeof bits);
    v->type = EDDY__DEC_NUMBER;
    return 0;
  }
  case 's':
    if (get_varint(d, &x) != 0)
      return -1;
    if (x > left(d))
      return fail(d, "truncated");
    v->type = EDDY__DEC_STRING;
    v->string = (const char *)d->p;
    v->len = (size_t)x;
    d->p += x;
    return 0;
  case 'T':
    if (get_varint(d, &x) != 0 || get_varint(d, &y) != 0)
      return -1;
    /* Each value takes a byte at least: counts past that are lies. */
    if (x > left(d) || y > left(d) / 2 || x + 2 * y > left(d))
      return fail(d, "truncated");
    v->type = EDDY__DEC_TABLE;
    v->narray = (uint32_t)x;
    v->npairs = (uint32_t)y;
    return 0;
  }
  return fail(d, "unknown value tag");
}

int eddy__dec_done(const eddy__dec_t *d) {
  return d->p == d->end;
}

/*
 * codec_fuzz.c: libFuzzer target for the codec of core/codec.h: arbitrary
 * bytes are read as an encoding, walking the whole value tree with an
 * explicit stack; a flat list of values that reads cleanly is written
 * again and must read back the same. `make fuzz` builds and runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/codec.h"

#define MAX_LEVELS 128 /* the walk stops deeper than this */
#define MAX_FLAT 1024  /* the longest flat list that is written again */

/* Whether two values read are the same value: numbers bit for bit. */
static int same(const eddy__dec_value_t *a, const eddy__dec_value_t *b) {
  if (a->type != b->type)
    return 0;
  switch (a->type) {
  case EDDY__DEC_NIL:
    return 1;
  case EDDY__DEC_BOOLEAN:
    return a->boolean == b->boolean;
  case EDDY__DEC_NUMBER:
    return memcmp(&a->number, &b->number, sizeof a->number) == 0;
  case EDDY__DEC_STRING:
    return a->len == b->len && memcmp(a->string, b->string, a->len) == 0;
  case EDDY__DEC_TABLE:
    return a->narray == b->narray && a->npairs == b->npairs;
  }
  return 0;
}

static void encode_value(eddy__enc_t *e, const eddy__dec_value_t *v) {
  switch (v->type) {
  case EDDY__DEC_NIL: eddy__enc_nil(e); break;
  case EDDY__DEC_BOOLEAN: eddy__enc_boolean(e, v->boolean); break;
  case EDDY__DEC_NUMBER: eddy__enc_number(e, v->number); break;
  case EDDY__DEC_STRING: eddy__enc_string(e, v->string, v->len); break;
  case EDDY__DEC_TABLE: abort(); /* only flat lists are written again */
  }
}

/* Writes the list again: the list header, then the values. */
static void encode_list(eddy__enc_t *e, const eddy__dec_value_t *vs,
                        uint32_t n) {
  eddy__enc_init(e);
  eddy__enc_table(e, n, 0);
  for (uint32_t i = 0; i < n; i++)
    encode_value(e, &vs[i]);
  if (e->failed)
    abort();
}

/* Reads a flat list of n values into out; aborts unless it is one. */
static void decode_list(const eddy__enc_t *e, eddy__dec_value_t *out,
                        uint32_t n) {
  eddy__dec_t d;
  eddy__dec_value_t head;
  if (eddy__dec_init(&d, e->data, e->len) != 0 ||
      eddy__dec_next(&d, &head) != 0 || head.type != EDDY__DEC_TABLE ||
      head.narray != n || head.npairs != 0)
    abort();
  for (uint32_t i = 0; i < n; i++)
    if (eddy__dec_next(&d, &out[i]) != 0)
      abort();
  if (!eddy__dec_done(&d))
    abort();
}

/* A flat list read from the input: written, read back, compared; then
   written from what was read back, which must give the same bytes. */
static void round_trip(const eddy__dec_value_t *flat, uint32_t n) {
  static eddy__dec_value_t back[MAX_FLAT], again[MAX_FLAT];
  eddy__enc_t e1, e2;
  encode_list(&e1, flat, n);
  decode_list(&e1, back, n);
  for (uint32_t i = 0; i < n; i++)
    if (!same(&flat[i], &back[i]))
      abort();
  encode_list(&e2, back, n);
  if (e2.len != e1.len || memcmp(e2.data, e1.data, e1.len) != 0)
    abort();
  decode_list(&e2, again, n);
  for (uint32_t i = 0; i < n; i++)
    if (!same(&back[i], &again[i]))
      abort();
  eddy__enc_free(&e2);
  eddy__enc_free(&e1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of just the input's size, so ASan sees any read past it. */
  char *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  static eddy__dec_value_t flat[MAX_FLAT];
  uint64_t todo[MAX_LEVELS]; /* the values still to read at each level */
  int level = 0;
  todo[0] = 1; /* the root: the list of values */
  eddy__dec_value_t root = {0};
  uint32_t nflat = 0;
  int is_flat = 1;
  eddy__dec_t d;
  if (eddy__dec_init(&d, buf, size) != 0) {
    if (d.error == NULL)
      abort();
    goto out;
  }
  while (level >= 0) {
    if (todo[level] == 0) {
      level--;
      continue;
    }
    todo[level]--;
    eddy__dec_value_t v;
    if (eddy__dec_next(&d, &v) != 0) {
      if (d.error == NULL)
        abort();
      goto out;
    }
    /* What was read lies within the input. */
    if ((const char *)d.p < buf || (const char *)d.p > buf + size)
      abort();
    if (v.type == EDDY__DEC_STRING &&
        (v.string < buf || v.len > size ||
         v.string + v.len > buf + size))
      abort();
    if (level == 0) {
      root = v;
      if (v.type != EDDY__DEC_TABLE || v.npairs != 0 || v.narray > MAX_FLAT)
        is_flat = 0;
    } else if (level == 1 && is_flat) {
      if (v.type == EDDY__DEC_TABLE)
        is_flat = 0;
      else
        flat[nflat++] = v;
    }
    if (v.type == EDDY__DEC_TABLE) {
      /* A table's counts never claim more values than bytes left. */
      uint64_t n = (uint64_t)v.narray + 2 * (uint64_t)v.npairs;
      if (n > (uint64_t)(d.end - d.p))
        abort();
      if (n > 0) {
        if (level + 1 == MAX_LEVELS)
          goto out;
        todo[++level] = n;
      }
    }
  }
  if (is_flat && nflat == root.narray)
    round_trip(flat, nflat);
out:
  free(buf);
  return 0;
}

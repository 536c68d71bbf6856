/*
 * codec.h: the one codec for values that cross threads and processes
 * (task-pool arguments and results, mailbox messages, shared-dictionary
 * values, queue messages). Lua values never cross; their encoding does.
 * Knows nothing of Lua, so that a host thread can encode and decode too.
 *
 * The first byte names the format: 'E' is this binary format, version 1;
 * a message that leaves eddy may be JSON instead ('{', '[', ...).
 *
 *   value  := 'n' (nil) | 'f' | 't' (booleans)
 *           | 'i' zigzag-varint (an integral number, |n| <= 2^53)
 *           | 'd' 8 bytes (any other number, IEEE 754, little-endian)
 *           | 's' varint length, bytes (a string)
 *           | 'T' varint narray, varint npairs, narray values,
 *                 npairs (key value) (a table)
 */
#ifndef EDDY_CODEC_H
#define EDDY_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define EDDY__CODEC_FORMAT 'E'
#define EDDY__CODEC_MAX_DEPTH 100   /* tables within tables */
#define EDDY__CODEC_MAX_VALUES 4096 /* values in a list (arguments, results) */

/* A growing byte string that an encoding is written into. */
typedef struct eddy__enc_s {
  char *data;
  size_t len;
  size_t cap;
  int failed;   /* out of memory: the encoding is lost */
  int borrowed; /* data is the caller's buffer until it outgrows it */
} eddy__enc_t;

/* Starts an encoding: writes the format byte. */
void eddy__enc_init(eddy__enc_t *e);
/* The same, into the caller's buffer of cap bytes (on its stack: most
   encodings are small) until it needs more, when it moves to the heap.
   eddy__enc_free frees only what is on the heap. */
void eddy__enc_init_buffer(eddy__enc_t *e, char *buf, size_t cap);
void eddy__enc_free(eddy__enc_t *e);
void eddy__enc_nil(eddy__enc_t *e);
void eddy__enc_boolean(eddy__enc_t *e, int b);
void eddy__enc_number(eddy__enc_t *e, double n);
void eddy__enc_string(eddy__enc_t *e, const char *s, size_t len);
/* A table: then narray values and npairs keys and values follow. */
void eddy__enc_table(eddy__enc_t *e, uint32_t narray, uint32_t npairs);
/* The same for an encoder that counts the pairs as it writes them: begin
   returns where the count goes, and end writes it there. */
size_t eddy__enc_table_begin(eddy__enc_t *e, uint32_t narray);
void eddy__enc_table_end(eddy__enc_t *e, size_t at, uint32_t npairs);

typedef enum eddy__dec_type_e {
  EDDY__DEC_NIL,
  EDDY__DEC_BOOLEAN,
  EDDY__DEC_NUMBER,
  EDDY__DEC_STRING,
  EDDY__DEC_TABLE
} eddy__dec_type_t;

/* One value read: its type and payload. */
typedef struct eddy__dec_value_s {
  eddy__dec_type_t type;
  int boolean;
  double number;
  const char *string; /* into the encoding */
  size_t len;
  uint32_t narray; /* a table: the values that follow it */
  uint32_t npairs;
} eddy__dec_value_t;

typedef struct eddy__dec_s {
  const unsigned char *p;
  const unsigned char *end;
  const char *error; /* why the last read failed */
} eddy__dec_t;

/* Starts reading an encoding; 0, or -1 (d->error says why) when it is
   not one of this format. */
int eddy__dec_init(eddy__dec_t *d, const char *data, size_t len);
/* Reads the next value; 0, or -1 with d->error ("truncated", ...). */
int eddy__dec_next(eddy__dec_t *d, eddy__dec_value_t *v);
/* Whether every byte was read. */
int eddy__dec_done(const eddy__dec_t *d);

#endif

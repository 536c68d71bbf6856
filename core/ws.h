/*
 * ws.h: the WebSocket protocol engine (RFC 6455): frame headers, masking,
 * the checks a receiver must make, close codes, UTF-8 validation, and the
 * handshake's accept key (SHA-1 and base64). Works on caller-owned bytes,
 * allocates nothing, knows nothing of Lua or libuv.
 */
#ifndef EDDY_WS_H
#define EDDY_WS_H

#include <stddef.h>
#include <stdint.h>

enum eddy__ws_opcode {
  EDDY__WS_CONT = 0x0,
  EDDY__WS_TEXT = 0x1,
  EDDY__WS_BINARY = 0x2,
  EDDY__WS_CLOSE = 0x8,
  EDDY__WS_PING = 0x9,
  EDDY__WS_PONG = 0xA
};

/* Close codes eddy sends. */
#define EDDY__WS_NORMAL 1000
#define EDDY__WS_GOING_AWAY 1001
#define EDDY__WS_PROTOCOL_ERROR 1002
#define EDDY__WS_BAD_DATA 1007   /* e.g. text that is not UTF-8 */
#define EDDY__WS_TOO_BIG 1009
#define EDDY__WS_INTERNAL 1011

typedef struct eddy__ws_frame_s {
  int fin;
  int opcode;
  int masked;
  uint8_t mask[4];
  uint64_t len;      /* payload length */
  size_t header_len; /* bytes before the payload */
} eddy__ws_frame_t;

/*
 * Parses a frame header from buf[0, len). A server requires masked frames
 * (must_mask 1), a client unmasked ones (must_mask 0). Returns the header's
 * length, 0 when more bytes are needed, or minus the close code to fail the
 * connection with: EDDY__WS_PROTOCOL_ERROR for reserved bits, unknown
 * opcodes, a bad mask bit, a fragmented or long control frame;
 * EDDY__WS_TOO_BIG for a payload over max.
 */
int eddy__ws_parse_header(const uint8_t *buf, size_t len, int must_mask,
                          uint64_t max, eddy__ws_frame_t *f);

/* Unmasks (or masks) len bytes in place; offset is how far into the
   payload they start. */
void eddy__ws_mask(uint8_t *data, size_t len, const uint8_t mask[4],
                   uint64_t offset);

/* Writes a frame header (at most 14 bytes) into out; mask NULL for a
   server's unmasked frame. Returns its length. */
size_t eddy__ws_build_header(uint8_t *out, int fin, int opcode, uint64_t len,
                             const uint8_t *mask);

/* Whether a close code may travel in a close frame (RFC 6455, 7.4). */
int eddy__ws_valid_close_code(int code);

/* Incremental UTF-8 validation: start *state at 0; returns -1 as soon as
   the bytes cannot be UTF-8, else 0; the text is complete and valid when
   *state is 0 at its end. */
int eddy__utf8_check(uint32_t *state, const uint8_t *s, size_t len);

/* The Sec-WebSocket-Accept value for a key: 28 characters and a NUL. */
void eddy__ws_accept(const char *key, size_t len, char out[29]);

/* SHA-1 of data (for the accept key) and base64. */
void eddy__sha1(const void *data, size_t len, uint8_t out[20]);
size_t eddy__base64(const uint8_t *in, size_t len, char *out);

#endif

/*
 * ws.c: the WebSocket protocol engine (see ws.h). Knows nothing of Lua or
 * libuv.
 */
#include "ws.h"

#include <string.h>

/* ======================================================================= */
/* Frames */

int eddy__ws_parse_header(const uint8_t *buf, size_t len, int must_mask,
                          uint64_t max, eddy__ws_frame_t *f) {
  if (len < 2)
    return 0;
  uint8_t b0 = buf[0], b1 = buf[1];
  if (b0 & 0x70)
    return -EDDY__WS_PROTOCOL_ERROR; /* reserved bits: no extension agreed */
  f->fin = b0 >> 7;
  f->opcode = b0 & 0x0F;
  switch (f->opcode) {
  case EDDY__WS_CONT:
  case EDDY__WS_TEXT:
  case EDDY__WS_BINARY:
  case EDDY__WS_CLOSE:
  case EDDY__WS_PING:
  case EDDY__WS_PONG:
    break;
  default:
    return -EDDY__WS_PROTOCOL_ERROR;
  }
  f->masked = b1 >> 7;
  if (f->masked != must_mask)
    return -EDDY__WS_PROTOCOL_ERROR;
  uint64_t n = b1 & 0x7F;
  size_t hl = 2;
  if (n == 126) {
    if (len < 4)
      return 0;
    n = (uint64_t)buf[2] << 8 | buf[3];
    if (n < 126)
      return -EDDY__WS_PROTOCOL_ERROR; /* not the shortest form */
    hl = 4;
  } else if (n == 127) {
    if (len < 10)
      return 0;
    n = 0;
    for (int i = 2; i < 10; i++)
      n = n << 8 | buf[i];
    if (n >> 63 || n < 65536)
      return -EDDY__WS_PROTOCOL_ERROR;
    hl = 10;
  }
  if (f->opcode & 0x08) {
    if (!f->fin || n > 125)
      return -EDDY__WS_PROTOCOL_ERROR; /* control frames: whole and small */
  } else if (n > max) {
    return -EDDY__WS_TOO_BIG;
  }
  if (f->masked) {
    if (len < hl + 4)
      return 0;
    memcpy(f->mask, buf + hl, 4);
    hl += 4;
  }
  f->len = n;
  f->header_len = hl;
  return (int)hl;
}

void eddy__ws_mask(uint8_t *data, size_t len, const uint8_t mask[4],
                   uint64_t offset) {
  for (size_t i = 0; i < len; i++)
    data[i] ^= mask[(offset + i) & 3];
}

size_t eddy__ws_build_header(uint8_t *out, int fin, int opcode, uint64_t len,
                             const uint8_t *mask) {
  size_t n = 0;
  out[n++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
  uint8_t mbit = mask ? 0x80 : 0;
  if (len < 126) {
    out[n++] = (uint8_t)(mbit | len);
  } else if (len < 65536) {
    out[n++] = mbit | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = mbit | 127;
    for (int i = 7; i >= 0; i--)
      out[n++] = (uint8_t)(len >> (8 * i));
  }
  if (mask) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

int eddy__ws_valid_close_code(int code) {
  if (code >= 3000 && code <= 4999)
    return 1; /* registered and private */
  switch (code) {
  case 1000: case 1001: case 1002: case 1003: case 1007: case 1008:
  case 1009: case 1010: case 1011: case 1012: case 1013: case 1014:
    return 1;
  }
  return 0; /* 1004-1006 and 1015 never travel; the rest are reserved */
}

/* ======================================================================= */
/* UTF-8 */

/* The state packs how many continuation bytes are still due, and the range
   the next one must fall in (narrower after E0, ED, F0, F4: no overlong
   forms, no surrogates, nothing past U+10FFFF). */
int eddy__utf8_check(uint32_t *state, const uint8_t *s, size_t len) {
  uint32_t need = *state & 0xFF, lo = (*state >> 8) & 0xFF,
           hi = (*state >> 16) & 0xFF;
  for (size_t i = 0; i < len; i++) {
    uint8_t c = s[i];
    if (need == 0) {
      if (c < 0x80)
        continue;
      lo = 0x80;
      hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
          lo = 0xA0;
        else if (c == 0xED)
          hi = 0x9F;
      } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
          lo = 0x90;
        else if (c == 0xF4)
          hi = 0x8F;
      } else {
        return -1;
      }
    } else {
      if (c < lo || c > hi)
        return -1;
      need--;
      lo = 0x80;
      hi = 0xBF;
    }
  }
  *state = need == 0 ? 0 : (need | lo << 8 | hi << 16);
  return 0;
}

/* ======================================================================= */
/* The handshake: SHA-1 (FIPS 180-4) and base64 */

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++)
    w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDC;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6;
    }
    uint32_t t = ROL(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = ROL(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void eddy__sha1(const void *data, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                   0xC3D2E1F0};
  const uint8_t *p = data;
  size_t left = len;
  for (; left >= 64; p += 64, left -= 64)
    sha1_block(h, p);
  /* The last block(s): the rest, a 1 bit, zeros, the length in bits. */
  uint8_t tail[128] = {0};
  memcpy(tail, p, left);
  tail[left] = 0x80;
  size_t tlen = left + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++)
    tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
  sha1_block(h, tail);
  if (tlen == 128)
    sha1_block(h, tail + 64);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (uint8_t)(h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(h[i] >> 8);
    out[4 * i + 3] = (uint8_t)h[i];
  }
}

size_t eddy__base64(const uint8_t *in, size_t len, char *out) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    out[n++] = abc[(v >> 18) & 63];
    out[n++] = abc[(v >> 12) & 63];
    out[n++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
    out[n++] = i + 2 < len ? abc[v & 63] : '=';
  }
  out[n] = '\0';
  return n;
}

void eddy__ws_accept(const char *key, size_t len, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  uint8_t buf[256];
  uint8_t digest[20];
  if (len > sizeof buf - (sizeof guid - 1))
    len = sizeof buf - (sizeof guid - 1);
  memcpy(buf, key, len);
  memcpy(buf + len, guid, sizeof guid - 1);
  eddy__sha1(buf, len + sizeof guid - 1, digest);
  eddy__base64(digest, 20, out);
}

/*
 * ws_test.c: the WebSocket protocol engine (core/ws.c): frame headers and
 * the checks on them, masking, close codes, UTF-8, the accept key.
 */
#include <string.h>

#include "../../core/ws.h"
#include "tap.h"

static int parse(const char *bytes, size_t len, int must_mask,
                 eddy__ws_frame_t *f) {
  return eddy__ws_parse_header((const uint8_t *)bytes, len, must_mask, 1 << 20, f);
}

int main(void) {
  eddy__ws_frame_t f;
  /* RFC 6455 5.7: a masked "Hello". */
  const char hello[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  ok(parse(hello, 11, 1, &f) == 6 && f.fin && f.opcode == 1 && f.len == 5,
     "a masked text frame's header");
  uint8_t payload[5];
  memcpy(payload, hello + 6, 5);
  eddy__ws_mask(payload, 5, f.mask, 0);
  ok(memcmp(payload, "Hello", 5) == 0, "unmasks to Hello");
  ok(parse(hello, 5, 1, &f) == 0, "a header cut short needs more");
  ok(parse("\x81\x05Hello", 7, 1, &f) == -EDDY__WS_PROTOCOL_ERROR,
     "a server refuses an unmasked frame");
  ok(parse("\x81\x85", 2, 0, &f) == -EDDY__WS_PROTOCOL_ERROR,
     "a client refuses a masked frame");
  ok(parse("\xc1\x80\0\0\0\0", 6, 1, &f) == -EDDY__WS_PROTOCOL_ERROR,
     "reserved bits are refused");
  ok(parse("\x83\x80\0\0\0\0", 6, 1, &f) == -EDDY__WS_PROTOCOL_ERROR,
     "unknown opcodes are refused");
  ok(parse("\x09\x80\0\0\0\0", 6, 1, &f) == -EDDY__WS_PROTOCOL_ERROR,
     "a fragmented ping is refused");
  ok(parse("\x89\xfe\x00\x7e\0\0\0\0", 8, 1, &f) == -EDDY__WS_PROTOCOL_ERROR,
     "a control frame over 125 bytes is refused");
  ok(parse("\x82\xfe\x00\x10", 4, 1, &f) == -EDDY__WS_PROTOCOL_ERROR,
     "a 16-bit length that fits in 7 bits is refused");
  ok(parse("\x82\xff\x00\x00\x00\x00\x00\x20\x00\x00\0\0\0\0", 14, 1, &f) ==
         -EDDY__WS_TOO_BIG, "a frame over the maximum is 1009");
  uint8_t hdr[14];
  size_t n = eddy__ws_build_header(hdr, 1, EDDY__WS_BINARY, 70000, NULL);
  ok(n == 10 && parse((const char *)hdr, n, 0, &f) == 10 && f.len == 70000,
     "a built 64-bit header parses back");
  uint8_t mask[4] = {1, 2, 3, 4};
  n = eddy__ws_build_header(hdr, 0, EDDY__WS_TEXT, 300, mask);
  ok(n == 8 && parse((const char *)hdr, n, 1, &f) == 8 && f.len == 300 &&
         !f.fin && memcmp(f.mask, mask, 4) == 0, "a masked 16-bit header too");

  ok(eddy__ws_valid_close_code(1000) && eddy__ws_valid_close_code(4000) &&
         !eddy__ws_valid_close_code(1005) && !eddy__ws_valid_close_code(999) &&
         !eddy__ws_valid_close_code(2000) && !eddy__ws_valid_close_code(5000),
     "close codes");

  uint32_t st = 0;
  ok(eddy__utf8_check(&st, (const uint8_t *)"h\xc3\xa9llo \xf0\x9f\x98\x80", 11) == 0 && st == 0,
     "valid UTF-8");
  st = 0;
  ok(eddy__utf8_check(&st, (const uint8_t *)"\xf0\x9f", 2) == 0 && st != 0 &&
         eddy__utf8_check(&st, (const uint8_t *)"\x98\x80", 2) == 0 && st == 0,
     "UTF-8 split across fragments");
  const char *bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                       "\xff", "\x80", "\xc3\x28"};
  int all_bad = 1;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    st = 0;
    if (eddy__utf8_check(&st, (const uint8_t *)bad[i], strlen(bad[i])) == 0)
      all_bad = 0;
  }
  ok(all_bad, "overlong forms, surrogates, past U+10FFFF, stray bytes refused");

  char accept[29];
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  eddy__ws_accept(key, strlen(key), accept);
  ok(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
     "the accept key of RFC 6455's example");
  uint8_t d[20];
  eddy__sha1("abc", 3, d);
  ok(d[0] == 0xa9 && d[1] == 0x99 && d[19] == 0x9d, "SHA-1 of abc");
  char b64[16];
  ok(eddy__base64((const uint8_t *)"fo", 2, b64) == 4 && strcmp(b64, "Zm8=") == 0,
     "base64 with padding");
  return done();
}

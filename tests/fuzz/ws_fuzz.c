/*
 * ws_fuzz.c: libFuzzer target for the WebSocket engine: arbitrary bytes
 * read as a stream of frames by a server (masked) and by a client
 * (unmasked), with payloads unmasked, text checked as UTF-8 (across
 * fragments) and close frames checked. `make fuzz` builds and runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/ws.h"

static void read_frames(uint8_t *buf, size_t size, int server) {
  size_t pos = 0;
  uint32_t utf8 = 0;
  int in_text = 0;
  while (pos < size) {
    eddy__ws_frame_t f;
    int hl = eddy__ws_parse_header(buf + pos, size - pos, server, 1 << 16, &f);
    if (hl <= 0 || size - pos - (size_t)hl < f.len)
      return;
    uint8_t *payload = buf + pos + hl;
    if (f.masked)
      eddy__ws_mask(payload, (size_t)f.len, f.mask, 0);
    if (f.opcode == EDDY__WS_TEXT || (f.opcode == EDDY__WS_CONT && in_text)) {
      if (f.opcode == EDDY__WS_TEXT)
        utf8 = 0;
      in_text = !f.fin;
      if (eddy__utf8_check(&utf8, payload, (size_t)f.len) < 0)
        return;
    } else if (f.opcode == EDDY__WS_CLOSE && f.len >= 2) {
      uint32_t st = 0;
      eddy__ws_valid_close_code(payload[0] << 8 | payload[1]);
      eddy__utf8_check(&st, payload + 2, (size_t)f.len - 2);
    }
    pos += (size_t)hl + (size_t)f.len;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  read_frames(buf, size, 1);
  memcpy(buf, data, size);
  read_frames(buf, size, 0);
  if (size > 0 && size < 200) {
    char accept[29];
    eddy__ws_accept((const char *)data, size, accept);
  }
  free(buf);
  return 0;
}

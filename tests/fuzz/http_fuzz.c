/*
 * http_fuzz.c: libFuzzer target for the HTTP request engine: arbitrary
 * bytes go through what the server does with a connection's input: skip
 * empty lines, find the head, parse it, then decode a chunked body from
 * the rest. `make fuzz` builds and runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  size_t off = 0;
  while (off + 1 < size && buf[off] == '\r' && buf[off + 1] == '\n')
    off += 2;
  /* The head, found in pieces as a server would meet it. */
  size_t scan = 0;
  long n = 0;
  size_t step = size > 7 ? 7 : 1;
  for (size_t have = 0; have <= size - off && n == 0;) {
    have = have + step > size - off ? size - off : have + step;
    n = eddy__http_head_end(buf + off, have, &scan, 8192);
    if (have == size - off)
      break;
  }
  if (n > 0) {
    eddy__http_header_t headers[100];
    eddy__http_request_t req;
    req.headers = headers;
    if (eddy__http_parse_request(buf + off, (size_t)n, &req, 100) == 0) {
      eddy__http_find(&req, "host", 4);
      char path[8192];
      if (req.path_len <= sizeof path)
        eddy__http_unescape(req.target, req.path_len, path);
      /* Whatever follows, as a chunked body in pieces. */
      eddy__http_chunked_t d = {0};
      size_t pos = off + (size_t)n;
      while (pos < size) {
        size_t piece = size - pos < 5 ? size - pos : 5;
        size_t used, out;
        int rc = eddy__http_chunked_decode(&d, buf + pos, piece, &used, &out);
        if (rc != 0 || used == 0)
          break;
        pos += used;
      }
    }
  }
  free(buf);
  return 0;
}

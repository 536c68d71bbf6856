/*
 * http.h: the HTTP/1.x protocol engine: a strict request parser, a chunked
 * body decoder, percent-decoding, and the writing of response heads. It
 * works on caller-owned buffers, allocates nothing, and knows nothing of Lua
 * or libuv, so that it can be tested and fuzzed alone.
 *
 * Strict means RFC 9112 as written, because the lenient readings are how
 * requests get smuggled: lines end in CRLF only; no NUL or other control
 * bytes; no space before a header's colon, no folded lines; one
 * Content-Length at most, and never with Transfer-Encoding; chunk sizes in
 * hex with CRLF exactly where the grammar puts it.
 */
#ifndef EDDY_HTTP_H
#define EDDY_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* What a parse can answer besides "done" (> 0) and "need more" (0): the
   status code the server should reply with before closing. */
#define EDDY__HTTP_BAD -400       /* malformed */
#define EDDY__HTTP_TOO_LARGE -431 /* request line or headers over the limit */
#define EDDY__HTTP_UNSUPPORTED -501 /* a transfer coding other than chunked */
#define EDDY__HTTP_VERSION -505   /* not HTTP/1.0 or HTTP/1.1 */
#define EDDY__HTTP_EXPECTATION -417 /* an Expect other than 100-continue */

typedef struct eddy__http_header_s {
  const char *name;
  size_t name_len;
  const char *value; /* without surrounding spaces */
  size_t value_len;
} eddy__http_header_t;

#define EDDY__HTTP_KEEP_ALIVE 0x01 /* the connection may carry another */
#define EDDY__HTTP_CHUNKED 0x02    /* the body is chunked */
#define EDDY__HTTP_EXPECT 0x04     /* Expect: 100-continue */
#define EDDY__HTTP_UPGRADE 0x08    /* Connection: upgrade, with Upgrade */
#define EDDY__HTTP_HEAD 0x10       /* method HEAD: no body in the reply */

typedef struct eddy__http_request_s {
  const char *method;
  size_t method_len;
  const char *target; /* as sent: path and query */
  size_t target_len;
  size_t path_len;    /* the part of target before '?' */
  int minor;          /* 0 or 1 */
  unsigned flags;
  int64_t content_length; /* -1 when there is none */
  const char *upgrade;    /* the Upgrade header's value, if any */
  size_t upgrade_len;
  eddy__http_header_t *headers; /* the caller's array */
  size_t nheaders;
} eddy__http_request_t;

/*
 * Finds the end of a request head in buf[0, len), scanning on from *scan
 * (0 at first; kept between calls so that a head arriving byte by byte is
 * looked at once). Returns the head's length, 0 when it is not complete, or
 * EDDY__HTTP_BAD for a bare LF, EDDY__HTTP_TOO_LARGE past max_head bytes.
 * Other bad bytes (NUL, a bare CR) are the parser's to refuse.
 */
long eddy__http_head_end(const char *buf, size_t len, size_t *scan,
                         size_t max_head);

/* Parses a complete head (as eddy__http_head_end found it) into req, with
   room for max_headers headers in req->headers. Returns 0 or an
   EDDY__HTTP_ code. */
int eddy__http_parse_request(const char *head, size_t len,
                             eddy__http_request_t *req, size_t max_headers);

/* The value of a header, found case-insensitively, or NULL. */
const eddy__http_header_t *eddy__http_find(const eddy__http_request_t *req,
                                           const char *name, size_t len);

/*
 * The chunked decoder: feed it the bytes after the head. Each call decodes
 * in place: it moves the data of complete or partial chunks to the front of
 * buf and says how many bytes of data that is (*out) and how many input
 * bytes it used. Returns 1 at the end of the body (trailers included), 0
 * when it needs more input, EDDY__HTTP_BAD for a malformed body.
 */
typedef struct eddy__http_chunked_s {
  int state;
  uint64_t remaining; /* data bytes left in the current chunk */
  size_t trailer;     /* bytes of trailer fields so far */
} eddy__http_chunked_t;

int eddy__http_chunked_decode(eddy__http_chunked_t *d, char *buf, size_t len,
                              size_t *used, size_t *out);

/* Percent-decodes src into dst (room for len bytes). Returns the decoded
   length, or -1 for a bad escape or an encoded NUL. */
long eddy__http_unescape(const char *src, size_t len, char *dst);

/* The reason phrase of a status code ("OK", "Not Found", ...). */
const char *eddy__http_reason(int status);

/* Writes the "Date: ...\r\n" line for time t (seconds) into buf (at least
   40 bytes); returns its length. */
size_t eddy__http_date(char *buf, int64_t t);

#endif

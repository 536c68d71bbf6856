/*
 * http_test.c: the HTTP/1.x protocol engine (core/http.c) on valid
 * requests and on every malformed case the server must refuse.
 */
#include <stdio.h>
#include <string.h>

#include "../../core/http.h"
#include "tap.h"

static eddy__http_header_t headers[100];

/* Finds the head and parses it; returns the parse's answer, or the head
   finder's when it fails first. */
static int parse(const char *s, eddy__http_request_t *req) {
  size_t scan = 0;
  long n = eddy__http_head_end(s, strlen(s), &scan, 8192);
  if (n <= 0)
    return n == 0 ? 1 : (int)n; /* 1: incomplete */
  req->headers = headers;
  return eddy__http_parse_request(s, (size_t)n, req, 100);
}

static int status_of(const char *s) {
  eddy__http_request_t req;
  return parse(s, &req);
}

static void test_valid(void) {
  eddy__http_request_t req;
  int rc = parse("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n"
                 "X-Thing:  spaced value \t\r\nAccept: */*\r\n\r\n", &req);
  ok(rc == 0, "a plain GET parses");
  ok(req.method_len == 3 && memcmp(req.method, "GET", 3) == 0, "its method");
  ok(req.target_len == 14 && req.path_len == 4 &&
         memcmp(req.target, "/a/b", 4) == 0, "its target and path");
  ok(req.minor == 1 && (req.flags & EDDY__HTTP_KEEP_ALIVE),
     "HTTP/1.1 keeps the connection by default");
  ok(req.nheaders == 3, "three headers");
  const eddy__http_header_t *h = eddy__http_find(&req, "x-THING", 7);
  ok(h && h->value_len == 12 && memcmp(h->value, "spaced value", 12) == 0,
     "header lookup ignores case and trims the value");
  ok(req.content_length == -1, "no body");

  rc = parse("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n"
             "Connection: close\r\n\r\n", &req);
  ok(rc == 0 && req.content_length == 12 && !(req.flags & EDDY__HTTP_KEEP_ALIVE),
     "Content-Length and Connection: close");
  rc = parse("GET / HTTP/1.0\r\n\r\n", &req);
  ok(rc == 0 && req.minor == 0 && !(req.flags & EDDY__HTTP_KEEP_ALIVE),
     "HTTP/1.0 needs no Host and closes by default");
  rc = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req);
  ok(rc == 0 && (req.flags & EDDY__HTTP_KEEP_ALIVE), "unless it asks to keep");
  rc = parse("PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
             "Expect: 100-continue\r\n\r\n", &req);
  ok(rc == 0 && (req.flags & EDDY__HTTP_CHUNKED) && (req.flags & EDDY__HTTP_EXPECT),
     "chunked with Expect: 100-continue");
  rc = parse("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
             "Connection: keep-alive, Upgrade\r\n\r\n", &req);
  ok(rc == 0 && (req.flags & EDDY__HTTP_UPGRADE) && req.upgrade_len == 9,
     "an upgrade request");
  rc = parse("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", &req);
  ok(rc == 0 && (req.flags & EDDY__HTTP_HEAD), "HEAD is flagged");
  rc = parse("GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n", &req);
  ok(rc == 0 && req.target_len == 4 && memcmp(req.target, "/p?q", 4) == 0 &&
         req.path_len == 2, "absolute-form gives its path");
  rc = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req);
  ok(rc == 0 && req.target_len == 1, "asterisk-form for OPTIONS");
  ok(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n") == 0,
     "obs-text bytes in a value are allowed");
}

static void test_malformed(void) {
  struct {
    const char *req;
    int want;
    const char *why;
  } cases[] = {
      {"GET / HTTP/1.1\nHost: h\n\n", EDDY__HTTP_BAD, "bare LF line ends"},
      {"GET / HTTP/1.1\r\nHost: h\n\r\n", EDDY__HTTP_BAD, "one bare LF"},
      {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", EDDY__HTTP_BAD, "a bare CR"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", EDDY__HTTP_BAD,
       "NUL in a value"},
      {"get / HTTP/1.1\r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "lower-case method"},
      {"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "bad method byte"},
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "two spaces"},
      {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "space after version"},
      {"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "space in target"},
      {"GET a HTTP/1.1\r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "relative target"},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", EDDY__HTTP_VERSION, "HTTP/2.0 is 505"},
      {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", EDDY__HTTP_VERSION, "HTTP/1.2 is 505"},
      {"GET / HTTX/1.1\r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "not HTTP"},
      {"GET / HTTP/1.1\r\n\r\n", EDDY__HTTP_BAD, "HTTP/1.1 without Host"},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", EDDY__HTTP_BAD, "two Hosts"},
      {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", EDDY__HTTP_BAD, "space before colon"},
      {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", EDDY__HTTP_BAD, "obs-fold"},
      {"GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n", EDDY__HTTP_BAD, "empty name"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", EDDY__HTTP_BAD, "DEL in value"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", EDDY__HTTP_BAD, "control byte"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
       EDDY__HTTP_BAD, "two Content-Lengths"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n",
       EDDY__HTTP_BAD, "a Content-Length list"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
       EDDY__HTTP_BAD, "a negative Content-Length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n",
       EDDY__HTTP_BAD, "a signed Content-Length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
       EDDY__HTTP_BAD, "a huge Content-Length"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
       "Transfer-Encoding: chunked\r\n\r\n", EDDY__HTTP_BAD,
       "Content-Length with Transfer-Encoding"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       EDDY__HTTP_UNSUPPORTED, "a coding other than chunked is 501"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
       "Transfer-Encoding: chunked\r\n\r\n", EDDY__HTTP_UNSUPPORTED,
       "two Transfer-Encodings"},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", EDDY__HTTP_BAD,
       "chunked in HTTP/1.0"},
      {"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n",
       EDDY__HTTP_EXPECTATION, "an unknown expectation is 417"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = strlen(cases[i].req);
    /* The NUL case has a NUL inside: measure it by hand. */
    if (strstr(cases[i].why, "NUL"))
      len = strlen(cases[i].req) + 1 + strlen(cases[i].req + strlen(cases[i].req) + 1);
    size_t scan = 0;
    eddy__http_request_t req;
    req.headers = headers;
    long n = eddy__http_head_end(cases[i].req, len, &scan, 8192);
    int rc = n <= 0 ? (int)n : eddy__http_parse_request(cases[i].req, (size_t)n, &req, 100);
    ok(rc == cases[i].want, "refused: %s (%d, want %d)", cases[i].why, rc,
       cases[i].want);
  }
}

static void test_limits(void) {
  char big[9000];
  memset(big, 'a', sizeof big);
  memcpy(big, "GET /", 5);
  size_t scan = 0;
  ok(eddy__http_head_end(big, sizeof big, &scan, 8192) == EDDY__HTTP_TOO_LARGE,
     "a head past the limit is 431");
  char many[4096];
  size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (int i = 0; i < 101; i++)
    n += (size_t)snprintf(many + n, sizeof many - n, "X%d: v\r\n", i);
  n += (size_t)snprintf(many + n, sizeof many - n, "\r\n");
  eddy__http_request_t req;
  req.headers = headers;
  ok(eddy__http_parse_request(many, n, &req, 100) == EDDY__HTTP_TOO_LARGE,
     "more headers than allowed is 431");
  /* Byte by byte, the head is found once, where it ends. */
  const char *s = "GET / HTTP/1.1\r\nHost: h\r\n\r\nNEXT";
  long found = 0;
  scan = 0;
  size_t i;
  for (i = 1; i <= strlen(s) && found == 0; i++)
    found = eddy__http_head_end(s, i, &scan, 8192);
  ok(found == 27 && i - 1 == 27, "a head arriving byte by byte ends where it should");
}

static void test_chunked(void) {
  char body[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  eddy__http_chunked_t d = {0};
  size_t used, out;
  int rc = eddy__http_chunked_decode(&d, body, strlen(body), &used, &out);
  ok(rc == 1 && out == 11 && memcmp(body, "hello world", 11) == 0,
     "a chunked body decodes, with an extension and a trailer");
  ok(used == strlen(body) - 4, "and stops at its end");

  /* The same body fed in pieces of one byte. */
  char src[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  char got[32];
  size_t gotn = 0;
  eddy__http_chunked_t d2 = {0};
  rc = 0;
  for (size_t i = 0; i < strlen(src) && rc == 0; i++) {
    char one = src[i];
    rc = eddy__http_chunked_decode(&d2, &one, 1, &used, &out);
    if (out)
      got[gotn++] = one;
  }
  ok(rc == 1 && gotn == 11 && memcmp(got, "hello world", 11) == 0,
     "byte by byte too");

  const char *bad[] = {
      "x\r\n",               /* not hex */
      "5\nhello\r\n",        /* bare LF after the size */
      "5\r\nhelloX\r\n",     /* data longer than its size */
      "5\r\nhello\n0\r\n",   /* bare LF after the data */
      "fffffffffffffffff\r\n", /* overflow */
      " 5\r\n",              /* space before the size */
      "\r\n",                /* no size */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eddy__http_chunked_t db = {0};
    char tmp[64];
    strcpy(tmp, bad[i]);
    rc = eddy__http_chunked_decode(&db, tmp, strlen(tmp), &used, &out);
    ok(rc == EDDY__HTTP_BAD, "bad chunked body %zu is refused", i);
  }
}

static void test_unescape(void) {
  char out[64];
  ok(eddy__http_unescape("/a%20b%2F", 9, out) == 5 && memcmp(out, "/a b/", 5) == 0,
     "percent-decoding");
  ok(eddy__http_unescape("/a%2", 4, out) == -1, "a cut escape is refused");
  ok(eddy__http_unescape("/a%zz", 5, out) == -1, "a bad escape is refused");
  ok(eddy__http_unescape("/a%00", 5, out) == -1, "an encoded NUL is refused");
  char date[64];
  size_t n = eddy__http_date(date, 784111777);
  ok(n == 37 && memcmp(date, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", 37) == 0,
     "the Date line");
  ok(strcmp(eddy__http_reason(404), "Not Found") == 0, "reason phrases");
}

int main(void) {
  test_valid();
  test_malformed();
  test_limits();
  test_chunked();
  test_unescape();
  return done();
}

/*
 * llhttp_test.c: eddy's strict parser (core/http.c) against llhttp, the
 * parser of Node.js (Debian's node-llhttp), on valid requests made up at
 * random: both must read the same method, target, version, headers, body
 * and keep-alive. (llhttp 8.1 is lenient where eddy is strict, so only
 * valid requests can be compared; the malformed ones are http_test.c's.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "../../core/http.h"
#include "tap.h"

#define MAX 32768

/* What a parser saw. */
typedef struct seen_s {
  char method[32];
  char url[1024];
  size_t url_len;
  int minor;
  char names[64][64];
  char values[64][256];
  size_t name_len[64], value_len[64];
  int nheaders;
  char body[MAX];
  size_t body_len;
  int keep_alive;
  int complete;
} seen_t;

static uint32_t rng = 12345;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng % n;
}

/* ---- llhttp's side ---- */

static int on_url(llhttp_t *p, const char *at, size_t len) {
  seen_t *s = p->data;
  memcpy(s->url + s->url_len, at, len);
  s->url_len += len;
  return 0;
}
static int in_field;  /* the last piece llhttp gave was of a name */
static int in_trailer; /* past the head: fields now are trailers */

static int on_field(llhttp_t *p, const char *at, size_t len) {
  seen_t *s = p->data;
  if (in_trailer)
    return 0;
  if (!in_field)
    s->nheaders++; /* a new header begins */
  in_field = 1;
  int i = s->nheaders - 1;
  memcpy(s->names[i] + s->name_len[i], at, len);
  s->name_len[i] += len;
  return 0;
}
static int on_value_complete(llhttp_t *p) {
  (void)p;
  in_field = 0; /* even an empty value ends its header */
  return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t len) {
  seen_t *s = p->data;
  in_field = 0;
  if (in_trailer)
    return 0;
  int i = s->nheaders - 1;
  memcpy(s->values[i] + s->value_len[i], at, len);
  s->value_len[i] += len;
  return 0;
}
static int on_headers_complete(llhttp_t *p) {
  seen_t *s = p->data;
  in_trailer = 1;
  snprintf(s->method, sizeof s->method, "%s",
           llhttp_method_name((llhttp_method_t)p->method));
  s->minor = p->http_minor;
  s->keep_alive = llhttp_should_keep_alive(p);
  return 0;
}
static int on_body(llhttp_t *p, const char *at, size_t len) {
  seen_t *s = p->data;
  memcpy(s->body + s->body_len, at, len);
  s->body_len += len;
  return 0;
}
static int on_complete(llhttp_t *p) {
  ((seen_t *)p->data)->complete = 1;
  return HPE_PAUSED; /* one request only */
}

static void parse_llhttp(const char *req, size_t len, seen_t *s) {
  llhttp_settings_t set;
  llhttp_settings_init(&set);
  set.on_url = on_url;
  set.on_header_field = on_field;
  set.on_header_value = on_value;
  set.on_header_value_complete = on_value_complete;
  set.on_headers_complete = on_headers_complete;
  set.on_body = on_body;
  set.on_message_complete = on_complete;
  llhttp_t p;
  in_field = in_trailer = 0;
  llhttp_init(&p, HTTP_REQUEST, &set);
  p.data = s;
  llhttp_execute(&p, req, len);
}

/* ---- eddy's side ---- */

static int parse_eddy(const char *req, size_t len, seen_t *s) {
  size_t scan = 0;
  long n = eddy__http_head_end(req, len, &scan, MAX);
  if (n <= 0)
    return -1;
  eddy__http_header_t headers[100];
  eddy__http_request_t r;
  r.headers = headers;
  if (eddy__http_parse_request(req, (size_t)n, &r, 100) != 0)
    return -2;
  snprintf(s->method, sizeof s->method, "%.*s", (int)r.method_len, r.method);
  s->minor = r.minor;
  s->keep_alive = (r.flags & EDDY__HTTP_KEEP_ALIVE) != 0;
  memcpy(s->url, r.target, r.target_len);
  s->url_len = r.target_len;
  s->nheaders = (int)r.nheaders;
  for (size_t i = 0; i < r.nheaders; i++) {
    memcpy(s->names[i], headers[i].name, headers[i].name_len);
    s->name_len[i] = headers[i].name_len;
    memcpy(s->values[i], headers[i].value, headers[i].value_len);
    s->value_len[i] = headers[i].value_len;
  }
  char *body = (char *)req + n;
  size_t rest = len - (size_t)n;
  if (r.flags & EDDY__HTTP_CHUNKED) {
    char copy[MAX];
    memcpy(copy, body, rest);
    eddy__http_chunked_t d = {0};
    size_t used, out;
    if (eddy__http_chunked_decode(&d, copy, rest, &used, &out) != 1)
      return -3;
    memcpy(s->body, copy, out);
    s->body_len = out;
  } else if (r.content_length > 0) {
    memcpy(s->body, body, (size_t)r.content_length);
    s->body_len = (size_t)r.content_length;
  }
  s->complete = 1;
  return 0;
}

/* ---- requests ---- */

static const char *methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH",
                                "HEAD", "OPTIONS"};
static const char *targets[] = {"/", "/a/b?x=1&y=%20z", "/%E2%82%AC/x",
                                "/search?q=caf%C3%A9+au+lait#frag",
                                "http://h.example/p?q=1", "/a;b=c/d:e@f"};
static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

static size_t make_request(char *out, int *chunked) {
  size_t n = 0;
  const char *m = methods[rnd(7)];
  int minor = (int)rnd(2);
  const char *t = strcmp(m, "OPTIONS") == 0 && rnd(3) == 0 ? "*" : targets[rnd(6)];
  n += (size_t)sprintf(out + n, "%s %s HTTP/1.%d\r\n", m, t, minor);
  if (minor == 1 || rnd(2))
    n += (size_t)sprintf(out + n, "Host: example.com\r\n");
  int extra = (int)rnd(8);
  for (int i = 0; i < extra; i++) {
    char name[16], value[64];
    int nl = 1 + (int)rnd(12), vl = (int)rnd(40);
    for (int k = 0; k < nl; k++)
      name[k] = tchars[rnd(sizeof tchars - 1)];
    name[nl] = 0;
    if (strchr("cCtThHeEuU", name[0]))
      name[0] = 'x'; /* keep clear of the headers that change framing */
    for (int k = 0; k < vl; k++)
      value[k] = (char)(0x21 + rnd(94));
    if (vl > 2)
      value[vl / 2] = ' ';
    value[vl] = 0;
    n += (size_t)sprintf(out + n, "%s: %s\r\n", name, value);
  }
  if (rnd(4) == 0)
    n += (size_t)sprintf(out + n, "Connection: %s\r\n", rnd(2) ? "close" : "keep-alive");
  *chunked = minor == 1 && rnd(3) == 0;
  int with_body = !*chunked && rnd(3) == 0;
  if (*chunked) {
    n += (size_t)sprintf(out + n, "Transfer-Encoding: chunked\r\n\r\n");
    int chunks = (int)rnd(4);
    for (int c = 0; c < chunks; c++) {
      int size = 1 + (int)rnd(300);
      n += (size_t)sprintf(out + n, "%x%s\r\n", size, rnd(3) == 0 ? ";ext=v" : "");
      for (int k = 0; k < size; k++)
        out[n++] = (char)rnd(256);
      n += (size_t)sprintf(out + n, "\r\n");
    }
    n += (size_t)sprintf(out + n, "0\r\n%s\r\n", rnd(3) == 0 ? "X-Trailer: t\r\n" : "");
  } else if (with_body) {
    int size = (int)rnd(500);
    n += (size_t)sprintf(out + n, "Content-Length: %d\r\n\r\n", size);
    for (int k = 0; k < size; k++)
      out[n++] = (char)rnd(256);
  } else {
    n += (size_t)sprintf(out + n, "\r\n");
  }
  return n;
}

static int same(const seen_t *a, const seen_t *b, char *why) {
  if (strcmp(a->method, b->method) != 0)
    return sprintf(why, "method %s vs %s", a->method, b->method), 0;
  /* eddy gives the path of an absolute-form target: compare its end. */
  if (a->url_len < b->url_len ||
      memcmp(a->url + a->url_len - b->url_len, b->url, b->url_len) != 0)
    return sprintf(why, "target %.*s vs %.*s", (int)a->url_len, a->url,
                   (int)b->url_len, b->url), 0;
  if (a->minor != b->minor)
    return sprintf(why, "version"), 0;
  if (a->nheaders != b->nheaders)
    return sprintf(why, "%d vs %d headers", a->nheaders, b->nheaders), 0;
  for (int i = 0; i < a->nheaders; i++)
    if (a->name_len[i] != b->name_len[i] || a->value_len[i] != b->value_len[i] ||
        memcmp(a->names[i], b->names[i], a->name_len[i]) != 0 ||
        memcmp(a->values[i], b->values[i], a->value_len[i]) != 0)
      return sprintf(why, "header %d: %.*s: %.*s", i, (int)a->name_len[i],
                     a->names[i], (int)a->value_len[i], a->values[i]), 0;
  if (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0)
    return sprintf(why, "body %zu vs %zu bytes", a->body_len, b->body_len), 0;
  if (a->keep_alive != b->keep_alive)
    return sprintf(why, "keep-alive %d vs %d", a->keep_alive, b->keep_alive), 0;
  return 1;
}

int main(void) {
  static char req[MAX];
  static seen_t ll, ed;
  int agreed = 0, total = 2000, chunked_seen = 0;
  char why[2048] = "";
  for (int i = 0; i < total; i++) {
    int chunked;
    size_t len = make_request(req, &chunked);
    memset(&ll, 0, sizeof ll);
    memset(&ed, 0, sizeof ed);
    parse_llhttp(req, len, &ll);
    int rc = parse_eddy(req, len, &ed);
    if (rc == 0 && ll.complete && same(&ll, &ed, why)) {
      agreed++;
      chunked_seen += chunked;
    } else if (rc != 0) {
      sprintf(why, "eddy refused a valid request (%d): %.60s", rc, req);
      break;
    } else if (!ll.complete) {
      sprintf(why, "llhttp did not finish: %.60s", req);
      break;
    } else {
      break;
    }
  }
  ok(agreed == total, "eddy and llhttp read %d random valid requests alike "
     "(%d chunked)%s%s", agreed, chunked_seen, agreed == total ? "" : ": ", why);
  return done();
}

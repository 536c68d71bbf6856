/*
 * http.c: the HTTP/1.x protocol engine (see http.h): strict request
 * parsing, chunked decoding, percent-decoding, status lines and dates.
 * Allocates nothing; knows nothing of Lua or libuv.
 */
#include "http.h"

#include <string.h>
#include <time.h>

#define MAX_METHOD 20
#define MAX_CHUNK_EXT 4096
#define MAX_TRAILER 8192

/* ======================================================================= */
/* Characters */

/* tchar of RFC 9110: the characters of tokens (header names). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* Bytes of a field value (VCHAR, obs-text, space, tab), of a request
   target (VCHAR) and of a method (upper-case letters, '-', '_'): one load
   per byte. */
enum { FIELD = 1, TARGET = 2, METHOD = 4 };
#define VCHAR (FIELD | TARGET)
static const unsigned char byte_class[256] = {
    ['\t'] = FIELD,
    [' '] = FIELD,
    [0x21 ... 0x2C] = VCHAR,
    ['-'] = VCHAR | METHOD,
    [0x2E ... 0x40] = VCHAR,
    ['A' ... 'Z'] = VCHAR | METHOD,
    [0x5B ... 0x5E] = VCHAR,
    ['_'] = VCHAR | METHOD,
    [0x60 ... 0x7E] = VCHAR,
    [0x80 ... 0xFF] = FIELD, /* obs-text */
};
#undef VCHAR

static int is_field_byte(unsigned char c) {
  return byte_class[c] & FIELD;
}

static int is_method_byte(unsigned char c) {
  return byte_class[c] & METHOD;
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int equal_nocase(const char *a, size_t alen, const char *b,
                        size_t blen) {
  if (alen != blen)
    return 0;
  for (size_t i = 0; i < alen; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
      return 0;
  return 1;
}

static int hex_value(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* ======================================================================= */
/* The head */

long eddy__http_head_end(const char *buf, size_t len, size_t *scan,
                         size_t max_head) {
  size_t limit = len < max_head ? len : max_head;
  size_t i = *scan;
  /* Line by line: only the line ends matter here; every other byte is
     checked by the parser, once the head is whole. */
  while (i < limit) {
    const char *lf = memchr(buf + i, '\n', limit - i);
    if (lf == NULL) {
      i = limit;
      break;
    }
    i = (size_t)(lf - buf);
    if (i == 0 || buf[i - 1] != '\r')
      return EDDY__HTTP_BAD; /* a bare LF */
    if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
      return (long)(i + 1);
    i++;
  }
  *scan = i;
  if (len >= max_head)
    return EDDY__HTTP_TOO_LARGE;
  return 0;
}

/* Splits a comma-separated list of tokens and tells the Connection flags. */
static void connection_tokens(const char *v, size_t len, int *close,
                              int *keep_alive, int *upgrade) {
  size_t i = 0;
  while (i < len) {
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t start = i;
    while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
      i++;
    size_t n = i - start;
    if (equal_nocase(v + start, n, "close", 5))
      *close = 1;
    else if (equal_nocase(v + start, n, "keep-alive", 10))
      *keep_alive = 1;
    else if (equal_nocase(v + start, n, "upgrade", 7))
      *upgrade = 1;
  }
}

/* Content-Length: digits only, no sign, no list. */
static int content_length(const char *v, size_t len, int64_t *out) {
  if (len == 0 || len > 18)
    return -1;
  int64_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    n = n * 10 + (v[i] - '0');
  }
  *out = n;
  return 0;
}

/* The path of the target: origin-form as it is; absolute-form
   ("http://host/p?q") from its path on; "*" for OPTIONS. */
static int target_path(eddy__http_request_t *req) {
  const char *t = req->target;
  size_t n = req->target_len;
  if (t[0] == '*') {
    if (n != 1)
      return EDDY__HTTP_BAD;
  } else if (t[0] != '/') {
    const char *s = memchr(t, ':', n);
    if (s == NULL || s + 3 > t + n || s[1] != '/' || s[2] != '/')
      return EDDY__HTTP_BAD;
    const char *path = memchr(s + 3, '/', (size_t)(t + n - (s + 3)));
    if (path == NULL)
      return EDDY__HTTP_BAD;
    req->target = path;
    req->target_len = (size_t)(t + n - path);
  }
  const char *q = memchr(req->target, '?', req->target_len);
  req->path_len = q ? (size_t)(q - req->target) : req->target_len;
  /* Every escape, path and query alike, must be whole: a request is
     refused here, not when (or if) a handler reads its query. */
  for (const char *p = memchr(req->target, '%', req->target_len),
                  *end = req->target + req->target_len;
       p != NULL; p = memchr(p + 1, '%', (size_t)(end - p - 1))) {
    if (end - p < 3 || hex_value((unsigned char)p[1]) < 0 ||
        hex_value((unsigned char)p[2]) < 0)
      return EDDY__HTTP_BAD;
    if (p + 3 == end)
      break;
  }
  return 0;
}

int eddy__http_parse_request(const char *head, size_t len,
                             eddy__http_request_t *req, size_t max_headers) {
  const char *p = head, *end = head + len;
  req->nheaders = 0;
  req->flags = 0;
  req->content_length = -1;
  req->upgrade = NULL;
  req->upgrade_len = 0;

  /* The request line. */
  const char *start = p;
  while (p < end && is_method_byte((unsigned char)*p))
    p++;
  req->method = start;
  req->method_len = (size_t)(p - start);
  if (req->method_len == 0 || req->method_len > MAX_METHOD || p == end ||
      *p != ' ')
    return EDDY__HTTP_BAD;
  p++;
  start = p;
  while (p < end && (byte_class[(unsigned char)*p] & TARGET))
    p++;
  if (p == start || p == end || *p != ' ')
    return EDDY__HTTP_BAD;
  req->target = start;
  req->target_len = (size_t)(p - start);
  p++;
  if (end - p < 10 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' ||
      p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9' ||
      p[8] != '\r' || p[9] != '\n')
    return EDDY__HTTP_BAD;
  if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
    return EDDY__HTTP_VERSION;
  req->minor = p[7] - '0';
  p += 10;
  int rc = target_path(req);
  if (rc != 0)
    return rc;

  /* The headers. */
  int close = 0, keep_alive = 0, upgrade = 0, hosts = 0, te = 0;
  while (!(p + 1 < end && p[0] == '\r' && p[1] == '\n')) {
    const char *name = p;
    while (p < end && tchar[(unsigned char)*p])
      p++;
    /* No name, a space before the colon, or a folded line. */
    if (p == name || p == end || *p != ':')
      return EDDY__HTTP_BAD;
    size_t name_len = (size_t)(p - name);
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    const char *value = p;
    while (p < end && (byte_class[(unsigned char)*p] & FIELD))
      p++;
    if (p == end || *p != '\r')
      return EDDY__HTTP_BAD; /* a control byte, NUL or bare LF */
    if (end - p < 2 || p[1] != '\n')
      return EDDY__HTTP_BAD;
    const char *vend = p;
    while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
      vend--;
    size_t value_len = (size_t)(vend - value);
    p += 2;
    if (req->nheaders == max_headers)
      return EDDY__HTTP_TOO_LARGE;
    eddy__http_header_t *h = &req->headers[req->nheaders++];
    h->name = name;
    h->name_len = name_len;
    h->value = value;
    h->value_len = value_len;

    switch (lower((unsigned char)name[0])) {
    case 'c':
      if (equal_nocase(name, name_len, "content-length", 14)) {
        if (req->content_length >= 0 ||
            content_length(value, value_len, &req->content_length) != 0)
          return EDDY__HTTP_BAD;
      } else if (equal_nocase(name, name_len, "connection", 10)) {
        connection_tokens(value, value_len, &close, &keep_alive, &upgrade);
      }
      break;
    case 't':
      if (equal_nocase(name, name_len, "transfer-encoding", 17)) {
        if (te++ || !equal_nocase(value, value_len, "chunked", 7))
          return EDDY__HTTP_UNSUPPORTED;
        req->flags |= EDDY__HTTP_CHUNKED;
      }
      break;
    case 'h':
      if (equal_nocase(name, name_len, "host", 4))
        hosts++;
      break;
    case 'e':
      if (equal_nocase(name, name_len, "expect", 6)) {
        if (!equal_nocase(value, value_len, "100-continue", 12))
          return EDDY__HTTP_EXPECTATION;
        req->flags |= EDDY__HTTP_EXPECT;
      }
      break;
    case 'u':
      if (equal_nocase(name, name_len, "upgrade", 7)) {
        req->upgrade = value;
        req->upgrade_len = value_len;
      }
      break;
    }
  }
  if (p + 2 != end)
    return EDDY__HTTP_BAD;

  /* The rules that take the whole head. */
  if ((req->flags & EDDY__HTTP_CHUNKED) && req->content_length >= 0)
    return EDDY__HTTP_BAD; /* the classic smuggling pair */
  if ((req->flags & EDDY__HTTP_CHUNKED) && req->minor == 0)
    return EDDY__HTTP_BAD;
  if (req->minor == 1 && hosts != 1)
    return EDDY__HTTP_BAD;
  if (hosts > 1)
    return EDDY__HTTP_BAD;
  if (req->minor == 1 ? !close : keep_alive && !close)
    req->flags |= EDDY__HTTP_KEEP_ALIVE;
  if (upgrade && req->upgrade != NULL)
    req->flags |= EDDY__HTTP_UPGRADE;
  if (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0)
    req->flags |= EDDY__HTTP_HEAD;
  return 0;
}

const eddy__http_header_t *eddy__http_find(const eddy__http_request_t *req,
                                           const char *name, size_t len) {
  for (size_t i = 0; i < req->nheaders; i++)
    if (equal_nocase(req->headers[i].name, req->headers[i].name_len, name,
                     len))
      return &req->headers[i];
  return NULL;
}

/* ======================================================================= */
/* Chunked bodies */

enum {
  CH_SIZE_START, /* the first hex digit of a chunk size */
  CH_SIZE,       /* more hex digits, or what ends the size */
  CH_EXT,        /* a chunk extension, up to CR */
  CH_SIZE_LF,    /* the LF after the size line */
  CH_DATA,
  CH_DATA_CR,    /* the CRLF after a chunk's data */
  CH_DATA_LF,
  CH_TRAILER_START, /* a trailer line, or the CR of the empty line */
  CH_TRAILER,       /* within a trailer line */
  CH_TRAILER_LF,    /* the LF ending a trailer line */
  CH_END_LF,        /* the LF of the final empty line */
  CH_DONE
};

int eddy__http_chunked_decode(eddy__http_chunked_t *d, char *buf, size_t len,
                              size_t *used, size_t *out) {
  size_t r = 0, w = 0;
  int rc = 0;
  while (r < len && d->state != CH_DONE) {
    unsigned char c = (unsigned char)buf[r];
    switch (d->state) {
    case CH_SIZE_START:
    case CH_SIZE: {
      int v = hex_value(c);
      if (v >= 0) {
        if (d->remaining >> 60)
          return EDDY__HTTP_BAD; /* more than 15 hex digits' worth */
        d->remaining = d->remaining * 16 + (uint64_t)v;
        d->state = CH_SIZE;
      } else if (d->state == CH_SIZE && c == ';') {
        d->trailer = 0;
        d->state = CH_EXT;
      } else if (d->state == CH_SIZE && c == '\r') {
        d->state = CH_SIZE_LF;
      } else {
        return EDDY__HTTP_BAD;
      }
      r++;
      break;
    }
    case CH_EXT:
      if (c == '\r')
        d->state = CH_SIZE_LF;
      else if (!is_field_byte(c) || ++d->trailer > MAX_CHUNK_EXT)
        return EDDY__HTTP_BAD;
      r++;
      break;
    case CH_SIZE_LF:
      if (c != '\n')
        return EDDY__HTTP_BAD;
      r++;
      if (d->remaining == 0) {
        d->trailer = 0;
        d->state = CH_TRAILER_START;
      } else {
        d->state = CH_DATA;
      }
      break;
    case CH_DATA: {
      size_t n = len - r;
      if (n > d->remaining)
        n = (size_t)d->remaining;
      memmove(buf + w, buf + r, n);
      w += n;
      r += n;
      d->remaining -= n;
      if (d->remaining == 0)
        d->state = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
      if (c != '\r')
        return EDDY__HTTP_BAD;
      d->state = CH_DATA_LF;
      r++;
      break;
    case CH_DATA_LF:
      if (c != '\n')
        return EDDY__HTTP_BAD;
      d->state = CH_SIZE_START;
      r++;
      break;
    case CH_TRAILER_START:
      if (c == '\r') {
        d->state = CH_END_LF;
        r++;
        break;
      }
      d->state = CH_TRAILER; /* the byte starts a trailer line */
      __attribute__((fallthrough));
    case CH_TRAILER:
      if (c == '\r')
        d->state = CH_TRAILER_LF;
      else if (!is_field_byte(c))
        return EDDY__HTTP_BAD;
      if (++d->trailer > MAX_TRAILER)
        return EDDY__HTTP_BAD;
      r++;
      break;
    case CH_TRAILER_LF:
      if (c != '\n')
        return EDDY__HTTP_BAD;
      d->state = CH_TRAILER_START;
      r++;
      break;
    case CH_END_LF:
      if (c != '\n')
        return EDDY__HTTP_BAD;
      d->state = CH_DONE;
      r++;
      break;
    }
  }
  if (d->state == CH_DONE)
    rc = 1;
  *used = r;
  *out = w;
  return rc;
}

/* ======================================================================= */
/* Percent-decoding */

long eddy__http_unescape(const char *src, size_t len, char *dst) {
  size_t w = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] != '%') {
      dst[w++] = src[i];
      continue;
    }
    if (i + 2 >= len)
      return -1;
    int hi = hex_value((unsigned char)src[i + 1]);
    int lo = hex_value((unsigned char)src[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
      return -1;
    dst[w++] = (char)(hi * 16 + lo);
    i += 2;
  }
  return (long)w;
}

/* ======================================================================= */
/* Responses */

const char *eddy__http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  }
  return status < 200 ? "Informational" : status < 300 ? "Success"
       : status < 400 ? "Redirection" : status < 500 ? "Client Error"
                      : "Server Error";
}

size_t eddy__http_date(char *buf, int64_t t) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  memcpy(buf, "Date: ", 6);
  memcpy(buf + 6, days + tm.tm_wday * 3, 3);
  buf[9] = ',';
  buf[10] = ' ';
  buf[11] = (char)('0' + tm.tm_mday / 10);
  buf[12] = (char)('0' + tm.tm_mday % 10);
  buf[13] = ' ';
  memcpy(buf + 14, months + tm.tm_mon * 3, 3);
  buf[17] = ' ';
  int y = tm.tm_year + 1900;
  buf[18] = (char)('0' + y / 1000 % 10);
  buf[19] = (char)('0' + y / 100 % 10);
  buf[20] = (char)('0' + y / 10 % 10);
  buf[21] = (char)('0' + y % 10);
  buf[22] = ' ';
  buf[23] = (char)('0' + tm.tm_hour / 10);
  buf[24] = (char)('0' + tm.tm_hour % 10);
  buf[25] = ':';
  buf[26] = (char)('0' + tm.tm_min / 10);
  buf[27] = (char)('0' + tm.tm_min % 10);
  buf[28] = ':';
  buf[29] = (char)('0' + tm.tm_sec / 10);
  buf[30] = (char)('0' + tm.tm_sec % 10);
  memcpy(buf + 31, " GMT\r\n", 6);
  return 37;
}

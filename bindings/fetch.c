/*
 * fetch.c: the HTTP client's C side (module eddy.c.fetch;
 * lua/eddy/http/client.lua makes eddy.http.request of it). A request is a
 * curl easy handle on the thread's multi handle (core/curl.c) while its
 * task waits; the response head and body are gathered in C and handed over
 * once. The body has a maximum; the task's timeout or cancellation takes
 * the transfer off at once. A request whose response is streamed, or whose
 * body comes from a Lua function, is a transfer object instead: its task
 * waits on it step by step, and is woken to call the body function when
 * curl wants bytes (curl's callbacks never call Lua).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>

#include "../core/curl.h"
#include "bindings.h"

/* A growing byte string. */
typedef struct bytes_s {
  char *data;
  size_t len, cap;
} bytes_t;

static int bytes_add(bytes_t *b, const char *p, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < n)
      cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
      return -1;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

typedef struct request_s {
  eddy__xfer_t xfer;
  eddy_runtime_t *rt;
  eddy__task_t *task;
  struct curl_slist *headers_out;
  struct curl_slist *resolve;
  bytes_t head;  /* the last response's head lines */
  bytes_t body;
  size_t max_body;
  int too_large;
  char error[CURL_ERROR_SIZE];
  /* A transfer object (a streamed response, or a body function) owns
     the request rather than the task's wait; the task waits on `reader`
     for what `want` says. A streamed body holds what came and was not
     read yet. */
  int boxed;
  int stream;
  size_t total;      /* body bytes so far */
  int paused;        /* curl holds the rest until we have room */
  int finished;      /* the transfer ended, with rc */
  CURLcode rc;
  eddy__waiter_t reader;
  enum { WANT_HEAD, WANT_BODY, WANT_RESULT } want;
  int head_final;    /* the last head is all there */
  int follow;        /* curl follows redirects */
  FILE *upload;      /* body_file: the body, read by curl */
  curl_off_t upload_size;
  /* A body function: the task hands its chunks over one at a time (`up`,
     sent from up_off), so at most one chunk waits here. */
  int body_fn;
  bytes_t up;
  size_t up_off;
  int up_end;        /* the function said the body ends */
  int up_want;       /* the task is to call the function for more */
  int up_paused;     /* curl's read waits for it */
  curl_off_t up_length; /* body_length, -1 if none */
  curl_off_t up_sent;
  int up_short;      /* the body ended before body_length */
} request_t;

/* A streamed response's unread bytes, past which curl is paused. */
#define STREAM_BUFFER (256 * 1024)

static void request_free(request_t *r) {
  if (r->upload != NULL)
    fclose(r->upload);
  if (r->xfer.easy != NULL)
    eddy__curl_easy_release(r->rt, r->xfer.easy);
  curl_slist_free_all(r->headers_out);
  curl_slist_free_all(r->resolve);
  free(r->head.data);
  free(r->body.data);
  free(r->up.data);
  free(r);
}

/* What curl pauses in r (CURLPAUSE_*): a direction stays paused until its
   side has bytes or room. */
static int pause_mask(const request_t *r) {
  return (r->paused ? CURLPAUSE_RECV : 0) | (r->up_paused ? CURLPAUSE_SEND : 0);
}

/* curl wants bytes of a body function's body: what the task handed over,
   or a pause until the task has called the function again. The task is
   asked for the next chunk as soon as one is used up. */
static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  request_t *r = ud;
  size_t avail = r->up.len - r->up_off;
  if (avail == 0) {
    if (r->up_end && r->up_length >= 0 && r->up_sent < r->up_length) {
      r->up_short = 1; /* else the server waits for the rest */
      return CURL_READFUNC_ABORT;
    }
    if (r->up_end)
      return 0;
    r->up_want = 1;
    r->up_paused = 1;
    eddy__curl_mark(&r->xfer);
    return CURL_READFUNC_PAUSE;
  }
  size_t len = size * n < avail ? size * n : avail;
  memcpy(p, r->up.data + r->up_off, len);
  r->up_off += len;
  r->up_sent += (curl_off_t)len;
  if (r->up_off == r->up.len) {
    r->up.len = r->up_off = 0;
    if (!r->up_end) {
      r->up_want = 1;
      eddy__curl_mark(&r->xfer);
    }
  }
  return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  request_t *r = ud;
  size_t len = size * n;
  if (r->total + len > r->max_body) {
    r->too_large = 1;
    return 0; /* curl ends the transfer */
  }
  if (r->stream && r->body.len > 0 && r->body.len + len > STREAM_BUFFER) {
    r->paused = 1;
    return CURL_WRITEFUNC_PAUSE; /* curl keeps it until the reader reads */
  }
  if (bytes_add(&r->body, p, len) != 0)
    return 0;
  r->total += len;
  if (r->stream)
    eddy__curl_mark(&r->xfer);
  return len;
}

static int is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  request_t *r = ud;
  size_t len = size * n;
  /* The blank line that ends a head: a streamed response's reader may
     have it now, unless curl goes on to the next (1xx, or a redirect it
     follows). */
  if (r->stream && len <= 2 && (len == 0 || p[0] == '\r' || p[0] == '\n')) {
    long status = 0, follow = 0;
    curl_easy_getinfo(r->xfer.easy, CURLINFO_RESPONSE_CODE, &status);
    follow = r->follow;
    if (status >= 200 && !(follow && is_redirect(status))) {
      r->head_final = 1;
      eddy__curl_mark(&r->xfer);
    }
  }
  /* A new status line (after a redirect or a 100 Continue): only the last
     response's head is kept. */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
    r->head.len = 0;
  if (r->head.len + len > 256 * 1024)
    return 0;
  return bytes_add(&r->head, p, len) == 0 ? len : 0;
}

/* The short, stable word for what went wrong. */
static const char *error_word(request_t *r, CURLcode rc) {
  if (r->too_large)
    return "too large";
  if (r->up_short)
    return "upload failed";
  switch (rc) {
  case CURLE_URL_MALFORMAT: return "bad url";
  case CURLE_UNSUPPORTED_PROTOCOL: return "unsupported scheme";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return "dns failure";
  case CURLE_COULDNT_CONNECT: return "refused";
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_TOO_MANY_REDIRECTS: return "too many redirects";
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE: return "tls failure";
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE: return "closed";
  default: return "io error";
  }
}

/* Pushes nil, the error word, and the detail. */
static int push_failure(lua_State *co, request_t *r) {
  lua_pushnil(co);
  lua_pushstring(co, error_word(r, r->rc));
  if (r->up_short)
    lua_pushfstring(co, "the body ended after %f of its %f bytes (body_length)",
                    (lua_Number)r->up_sent, (lua_Number)r->up_length);
  else
    lua_pushstring(co, r->error[0] ? r->error : curl_easy_strerror(r->rc));
  return 3;
}

/* Pushes the response: status, head (the header lines), body. */
static int push_response(lua_State *co, request_t *r) {
  long status = 0;
  curl_easy_getinfo(r->xfer.easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(co, status);
  lua_pushlstring(co, r->head.data ? r->head.data : "", r->head.len);
  lua_pushlstring(co, r->body.data ? r->body.data : "", r->body.len);
  char *url = NULL;
  curl_easy_getinfo(r->xfer.easy, CURLINFO_EFFECTIVE_URL, &url);
  lua_pushstring(co, url ? url : "");
  return 4;
}

static void transfer_wake(request_t *r);

static void on_done(eddy__xfer_t *x, CURLcode rc) {
  request_t *r = x->data;
  if (r->boxed) {
    r->finished = 1;
    r->rc = rc;
    transfer_wake(r);
    return;
  }
  eddy__task_t *t = r->task;
  lua_State *co = eddy__task_wake_begin(t);
  int n;
  if (rc == CURLE_OK) {
    n = push_response(co, r);
  } else {
    r->rc = rc;
    n = push_failure(co, r);
  }
  request_free(r);
  eddy__task_wake_end(t, n);
}

/* The task stopped waiting (timeout, cancel, teardown): the transfer
   goes at once, and no completion can come. */
static void detach(eddy__task_t *t) {
  request_t *r = t->wait_data;
  eddy__curl_abort(&r->xfer);
  request_free(r);
}

static const eddy__wait_ops_t fetch_ops = {"http request", detach, NULL};

static long opt_long(lua_State *L, const char *field, long def) {
  return (long)eddyL_optfield_number(L, 1, field, (double)def);
}

static const char *opt_string(lua_State *L, const char *field) {
  lua_getfield(L, 1, field);
  const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1);
  return s; /* anchored by the options table while request() runs */
}

/* Adds the "Name: value" lines of opts.headers (an array of lines). */
static int set_headers(lua_State *L, request_t *r) {
  lua_getfield(L, 1, "header_lines");
  int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    struct curl_slist *h =
        curl_slist_append(r->headers_out, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (h == NULL) {
      lua_pop(L, 1);
      return -1;
    }
    r->headers_out = h;
  }
  lua_pop(L, 1);
  return 0;
}

/* Sets up the easy handle from the options table at 1. */
static int setup(lua_State *L, request_t *r) {
  CURL *e = r->xfer.easy;
  const char *method = opt_string(L, "method");
  size_t body_len = 0;
  lua_getfield(L, 1, "body");
  const char *body = lua_isstring(L, -1) ? lua_tolstring(L, -1, &body_len)
                                         : NULL;
  curl_easy_setopt(e, CURLOPT_URL, opt_string(L, "url"));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip, deflate, ... */
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   opt_long(L, "connect_timeout_ms", 10000));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, opt_long(L, "timeout_ms", 0));
  r->follow = eddyL_optfield_boolean(L, 1, "follow_redirects", 1);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)r->follow);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, opt_long(L, "max_redirects", 10));
  long verify = eddyL_optfield_boolean(L, 1, "verify_tls", 1);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
  /* The names of eddy.tcp's tls options, given to curl's own TLS. */
  const char *ca = opt_string(L, "tls_ca");
  const char *cert = opt_string(L, "tls_cert");
  const char *key = opt_string(L, "tls_key");
  if (ca != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  if (cert != NULL)
    curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
  if (key != NULL)
    curl_easy_setopt(e, CURLOPT_SSLKEY, key);
  const char *proxy = opt_string(L, "proxy");
  if (proxy != NULL)
    curl_easy_setopt(e, CURLOPT_PROXY, proxy);
  const char *version = opt_string(L, "http_version");
  if (version != NULL && strcmp(version, "2") == 0) {
    /* Over TLS, offered in ALPN (1.1 if the server declines); in the
       clear, spoken from the first byte (prior knowledge: no Upgrade
       round trip, and the server must speak h2c). Requests wait for a
       connection being made to the host, to multiplex on it, rather
       than each opening its own. */
    int tls = strncasecmp(opt_string(L, "url"), "https:", 6) == 0;
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     tls ? (long)CURL_HTTP_VERSION_2TLS
                         : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (tls || curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000) {
      curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    } else {
      /* libcurl before 8.0 breaks a prior-knowledge connection it reuses
         ("Error in the HTTP2 framing layer", curl issue 10634): each such
         request has a connection of its own. */
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
  } else if (version != NULL) {
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  }
  const char *resolve = opt_string(L, "resolve");
  if (resolve != NULL) {
    r->resolve = curl_slist_append(NULL, resolve);
    curl_easy_setopt(e, CURLOPT_RESOLVE, r->resolve);
  }
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
  } else if (r->upload != NULL || r->body_fn) {
    /* curl reads the file as it sends (local disk, read on the loop), or
       takes what the task hands over. Without a length (-1) the body goes
       chunked. */
    curl_off_t size = r->upload_size;
    if (r->body_fn) {
      size = (curl_off_t)eddyL_optfield_number(L, 1, "body_length", -1);
      r->up_length = size;
      curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(e, CURLOPT_READDATA, r);
    } else {
      curl_easy_setopt(e, CURLOPT_READDATA, r->upload);
    }
    if (strcmp(method, "POST") == 0) {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
    } else {
      curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, size);
    }
  }
  lua_pop(L, 1);
  if (set_headers(L, r) != 0)
    return -1;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers_out);
  return 0;
}

/* ======================================================================= */
/* Transfer objects: a streamed response, a body function */

static const eddyL_class_t transfer_class = {"eddy.http.transfer"};

typedef struct transfer_box_s {
  request_t *r;
} transfer_box_t;

/* Whether what the task waits for is there (or the body function is to
   be called). */
static int transfer_ready(const request_t *r) {
  if (r->finished || r->up_want)
    return 1;
  switch (r->want) {
  case WANT_HEAD: return r->head_final || r->body.len > 0;
  case WANT_BODY: return r->body.len > 0;
  default: return 0;
  }
}


/* The head: status, head lines, url. */
static int push_head(lua_State *co, request_t *r) {
  long status = 0;
  char *url = NULL;
  curl_easy_getinfo(r->xfer.easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->xfer.easy, CURLINFO_EFFECTIVE_URL, &url);
  lua_pushinteger(co, status);
  lua_pushlstring(co, r->head.data ? r->head.data : "", r->head.len);
  lua_pushstring(co, url ? url : "");
  return 3;
}

/* The next bytes of a streamed body, nil at the end, or nil, err, detail. */
static int push_bytes(lua_State *co, request_t *r) {
  if (r->body.len > 0) {
    lua_pushlstring(co, r->body.data, r->body.len);
    r->body.len = 0;
    if (r->paused && !r->finished) {
      r->paused = 0;
      curl_easy_pause(r->xfer.easy, pause_mask(r)); /* may add bytes */
    }
    return 1;
  }
  if (r->rc != CURLE_OK)
    return push_failure(co, r);
  lua_pushnil(co); /* the end */
  return 1;
}

/* Pushes the answer to a wait that is ready: false when the body function
   is to be called, else what `want` asks for. */
static int transfer_answer(lua_State *co, request_t *r) {
  if (r->up_want && !r->finished) {
    r->up_want = 0;
    lua_pushboolean(co, 0);
    return 1;
  }
  switch (r->want) {
  case WANT_HEAD:
    if (r->finished && r->rc != CURLE_OK)
      return push_failure(co, r);
    return push_head(co, r);
  case WANT_BODY:
    return push_bytes(co, r);
  default:
    if (r->rc != CURLE_OK)
      return push_failure(co, r);
    return push_response(co, r);
  }
}

static void transfer_wake(request_t *r) {
  if (!eddy__waiter_is_current(r->reader) || !transfer_ready(r))
    return;
  eddy__task_t *t = r->reader.task;
  r->reader.task = NULL;
  lua_State *co = eddy__task_wake_begin(t);
  eddy__task_wake_end(t, transfer_answer(co, r));
}

static void on_progress(eddy__xfer_t *x) {
  transfer_wake(x->data);
}

static void transfer_detach(eddy__task_t *t) {
  request_t *r = t->wait_data;
  r->reader.task = NULL; /* the transfer goes on; a later wait resumes */
}

static const eddy__wait_ops_t transfer_ops = {"http transfer", transfer_detach,
                                              NULL};

static request_t *check_transfer(lua_State *L) {
  request_t *r =
      ((transfer_box_t *)eddyL_checkobject(L, 1, &transfer_class))->r;
  if (r == NULL)
    luaL_error(L, "the response body was closed");
  return r;
}

static int transfer_wait(lua_State *L, int want) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  request_t *r = check_transfer(L);
  if (eddy__waiter_is_current(r->reader))
    return luaL_error(L, "another task reads this response");
  r->want = want;
  if (transfer_ready(r))
    return transfer_answer(L, r);
  int64_t ms = eddyL_opttimeout(L, 2, -1);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &transfer_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  eddy__task_wait(t, &transfer_ops, r, ms);
  r->reader = eddy__waiter_of(t);
  return eddy__task_yield(&rt->sched, L);
}

/* Each wait answers false when the body function is to be called (then
   transfer:feed), else: */

/* transfer:head([timeout]) -> status, head, url | nil, err, detail */
static int transfer_head(lua_State *L) {
  return transfer_wait(L, WANT_HEAD);
}

/* transfer:read([timeout]) -> bytes | nil (the end) | nil, err, detail */
static int transfer_read(lua_State *L) {
  return transfer_wait(L, WANT_BODY);
}

/* transfer:result() -> status, head, body, url | nil, err, detail */
static int transfer_result(lua_State *L) {
  return transfer_wait(L, WANT_RESULT);
}

/* transfer:feed(chunk | nil): the body function's answer, nil at the
   body's end. Unpauses curl from outside its callbacks. */
static int transfer_feed(lua_State *L) {
  request_t *r = check_transfer(L);
  size_t len = 0;
  const char *chunk = luaL_optlstring(L, 2, NULL, &len);
  if (!r->body_fn || r->up_end)
    return luaL_error(L, "no body is wanted");
  if (chunk == NULL)
    r->up_end = 1;
  else if (bytes_add(&r->up, chunk, len) != 0)
    return eddyL_error(L, EDDY_ENOMEM);
  if (r->up_paused && !r->finished) {
    r->up_paused = 0;
    curl_easy_pause(r->xfer.easy, pause_mask(r));
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* transfer:close(): the transfer stops if it still runs. */
static int transfer_close(lua_State *L) {
  transfer_box_t *box = eddyL_toobject(L, 1);
  request_t *r = box->r;
  if (r == NULL)
    return 0;
  box->r = NULL;
  if (eddy__waiter_is_current(r->reader)) {
    eddy__task_t *t = r->reader.task;
    lua_State *co = eddy__task_wake_begin(t);
    eddy__task_wake_end(t, eddyL_error(co, EDDY_ECLOSED));
  }
  eddy__curl_abort(&r->xfer);
  request_free(r);
  return 0;
}

/* request(opts) -> status, head, body, url | nil, err, detail, or a
   transfer object when opts.stream or opts.body_fn. opts (made by
   client.lua): url, method, header_lines, body, body_file, body_fn,
   body_length, timeout_ms, connect_timeout_ms, follow_redirects,
   max_redirects, verify_tls, proxy, http_version, max_body, stream,
   resolve ("host:port:address"). */
static int fetch_request(lua_State *L) {
  eddy_runtime_t *rt = eddyL_runtime(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  eddy__task_t *t = eddyL_begin_wait(L, rt, &fetch_ops);
  if (t == NULL)
    return eddy__task_yield(&rt->sched, L);
  request_t *r = calloc(1, sizeof *r);
  if (r == NULL || (r->xfer.easy = eddy__curl_easy(rt)) == NULL) {
    free(r);
    return eddyL_error(L, EDDY_ENOMEM);
  }
  r->rt = rt;
  r->xfer.data = r;
  r->xfer.on_done = on_done;
  r->xfer.on_progress = on_progress;
  r->max_body = (size_t)eddyL_optfield_number(L, 1, "max_body", 64.0 * 1024 * 1024);
  r->stream = eddyL_optfield_boolean(L, 1, "stream", 0);
  r->body_fn = eddyL_optfield_boolean(L, 1, "body_fn", 0);
  r->up_want = r->body_fn; /* the first chunk before curl asks */
  r->boxed = r->stream || r->body_fn;
  const char *file = opt_string(L, "body_file");
  if (file != NULL && (r->upload = fopen(file, "rb")) == NULL) {
    int e = errno;
    request_free(r);
    lua_pushnil(L);
    lua_pushstring(L, e == ENOENT ? "not found" : "io error");
    lua_pushfstring(L, "%s: %s", file, strerror(e));
    return 3;
  }
  if (r->upload != NULL) {
    struct stat st;
    fstat(fileno(r->upload), &st);
    r->upload_size = (curl_off_t)st.st_size;
  }
  int obj = 0;
  if (r->boxed) {
    /* Owned by its Lua object from now on. */
    transfer_box_t *box = eddyL_newobject(L, &transfer_class, sizeof *box);
    box->r = r;
    obj = lua_gettop(L);
  }
  int err = setup(L, r) == 0 ? eddy__curl_start(rt, &r->xfer) : EDDY_ENOMEM;
  if (r->boxed) {
    lua_settop(L, obj);
    if (err != 0)
      return eddyL_error(L, err); /* the object's __gc frees it */
    return 1;
  }
  if (err != 0) {
    request_free(r);
    return eddyL_error(L, err);
  }
  r->task = t;
  eddy__task_wait(t, &fetch_ops, r, -1); /* curl keeps the time */
  return eddy__task_yield(&rt->sched, L);
}

/* limits(per_host, total): connections this thread opens (0: no limit);
   HTTP/2 requests to one host share a connection. */
static int fetch_limits(lua_State *L) {
  lua_Integer per_host = luaL_checkinteger(L, 1);
  lua_Integer total = luaL_checkinteger(L, 2);
  luaL_argcheck(L, per_host >= 0, 1, "not a count");
  luaL_argcheck(L, total >= 0, 2, "not a count");
  int err = eddy__curl_limits(eddyL_runtime(L), (long)per_host, (long)total);
  if (err != 0)
    return eddyL_error(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int transfer_close_checked(lua_State *L) {
  eddyL_checkobject(L, 1, &transfer_class);
  return transfer_close(L);
}

static const luaL_Reg transfer_methods[] = {
    {"head", transfer_head},
    {"read", transfer_read},
    {"result", transfer_result},
    {"feed", transfer_feed},
    {"close", transfer_close_checked},
    {NULL, NULL},
};

static const luaL_Reg transfer_meta[] = {
    {"__gc", transfer_close},
    {NULL, NULL},
};

static const luaL_Reg fetch_funcs[] = {
    {"request", fetch_request},
    {"limits", fetch_limits},
    {NULL, NULL},
};

int luaopen_eddy_c_fetch(lua_State *L) {
  eddyL_newclass(L, &transfer_class, transfer_methods, transfer_meta);
  eddyL_newlib(L, fetch_funcs);
  return 1;
}

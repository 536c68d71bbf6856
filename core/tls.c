/*
 * tls.c: TLS inside a stream (see tls.h), on OpenSSL with memory BIOs:
 * the loop reads ciphertext, hands it to OpenSSL, and decrypts what it can
 * into the stream's read buffer; OpenSSL's output goes to the socket
 * through the stream's own write queue. Knows nothing of Lua.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "addr.h"

#define SESSIONS 32        /* a client's saved sessions, by host and port */
#define SESSION_KEY 128
#define PIECE 16384        /* one record's worth of plaintext */
#define WBIO_KEEP 16384    /* an output buffer bigger than this ... */
#define WBIO_SMALL 4096    /* ... is dropped after a flush smaller than this */
#define WRITE_SLICE 65536  /* plaintext encrypted before a flush */

typedef struct name_ctx_s {
  char *name; /* "example.com" or "*.example.com" */
  SSL_CTX *ctx;
} name_ctx_t;

typedef struct session_s {
  char key[SESSION_KEY];
  SSL_SESSION *sess;
} session_t;

struct eddy__tls_config_s {
  int refs;
  int server;
  SSL_CTX *ctx;
  unsigned char *alpn; /* a server's protocols, in its order of preference */
  size_t alpn_len;
  name_ctx_t *names;
  int nnames;
  session_t sessions[SESSIONS];
  int next_session;
};

struct eddy__tls_s {
  SSL *ssl;
  BIO *rbio; /* the network's bytes, for OpenSSL to read */
  BIO *wbio; /* OpenSSL's output, for the network */
  eddy__tls_config_t *cfg;
  eddy__stream_t *stream;
  eddy__rbuf_t cin; /* ciphertext as it was read */
  eddy__timer_t timer;
  void (*on_done)(eddy__stream_t *s, int status);
  char *pend; /* plaintext written before the handshake ended */
  size_t pend_len;
  int done;
  int failed;
  int shut; /* close_notify sent */
  char key[SESSION_KEY];
  char reason[EDDY__TLS_REASON];
};

#define tls_of(p, field) \
  ((eddy__tls_t *)((char *)(p) - offsetof(eddy__tls_t, field)))

/* ======================================================================= */
/* Reasons */

/* OpenSSL's reason for the failure just seen: a failed verification says
   why the certificate was refused; else the error queue's last entry. */
static void take_reason(SSL *ssl, char *reason, const char *fallback) {
  long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
  unsigned long e = ERR_peek_last_error();
  if (v != X509_V_OK && ssl != NULL && SSL_get_verify_mode(ssl) != 0) {
    snprintf(reason, EDDY__TLS_REASON, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
  } else if (e != 0) {
    const char *r = ERR_reason_error_string(e);
    snprintf(reason, EDDY__TLS_REASON, "%s",
             r != NULL ? r : "unknown openssl error");
  } else {
    snprintf(reason, EDDY__TLS_REASON, "%s", fallback);
  }
  ERR_clear_error();
}

/* ======================================================================= */
/* Configurations */

static int on_servername(SSL *ssl, int *alert, void *arg) {
  eddy__tls_config_t *cfg = arg;
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  (void)alert;
  if (name == NULL)
    return SSL_TLSEXT_ERR_OK;
  const char *dot = strchr(name, '.');
  for (int i = 0; i < cfg->nnames; i++) {
    const char *n = cfg->names[i].name;
    int hit = n[0] == '*' ? dot != NULL && strcasecmp(n + 1, dot) == 0
                          : strcasecmp(n, name) == 0;
    if (hit) {
      SSL_set_SSL_CTX(ssl, cfg->names[i].ctx);
      break;
    }
  }
  return SSL_TLSEXT_ERR_OK;
}

/* The server's order of preference wins; no protocol in common ends the
   handshake (RFC 7301's no_application_protocol). */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg) {
  eddy__tls_config_t *cfg = arg;
  unsigned char *sel;
  (void)ssl;
  if (SSL_select_next_proto(&sel, outlen, cfg->alpn, (unsigned)cfg->alpn_len,
                            in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* A client keeps the newest session per host and port, to resume. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  eddy__tls_t *t = SSL_get_app_data(ssl);
  eddy__tls_config_t *cfg = t->cfg;
  if (t->key[0] == '\0')
    return 0;
  session_t *slot = NULL;
  for (int i = 0; i < SESSIONS && slot == NULL; i++)
    if (cfg->sessions[i].sess && strcmp(cfg->sessions[i].key, t->key) == 0)
      slot = &cfg->sessions[i];
  if (slot == NULL) {
    slot = &cfg->sessions[cfg->next_session];
    cfg->next_session = (cfg->next_session + 1) % SESSIONS;
  }
  if (slot->sess)
    SSL_SESSION_free(slot->sess);
  slot->sess = sess; /* returning 1 keeps OpenSSL's reference */
  memcpy(slot->key, t->key, SESSION_KEY);
  return 1;
}

static int proto_version(int v) {
  return v == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

static int load_cert(SSL_CTX *ctx, const eddy__tls_opts_t *o, char *reason) {
  const char *key = o->key != NULL ? o->key : o->cert;
  if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
    take_reason(NULL, reason, "bad certificate");
    size_t n = strlen(reason);
    snprintf(reason + n, EDDY__TLS_REASON - n, " (certificate %s)", o->cert);
    return -1;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    take_reason(NULL, reason, "bad key");
    size_t n = strlen(reason);
    snprintf(reason + n, EDDY__TLS_REASON - n, " (key %s)", key);
    return -1;
  }
  return 0;
}

static int load_ca(SSL_CTX *ctx, const eddy__tls_opts_t *o, char *reason) {
  struct stat st;
  int ok;
  if (o->ca == NULL)
    ok = SSL_CTX_set_default_verify_paths(ctx);
  else if (stat(o->ca, &st) == 0 && S_ISDIR(st.st_mode))
    ok = SSL_CTX_load_verify_locations(ctx, NULL, o->ca);
  else
    ok = SSL_CTX_load_verify_locations(ctx, o->ca, NULL);
  if (ok != 1) {
    take_reason(NULL, reason, "cannot load the CA");
    size_t n = strlen(reason);
    snprintf(reason + n, EDDY__TLS_REASON - n, " (ca %s)",
             o->ca ? o->ca : "system store");
    return -1;
  }
  return 0;
}

static int set_algorithms(SSL_CTX *ctx, const eddy__tls_opts_t *o,
                          char *reason) {
  SSL_CTX_set_min_proto_version(ctx, proto_version(o->min_version));
  if (o->max_version)
    SSL_CTX_set_max_proto_version(ctx, proto_version(o->max_version));
  const char *suites = o->ciphersuites;
  if ((o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) ||
      (suites && SSL_CTX_set_ciphersuites(ctx, suites) != 1)) {
    take_reason(NULL, reason, "bad cipher list");
    return -1;
  }
  return 0;
}

/* One SSL_CTX with o's settings; the SNI and ALPN callbacks get cfg. */
static SSL_CTX *ctx_new(const eddy__tls_opts_t *o, eddy__tls_config_t *cfg,
                        char *reason) {
  SSL_CTX *ctx = SSL_CTX_new(o->server ? TLS_server_method()
                                       : TLS_client_method());
  if (ctx == NULL) {
    take_reason(NULL, reason, "out of memory");
    return NULL;
  }
  /* Renegotiation lets a client make the server work for free. */
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (set_algorithms(ctx, o, reason) != 0 ||
      (o->cert && load_cert(ctx, o, reason) != 0) ||
      (o->verify && load_ca(ctx, o, reason) != 0))
    goto fail;
  if (o->verify)
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (o->server
                       ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
  if (o->server) {
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"eddy", 4);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, cfg);
    if (cfg->alpn_len > 0)
      SSL_CTX_set_alpn_select_cb(ctx, on_alpn, cfg);
  } else {
    if (o->alpn_len > 0 &&
        SSL_CTX_set_alpn_protos(ctx, o->alpn, (unsigned)o->alpn_len) != 0) {
      take_reason(NULL, reason, "bad alpn list");
      goto fail;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  }
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

eddy__tls_config_t *eddy__tls_config_new(const eddy__tls_opts_t *o,
                                         char *reason) {
  eddy__tls_config_t *cfg = calloc(1, sizeof *cfg);
  if (cfg == NULL) {
    snprintf(reason, EDDY__TLS_REASON, "out of memory");
    return NULL;
  }
  cfg->refs = 1;
  cfg->server = o->server;
  if (o->server && o->alpn_len > 0) {
    cfg->alpn = malloc(o->alpn_len);
    if (cfg->alpn == NULL) {
      free(cfg);
      snprintf(reason, EDDY__TLS_REASON, "out of memory");
      return NULL;
    }
    memcpy(cfg->alpn, o->alpn, o->alpn_len);
    cfg->alpn_len = o->alpn_len;
  }
  ERR_clear_error();
  cfg->ctx = ctx_new(o, cfg, reason);
  if (cfg->ctx == NULL) {
    eddy__tls_config_unref(cfg);
    return NULL;
  }
  return cfg;
}

int eddy__tls_config_add_name(eddy__tls_config_t *cfg, const char *name,
                              const eddy__tls_opts_t *o, char *reason) {
  name_ctx_t *names = realloc(cfg->names, (cfg->nnames + 1) * sizeof *names);
  char *copy = strdup(name);
  if (names != NULL)
    cfg->names = names;
  if (names == NULL || copy == NULL) {
    free(copy);
    snprintf(reason, EDDY__TLS_REASON, "out of memory");
    return EDDY_ENOMEM;
  }
  ERR_clear_error();
  SSL_CTX *ctx = ctx_new(o, cfg, reason);
  if (ctx == NULL) {
    free(copy);
    return EDDY_ETLS;
  }
  cfg->names[cfg->nnames].name = copy;
  cfg->names[cfg->nnames].ctx = ctx;
  cfg->nnames++;
  return 0;
}

void eddy__tls_config_ref(eddy__tls_config_t *cfg) {
  cfg->refs++;
}

void eddy__tls_config_unref(eddy__tls_config_t *cfg) {
  if (cfg == NULL || --cfg->refs > 0)
    return;
  SSL_CTX_free(cfg->ctx);
  for (int i = 0; i < cfg->nnames; i++) {
    SSL_CTX_free(cfg->names[i].ctx);
    free(cfg->names[i].name);
  }
  for (int i = 0; i < SESSIONS; i++)
    if (cfg->sessions[i].sess)
      SSL_SESSION_free(cfg->sessions[i].sess);
  free(cfg->names);
  free(cfg->alpn);
  free(cfg);
}

/* ======================================================================= */
/* Output */

/* Hands OpenSSL's output (records, alerts) to the socket. Emptying a
   memory BIO clears all the memory it holds: a buffer that a big write
   grew is dropped at the next small flush rather than cleared at each. */
static int flush(eddy__stream_t *s) {
  eddy__tls_t *t = s->tls;
  char *p;
  long len = BIO_get_mem_data(t->wbio, &p);
  if (len <= 0)
    return 0;
  uv_buf_t b = uv_buf_init(p, (unsigned)len);
  int rc = eddy__stream_write_raw(s, &b, 1);
  BUF_MEM *bm;
  BIO_get_mem_ptr(t->wbio, &bm);
  if (bm->max > WBIO_KEEP && len < WBIO_SMALL) {
    BIO *fresh = BIO_new(BIO_s_mem());
    if (fresh != NULL) {
      SSL_set0_wbio(t->ssl, fresh);
      t->wbio = fresh;
      return rc;
    }
  }
  (void)BIO_reset(t->wbio);
  return rc;
}

static int put(eddy__stream_t *s, const char *p, size_t len) {
  eddy__tls_t *t = s->tls;
  while (len > 0) {
    int n = len > WRITE_SLICE ? WRITE_SLICE : (int)len;
    ERR_clear_error();
    int rc = SSL_write(t->ssl, p, n);
    if (rc <= 0) {
      take_reason(t->ssl, t->reason, "write failed");
      return s->werr = EDDY_ETLS;
    }
    p += rc;
    len -= (size_t)rc;
    if (len > 0 && (rc = flush(s)) != 0)
      return rc;
  }
  return 0;
}

int eddy__tls_write(eddy__stream_t *s, const uv_buf_t *bufs, unsigned n) {
  eddy__tls_t *t = s->tls;
  if (t->failed)
    return s->werr ? s->werr : EDDY_ETLS;
  if (!t->done) {
    /* Held until the handshake is through, and counted as queued, so
       that writers wait at the write_buffer mark meanwhile. */
    size_t held = t->pend_len, total = held;
    for (unsigned i = 0; i < n; i++)
      total += bufs[i].len;
    char *p = realloc(t->pend, total);
    if (p == NULL)
      return EDDY_ENOMEM;
    t->pend = p;
    for (unsigned i = 0; i < n; i++) {
      memcpy(t->pend + t->pend_len, bufs[i].base, bufs[i].len);
      t->pend_len += bufs[i].len;
    }
    s->wqueued += total - held;
    return 0;
  }
  /* Small pieces (a head, a body) go out as one record, not one each. */
  char chunk[PIECE];
  size_t used = 0;
  int rc = 0;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    if (used > 0 && used + bufs[i].len > sizeof chunk) {
      rc = put(s, chunk, used);
      used = 0;
    }
    if (bufs[i].len >= sizeof chunk)
      rc = rc ? rc : put(s, bufs[i].base, bufs[i].len);
    else {
      memcpy(chunk + used, bufs[i].base, bufs[i].len);
      used += bufs[i].len;
    }
  }
  if (rc == 0 && used > 0)
    rc = put(s, chunk, used);
  return rc ? rc : flush(s);
}

void eddy__tls_close_notify(eddy__stream_t *s) {
  eddy__tls_t *t = s->tls;
  eddy__timer_stop(&s->rt->timers, &t->timer);
  if (!t->done || t->failed || t->shut || s->werr)
    return;
  t->shut = 1;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
  flush(s);
}

/* ======================================================================= */
/* Input and the handshake */

static void log_failure(eddy__stream_t *s, int level, const char *what) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[EDDY__ADDR_TEXT] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0)
    eddy__addr_name((struct sockaddr *)&ss, ip, &port);
  eddy__log(s->rt, level, "tls: %s from %s port %d: %s", what, ip, port,
            s->tls->reason);
}

/* The handshake failed (or timed out): the owner hears of it through
   on_done, or (a server's connection) as the read side's end. Returns 1
   when the owner's on_read is to run. */
static int fail(eddy__stream_t *s, int err) {
  eddy__tls_t *t = s->tls;
  t->failed = 1;
  eddy__timer_stop(&s->rt->timers, &t->timer);
  flush(s); /* the alert, so that the peer knows why */
  int dropped = t->pend_len > 0;
  s->wqueued -= t->pend_len;
  free(t->pend);
  t->pend = NULL;
  t->pend_len = 0;
  s->rerr = err;
  eddy__stream_read_stop(s);
  if (s->flags & EDDY__STREAM_CLOSING) {
    eddy__stream_close(s, 0); /* it waited for the handshake: in vain */
    return 0;
  }
  if (dropped) {
    /* The held bytes never go: writers waiting on them hear why. */
    if (s->werr == 0)
      s->werr = EDDY_ETLS;
    eddy__stream_check_drain(s);
  }
  if (t->on_done != NULL) {
    void (*cb)(eddy__stream_t *, int) = t->on_done;
    t->on_done = NULL;
    cb(s, err);
    return 0;
  }
  /* A client that left says nothing about the server (as nginx, which
     logs it at info). */
  if (t->cfg->server)
    log_failure(s, err == EDDY_ECLOSED ? EDDY_LOG_INFO : EDDY_LOG_WARN,
                "handshake failed");
  return 1;
}

static void on_timeout(eddy__timer_t *timer, uint64_t due) {
  eddy__tls_t *t = tls_of(timer, timer);
  eddy__stream_t *s = t->stream;
  (void)due;
  if (t->done || t->failed || (s->flags & EDDY__STREAM_CLOSING))
    return;
  snprintf(t->reason, sizeof t->reason, "handshake timed out");
  if (fail(s, EDDY_ETIMEOUT))
    s->on_read(s);
}

/* The handshake is through: what was written meanwhile goes out, and the
   owner hears. Returns 0, or -1 when the owner closed the stream. */
static int handshake_done(eddy__stream_t *s) {
  eddy__tls_t *t = s->tls;
  t->done = 1;
  eddy__timer_stop(&s->rt->timers, &t->timer);
  if (t->pend_len > 0) {
    uv_buf_t b = uv_buf_init(t->pend, (unsigned)t->pend_len);
    s->wqueued -= t->pend_len; /* counted again as they queue */
    eddy__tls_write(s, &b, 1);
    free(t->pend);
    t->pend = NULL;
    t->pend_len = 0;
  }
  int closing = (s->flags & EDDY__STREAM_CLOSING) != 0;
  eddy__stream_handshaken(s); /* a close that waited goes on */
  if (t->on_done != NULL && !closing) {
    void (*cb)(eddy__stream_t *, int) = t->on_done;
    t->on_done = NULL;
    cb(s, 0);
  }
  return (s->flags & EDDY__STREAM_CLOSING) ? -1 : 0;
}

/* Decrypts all there is into the read buffer. Returns 1 when the owner is
   to hear (plaintext came, or the read side ended). */
static int read_plain(eddy__stream_t *s) {
  eddy__tls_t *t = s->tls;
  int heard = 0;
  for (;;) {
    char *p;
    size_t len;
    if (eddy__rbuf_reserve(&s->rt->bufs, &s->rbuf, &p, &len) < 0) {
      s->rerr = EDDY_ENOMEM;
      heard = 1;
      break;
    }
    ERR_clear_error();
    int n = SSL_read(t->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0) {
      eddy__rbuf_commit(&s->rbuf, (size_t)n);
      heard = 1;
      continue;
    }
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ)
      break;
    int err = EDDY_ECLOSED; /* close_notify */
    if (e != SSL_ERROR_ZERO_RETURN) {
      take_reason(t->ssl, t->reason, "read failed");
      err = EDDY_ETLS;
    }
    if (heard) {
      /* The last bytes and the end came in one read: the owner takes the
         bytes first, as it would over plain TCP, where the end comes in
         a read of its own. */
      s->on_read(s);
      if (s->flags & EDDY__STREAM_CLOSING)
        return 0;
    }
    s->rerr = err;
    eddy__stream_read_stop(s);
    heard = 1;
    break;
  }
  flush(s); /* a key update's answer, an alert */
  return heard;
}

static int drive(eddy__stream_t *s) {
  eddy__tls_t *t = s->tls;
  if (t->failed)
    return 0;
  if (!t->done) {
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc != 1) {
      int e = SSL_get_error(t->ssl, rc);
      if (e == SSL_ERROR_WANT_READ) {
        flush(s);
        return 0;
      }
      take_reason(t->ssl, t->reason, "handshake failed");
      return fail(s, EDDY_ETLS);
    }
    flush(s);
    if (handshake_done(s) != 0)
      return 0;
  }
  return read_plain(s);
}

eddy__rbuf_t *eddy__tls_rbuf(eddy__stream_t *s) {
  return &s->tls->cin;
}

int eddy__tls_input(eddy__stream_t *s, size_t n) {
  eddy__tls_t *t = s->tls;
  eddy__rbuf_commit(&t->cin, n);
  size_t len = eddy__rbuf_len(&t->cin);
  int rc = BIO_write(t->rbio, eddy__rbuf_data(&t->cin), (int)len);
  eddy__rbuf_consume(&t->cin, len);
  eddy__rbuf_settle(&s->rt->bufs, &t->cin);
  if (rc != (int)len) {
    snprintf(t->reason, sizeof t->reason, "out of memory");
    s->rerr = EDDY_ENOMEM;
    eddy__stream_read_stop(s);
    return 1;
  }
  return drive(s);
}

int eddy__tls_input_end(eddy__stream_t *s) {
  eddy__tls_t *t = s->tls;
  if (t->done || t->failed)
    return 1;
  snprintf(t->reason, sizeof t->reason, "connection closed in the handshake");
  return fail(s, t->on_done != NULL ? EDDY_ETLS : s->rerr);
}

/* ======================================================================= */
/* Connections */

static int is_ip(const char *name) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, name, buf) == 1 ||
         inet_pton(AF_INET6, name, buf) == 1;
}

static void name_server(eddy__tls_t *t, const char *name) {
  if (name == NULL || name[0] == '\0')
    return;
  if (is_ip(name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name);
    return;
  }
  SSL_set_tlsext_host_name(t->ssl, name);
  SSL_set1_host(t->ssl, name);
}

static void resume(eddy__tls_t *t, const char *key) {
  if (key == NULL || t->cfg->server)
    return;
  snprintf(t->key, sizeof t->key, "%s", key);
  for (int i = 0; i < SESSIONS; i++) {
    session_t *e = &t->cfg->sessions[i];
    if (e->sess && strcmp(e->key, t->key) == 0) {
      SSL_set_session(t->ssl, e->sess);
      return;
    }
  }
}

int eddy__tls_start(eddy__stream_t *s, eddy__tls_config_t *cfg,
                     const char *server_name, const char *session_key,
                     uint64_t timeout_ms,
                     void (*on_done)(eddy__stream_t *s, int status)) {
  if (s->tls != NULL)
    return EDDY_EBUSY;
  eddy__tls_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return EDDY_ENOMEM;
  t->ssl = SSL_new(cfg->ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    SSL_free(t->ssl);
    free(t);
    return EDDY_ENOMEM;
  }
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_app_data(t->ssl, t);
  t->cfg = cfg;
  eddy__tls_config_ref(cfg);
  t->stream = s;
  s->tls = t;
  if (cfg->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    name_server(t, server_name);
    resume(t, session_key);
  }
  if (timeout_ms > 0)
    eddy__timer_start(&s->rt->timers, &t->timer, timeout_ms, on_timeout);
  int rc = eddy__stream_read_start(s);
  if (rc != 0)
    return rc;
  if (!cfg->server) {
    drive(s); /* the ClientHello; on_done is not called from here */
    if (t->failed)
      return EDDY_ETLS;
  }
  t->on_done = on_done;
  return 0;
}

int eddy__tls_handshaking(const eddy__stream_t *s) {
  return !s->tls->done && !s->tls->failed;
}

const char *eddy__tls_reason(const eddy__stream_t *s) {
  return s->tls != NULL ? s->tls->reason : "";
}

void eddy__tls_info(const eddy__stream_t *s, eddy__tls_info_t *info) {
  const eddy__tls_t *t = s->tls;
  const unsigned char *alpn = NULL;
  unsigned alpn_len = 0;
  memset(info, 0, sizeof *info);
  if (t == NULL)
    return;
  info->done = t->done && !t->failed;
  info->version = SSL_get_version(t->ssl);
  info->cipher = SSL_get_cipher_name(t->ssl);
  SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
  info->alpn = (const char *)alpn;
  info->alpn_len = alpn_len;
  info->server_name = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
  info->resumed = SSL_session_reused(t->ssl);
  X509 *peer = SSL_get0_peer_certificate(t->ssl);
  if (peer != NULL)
    X509_NAME_oneline(X509_get_subject_name(peer), info->peer,
                      sizeof info->peer);
}

void eddy__tls_free(eddy__stream_t *s) {
  eddy__tls_t *t = s->tls;
  eddy__timer_stop(&s->rt->timers, &t->timer);
  SSL_free(t->ssl); /* and its BIOs */
  eddy__tls_config_unref(t->cfg);
  eddy__rbuf_free(&s->rt->bufs, &t->cin);
  free(t->pend);
  free(t);
  s->tls = NULL;
}

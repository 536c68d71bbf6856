/*
 * tls.h: TLS inside a stream, on OpenSSL through memory BIOs, so that the
 * loop never blocks: ciphertext read from the socket is decrypted into the
 * stream's read buffer (which every reader already consumes), and writes
 * are encrypted on their way to the socket. A configuration (an SSL_CTX
 * with its certificates by server name and a client's saved sessions) is
 * shared, counted, by the connections made with it. Knows nothing of Lua.
 */
#ifndef EDDY_TLS_H
#define EDDY_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

typedef struct eddy__tls_config_s eddy__tls_config_t;
typedef struct eddy__tls_s eddy__tls_t;

#define EDDY__TLS_REASON 256 /* room for a failure's reason */

/* What a configuration is made of; NULL or 0 leave OpenSSL's default. */
typedef struct eddy__tls_opts_s {
  int server;
  int verify;            /* check the peer's certificate */
  const char *ca;        /* file or directory; NULL: the system's store */
  const char *cert;      /* certificate chain file (PEM) */
  const char *key;       /* its private key (PEM) */
  const unsigned char *alpn; /* protocols, in ALPN's wire form */
  size_t alpn_len;
  int min_version;       /* 12 or 13; 0: 1.2 */
  int max_version;       /* 12 or 13; 0: the newest */
  const char *ciphers;   /* TLS 1.2 cipher list */
  const char *ciphersuites; /* TLS 1.3 suites */
} eddy__tls_opts_t;

/* A new configuration with one reference, or NULL with the reason in
   reason. */
eddy__tls_config_t *eddy__tls_config_new(const eddy__tls_opts_t *o,
                                         char *reason);
/* A server's certificate for one name (SNI), "*.example.com" allowed:
   same settings as the configuration, another certificate. */
int eddy__tls_config_add_name(eddy__tls_config_t *cfg, const char *name,
                              const eddy__tls_opts_t *o, char *reason);
void eddy__tls_config_ref(eddy__tls_config_t *cfg);
void eddy__tls_config_unref(eddy__tls_config_t *cfg);

/*
 * Starts TLS on a connected stream. A client names the server (for SNI
 * and the certificate's host check; an IP address is checked as one) and
 * a session key under which its session is kept for resumption. on_done
 * (may be NULL) runs once the handshake ends, with 0 or EDDY_ETLS /
 * EDDY_ETIMEOUT / EDDY_ECLOSED; after a failure the stream's rerr is set.
 * Until then the stream reads whatever its owner does, and writes wait in
 * the layer. Returns 0 or an EDDY_E code.
 */
int eddy__tls_start(eddy__stream_t *s, eddy__tls_config_t *cfg,
                     const char *server_name, const char *session_key,
                     uint64_t timeout_ms,
                     void (*on_done)(eddy__stream_t *s, int status));

/* Why the last failure happened (OpenSSL's reason), or "". */
const char *eddy__tls_reason(const eddy__stream_t *s);

typedef struct eddy__tls_info_s {
  const char *version; /* "TLSv1.3" */
  const char *cipher;
  const char *alpn; /* NULL: none agreed */
  size_t alpn_len;
  const char *server_name; /* asked for by the client (SNI), or NULL */
  char peer[256]; /* the peer certificate's subject ("/CN=..."), or "" */
  int resumed;
  int done; /* the handshake has finished */
} eddy__tls_info_t;
void eddy__tls_info(const eddy__stream_t *s, eddy__tls_info_t *info);

/* Hooks for stream.c: the buffer ciphertext is read into; bytes arrived
   there (returns 1 when the owner is to hear: plaintext, or an end); the
   read side ended; plaintext to write; a close_notify before a close or a
   shutdown; the layer's memory once the handle has closed. */
eddy__rbuf_t *eddy__tls_rbuf(eddy__stream_t *s);
int eddy__tls_input(eddy__stream_t *s, size_t n);
int eddy__tls_input_end(eddy__stream_t *s);
int eddy__tls_write(eddy__stream_t *s, const uv_buf_t *bufs, unsigned n);
void eddy__tls_close_notify(eddy__stream_t *s);
/* Whether the handshake is still going (neither through nor failed). */
int eddy__tls_handshaking(const eddy__stream_t *s);
void eddy__tls_free(eddy__stream_t *s);

#endif

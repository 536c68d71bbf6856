/*
 * curl.h: libcurl's multi interface driven by the runtime's loop: one
 * multi handle per reactor thread, curl's sockets watched by uv_poll
 * handles and its timer on a uv_timer, so that any number of transfers
 * run at once on the loop thread. A transfer's owner gets one call when
 * it ends. Knows nothing of Lua.
 */
#ifndef EDDY_CURL_H
#define EDDY_CURL_H

#include <curl/curl.h>
#include <uv.h>

typedef struct eddy_runtime_s eddy_runtime_t;
typedef struct eddy__curl_s eddy__curl_t;
typedef struct eddy__xfer_s eddy__xfer_t;

struct eddy__xfer_s {
  CURL *easy;            /* set up by the owner; CURLOPT_PRIVATE is ours */
  eddy__curl_t *multi;   /* while it runs */
  /* The transfer ended (rc CURLE_OK or why not); the easy handle is off
     the multi handle, the owner's to clean up. On the loop thread. */
  void (*on_done)(eddy__xfer_t *x, CURLcode rc);
  /* Something happened inside curl that the owner wants to hear of once
     curl has returned (eddy__curl_mark): on the loop thread, where the
     owner may call curl again. NULL if it never marks. */
  void (*on_progress)(eddy__xfer_t *x);
  void *data;
  eddy__xfer_t *next_marked;
  int marked;
};

/* From inside a curl callback: on_progress is to be called after curl
   returns. */
void eddy__curl_mark(eddy__xfer_t *x);

/* An easy handle, from the thread's spares (reset) or new; NULL when out
   of memory. Handing it back keeps what curl made once for it. */
CURL *eddy__curl_easy(eddy_runtime_t *rt);
void eddy__curl_easy_release(eddy_runtime_t *rt, CURL *easy);

/* Limits of the thread's connections: per host, and in all (0: none).
   Requests past them wait in curl's queue. 0 or an EDDY_E code. */
int eddy__curl_limits(eddy_runtime_t *rt, long per_host, long total);

/* Starts x on rt's multi handle (made on first use). 0 or an EDDY_E code. */
int eddy__curl_start(eddy_runtime_t *rt, eddy__xfer_t *x);
/* Stops a running transfer; on_done is not called. */
void eddy__curl_abort(eddy__xfer_t *x);
/* At the runtime's end, once no transfer runs: closes the handles. */
void eddy__curl_free(eddy__curl_t *c);

#endif

/*
 * curl.c: libcurl's multi interface on the loop (see curl.h). curl says
 * which sockets to watch for what (socket_cb) and when to call it back
 * (timer_cb); the loop calls curl_multi_socket_action when a socket is
 * ready or the timer fires, and then collects the transfers that ended.
 */
#include "curl.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

#define SPARE_EASY 128

struct eddy__curl_s {
  CURLM *multi;
  uv_loop_t *loop;
  uv_timer_t timer;
  int running; /* transfers on it */
  CURL *spare[SPARE_EASY]; /* easy handles done with, for the next ones */
  int nspare;
  /* Watchers by descriptor, kept while curl keeps the socket open: a
     connection back in curl's cache is unwatched, not forgotten, so the
     next request on it does not make a new one. */
  struct watched_s **byfd;
  int nbyfd;
  eddy__xfer_t *marked; /* transfers whose owners are to hear of them */
};

/* A socket curl asked to watch: freed in its close callback. When curl
   is done with it for now (a connection back in its cache), it stays
   watched for what it was (unreferenced: it keeps no loop running), so
   that the next request on it, which most often wants the same, costs no
   epoll_ctl; the first event it gets while unwanted stops it. */
typedef struct watched_s {
  uv_poll_t poll;
  curl_socket_t fd;
  eddy__curl_t *c;
  int events; /* UV_READABLE | UV_WRITABLE watched now; 0: stopped */
  int wanted; /* curl wants to hear of it */
} watched_t;

/* Hands each transfer that ended to its owner. */
void eddy__curl_mark(eddy__xfer_t *x) {
  if (x->marked || x->multi == NULL)
    return;
  x->marked = 1;
  x->next_marked = x->multi->marked;
  x->multi->marked = x;
}

static void unmark(eddy__curl_t *c, eddy__xfer_t *x) {
  if (!x->marked)
    return;
  eddy__xfer_t **link = &c->marked;
  while (*link != x)
    link = &(*link)->next_marked;
  *link = x->next_marked;
  x->marked = 0;
}

/* Tells owners what curl marked, then hands each transfer that ended to
   its owner. Owners may start and stop transfers meanwhile. */
static void collect(eddy__curl_t *c) {
  while (c->marked != NULL) {
    eddy__xfer_t *x = c->marked;
    c->marked = x->next_marked;
    x->marked = 0;
    x->on_progress(x);
  }
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    eddy__xfer_t *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode rc = msg->data.result;
    curl_multi_remove_handle(c->multi, msg->easy_handle);
    c->running--;
    unmark(c, x);
    x->multi = NULL;
    x->on_done(x, rc);
  }
}

static void unwatch(watched_t *w) {
  uv_poll_stop(&w->poll);
  w->events = 0;
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  watched_t *w = poll->data;
  if (!w->wanted) {
    unwatch(w); /* an idle connection closed or spoke: curl sees it later */
    return;
  }
  int flags = status < 0 ? CURL_CSELECT_ERR
                         : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                               ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
  int running;
  curl_multi_socket_action(w->c->multi, w->fd, flags, &running);
  collect(w->c);
}

static void on_timer(uv_timer_t *timer) {
  eddy__curl_t *c = timer->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  collect(c);
}

static void on_watched_closed(uv_handle_t *handle) {
  free(handle->data);
}

/* The watcher of fd: the one kept for it, or a new one. */
static watched_t *watcher_for(eddy__curl_t *c, curl_socket_t fd) {
  if (fd < c->nbyfd && c->byfd[fd] != NULL)
    return c->byfd[fd];
  if (fd >= c->nbyfd) {
    int n = c->nbyfd ? c->nbyfd : 64;
    while (n <= fd)
      n *= 2;
    watched_t **byfd = realloc(c->byfd, (size_t)n * sizeof *byfd);
    if (byfd == NULL)
      return NULL;
    for (int i = c->nbyfd; i < n; i++)
      byfd[i] = NULL;
    c->byfd = byfd;
    c->nbyfd = n;
  }
  watched_t *w = calloc(1, sizeof *w);
  if (w == NULL || uv_poll_init_socket(c->loop, &w->poll, fd) != 0) {
    free(w);
    return NULL;
  }
  w->poll.data = w;
  w->fd = fd;
  w->c = c;
  c->byfd[fd] = w;
  return w;
}

/* curl closes a socket: its watcher goes first. */
static int close_socket_cb(void *clientp, curl_socket_t fd) {
  eddy__curl_t *c = clientp;
  if (fd < c->nbyfd && c->byfd[fd] != NULL) {
    uv_close((uv_handle_t *)&c->byfd[fd]->poll, on_watched_closed);
    c->byfd[fd] = NULL;
  }
  return close(fd);
}

/* curl's connections are eddy's to keep: a child process spawned
   meanwhile must not inherit them (curl makes them without CLOEXEC). */
static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose) {
  (void)clientp;
  (void)purpose;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return CURL_SOCKOPT_OK;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
  (void)easy;
  eddy__curl_t *c = userp;
  watched_t *w = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (w != NULL) {
      w->wanted = 0;
      uv_unref((uv_handle_t *)&w->poll); /* an idle connection keeps no
                                            run going */
      /* Writable would fire at once: no use keeping that. */
      if ((w->events & UV_WRITABLE) && !uv_is_closing((uv_handle_t *)&w->poll))
        unwatch(w);
      curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (w == NULL) {
    w = watcher_for(c, fd);
    if (w == NULL)
      return -1; /* curl fails the transfer */
    curl_multi_assign(c->multi, fd, w);
  }
  w->wanted = 1;
  uv_ref((uv_handle_t *)&w->poll);
  int events = (what & CURL_POLL_IN ? UV_READABLE : 0) |
               (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
  if (events != w->events) {
    /* libuv re-arms the descriptor on every start, even to the same. */
    uv_poll_start(&w->poll, events, on_poll);
    w->events = events;
  }
  return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  eddy__curl_t *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    /* Never from inside curl: the loop calls back, on its next turn. */
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

static eddy__curl_t *multi_of(eddy_runtime_t *rt) {
  if (rt->curl != NULL)
    return rt->curl;
  eddy__curl_t *c = calloc(1, sizeof *c);
  if (c == NULL || (c->multi = curl_multi_init()) == NULL) {
    free(c);
    return NULL;
  }
  c->loop = &rt->loop;
  uv_timer_init(&rt->loop, &c->timer);
  c->timer.data = c;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  /* HTTP/2 requests to one host share its connection. */
  curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  rt->curl = c;
  return c;
}

int eddy__curl_limits(eddy_runtime_t *rt, long per_host, long total) {
  eddy__curl_t *c = multi_of(rt);
  if (c == NULL)
    return EDDY_ENOMEM;
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
  return 0;
}

CURL *eddy__curl_easy(eddy_runtime_t *rt) {
  eddy__curl_t *c = multi_of(rt);
  if (c == NULL)
    return NULL;
  if (c->nspare == 0)
    return curl_easy_init();
  CURL *easy = c->spare[--c->nspare];
  curl_easy_reset(easy);
  return easy;
}

void eddy__curl_easy_release(eddy_runtime_t *rt, CURL *easy) {
  eddy__curl_t *c = rt->curl;
  if (c != NULL && c->nspare < SPARE_EASY)
    c->spare[c->nspare++] = easy;
  else
    curl_easy_cleanup(easy);
}

int eddy__curl_start(eddy_runtime_t *rt, eddy__xfer_t *x) {
  eddy__curl_t *c = multi_of(rt);
  if (c == NULL)
    return EDDY_ENOMEM;
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
  curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
  curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETDATA, c);
  curl_easy_setopt(x->easy, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
  if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
    return EDDY_ENOMEM;
  x->multi = c;
  x->marked = 0;
  c->running++;
  return 0;
}

void eddy__curl_abort(eddy__xfer_t *x) {
  if (x->multi == NULL)
    return;
  unmark(x->multi, x);
  curl_multi_remove_handle(x->multi->multi, x->easy);
  x->multi->running--;
  x->multi = NULL;
}

static void on_timer_closed(uv_handle_t *handle) {
  free(handle->data);
}

void eddy__curl_free(eddy__curl_t *c) {
  if (c == NULL)
    return;
  /* Closing the multi handle closes its sockets: socket_cb closes their
     watchers first. */
  curl_multi_cleanup(c->multi);
  while (c->nspare > 0)
    curl_easy_cleanup(c->spare[--c->nspare]);
  /* Sockets curl left open (it closes its cache above): unwatch them. */
  for (int i = 0; i < c->nbyfd; i++)
    if (c->byfd[i] != NULL)
      uv_close((uv_handle_t *)&c->byfd[i]->poll, on_watched_closed);
  free(c->byfd);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

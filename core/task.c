/*
 * task.c: tasks, the ready queue and waits: the coroutine bridge of one
 * reactor thread (see task.h). The rules it keeps, from DESIGN.md:
 *  - a waiting C function checks that it may yield before it arms
 *    anything, and every wait ends exactly once: by its completion, its
 *    timeout, a cancellation or the teardown;
 *  - a task is anchored in the registry while it lives; completions hold
 *    the task and a generation, never a coroutine's lua_State;
 *  - libuv completions resume a task directly; wake-ups caused by Lua
 *    code queue it, so resumes never nest.
 */
#include "task.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define TASK_CHUNK 256
#define container_of(p, type, field) \
  ((type *)((char *)(p) - offsetof(type, field)))


static void task_run(eddy__sched_t *s, eddy__task_t *t);
static void on_idle(uv_idle_t *idle);
static void task_finish(eddy__sched_t *s, eddy__task_t *t, int rc);

/* ======================================================================= */
/* Task memory */

static int add_chunk(eddy__sched_t *s) {
  eddy__task_t **chunks =
      realloc(s->chunks, (s->nchunks + 1) * sizeof *chunks);
  if (chunks == NULL)
    return -1;
  s->chunks = chunks;
  eddy__task_t *chunk = calloc(TASK_CHUNK, sizeof *chunk);
  if (chunk == NULL)
    return -1;
  chunks[s->nchunks] = chunk;
  /* Link backwards so that low slots are handed out first. */
  for (int i = TASK_CHUNK - 1; i >= 0; i--) {
    eddy__task_t *t = &chunk[i];
    t->sched = s;
    t->slot = s->nchunks * TASK_CHUNK + (uint32_t)i;
    t->co_ref = EDDY__NOREF;
    t->state = EDDY__TASK_DONE;
    t->next = s->free;
    s->free = t;
  }
  s->nchunks++;
  return 0;
}

static eddy__task_t *task_alloc(eddy__sched_t *s) {
  if (s->free == NULL && add_chunk(s) < 0)
    return NULL;
  eddy__task_t *t = s->free;
  s->free = t->next;
  /* slot and gen survive reuse: gen keeps growing so that a completion
     meant for the previous user of this memory is seen to be stale. */
  t->co = NULL;
  t->co_ref = EDDY__NOREF;
  t->res_ref = EDDY__NOREF;
  t->state = EDDY__TASK_READY;
  t->flags = 0;
  t->handles = 0;
  t->id = ++s->next_id;
  t->nargs = 0;
  t->next = t->prev = NULL;
  t->queue = NULL;
  t->wait = NULL;
  t->what = NULL;
  t->resumed_from = NULL;
  t->name[0] = '\0';
  t->born = uv_now(&s->rt->loop);
  t->wait_data = NULL;
  t->deadline = 0;
  t->joiners.head = t->joiners.tail = NULL;
  t->on_done = NULL;
  t->done_data = NULL;
  t->wait_L = NULL;
  return t;
}

/* Lets go of a done task's coroutine: back to the pool when it finished
   cleanly and no Lua code can hold it, else to the collector. */
static void co_drop(eddy__sched_t *s, eddy__task_t *t) {
  if (t->co == NULL)
    return;
  if (s->L != NULL) {
    if (lua_status(t->co) == 0 && !(t->flags & EDDY__TASK_ESCAPED) &&
        s->npool < EDDY__CO_POOL) {
      lua_settop(t->co, 0);
      /* setfenv(0, ...) in the task must not reach the next one. */
      lua_pushvalue(s->L, LUA_GLOBALSINDEX);
      lua_xmove(s->L, t->co, 1);
      lua_replace(t->co, LUA_GLOBALSINDEX);
      s->pool_co[s->npool] = t->co;
      s->pool_ref[s->npool++] = t->co_ref;
    } else {
      eddy__unref(&s->rt->refs, s->L, t->co_ref);
    }
  }
  t->co = NULL;
  t->co_ref = EDDY__NOREF;
}

static void task_release(eddy__sched_t *s, eddy__task_t *t) {
  co_drop(s, t);
  if (s->L != NULL)
    eddy__unref(&s->rt->refs, s->L, t->res_ref);
  t->res_ref = EDDY__NOREF;
  t->gen++;
  t->next = s->free;
  s->free = t;
}

eddy__task_t *eddy__task_at(eddy__sched_t *s, uint32_t slot) {
  if (slot / TASK_CHUNK >= s->nchunks)
    return NULL;
  return &s->chunks[slot / TASK_CHUNK][slot % TASK_CHUNK];
}

/* ======================================================================= */
/* Queues */

static void ready_push(eddy__sched_t *s, eddy__task_t *t) {
  t->state = EDDY__TASK_READY;
  t->next = NULL;
  t->prev = s->ready_tail;
  if (s->ready_tail)
    s->ready_tail->next = t;
  else
    s->ready_head = t;
  s->ready_tail = t;
  s->nready++;
  uv_idle_start(&s->idle, on_idle);
}

static void ready_remove(eddy__sched_t *s, eddy__task_t *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    s->ready_head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    s->ready_tail = t->prev;
  t->next = t->prev = NULL;
  s->nready--;
}

void eddy__waitq_push(eddy__waitq_t *q, eddy__task_t *t) {
  t->queue = q;
  t->next = NULL;
  t->prev = q->tail;
  if (q->tail)
    q->tail->next = t;
  else
    q->head = t;
  q->tail = t;
}

void eddy__waitq_remove(eddy__task_t *t) {
  eddy__waitq_t *q = t->queue;
  if (q == NULL)
    return;
  if (t->prev)
    t->prev->next = t->next;
  else
    q->head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    q->tail = t->prev;
  t->next = t->prev = NULL;
  t->queue = NULL;
}

eddy__task_t *eddy__waitq_pop(eddy__waitq_t *q) {
  eddy__task_t *t = q->head;
  if (t)
    eddy__waitq_remove(t);
  return t;
}

static void all_link(eddy__sched_t *s, eddy__task_t *t) {
  t->flags |= EDDY__TASK_LINKED;
  t->all_prev = NULL;
  t->all_next = s->all;
  if (s->all)
    s->all->all_prev = t;
  s->all = t;
  s->live++;
}

static void all_unlink(eddy__sched_t *s, eddy__task_t *t) {
  if (t->all_prev)
    t->all_prev->all_next = t->all_next;
  else
    s->all = t->all_next;
  if (t->all_next)
    t->all_next->all_prev = t->all_prev;
  t->all_next = t->all_prev = NULL;
  t->flags &= ~EDDY__TASK_LINKED;
  s->live--;
}

/* ======================================================================= */
/* Running */

/* Runs the tasks that were ready when the pass began; tasks they make
   ready run in the next pass, after libuv has polled for I/O. */
static void run_ready(eddy__sched_t *s) {
  size_t n = s->nready;
  while (n-- > 0 && s->ready_head != NULL) {
    eddy__task_t *t = s->ready_head;
    ready_remove(s, t);
    task_run(s, t);
    if (s->rt->stopping)
      break;
  }
  if (s->ready_head == NULL)
    uv_idle_stop(&s->idle);
}

static void on_check(uv_check_t *check) {
  eddy__sched_t *s = check->data;
  run_ready(s);
  if (!s->rt->started)
    eddy__runtime_started(s->rt);
}

static void on_idle(uv_idle_t *idle) {
  (void)idle; /* only here so that poll does not block */
}

/* Pushes what t's wait answers when it ends with err. */
static int push_fail(eddy__task_t *t, lua_State *co, int err) {
  if (t->wait && t->wait->fail)
    return t->wait->fail(t, co, err);
  lua_pushnil(co);
  lua_pushstring(co, eddy_strerror(err));
  return 2;
}

static void task_run(eddy__sched_t *s, eddy__task_t *t) {
  lua_State *co = t->co;
  int nargs = t->nargs;
  if (t->flags & EDDY__TASK_ANSWER_CANCELLED) {
    t->flags &= ~EDDY__TASK_ANSWER_CANCELLED;
    lua_settop(co, 0);
    nargs = push_fail(t, co, EDDY_ECANCELLED);
    t->wait = NULL;
  } else if (nargs == 0 && lua_status(co) == LUA_YIELD) {
    /* A task queued without results (eddy.yield) still has its yielded
       values on the stack; drop them so that the wait returns nothing. */
    lua_settop(co, 0);
  }
  t->nargs = 0;
  t->state = EDDY__TASK_RUNNING;
  t->flags |= EDDY__TASK_STARTED;
  s->current = t;
  s->depth++;
  eddy__watchdog_enter(&s->rt->watchdog, t);
  int rc = lua_resume(co, nargs);
  eddy__watchdog_leave(&s->rt->watchdog);
  s->current = NULL;
  if (rc == LUA_YIELD) {
    if (t->state == EDDY__TASK_RUNNING) {
      /* It yielded without waiting: a coroutine.yield saved before eddy
         replaced it, or one from a C library. Treat it as eddy.yield. */
      eddy__log(s->rt, EDDY_LOG_WARN,
                "task %llu yielded outside an eddy wait; resuming it",
                (unsigned long long)t->id);
      lua_settop(co, 0);
      ready_push(s, t);
    }
  } else {
    task_finish(s, t, rc);
  }
  s->depth--;
}

/* The error value of a failed task as text, for the log. */
static const char *error_text(lua_State *co, int idx) {
  if (lua_type(co, idx) == LUA_TSTRING)
    return lua_tostring(co, idx);
  return lua_pushfstring(co, "(error object is a %s value)",
                         luaL_typename(co, idx));
}

static void run_on_done(eddy__task_t *t) {
  void (*on_done)(void *) = t->on_done;
  t->on_done = NULL;
  if (on_done)
    on_done(t->done_data);
}

/* Ends a task whose coroutine returned (or was never started): logs a
   failure, keeps the results for join, wakes the joiners. Every step that
   allocates (and so may run the collector, whose finalizers may drop the
   task's last handle) comes before the task is marked DONE, so that only
   this function releases it. */
static void task_finish(eddy__sched_t *s, eddy__task_t *t, int rc) {
  lua_State *co = t->co;
  eddy__timer_stop(&s->rt->timers, &t->timeout); /* a lazy leftover */
  s->depth++;
  run_on_done(t);
  s->depth--;
  if (rc != 0) {
    /* An error the message handler could not catch (out of memory, an
       error inside the handler): make it look like xpcall's result. */
    lua_insert(co, 1);
    lua_pushboolean(co, 0);
    lua_insert(co, 1);
    lua_settop(co, 2);
  }
  int ok = lua_toboolean(co, 1);
  s->finished++;
  if (!ok && !(t->flags & EDDY__TASK_NOLOG && t->flags & EDDY__TASK_CANCELLED)) {
    t->flags |= EDDY__TASK_FAILED;
    s->failed++;
    const char *msg = error_text(co, 2);
    if (t->flags & EDDY__TASK_MAIN) {
      if (!(t->flags & EDDY__TASK_NOLOG))
        eddy__log(s->rt, EDDY_LOG_ERROR, "%s", msg);
      eddy__set_error(s->rt, "%s", msg);
      s->rt->end = EDDY_ELUA;
      eddy__runtime_exit(s->rt, 1);
    } else if (!(t->flags & EDDY__TASK_NOLOG)) {
      eddy__log(s->rt, EDDY_LOG_ERROR, "task %llu failed: %s",
                (unsigned long long)t->id, msg);
    }
    lua_settop(co, 2);
  }
  /* Keep what join will want, then give the coroutine up. */
  int n = lua_gettop(co);
  if (t->handles > 0 && !(ok && n == 1)) {
    lua_createtable(co, n, 1);
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(co, i);
      lua_rawseti(co, -2, i);
    }
    lua_pushinteger(co, n);
    lua_setfield(co, -2, "n");
    t->res_ref = eddy__ref(&s->rt->refs, co);
  }
  co_drop(s, t);
  /* Joiners are woken through the ready queue, even when this runs at the
     top of a libuv callback: finishing is caused by Lua code. */
  s->depth++;
  eddy__task_t *j;
  while ((j = eddy__waitq_pop(&t->joiners)) != NULL) {
    lua_State *jco = eddy__task_wake_begin(j);
    eddy__task_wake_end(j, eddy__task_push_results(t, jco));
  }
  s->depth--;
  all_unlink(s, t);
  t->state = EDDY__TASK_DONE;
  if (t->handles == 0)
    task_release(s, t);
  if (s->live == 0)
    eddy__runtime_idle(s->rt);
}

eddy__task_t *eddy__task_spawn(eddy__sched_t *s, lua_State *L, int nargs) {
  eddy__task_t *t = task_alloc(s);
  if (t == NULL) {
    lua_pop(L, nargs + 1);
    return NULL;
  }
  lua_State *co;
  if (s->npool > 0) {
    s->npool--;
    co = s->pool_co[s->npool];
    t->co_ref = s->pool_ref[s->npool];
  } else {
    co = lua_newthread(L);
    lua_pushvalue(L, -1);
    t->co_ref = eddy__ref(&s->rt->refs, L);
    lua_pop(L, 1);
  }
  t->co = co;
  /* The coroutine runs xpcall(fn, handler, args...), so that an error's
     traceback is taken inside it, with every line number. */
  lua_rawgeti(co, LUA_REGISTRYINDEX, s->entry_ref);
  lua_xmove(L, co, nargs + 1);
  lua_rawgeti(co, LUA_REGISTRYINDEX, s->traceback_ref);
  lua_insert(co, 3);
  t->nargs = nargs + 2;
  all_link(s, t);
  s->spawned++;
  ready_push(s, t);
  return t;
}

/* ======================================================================= */
/* Waits */

/* Pushes "file:line" of co's innermost frame in a script, from `level`
   out, skipping eddy's own Lua files (chunk names "=eddy/..."); "?" when
   there is none. */
static void push_where(lua_State *L, lua_State *co, int level) {
  lua_Debug ar;
  for (; lua_getstack(co, level, &ar); level++) {
    if (!lua_getinfo(co, "Sl", &ar) || ar.currentline <= 0)
      continue;
    if (strncmp(ar.source, "=eddy/", 6) == 0)
      continue;
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
    return;
  }
  lua_pushliteral(L, "?");
}

/* Raises msg, blamed on the script that called (not on eddy's own Lua
   files between it and the C function that raises). */
void eddy__raise_at_caller(lua_State *L, const char *msg) {
  push_where(L, L, 1);
  lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), msg);
  lua_error(L);
}

eddy__task_t *eddy__task_check_wait(eddy__sched_t *s, lua_State *L) {
  eddy__task_t *t = s->current;
  if (t == NULL)
    eddy__raise_at_caller(L, "must be called inside a task (eddy.run, eddy.spawn "
                       "or a handler that eddy runs)");
  if (!lua_isyieldable(L))
    eddy__raise_at_caller(L, "cannot wait here: Lua cannot yield across this C "
                       "call (a metamethod, a C iterator, a table.sort "
                       "comparator, string.gsub); wait outside it");
  return t;
}

/* Ends t's wait with err (a timeout or a cancellation). */
static void fail_wait(eddy__task_t *t, int err) {
  const eddy__wait_ops_t *ops = t->wait;
  if (ops && ops->detach)
    ops->detach(t);
  lua_State *co = eddy__task_wake_begin(t);
  t->wait = ops; /* for push_fail; wake_begin cleared it */
  int n = push_fail(t, co, err);
  t->wait = NULL;
  eddy__task_wake_end(t, n);
}

/*
 * Wait timeouts are kept lazily. A wait that ends before its timeout leaves
 * the task's timer in the heap, weak (it no longer keeps the loop alive),
 * and the next wait keeps it when it is due no later than the new deadline:
 * a connection that waits with the same timeout request after request
 * touches the heap once per timeout, not twice per request. A timer that
 * fires before the deadline of the wait in progress is set again for the
 * rest; one that fires between waits does nothing.
 */
static void on_wait_timeout(eddy__timer_t *timer, uint64_t due) {
  eddy__task_t *t = container_of(timer, eddy__task_t, timeout);
  eddy__timers_t *ts = &t->sched->rt->timers;
  (void)due;
  if (t->state != EDDY__TASK_WAITING || t->deadline == 0)
    return;
  uint64_t now = uv_now(ts->handle.loop);
  if (now < t->deadline) {
    eddy__timer_start(ts, timer, t->deadline - now, on_wait_timeout);
    return;
  }
  fail_wait(t, EDDY_ETIMEOUT);
}

void eddy__task_wait(eddy__task_t *t, const eddy__wait_ops_t *ops,
                     void *data, int64_t timeout_ms) {
  t->state = EDDY__TASK_WAITING;
  t->wait = ops;
  t->what = ops->what;
  t->wait_data = data;
  t->deadline = 0;
  if (timeout_ms < 0)
    return;
  eddy__timers_t *ts = &t->sched->rt->timers;
  uint64_t now = eddy__timers_now(ts);
  t->deadline = now + (timeout_ms > 0 ? (uint64_t)timeout_ms : 1);
  if (eddy__timer_is_pending(&t->timeout) &&
      eddy__timer_due(ts, &t->timeout) <= t->deadline) {
    eddy__timer_strengthen(ts, &t->timeout);
    return;
  }
  if (eddy__timer_start(ts, &t->timeout, t->deadline - now,
                        on_wait_timeout) < 0) {
    /* Out of memory for the heap: the wait still ends by its completion
       or a cancellation. */
    eddy__log(t->sched->rt, EDDY_LOG_WARN, "no memory for a wait timeout");
  }
}

int eddy__task_yield(eddy__sched_t *s, lua_State *L) {
  if (s->current)
    s->current->wait_L = L;
  /* The token tells the coroutine wrappers (lua/eddy/coroutine.lua) that
     this yield is an eddy wait, to be passed up to the task. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->whats_ref);
  return lua_yield(L, 1);
}

void eddy__task_retime(eddy__task_t *t, int64_t timeout_ms) {
  if (t->state != EDDY__TASK_WAITING)
    return;
  const eddy__wait_ops_t *ops = t->wait;
  void *data = t->wait_data;
  const char *what = t->what;
  eddy__task_wait(t, ops, data, timeout_ms);
  t->what = what;
}

lua_State *eddy__task_wake_begin(eddy__task_t *t) {
  eddy__sched_t *s = t->sched;
  eddy__timer_weaken(&s->rt->timers, &t->timeout);
  t->deadline = 0;
  eddy__waitq_remove(t);
  t->gen++;
  t->state = EDDY__TASK_READY;
  t->wait = NULL;
  t->resumed_from = t->what;
  t->what = NULL;
  t->wait_data = NULL;
  t->wait_L = NULL;
  lua_settop(t->co, 0);
  return t->co;
}

void eddy__task_wake_end(eddy__task_t *t, int nresults) {
  eddy__sched_t *s = t->sched;
  t->nargs = nresults;
  if (s->depth == 0 && !s->rt->stopping)
    task_run(s, t);
  else
    ready_push(s, t);
}

void eddy__task_requeue(eddy__task_t *t) {
  ready_push(t->sched, t);
}

void eddy__task_wait_cancelled(eddy__task_t *t, const eddy__wait_ops_t *ops) {
  t->wait = ops;
  t->flags |= EDDY__TASK_ANSWER_CANCELLED;
  ready_push(t->sched, t);
}

int eddy__task_push_results(eddy__task_t *t, lua_State *L) {
  if (t->flags & EDDY__TASK_ABANDONED) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, eddy_strerror(EDDY_ECANCELLED));
    return 2;
  }
  if (t->res_ref == EDDY__NOREF) {
    lua_pushboolean(L, 1);
    return 1;
  }
  eddy__getref(&t->sched->rt->refs, L, t->res_ref);
  lua_getfield(L, -1, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -(n + 1));
  return n;
}

void eddy__task_cancel(eddy__task_t *t) {
  eddy__sched_t *s = t->sched;
  if (t->state == EDDY__TASK_DONE)
    return;
  t->flags |= EDDY__TASK_CANCELLED;
  if (t->state == EDDY__TASK_READY && !(t->flags & EDDY__TASK_STARTED)) {
    /* Never ran: it never will. */
    ready_remove(s, t);
    lua_settop(t->co, 0);
    lua_pushboolean(t->co, 0);
    lua_pushstring(t->co, eddy_strerror(EDDY_ECANCELLED));
    t->flags |= EDDY__TASK_NOLOG;
    s->depth++;
    task_finish(s, t, 0);
    s->depth--;
  } else if (t->state == EDDY__TASK_WAITING) {
    eddy__sched_hold(s);
    fail_wait(t, EDDY_ECANCELLED);
    eddy__sched_unhold(s);
  }
  /* RUNNING, or READY with results pending: its next wait answers
     "cancelled". */
}

void eddy__task_unhandle(eddy__task_t *t) {
  if (t->handles == 0)
    return;
  /* A task still on the live list is released by whoever unlinks it. */
  if (--t->handles == 0 && t->state == EDDY__TASK_DONE &&
      !(t->flags & EDDY__TASK_LINKED))
    task_release(t->sched, t);
}

/* ======================================================================= */
/* Listing */

void eddy__sched_describe(eddy__sched_t *s, lua_State *L, int max) {
  luaL_Buffer b;
  int shown = 0;
  size_t waiting = 0;
  for (eddy__task_t *t = s->all; t; t = t->all_next)
    if (t->state == EDDY__TASK_WAITING)
      waiting++;
  luaL_buffinit(L, &b);
  for (eddy__task_t *t = s->all; t && shown < max; t = t->all_next) {
    if (t->state != EDDY__TASK_WAITING)
      continue;
    push_where(L, t->wait_L ? t->wait_L : t->co, 0);
    lua_pushfstring(L, "\n  task %d waits on %s at %s", (int)t->id,
                    t->what ? t->what : "?", lua_tostring(L, -1));
    lua_remove(L, -2);
    luaL_addvalue(&b);
    shown++;
  }
  if (waiting > (size_t)shown) {
    lua_pushfstring(L, "\n  ... and %d more", (int)(waiting - shown));
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
}

/* ======================================================================= */
/* Life cycle */

/* The message handler of every task: the error with a traceback of the
   task's own coroutine. Non-string errors pass through unchanged. */
static int task_traceback(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    return 1;
  eddy__task_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

void eddy__task_traceback(lua_State *L, lua_State *co, const char *msg,
                          int level) {
  luaL_traceback(L, co, msg, level);
  /* The last frame is the xpcall every task starts in: not the user's. */
  const char *tb = lua_tostring(L, -1);
  const char *last = strrchr(tb, '\n');
  if (last != NULL && (strstr(last, "[builtin#") || strstr(last, "'xpcall'"))) {
    lua_pushlstring(L, tb, (size_t)(last - tb));
    lua_remove(L, -2);
  }
}

int eddy__sched_init(eddy__sched_t *s, eddy_runtime_t *rt, lua_State *L) {
  memset(s, 0, sizeof *s);
  s->rt = rt;
  s->L = L;
  lua_getglobal(L, "xpcall");
  s->entry_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, task_traceback);
  s->traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Anchors the "what" strings of Lua-level waits, and doubles as the
     token an eddy wait yields. */
  lua_newtable(L);
  s->whats_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  int rc = uv_check_init(&rt->loop, &s->check);
  if (rc == 0)
    rc = uv_idle_init(&rt->loop, &s->idle);
  if (rc != 0)
    return rc;
  s->check.data = s;
  s->idle.data = s;
  uv_check_start(&s->check, on_check);
  uv_unref((uv_handle_t *)&s->check);
  return 0;
}

void eddy__sched_abandon(eddy__sched_t *s) {
  /* First end every wait, so that nothing the second pass closes can wake
     one of these tasks. */
  for (eddy__task_t *t = s->all; t != NULL; t = t->all_next) {
    if (t->state == EDDY__TASK_WAITING) {
      if (t->wait && t->wait->detach)
        t->wait->detach(t);
      eddy__waitq_remove(t);
    } else if (t->state == EDDY__TASK_READY) {
      ready_remove(s, t);
    }
    eddy__timer_stop(&s->rt->timers, &t->timeout);
    t->gen++;
    t->state = EDDY__TASK_DONE;
    t->flags |= EDDY__TASK_CANCELLED | EDDY__TASK_ABANDONED;
    t->flags &= ~EDDY__TASK_ANSWER_CANCELLED;
    t->wait = NULL;
    t->what = NULL;
    t->wait_L = NULL;
  }
  /* Then let go of what they held. */
  while (s->all != NULL) {
    eddy__task_t *t = s->all;
    s->depth++;
    run_on_done(t);
    s->depth--;
    co_drop(s, t);
    all_unlink(s, t);
    if (t->handles == 0)
      task_release(s, t);
  }
  while (s->ready_head != NULL)
    ready_remove(s, s->ready_head);
  uv_idle_stop(&s->idle);
}

void eddy__sched_close(eddy__sched_t *s) {
  uv_close((uv_handle_t *)&s->check, NULL);
  uv_close((uv_handle_t *)&s->idle, NULL);
}

void eddy__sched_free(eddy__sched_t *s) {
  for (uint32_t i = 0; i < s->nchunks; i++)
    free(s->chunks[i]);
  free(s->chunks);
  s->chunks = NULL;
  s->nchunks = 0;
  s->free = NULL;
}

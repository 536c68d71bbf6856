/*
 * timer.c: the deadline heap of a reactor thread. The uv timer is armed
 * for the earliest deadline only; when it fires, every timer that is due
 * runs in (due, start order). Knows nothing of Lua.
 */
#include "timer.h"

#include <stdlib.h>

#include "eddy.h"

#define ARITY 4

static int earlier(const eddy__timer_slot_t *a, const eddy__timer_slot_t *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(eddy__timers_t *ts, eddy__timer_slot_t slot, uint32_t i) {
  ts->heap[i] = slot;
  slot.timer->index = i + 1;
}

static void sift_up(eddy__timers_t *ts, uint32_t i) {
  eddy__timer_slot_t slot = ts->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / ARITY;
    if (!earlier(&slot, &ts->heap[parent]))
      break;
    place(ts, ts->heap[parent], i);
    i = parent;
  }
  place(ts, slot, i);
}

static void sift_down(eddy__timers_t *ts, uint32_t i) {
  eddy__timer_slot_t slot = ts->heap[i];
  for (;;) {
    uint32_t first = ARITY * i + 1;
    if (first >= ts->count)
      break;
    uint32_t last = first + ARITY < ts->count ? first + ARITY : ts->count;
    uint32_t best = first;
    for (uint32_t c = first + 1; c < last; c++)
      if (earlier(&ts->heap[c], &ts->heap[best]))
        best = c;
    if (!earlier(&ts->heap[best], &slot))
      break;
    place(ts, ts->heap[best], i);
    i = best;
  }
  place(ts, slot, i);
}

static void remove_at(eddy__timers_t *ts, uint32_t i) {
  eddy__timer_t *t = ts->heap[i].timer;
  t->index = 0;
  if (t->weak) {
    t->weak = 0;
    ts->nweak--;
  }
  eddy__timer_slot_t last = ts->heap[--ts->count];
  if (i == ts->count)
    return;
  ts->heap[i] = last;
  if (i > 0 && earlier(&last, &ts->heap[(i - 1) / ARITY]))
    sift_up(ts, i);
  else
    sift_down(ts, i);
}

static void on_uv_timer(uv_timer_t *handle);

/* Arms the uv timer for the heap's top, or stops it when the heap is empty
   (so an empty heap does not keep the loop alive; nor one of weak timers
   only). */
static void rearm(eddy__timers_t *ts) {
  if (ts->count == 0) {
    uv_timer_stop(&ts->handle);
    return;
  }
  if (ts->count == ts->nweak)
    uv_unref((uv_handle_t *)&ts->handle);
  else
    uv_ref((uv_handle_t *)&ts->handle);
  uint64_t now = uv_now(ts->handle.loop);
  uint64_t due = ts->heap[0].due;
  uv_timer_start(&ts->handle, on_uv_timer, due > now ? due - now : 0, 0);
}

static void on_uv_timer(uv_timer_t *handle) {
  eddy__timers_t *ts = handle->data;
  uint64_t now = uv_now(handle->loop);
  /* A callback may start or stop other timers, so look at the top afresh
     each time round; but a timer started during this pass waits for the
     next one, so that a zero-delay timer set again and again cannot keep
     the loop from polling. */
  uint64_t started_before = ts->seq;
  if (ts->count > 0 && ts->heap[0].due <= now) {
    ts->lag_last = now - ts->heap[0].due;
    if (ts->lag_max < ts->lag_last)
      ts->lag_max = ts->lag_last;
  }
  while (ts->count > 0 && ts->heap[0].due <= now &&
         ts->heap[0].seq < started_before) {
    eddy__timer_t *t = ts->heap[0].timer;
    uint64_t due = ts->heap[0].due;
    remove_at(ts, 0);
    t->cb(t, due);
  }
  rearm(ts);
}

int eddy__timers_init(uv_loop_t *loop, eddy__timers_t *ts) {
  ts->heap = NULL;
  ts->count = ts->cap = ts->nweak = 0;
  ts->seq = 0;
  ts->lag_last = ts->lag_max = 0;
  ts->handle.data = ts;
  return uv_timer_init(loop, &ts->handle);
}

static void on_timers_closed(uv_handle_t *handle) {
  eddy__timers_t *ts = handle->data;
  free(ts->heap);
  ts->heap = NULL;
  ts->count = ts->cap = 0;
}

void eddy__timers_close(eddy__timers_t *ts) {
  for (uint32_t i = 0; i < ts->count; i++) {
    ts->heap[i].timer->index = 0;
    ts->heap[i].timer->weak = 0;
  }
  ts->count = ts->nweak = 0;
  uv_close((uv_handle_t *)&ts->handle, on_timers_closed);
}

int eddy__timer_start(eddy__timers_t *ts, eddy__timer_t *t, uint64_t delay_ms,
                      eddy__timer_cb cb) {
  if (t->index)
    eddy__timer_stop(ts, t);
  if (ts->count == ts->cap) {
    uint32_t cap = ts->cap ? ts->cap * 2 : 64;
    eddy__timer_slot_t *heap = realloc(ts->heap, cap * sizeof *heap);
    if (heap == NULL)
      return EDDY_ENOMEM;
    ts->heap = heap;
    ts->cap = cap;
  }
  /* The loop's clock stands still while a task runs; a timer set after a
     long computation still counts from now. A zero delay means the next
     turn of the loop, not this one: libuv would run it again at once. */
  uv_update_time(ts->handle.loop);
  if (delay_ms == 0)
    delay_ms = 1;
  eddy__timer_slot_t slot = {uv_now(ts->handle.loop) + delay_ms, ts->seq++, t};
  t->cb = cb;
  t->weak = 0;
  place(ts, slot, ts->count++);
  sift_up(ts, ts->count - 1);
  if (t->index == 1)
    rearm(ts);
  return 0;
}

void eddy__timer_stop(eddy__timers_t *ts, eddy__timer_t *t) {
  if (t->index == 0)
    return;
  int was_top = t->index == 1;
  remove_at(ts, t->index - 1);
  /* Leaving the uv timer armed for a removed top only costs a spurious
     wake-up, but an empty heap (or one of weak timers only) must not keep
     the loop alive. */
  if (ts->count == 0)
    uv_timer_stop(&ts->handle);
  else if (was_top || ts->count == ts->nweak)
    rearm(ts);
}

void eddy__timer_weaken(eddy__timers_t *ts, eddy__timer_t *t) {
  if (t->index == 0 || t->weak)
    return;
  t->weak = 1;
  if (++ts->nweak == ts->count)
    uv_unref((uv_handle_t *)&ts->handle);
}

void eddy__timer_strengthen(eddy__timers_t *ts, eddy__timer_t *t) {
  if (t->index == 0 || !t->weak)
    return;
  t->weak = 0;
  ts->nweak--;
  uv_ref((uv_handle_t *)&ts->handle);
}

uint64_t eddy__timers_now(eddy__timers_t *ts) {
  uv_update_time(ts->handle.loop);
  return uv_now(ts->handle.loop);
}

/*
 * timer.h: every deadline of a reactor thread (sleeps, wait timeouts, Lua
 * timers) in one binary min-heap, driven by a single uv_timer_t. A pending
 * timer costs one heap slot; there is no libuv handle per timer.
 */
#ifndef EDDY_TIMER_H
#define EDDY_TIMER_H

#include <stdint.h>
#include <uv.h>

typedef struct eddy__timer_s eddy__timer_t;
typedef struct eddy__timers_s eddy__timers_t;
/* due: when it was due (loop time, ms), for timers that repeat. */
typedef void (*eddy__timer_cb)(eddy__timer_t *timer, uint64_t due);

/* Embedded in its owner; the owner keeps it alive while pending. */
struct eddy__timer_s {
  uint32_t index; /* 1 + position in the heap; 0 when not pending */
  uint32_t weak;  /* pending, but does not keep the loop alive */
  eddy__timer_cb cb;
};

/* A heap slot carries its keys, so that sifting compares within the heap
   array instead of chasing each timer (a million pending timers do not
   fit in a cache). */
typedef struct eddy__timer_slot_s {
  uint64_t due; /* loop time, ms */
  uint64_t seq; /* ties fire in the order they were started */
  eddy__timer_t *timer;
} eddy__timer_slot_t;

struct eddy__timers_s {
  uv_timer_t handle;
  eddy__timer_slot_t *heap; /* a 4-ary min-heap: shallower than binary */
  uint32_t count;
  uint32_t cap;
  uint32_t nweak; /* weak timers in the heap */
  uint64_t seq;
  /* How late timers fire, in ms: the last pass's first timer, and the
     most since the start. The loop's lag, for metrics. */
  uint64_t lag_last;
  uint64_t lag_max;
};

int eddy__timers_init(uv_loop_t *loop, eddy__timers_t *timers);
/* Closes the handle and frees the heap; pending timers are dropped. */
void eddy__timers_close(eddy__timers_t *timers);

/* Starts (or restarts) a timer that calls cb after delay_ms. Returns 0 or
   EDDY_ENOMEM. */
int eddy__timer_start(eddy__timers_t *timers, eddy__timer_t *timer,
                      uint64_t delay_ms, eddy__timer_cb cb);
void eddy__timer_stop(eddy__timers_t *timers, eddy__timer_t *timer);

/* Leaves a pending timer in the heap but lets the loop end without it: for
   a deadline that may be kept lazily (see task.c). A start makes it strong
   again. */
void eddy__timer_weaken(eddy__timers_t *timers, eddy__timer_t *timer);

/* Makes a weak pending timer keep the loop alive again. */
void eddy__timer_strengthen(eddy__timers_t *timers, eddy__timer_t *timer);

/* The loop's time in ms, brought up to date. */
uint64_t eddy__timers_now(eddy__timers_t *timers);

/* When a pending timer is due (loop time, ms). */
static inline uint64_t eddy__timer_due(const eddy__timers_t *timers,
                                       const eddy__timer_t *timer) {
  return timers->heap[timer->index - 1].due;
}

static inline int eddy__timer_is_pending(const eddy__timer_t *timer) {
  return timer->index != 0;
}

#endif

/*
 * timer_test.c: the deadline heap (core/timer.c) on a real loop: timers
 * fire in (due, start order), never early; stopping and restarting keeps
 * the heap whole; timers started by a callback wait for the next pass.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../../core/timer.h"
#include "tap.h"

#define N 20000

typedef struct {
  eddy__timer_t t;
  uint64_t due;  /* loop time it was due */
  uint64_t seq;  /* start order */
  uint64_t fired_at;
  int stopped;
} item_t;

static item_t items[N];
static int fired;
static int in_order = 1, never_early = 1;
static uint64_t last_due, last_seq;
static uv_loop_t loop;

static void on_fire(eddy__timer_t *t, uint64_t due) {
  item_t *it = (item_t *)t;
  it->fired_at = uv_now(&loop);
  if (due != it->due)
    in_order = 0;
  if (fired > 0 && (due < last_due || (due == last_due && it->seq < last_seq)))
    in_order = 0;
  if (it->fired_at < due)
    never_early = 0;
  last_due = due;
  last_seq = it->seq;
  fired++;
}

static eddy__timers_t timers;
static int chained;

static void on_chain(eddy__timer_t *t, uint64_t due) {
  (void)due;
  /* A zero-delay timer started again from its own callback must not
     starve the loop: it runs once per pass. */
  if (++chained < 5)
    eddy__timer_start(&timers, t, 0, on_chain);
}

static int idle_turns;
static void on_idle(uv_idle_t *h) {
  idle_turns++;
  if (chained >= 5)
    uv_idle_stop(h);
}

int main(void) {
  uv_loop_init(&loop);
  eddy__timers_init(&loop, &timers);
  srand(7);
  uint64_t seq = 0;
  for (int i = 0; i < N; i++) {
    uint64_t delay = (uint64_t)(rand() % 300);
    eddy__timer_start(&timers, &items[i].t, delay, on_fire);
    items[i].due = uv_now(&loop) + (delay ? delay : 1);
    items[i].seq = seq++;
  }
  /* Stop a third of them, restart some of those with new delays. */
  int stopped = 0;
  for (int i = 0; i < N; i += 3) {
    eddy__timer_stop(&timers, &items[i].t);
    if (i % 2) {
      uint64_t delay = (uint64_t)(rand() % 300);
      eddy__timer_start(&timers, &items[i].t, delay, on_fire);
      items[i].due = uv_now(&loop) + (delay ? delay : 1);
      items[i].seq = seq++;
    } else {
      items[i].stopped = 1;
      stopped++;
    }
  }
  ok(timers.count == (uint32_t)(N - stopped), "the heap holds the pending ones");
  uv_run(&loop, UV_RUN_DEFAULT);
  ok(fired == N - stopped, "every pending timer fired once (%d)", fired);
  ok(in_order, "they fired in due order, ties in start order");
  ok(never_early, "none fired before it was due");
  int stopped_fired = 0;
  for (int i = 0; i < N; i++)
    if (items[i].stopped && items[i].fired_at)
      stopped_fired++;
  ok(stopped_fired == 0, "stopped timers never fired");
  ok(timers.count == 0 && !uv_is_active((uv_handle_t *)&timers.handle),
     "an empty heap leaves the loop free to end");

  eddy__timer_t chain = {0};
  uv_idle_t idle;
  uv_idle_init(&loop, &idle);
  uv_idle_start(&idle, on_idle);
  eddy__timer_start(&timers, &chain, 0, on_chain);
  uv_run(&loop, UV_RUN_DEFAULT);
  ok(chained == 5 && idle_turns >= 4,
     "a timer restarted from its callback runs once per loop turn (%d turns)",
     idle_turns);

  eddy__timers_close(&timers);
  uv_close((uv_handle_t *)&idle, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ok(uv_loop_close(&loop) == 0, "the loop closes with nothing left");
  return done();
}

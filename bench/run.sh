#!/usr/bin/env bash
# bench/run.sh: eddy's first benchmarks, against their baselines, in one run.
#
#   echo    eddy's echo server (bench/echo.lua: a task per connection on the
#           public API) against a minimal C libuv echo server (bench/echo_uv.c,
#           classic uv_write, and "try": uv_try_write first), each one thread
#           pinned to core 0, the load generator pinned to core 1: 100
#           connections doing 64-byte ping-pong. Rounds alternate the servers;
#           medians are reported, with messages per server-CPU-second.
#   idle    resident memory per idle connection: 10,000 connections, one
#           message each, then idle.
#   tasks   tasks spawned and finished per second (bench/tasks.lua).
#   timers  a million pending timers: bytes each, order, lateness
#           (bench/timers.lua), against a million plain libuv timers in C
#           (bench/timers_uv.c).
#
# Usage: bench/run.sh [echo|idle|tasks|timers ...]   (default: all)
# Environment: ROUNDS (5), SECS (10), WARM (2), CONNS (100), IDLE (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
WARM=${WARM:-2}
CONNS=${CONNS:-100}
IDLE=${IDLE:-10000}
SIZE=64
B=build/bench
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(echo idle tasks timers)

make -s all >/dev/null
mkdir -p "$B"
cc -O2 -Wall -o "$B/loadgen" bench/loadgen.c
cc -O2 -Wall -o "$B/echo_uv" bench/echo_uv.c $(pkg-config --cflags --libs libuv)
cc -O2 -Wall -o "$B/timers_uv" bench/timers_uv.c $(pkg-config --cflags --libs libuv)

port=7400
server_pid=
start_server() { # name → sets server_pid and port
  port=$((port + 1))
  case "$1" in
    c) taskset -c 0 "$B/echo_uv" "$port" >/dev/null & ;;
    c_try) taskset -c 0 "$B/echo_uv" "$port" try >/dev/null & ;;
    eddy) taskset -c 0 build/eddy bench/echo.lua "$port" >/dev/null & ;;
  esac
  server_pid=$!
  for _ in $(seq 100); do
    nc -z 127.0.0.1 "$port" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: $1 did not start" >&2
  exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

declare -A rate cpu
run_echo() {
  local servers=(c c_try eddy)
  echo "## echo: $CONNS connections, $SIZE-byte ping-pong, ${SECS}s x $ROUNDS rounds"
  for r in $(seq "$ROUNDS"); do
    for s in "${servers[@]}"; do
      start_server "$s"
      line=$(taskset -c 1 "$B/loadgen" ping "$port" "$CONNS" "$WARM" "$SECS" "$SIZE" "$server_pid")
      stop_server
      echo "round $r $s: $line"
      rate[$s]+="$(echo "$line" | field rate) "
      cpu[$s]+="$(echo "$line" | field per_server_cpu_s) "
    done
  done
  echo
  echo "| server | msgs/s (median) | msgs per server-CPU-second | eddy ratio (msgs/s) | eddy ratio (per CPU-s) |"
  echo "|---|---|---|---|---|"
  local er ec
  er=$(echo ${rate[eddy]} | tr ' ' '\n' | median)
  ec=$(echo ${cpu[eddy]} | tr ' ' '\n' | median)
  for s in "${servers[@]}"; do
    local r c
    r=$(echo ${rate[$s]} | tr ' ' '\n' | median)
    c=$(echo ${cpu[$s]} | tr ' ' '\n' | median)
    printf "| %s | %.0f | %.0f | %.2f | %.2f |\n" "$s" "$r" "$c" \
      "$(div "$er" "$r" 4)" "$(div "$ec" "$c" 4)"
  done
  echo
}

run_idle() {
  echo "## idle: $IDLE connections, one $SIZE-byte message each, then idle"
  echo
  echo "| server | resident memory per idle connection |"
  echo "|---|---|"
  for s in c_try eddy; do
    start_server "$s"
    sleep 0.3
    local before after
    before=$(rss_kib "$server_pid")
    coproc LOAD { "$B/loadgen" idle "$port" "$IDLE" "$SIZE"; }
    read -r ready <&"${LOAD[0]}"
    sleep 0.5
    after=$(rss_kib "$server_pid")
    eval "exec ${LOAD[1]}>&-"
    wait "$LOAD_PID" 2>/dev/null || true
    stop_server
    printf "| %s | %.2f KiB (%s) |\n" "$s" "$(div "$((after - before))" "$IDLE" 4)" "$ready"
  done
  echo
}

run_tasks() {
  echo "## tasks"
  echo
  taskset -c 0 build/eddy bench/tasks.lua
  echo
}

run_timers() {
  echo "## timers: a million pending timers, due over 10 s"
  echo
  echo "eddy:    $(taskset -c 0 build/eddy bench/timers.lua 1000000 10)"
  echo "C libuv: $(taskset -c 0 "$B/timers_uv" 1000000 10)"
  echo
}

for w in "${what[@]}"; do "run_$w"; done

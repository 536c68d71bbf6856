#!/usr/bin/env bash
# bench/models.sh: the three server models of examples/models/, each the
# same tiny HTTP responder that closes after its reply: prefork.c (5 forked
# workers in accept/read/write/close), thread.c (a thread per connection)
# and reactor.lua (eddy: a task per connection on one event loop). Each
# server is pinned to core 0 and wrk (two threads, "Connection: close", so
# a new connection per request, as the seed's server) to core 1.
#
#   bench/models.sh [load|units ...]   (default: load units)
#     load   requests/s, p99 latency and memory at 10, 100 and 1,000
#            concurrent clients; memory is PSS summed over the server's
#            processes (the parent and its workers; threads share one),
#            sampled during the load, the highest kept; a fresh server
#            for each row
#     units  the unit costs: creating and finishing a process, a thread
#            and an eddy task, a switch between two of each, and the
#            memory of an idle one (bench/models_units.c and .lua), all
#            on core 0
# Environment: SECS (5), WARM (1), ROUNDS (1: medians over more),
# CLIENTS ("10 100 1000"), MODELS ("prefork thread reactor").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SECS=${SECS:-5}
WARM=${WARM:-1}
ROUNDS=${ROUNDS:-1}
CLIENTS=${CLIENTS:-"10 100 1000"}
MODELS=${MODELS:-"prefork thread reactor"}
B=build/models
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(load units)

make -s all >/dev/null
mkdir -p "$B"
cc -std=c11 -O2 -Wall -o "$B/prefork" examples/models/prefork.c
cc -std=c11 -O2 -Wall -pthread -o "$B/thread" examples/models/thread.c
cc -std=c11 -O2 -Wall -pthread -o "$B/units" bench/models_units.c

# 1,000 clients need 1,000 sockets in wrk and in the server (the C servers
# and eddy ask for a listen backlog of 4096).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
  echo "bench: need 4096 open files, have $(ulimit -n)" >&2
  exit 1
fi
# This script, and the samplers and awk it runs, stay off the server's core.
taskset -cp 1 $$ >/dev/null

port=7700
pid=
start_server() { # model → sets pid and port
  port=$((port + 1))
  case "$1" in
    prefork) taskset -c 0 "$B/prefork" $port >/dev/null & ;;
    thread) taskset -c 0 "$B/thread" $port >/dev/null & ;;
    reactor) taskset -c 0 build/eddy examples/models/reactor.lua $port >/dev/null & ;;
  esac
  pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    sleep 0.05
  done
  echo "bench: $1 did not start" >&2
  exit 1
}
stop_server() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# PSS in KiB summed over pid and its children: pages shared between them
# (the workers' copy-on-write memory) count once in all.
pss_kib() { # pid
  local total=0 p v
  for p in "$1" $(pgrep -P "$1" || true); do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
# Writes the highest PSS seen into file, every 0.2 s, until killed.
sample_pss() { # pid file
  local max=0 v
  while :; do
    v=$(pss_kib "$1")
    if [ "$v" -gt "$max" ]; then max=$v; echo "$max" >"$2"; fi
    sleep 0.2
  done
}
# CPU time in ticks (1/100 s) of pid and its children, threads included.
cpu_ticks() { # pid
  local total=0 p v
  for p in "$1" $(pgrep -P "$1" || true); do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# One wrk run at c clients: "rps p99_ms pss_mib errors cpu_percent" (the
# server's CPU time over the run's wall time; 100: core 0 saturated).
measure() { # clients
  local url="http://127.0.0.1:$port/"
  local wrk=(taskset -c 1 wrk -t2 -c"$1" --timeout 10s -H "Connection: close")
  "${wrk[@]}" -d"${WARM}s" "$url" >/dev/null 2>&1 || true
  local f out
  f=$(mktemp)
  echo 0 >"$f"
  sample_pss "$pid" "$f" &
  local sampler=$! c0 c1
  c0=$(cpu_ticks "$pid")
  out=$("${wrk[@]}" -d"${SECS}s" --latency "$url")
  c1=$(cpu_ticks "$pid")
  kill "$sampler"
  wait "$sampler" 2>/dev/null || true
  echo "$out" | awk -v pss="$(cat "$f")" -v cpu=$((c1 - c0)) -v secs="$SECS" '
    /Requests\/sec/ {rps = $2}
    $1 == "99%" {v = $2
      if (v ~ /us$/) {sub("us", "", v); v /= 1000}
      else if (v ~ /ms$/) sub("ms", "", v)
      else if (v ~ /s$/) {sub("s", "", v); v *= 1000}
      p99 = v}
    /Socket errors/ {gsub(",", ""); err += $4 + $6 + $8 + $10}
    /Non-2xx/ {err += $NF}
    END {printf "%.0f %.2f %.1f %d %.0f\n", rps, p99, pss / 1024, err, cpu / secs}'
  rm -f "$f"
}

declare -A res
run_load() {
  for r in $(seq "$ROUNDS"); do
    for m in $MODELS; do
      for c in $CLIENTS; do
        start_server "$m"
        line=$(measure "$c")
        stop_server
        echo "round $r $m $c clients: rps p99_ms pss_mib errors cpu% = $line"
        res[$m.$c]+="$line;"
      done
    done
  done
  echo
  echo "| model | clients | req/s | p99 | memory (PSS, MiB) | server CPU | errors |"
  echo "|---|---|---|---|---|---|---|"
  for m in $MODELS; do
    for c in $CLIENTS; do
      local col=() k
      for k in 1 2 3 4 5; do
        col+=("$(echo "${res[$m.$c]}" | tr ';' '\n' | awk -v k=$k 'NF {print $k}' | median)")
      done
      echo "| $m | $c | ${col[0]} | ${col[1]} ms | ${col[2]} | ${col[4]} % | ${col[3]} |"
    done
  done
  echo
}

run_units() {
  local rows
  rows=$(taskset -c 0 "$B/units"; taskset -c 0 build/eddy bench/models_units.lua)
  echo "| unit | create+finish | switch | memory per idle unit |"
  echo "|---|---|---|---|"
  echo "$rows"
  echo
}

for w in "${what[@]}"; do "run_$w"; done

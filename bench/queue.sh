#!/usr/bin/env bash
# bench/queue.sh: eddy.queue's backends against their references, in one
# run, as ratios (eddy ÷ reference; below 1 is slower):
#   memory: bench/queue_memory.lua (against a plain channel, and one
#     carrying encoded values; its own table, MEMORY=0 leaves it out);
#   SQLite (synchronous FULL, then NORMAL): bench/queue.lua's push and
#     pop+ack throughput against bench/queue_sqlite.c, a bare C loop over
#     the same schema and statements, batched as eddy's writer batched
#     (group commit: the ops per transaction eddy reports), and the
#     latency of one push+pop+ack at a time (three transactions each);
#   Redis Streams: eddy's push (XADD) against redis-benchmark's XADD with
#     as many clients as eddy has tasks, and eddy's pop+ack against the
#     same XADD figure (a pop+ack is an XREADGROUP and a script); then a
#     message's whole cycle (push, pop, ack) against redis-benchmark
#     running the same commands (XADD, XREADGROUP, XACK) one after another.
# The database file lives on disk (mktemp under /var/tmp), not tmpfs, so
# that fsync costs what it costs. A redis-server of its own is started by
# scripts/servers.sh.
#   bench/queue.sh                N=20000 C=64 ROUNDS=1 MEMORY=1 by default
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-20000}
C=${C:-64}
ROUNDS=${ROUNDS:-1}
MEMORY=${MEMORY:-1}

make -s all >/dev/null
mkdir -p build/bench
cc -std=c11 -O2 -Wall -D_GNU_SOURCE -o build/bench/queue_sqlite bench/queue_sqlite.c -lsqlite3

dir=$(mktemp -d /var/tmp/eddy-queue-bench.XXXXXX)
trap 'scripts/servers.sh stop "$dir/srv" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
addr=$(scripts/servers.sh start "$dir/srv" redis | sed -n 's/^EDDY_TEST_REDIS=//p')
port=${addr##*:}

get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }

if [ "$MEMORY" = 1 ]; then
  build/eddy --watchdog off bench/queue_memory.lua 200000 "$C" "$ROUNDS"
  echo
fi
echo "| backend | measure | eddy | reference | ratio |"
echo "|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for sync in full normal; do
    rm -f "$dir"/q.db*
    build/eddy bench/queue.lua sqlite "$dir/q.db" "$N" "$C" "$sync" > "$dir/eddy.out"
    rm -f "$dir"/q.db*
    build/bench/queue_sqlite "$dir/q.db" "$N" "$(get push_batch "$dir/eddy.out")" \
      "$(get popack_batch "$dir/eddy.out")" "$sync" > "$dir/bare.out"
    for m in push_rate popack_rate; do
      e=$(get $m "$dir/eddy.out"); b=$(get $m "$dir/bare.out")
      batch=$(get "${m%_rate}_batch" "$dir/eddy.out")
      echo "| sqlite $sync | $m (msg/s, $(fmt "$batch") ops/commit) | $(fmt "$e") | $(fmt "$b") | $(ratio "$e" "$b") |"
    done
    for m in lat_p50_ms lat_p99_ms; do
      e=$(get $m "$dir/eddy.out"); b=$(get $m "$dir/bare.out")
      echo "| sqlite $sync | $m (push+pop+ack) | $(awk -v a="$e" 'BEGIN { printf "%.2f", a }') | $(awk -v a="$b" 'BEGIN { printf "%.2f", a }') | $(ratio "$e" "$b") |"
    done
  done
  build/eddy bench/queue.lua redis "redis://$addr/0" "$N" "$C" > "$dir/eddy.out"
  redis-benchmark -p "$port" -n "$N" -c "$C" --csv XADD benchxadd '*' p \
    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx > "$dir/rb.out"
  rb=$(awk -F'"' 'NR == 2 { print $4 }' "$dir/rb.out")
  for m in push_rate popack_rate; do
    e=$(get $m "$dir/eddy.out")
    echo "| redis | $m (msg/s) vs redis-benchmark XADD -c $C | $(fmt "$e") | $(fmt "$rb") | $(ratio "$e" "$rb") |"
  done
  # The same command mix: what a message costs redis-benchmark going
  # through XADD, XREADGROUP (one new entry each) and XACK, one after the
  # other, against eddy's push then pop+ack of a message.
  redis-cli -p "$port" DEL benchs > /dev/null
  redis-cli -p "$port" XGROUP CREATE benchs g '$' MKSTREAM > /dev/null
  redis-benchmark -p "$port" -n "$N" -c "$C" --csv XADD benchs '*' p \
    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx > /dev/null
  rread=$(redis-benchmark -p "$port" -n "$N" -c "$C" --csv XREADGROUP GROUP g c \
    COUNT 1 STREAMS benchs '>' | awk -F'"' 'NR == 2 { print $4 }')
  rack=$(redis-benchmark -p "$port" -n "$N" -c "$C" --csv XACK benchs g 0-1 \
    | awk -F'"' 'NR == 2 { print $4 }')
  ref=$(awk -v a="$rb" -v b="$rread" -v c="$rack" 'BEGIN { print 1 / (1/a + 1/b + 1/c) }')
  cycle=$(awk -v a="$(get push_rate "$dir/eddy.out")" -v b="$(get popack_rate "$dir/eddy.out")" \
    'BEGIN { print 1 / (1/a + 1/b) }')
  echo "| redis | push+pop+ack (msg/s) vs redis-benchmark XADD+XREADGROUP+XACK -c $C ($(fmt "$rb"), $(fmt "$rread"), $(fmt "$rack")/s) | $(fmt "$cycle") | $(fmt "$ref") | $(ratio "$cycle" "$ref") |"
  echo "| redis | lat_p50_ms / lat_p99_ms (push+pop+ack) | $(awk -v a="$(get lat_p50_ms "$dir/eddy.out")" -v b="$(get lat_p99_ms "$dir/eddy.out")" 'BEGIN { printf "%.2f / %.2f", a, b }') | | |"
done

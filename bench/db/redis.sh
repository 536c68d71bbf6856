#!/usr/bin/env bash
# bench/db/redis.sh: eddy's Redis client against redis-benchmark, in one
# run, on a private redis-server: N SETs then N GETs (default 100,000
# each) by C clients (100), one command in flight per client (no
# pipelining), 3-byte values, the same key: eddy runs C tasks with a
# connection each (bench/db/redis.lua), redis-benchmark C connections
# (-c C -n N -t set,get). Rounds alternate the two; the medians are
# reported with each side's CPU seconds and the server's CPU share (its
# CPU seconds over the wall time of the client's run), and requests per
# server-CPU-second, which on a shared 2-core machine is the steadier
# figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh

N=${N:-100000}
C=${C:-100}
ROUNDS=${ROUNDS:-3}
make -s all >/dev/null
dir=$(mktemp -d)
trap 'scripts/servers.sh stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
addr=$(scripts/servers.sh start "$dir" redis)
addr=${addr#*=}
host=${addr%:*}
port=${addr##*:}
spid=$(cat "$dir/redis.pid")

tick=$(getconf CLK_TCK)
now() { date +%s.%N; }

# Each run prints: SET-rps GET-rps wall-seconds client-cpu-s server-cpu-s
measure() {
  local t0 s0 out t1 s1
  s0=$(cpu_of "$spid"); t0=$(now)
  out=$(/usr/bin/time -f "cpu %U %S" "$@" 2>&1 | tr '\r' '\n')
  t1=$(now); s1=$(cpu_of "$spid")
  local set get cpu
  set=$(echo "$out" | awk '/^ *SET[: ]/ && /[0-9]$|per second/ {v=$2} END {print v}')
  get=$(echo "$out" | awk '/^ *GET[: ]/ && /[0-9]$|per second/ {v=$2} END {print v}')
  cpu=$(echo "$out" | awk '/^cpu / {print $2 + $3}')
  awk -v a="$set" -v b="$get" -v t0="$t0" -v t1="$t1" -v c="$cpu" \
    -v s0="$s0" -v s1="$s1" -v tk="$tick" \
    'BEGIN {printf "%s %s %.3f %.2f %.2f\n", a, b, t1 - t0, c, (s1 - s0) / tk}'
}
run_eddy() { measure build/eddy bench/db/redis.lua "$host" "$port" "$N" "$C"; }
run_redis_benchmark() { measure redis-benchmark -h "$host" -p "$port" -c "$C" -n "$N" -t set,get -q; }

declare -A res
for r in $(seq "$ROUNDS"); do
  for who in eddy redis_benchmark; do
    line=$("run_$who")
    echo "round $r $who: SET/s GET/s wall cpu server-cpu = $line"
    res[$who]+="$line"$'\n'
  done
done

col() { echo "${res[$1]}" | awk -v k="$2" 'NF {print $k}' | median; }
echo
echo "$N SETs + $N GETs, $C clients, no pipelining; medians of $ROUNDS rounds"
echo
echo "| client | SET/s | GET/s | client CPU s | server CPU share | requests per server-CPU-s | eddy ÷ it (SET, GET) |"
echo "|---|---|---|---|---|---|---|"
es=$(col eddy 1); eg=$(col eddy 2)
for who in eddy redis_benchmark; do
  s=$(col "$who" 1); g=$(col "$who" 2); w=$(col "$who" 3); c=$(col "$who" 4); sc=$(col "$who" 5)
  awk -v w="${who/_/-}" -v s="$s" -v g="$g" -v wall="$w" -v c="$c" -v sc="$sc" \
    -v n="$N" -v es="$es" -v eg="$eg" \
    'BEGIN {printf "| %s | %.0f | %.0f | %.2f | %.0f %% | %.0f | %.2f, %.2f |\n",
      w, s, g, c, 100 * sc / wall, 2 * n / sc, es / s, eg / g}'
done

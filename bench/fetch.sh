#!/usr/bin/env bash
# bench/fetch.sh: N GETs (default 10,000) at concurrency C (100) against a
# local nginx (the hello route of bench/http), in one run: eddy's client
# (eddy.http.fetch_all), curl --parallel (the same libcurl) and Node's
# fetch. Reports seconds, requests/s and the ratios (medians of ROUNDS),
# and each client's CPU time (user + system, median): on a shared machine
# the steadier measure of what a client spends per request.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

N=${N:-10000}
C=${C:-100}
ROUNDS=${ROUNDS:-3}
B=build/bench
make -s all >/dev/null
mkdir -p "$B/nginx"
sed -e "s|@DIR@|$PWD/$B/nginx|g" -e "s|@PORT_NGINX@|7631|" -e "s|@PORT_LUA@|7632|" \
  bench/http/nginx.conf.in > "$B/nginx/fetch.conf"
nginx -p "$B/nginx" -c "$PWD/$B/nginx/fetch.conf" >/dev/null 2>&1 &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true' EXIT
URL=http://127.0.0.1:7631/
for _ in $(seq 100); do curl -s -o /dev/null "$URL" && break; sleep 0.05; done

cfg=$B/fetch_curl.cfg
: > "$cfg"
for _ in $(seq "$N"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$URL" >> "$cfg"; done

now() { date +%s.%N; }
cpu() { /usr/bin/time -f "%U %S" -o "$B/fetch_cpu" "$@"; }
run_eddy() { cpu build/eddy bench/fetch/eddy_fetch.lua "$URL" "$N" "$C"; }
run_curl() { local t0; t0=$(now); cpu curl -s --no-progress-meter --parallel --parallel-max "$C" -K "$cfg"; awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f\n", b - a}'; }
run_node() { cpu node bench/fetch/node_fetch.mjs "$URL" "$N" "$C"; }

declare -A secs cpus
for r in $(seq "$ROUNDS"); do
  for who in eddy curl node; do
    s=$("run_$who")
    c=$(awk '{printf "%.2f", $1 + $2}' "$B/fetch_cpu")
    echo "round $r $who: $s s (CPU $c s)"
    secs[$who]+="$s "
    cpus[$who]+="$c "
  done
done
echo
echo "| client | seconds for $N GETs | requests/s | eddy ÷ it | CPU seconds | eddy ÷ it (CPU) |"
echo "|---|---|---|---|---|---|"
med() { echo "$1" | tr ' ' '\n' | awk NF | median; }
e=$(med "${secs[eddy]}")
ec=$(med "${cpus[eddy]}")
for who in eddy curl node; do
  s=$(med "${secs[$who]}")
  c=$(med "${cpus[$who]}")
  awk -v w="$who" -v s="$s" -v e="$e" -v c="$c" -v ec="$ec" -v n="$N" \
    'BEGIN {printf "| %s | %.3f | %.0f | %.2f | %.2f | %.2f |\n", w, s, n / s, s / e, c, c / ec}'
done

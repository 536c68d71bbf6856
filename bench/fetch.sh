#!/usr/bin/env bash
# bench/fetch.sh: N GETs (default 10,000) at concurrency C (100) against a
# local nginx (the hello route of bench/http), in one run: eddy's client
# (eddy.http.fetch_all), curl --parallel (the same libcurl) and Node's
# fetch. Reports seconds, requests/s and the ratios (medians of ROUNDS).
set -euo pipefail
cd "$(dirname "$0")/.."

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
run_eddy() { build/eddy bench/fetch/eddy_fetch.lua "$URL" "$N" "$C"; }
run_curl() { local t0; t0=$(now); curl -s --no-progress-meter --parallel --parallel-max "$C" -K "$cfg"; awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f\n", b - a}'; }
run_node() { node bench/fetch/node_fetch.mjs "$URL" "$N" "$C"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A secs
for r in $(seq "$ROUNDS"); do
  for who in eddy curl node; do
    s=$("run_$who")
    echo "round $r $who: $s s"
    secs[$who]+="$s "
  done
done
echo
echo "| client | seconds for $N GETs | requests/s | eddy ÷ it |"
echo "|---|---|---|---|"
e=$(echo "${secs[eddy]}" | tr ' ' '\n' | awk NF | median)
for who in eddy curl node; do
  s=$(echo "${secs[$who]}" | tr ' ' '\n' | awk NF | median)
  awk -v w="$who" -v s="$s" -v e="$e" -v n="$N" \
    'BEGIN {printf "| %s | %.3f | %.0f | %.2f |\n", w, s, n / s, s / e}'
done

#!/usr/bin/env bash
# bench/tls.sh: HTTPS served by an ordinary eddy app (bench/tls/eddy_https.lua)
# against nginx, with the same ECDSA P-256 certificate, TLS 1.3 only and
# one cipher suite (TLS_AES_128_GCM_SHA256), one process each pinned to
# core 0, the load pinned to core 1, in one run. Two loads:
#   handshakes  new TLS 1.3 connections, each a full handshake and one
#               GET / (HTTP/1.0: the server closes), from PAR processes of
#               bench/tls/handshakes.c (OpenSSL, one connection at a time
#               each; `openssl s_time` waits between connections)
#   keepalive   GET / on CONNS keep-alive HTTPS connections (wrk)
# Reports per second and per server-CPU-second (medians over the rounds),
# and eddy ÷ nginx per server-CPU-second.
#
#   bench/tls.sh      Environment: ROUNDS (3), SECS (8), CONNS (50), PAR (4).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-8}
CONNS=${CONNS:-50}
PAR=${PAR:-4}
B=build/bench/tls
SUITE=TLS_AES_128_GCM_SHA256

make -s all >/dev/null
rm -rf "$B" && mkdir -p "$B/nginx" "$B/certs"
sh examples/https/make-certs.sh "$B/certs" localhost
cc -O2 -Wall -o "$B/handshakes" bench/tls/handshakes.c $(pkg-config --cflags --libs openssl)
sed -e "s|@DIR@|$PWD/$B/nginx|g" -e "s|@CERTS@|$PWD/$B/certs|g" -e "s|@PORT@|7621|" \
  bench/tls/nginx.conf.in > "$B/nginx/nginx.conf"

pid=
port=
start_server() { # name
  case "$1" in
    eddy) port=7620; taskset -c 0 build/eddy bench/tls/eddy_https.lua $port "$B/certs" >"$B/eddy.log" 2>&1 & pid=$! ;;
    nginx) port=7621; taskset -c 0 nginx -p "$B/nginx" -c "$PWD/$B/nginx/nginx.conf" >/dev/null 2>&1 & pid=$! ;;
  esac
  for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$B/certs/ca.pem" "https://localhost:$port/" && return 0
    sleep 0.05
  done
  echo "bench: $1 did not start" >&2
  exit 1
}

# "per_s per_cpu_s" for PAR processes making new connections.
handshakes() {
  local c0 c1 n
  c0=$(cpu_of "$pid")
  n=$(taskset -c 1 "$B/handshakes" 127.0.0.1 "$port" "$SECS" "$PAR" "$SUITE")
  c1=$(cpu_of "$pid")
  awk -v n="$n" -v c=$((c1 - c0)) -v s="$SECS" \
    'BEGIN {printf "%.0f %.0f\n", n / s, c ? n / (c / 100) : 0}'
}

# "per_s per_cpu_s" for wrk on keep-alive connections.
keepalive() {
  local url="https://127.0.0.1:$port/" c0 c1 out rps
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null 2>&1 || true
  c0=$(cpu_of "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "$url")
  c1=$(cpu_of "$pid")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  awk -v r="$rps" -v c=$((c1 - c0)) -v s="$SECS" \
    'BEGIN {printf "%.0f %.0f\n", r, c ? r * s / (c / 100) : 0}'
}

declare -A res
for r in $(seq "$ROUNDS"); do
  for s in eddy nginx; do
    start_server "$s"
    for l in handshakes keepalive; do
      line=$($l)
      echo "round $r $s $l: per_s per_cpu_s = $line"
      res[$s.$l]+="$line;"
    done
    stop_server
  done
done
for l in handshakes keepalive; do
  echo
  echo "### $l"
  echo
  echo "| server | per second | per server-CPU-second | eddy ÷ it (per CPU-s) |"
  echo "|---|---|---|---|"
  eddy_cpu=$(echo "${res[eddy.$l]}" | tr ';' '\n' | awk 'NF {print $2}' | median)
  for s in eddy nginx; do
    ps=$(echo "${res[$s.$l]}" | tr ';' '\n' | awk 'NF {print $1}' | median)
    cpu=$(echo "${res[$s.$l]}" | tr ';' '\n' | awk 'NF {print $2}' | median)
    echo "| $s | $ps | $cpu | $(div "$eddy_cpu" "$cpu") |"
  done
done
failed=$(grep -c "handshake failed" "$B/eddy.log" || true)
echo
echo "eddy's failed handshakes in the last round: $failed"

#!/usr/bin/env bash
# bench/http.sh: the hello route (GET / -> "hello\n") served by an ordinary
# eddy app through the public API (bench/http/eddy_hello.lua: router,
# req/res, a task per connection) against nginx (return 200), nginx with its
# Lua module (ngx.say), Node's http and Go's net/http, one worker each
# pinned to core 0, wrk pinned to core 1, in one run. Three loads:
# keep-alive, keep-alive with 8 pipelined requests, Connection: close.
# Reports requests/s, p99 latency and requests per server-CPU-second
# (medians over the rounds), and the ratios of eddy to the others.
#
#   bench/http.sh [load|idle|instr|threads ...]   (default: load idle)
#     load   the three loads above
#     threads  keep-alive requests/s of eddy with 1 and 2 reactor threads
#            and of nginx with 1 and 2 workers, nothing pinned, wrk (two
#            threads) sharing the cores: the scaling ratio 2 : 1
#     idle   resident memory per idle keep-alive connection (10,000)
#     instr  user-space instructions per request under callgrind
#            (deterministic: eddy, nginx, nginx + Lua)
# Environment: ROUNDS (3), SECS (10), CONNS (100), SERVERS.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-100}
SERVERS=${SERVERS:-"eddy nginx nginx_lua node go"}
B=build/bench
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(load idle)

make -s all >/dev/null
mkdir -p "$B/nginx"
cc -O2 -Wall -o "$B/loadgen" bench/loadgen.c
if command -v go >/dev/null; then
  (cd bench/http && GOCACHE=/tmp/eddy-go-cache go build -o "../../$B/go_hello" go_hello.go)
fi
sed -e "s|@DIR@|$PWD/$B/nginx|g" -e "s|@PORT_NGINX@|7611|" -e "s|@PORT_LUA@|7612|" \
  bench/http/nginx.conf.in > "$B/nginx/nginx.conf"

pid=
port=
start_server() { # name
  case "$1" in
    eddy) port=7610; taskset -c 0 build/eddy bench/http/eddy_hello.lua $port >/dev/null & pid=$! ;;
    nginx) port=7611; taskset -c 0 nginx -p "$B/nginx" -c "$PWD/$B/nginx/nginx.conf" >/dev/null 2>&1 & pid=$! ;;
    nginx_lua) port=7612; taskset -c 0 nginx -p "$B/nginx" -c "$PWD/$B/nginx/nginx.conf" >/dev/null 2>&1 & pid=$! ;;
    node) port=7613; taskset -c 0 node bench/http/node_hello.js $port >/dev/null & pid=$! ;;
    go) port=7614; GOMAXPROCS=1 taskset -c 0 "$B/go_hello" $port >/dev/null & pid=$! ;;
  esac
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    sleep 0.05
  done
  echo "bench: $1 did not start" >&2
  exit 1
}

# One wrk run against the server: "rps p99_ms per_cpu_s". wrk runs on
# core 1 with one thread, unless WRK (the command) says otherwise.
measure() { # extra wrk args...
  local wrk=(${WRK:-taskset -c 1 wrk -t1})
  "${wrk[@]}" -c"$CONNS" -d2s "$@" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
  local c0 c1 out rps p99
  c0=$(cpu_of "$pid")
  out=$("${wrk[@]}" -c"$CONNS" -d"${SECS}s" --latency "$@" "http://127.0.0.1:$port/")
  c1=$(cpu_of "$pid")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000} print v}')
  awk -v r="$rps" -v p="$p99" -v c=$((c1 - c0)) -v s="$SECS" \
    'BEGIN {printf "%.0f %.2f %.0f\n", r, p, c ? r * s / (c / 100) : 0}'
}

declare -A res
run_load() {
  local loads=(keepalive pipeline close)
  for r in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
      [ "$s" = go ] && [ ! -x "$B/go_hello" ] && continue
      start_server "$s"
      for l in "${loads[@]}"; do
        case $l in
          keepalive) line=$(measure) ;;
          pipeline) line=$(measure -s bench/http/pipeline.lua) ;;
          close) line=$(measure -H "Connection: close") ;;
        esac
        echo "round $r $s $l: rps p99ms per_cpu_s = $line"
        res[$s.$l]+="$line;"
      done
      stop_server
    done
  done
  for l in "${loads[@]}"; do
    echo
    echo "### $l"
    echo
    echo "| server | req/s | p99 | req per server-CPU-s | eddy ÷ it (per CPU-s) |"
    echo "|---|---|---|---|---|"
    local eddy_cpu
    eddy_cpu=$(echo "${res[eddy.$l]}" | tr ';' '\n' | awk 'NF {print $3}' | median)
    for s in $SERVERS; do
      [ -n "${res[$s.$l]:-}" ] || continue
      local rps p99 cpu
      rps=$(echo "${res[$s.$l]}" | tr ';' '\n' | awk 'NF {print $1}' | median)
      p99=$(echo "${res[$s.$l]}" | tr ';' '\n' | awk 'NF {print $2}' | median)
      cpu=$(echo "${res[$s.$l]}" | tr ';' '\n' | awk 'NF {print $3}' | median)
      echo "| $s | $rps | ${p99} ms | $cpu | $(div "$eddy_cpu" "$cpu") |"
    done
  done
  echo
}

run_idle() {
  echo "### idle keep-alive connections: 10,000, one request each"
  echo
  echo "| server | resident memory per idle connection |"
  echo "|---|---|"
  for s in eddy nginx; do
    start_server "$s"
    local before after
    before=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    coproc LOAD { "$B/loadgen" idle_http "$port" 10000; }
    read -r ready <&"${LOAD[0]}"
    sleep 0.5
    after=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    eval "exec ${LOAD[1]}>&-"
    wait "$LOAD_PID" 2>/dev/null || true
    stop_server
    echo "| $s | $(div "$((after - before))" 10000) KiB ($ready) |"
  done
  echo
}

# Instructions per request: callgrind counts them exactly; two runs of
# different lengths, and the difference divided by the extra requests,
# leave start-up out.
run_instr() {
  echo "### user-space instructions per request (callgrind)"
  echo
  echo "| server | instructions per request |"
  echo "|---|---|"
  for s in eddy nginx nginx_lua; do
    local irs=() reqs=()
    for d in 2 5; do
      case $s in
        eddy) port=7620; cmd=(build/eddy bench/http/eddy_hello.lua $port) ;;
        nginx) port=7611; cmd=(nginx -p "$B/nginx" -c "$PWD/$B/nginx/nginx.conf") ;;
        nginx_lua) port=7612; cmd=(nginx -p "$B/nginx" -c "$PWD/$B/nginx/nginx.conf") ;;
      esac
      valgrind --tool=callgrind --callgrind-out-file="$B/cg.$s.$d" "${cmd[@]}" >/dev/null 2>&1 &
      pid=$!
      for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
      reqs+=("$(wrk -t1 -c20 -d${d}s "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')")
      kill -INT "$pid" 2>/dev/null; kill -QUIT "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      irs+=("$(awk '/^(summary|totals):/ {print $2; exit}' "$B/cg.$s.$d")")
    done
    echo "| $s | $(awk -v a="${irs[0]}" -v b="${irs[1]}" -v x="${reqs[0]}" -v y="${reqs[1]}" 'BEGIN {printf "%.0f", (b - a) / (y - x)}') |"
  done
  echo
}

# Scaling over cores: the same server with one and two reactor threads
# (eddy) or workers (nginx, with its master), unpinned, wrk sharing the
# cores. Only requests/s counts here: the CPU of nginx's workers is not
# its master's.
run_threads() {
  local rows=()
  for s in eddy nginx; do
    local one=0 two=0
    for n in 1 2; do
      local per=()
      for r in $(seq "$ROUNDS"); do
        case $s in
          eddy) port=7610; build/eddy --threads $n bench/http/eddy_hello.lua $port >/dev/null & pid=$! ;;
          nginx) port=7611
            sed -e "s/^worker_processes 1;/worker_processes $n;/" -e "s/^master_process off;/master_process on;/" \
              "$B/nginx/nginx.conf" > "$B/nginx/nginx.$n.conf"
            nginx -p "$B/nginx" -c "$PWD/$B/nginx/nginx.$n.conf" >/dev/null 2>&1 & pid=$! ;;
        esac
        for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
        per+=("$(WRK="wrk -t2" measure | awk '{print $1}')")
        stop_server
      done
      local med
      med=$(printf '%s\n' "${per[@]}" | median)
      if [ $n = 1 ]; then one=$med; else two=$med; fi
    done
    rows+=("| $s | $one | $two | $(div "$two" "$one") |")
  done
  echo "### one and two reactor threads (nginx: workers), $(nproc) cores shared with wrk"
  echo
  echo "| server | 1 thread req/s | 2 threads req/s | 2 ÷ 1 |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
}

for w in "${what[@]}"; do "run_$w"; done

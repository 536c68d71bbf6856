#!/usr/bin/env bash
# bench/db/mysql.sh: N point queries (default 10,000; SELECT id, v FROM a
# 100-row table WHERE id = K, K cycling 1..100) at concurrency C (100) on a
# private MariaDB server, in one run: eddy's client over a pool of POOL (20)
# connections, plain text and prepared, against mysqlslap with the same
# query texts and concurrency (its C connections of its own, a thread each).
# Reports medians of ROUNDS: seconds, queries/s, the server's CPU share
# (mariadbd's CPU seconds ÷ wall seconds; 1.00 = one core busy), the
# client's, and eddy's queries/s ÷ mysqlslap's.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh

N=${N:-10000}
C=${C:-100}
POOL=${POOL:-20}
ROUNDS=${ROUNDS:-3}
B=build/bench/db
make -s all >/dev/null
mkdir -p "$B"
srv=$(mktemp -d)
trap 'scripts/servers.sh stop "$srv"; rm -rf "$srv"' EXIT
addr=$(scripts/servers.sh start "$srv" mysql | sed -n 's/^EDDY_TEST_MYSQL=//p')
host=${addr%:*}
port=${addr##*:}
pid=$(cat "$srv/mysql.pid")
sql() { mariadb --no-defaults -h "$host" -P "$port" -u eddy -peddy-pass eddy_test -e "$1"; }
sql "CREATE TABLE bench_points (id INT PRIMARY KEY, v VARCHAR(32));
  INSERT INTO bench_points SELECT seq, CONCAT('value ', seq) FROM seq_1_to_100;"
queries=$B/queries.sql
: > "$queries"
for k in $(seq 100); do echo "SELECT id, v FROM bench_points WHERE id = $k;" >> "$queries"; done

now() { date +%s.%N; }
TICK=$(getconf CLK_TCK)

# Runs a client command; prints "wall server_cpu client_cpu" (seconds).
measure() {
  local s0 t0 t1 s1 c
  s0=$(cpu_of "$pid")
  t0=$(now)
  c=$( { /usr/bin/time -f "%U %S" "$@" >/dev/null; } 2>&1 | tail -1 | awk '{print $1 + $2}')
  t1=$(now)
  s1=$(cpu_of "$pid")
  awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$TICK" -v c="$c" \
    'BEGIN {printf "%.3f %.3f %.3f\n", b - a, (s1 - s0) / hz, c}'
}
run_plain() { measure build/eddy bench/db/mysql_bench.lua "$addr" plain "$queries" "$N" "$C" "$POOL"; }
run_prepared() { measure build/eddy bench/db/mysql_bench.lua "$addr" prepared "$queries" "$N" "$C" "$POOL"; }
run_mysqlslap() {
  measure mysqlslap --no-defaults -h "$host" -P "$port" -u eddy -peddy-pass \
    --create-schema=eddy_test --concurrency="$C" --number-of-queries="$N" \
    --query="$queries" --delimiter=";" --iterations=1
}

# A first, uncounted round warms the server's caches and threads.
for who in mysqlslap plain prepared; do "run_$who" >/dev/null; done
declare -A wall scpu ccpu
for r in $(seq "$ROUNDS"); do
  for who in mysqlslap plain prepared; do
    read -r w s c < <("run_$who")
    echo "round $r $who: $w s (server CPU $s s, client CPU $c s)"
    wall[$who]+="$w "
    scpu[$who]+="$s "
    ccpu[$who]+="$c "
  done
done
pick() { echo "$1" | tr ' ' '\n' | awk NF | median; }
echo
echo "| client | seconds for $N queries | queries/s | server CPU share | client CPU share | ÷ mysqlslap's queries/s |"
echo "|---|---|---|---|---|---|"
ref=$(pick "${wall[mysqlslap]}")
for who in mysqlslap plain prepared; do
  w=$(pick "${wall[$who]}")
  s=$(pick "${scpu[$who]}")
  c=$(pick "${ccpu[$who]}")
  name=$who
  [ "$who" = mysqlslap ] || name="eddy $who (pool of $POOL)"
  awk -v w="$name" -v t="$w" -v s="$s" -v c="$c" -v r="$ref" -v n="$N" \
    'BEGIN {printf "| %s | %.3f | %.0f | %.2f | %.2f | %.2f |\n", w, t, n / t, s / t, c / t, r / t}'
done

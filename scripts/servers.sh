#!/usr/bin/env bash
# Starts and stops the throw-away database servers the tests use: a
# redis-server and a MariaDB server, each on a free loopback port, with its
# data in a directory of its own, never the system's.
#
#   scripts/servers.sh start DIR [redis|mysql]...   start them (default both)
#   scripts/servers.sh stop DIR                     stop what DIR holds
#
# `start` prints shell assignments for the tests to eval:
#   EDDY_TEST_REDIS=127.0.0.1:PORT
#   EDDY_TEST_MYSQL=127.0.0.1:PORT   (user eddy, password eddy-pass,
#                                     database eddy_test)
# Each server's pid is in DIR/<name>.pid, so a test can kill one and start
# a new one with the same command.
set -euo pipefail

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # port seconds [pid]
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start_redis() {
  local dir=$1/redis port
  port=$(free_port)
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --daemonize yes --pidfile "$1/redis.pid" \
    --logfile "$dir/redis.log" >/dev/null
  wait_for_port "$port" 10 || { echo "redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }
  echo "EDDY_TEST_REDIS=127.0.0.1:$port"
}

start_mysql() {
  local dir=$1/mysql port user=()
  port=$(free_port)
  mkdir -p "$dir/data"
  [ "$(id -u)" -eq 0 ] && user=(--user=root)
  mariadb-install-db --no-defaults "${user[@]}" --datadir="$dir/data" --auth-root-authentication-method=socket \
    --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
  mariadbd --no-defaults "${user[@]}" --datadir="$dir/data" --port="$port" \
    --bind-address=127.0.0.1 --socket="$dir/mysql.sock" --pid-file="$1/mysql.pid" \
    --log-error="$dir/error.log" --innodb-buffer-pool-size=64M \
    --max-connections=500 --skip-name-resolve >/dev/null 2>&1 &
  wait_for_port "$port" 60 $! || { echo "mariadbd did not start" >&2; cat "$dir/error.log" >&2; exit 1; }
  mariadb --no-defaults -S "$dir/mysql.sock" -u root <<'SQL'
CREATE DATABASE eddy_test;
CREATE USER 'eddy'@'127.0.0.1' IDENTIFIED BY 'eddy-pass';
CREATE USER 'eddy'@'localhost' IDENTIFIED BY 'eddy-pass';
GRANT ALL ON eddy_test.* TO 'eddy'@'127.0.0.1';
GRANT ALL ON eddy_test.* TO 'eddy'@'localhost';
GRANT PROCESS, CONNECTION ADMIN ON *.* TO 'eddy'@'127.0.0.1';
SQL
  echo "EDDY_TEST_MYSQL=127.0.0.1:$port"
}

stop_all() {
  local f pid i
  for f in "$1"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [redis|mysql]..." >&2; exit 2; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    shift 2
    [ $# -gt 0 ] || set -- redis mysql
    for s in "$@"; do "start_$s" "$dir"; done
    ;;
  stop) stop_all "$dir" ;;
  *) echo "usage: $0 start|stop DIR [redis|mysql]..." >&2; exit 2 ;;
esac

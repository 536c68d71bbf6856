#!/usr/bin/env bash
# Installs the Debian packages that building and testing eddy need, and says
# which and why. Does nothing when they are all there. Needs root (or sudo)
# only when something is missing.
set -euo pipefail

# package            why
PACKAGES=(
  build-essential    # gcc and make
  pkg-config         # finds the libraries below
  luajit2            # LuaJIT 2.1, OpenResty's branch: runs the tests and eddy.so
  libluajit2-5.1-dev # its headers, for the C core
  libuv1-dev         # the event loop
  libc-ares-dev      # DNS on the loop
  libcurl4-openssl-dev # the HTTP client (libcurl's multi interface)
  python3            # an independent HTTP server for the client's tests
  openssl            # a throw-away certificate for the client's HTTP/2-over-TLS test
  libhiredis-dev     # the Redis client's reply parser
  libmariadb-dev     # the MySQL client (MariaDB Connector/C, non-blocking API)
  libssl-dev         # TLS streams (OpenSSL)
  openssl            # certificates for the TLS tests, and an independent TLS peer
  nginx              # an independent HTTPS server for the TLS tests and bench
  libsqlite3-dev     # the durable queue backend (SQLite in WAL mode)
  redis-server       # a real Redis for the Redis client's and queues' tests
  redis-tools        # redis-benchmark, the Redis client's yardstick
  mariadb-server     # a real MariaDB for the MySQL client's tests
  mariadb-client     # mysqlslap, the MySQL client's yardstick
  lua-cjson          # JSON for res:json
  lua-busted         # the Lua test runner (run under LuaJIT)
  luarocks           # the test that installs eddy as a rock
  netcat-openbsd     # a real TCP/UDP client for the integration tests
  curl               # a real HTTP client for the integration tests
  wrk                # HTTP load, for a smoke test and the benchmarks
  chromium           # a real browser for the chat example's test
  node-llhttp        # Node's HTTP parser, to compare eddy's with in a test
  util-linux         # taskset, for the benchmarks
  procps             # ps and kill, for the process tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  case "$p" in \#*) continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the independent WebSocket and browser clients and
# the HTTP/2 server of the client's tests; any install of them will do
# (Debian's, or NodeSource's).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "eddy: installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "eddy: run as root, or install them yourself: apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"

#!/usr/bin/env bash
# Runs every test of eddy and ends with the line "N passed, N failed":
# the C tests (TAP) in $EDDY_BUILD/tests, then the busted specs in
# tests/spec (TAP, run under LuaJIT). Exits 1 if anything failed.
# Set EDDY_ASAN=1 when the build is instrumented: LuaJIT, which is not,
# then needs the sanitizer runtime preloaded.
set -u
BUILD=${EDDY_BUILD:-build}
export EDDY_BUILD=$BUILD
log=$(mktemp -d)
trap 'scripts/servers.sh stop "$log/servers"; rm -rf "$log"' EXIT

# The Redis and MySQL specs talk to real servers of their own.
if servers=$(scripts/servers.sh start "$log/servers"); then
  set -a # each line is an assignment: export them all
  eval "$servers"
  set +a
else
  echo "# could not start redis-server and mariadbd: their specs will fail"
fi

preload=()
if [ "${EDDY_ASAN:-}" = 1 ]; then
  # LuaJIT's own heap is not malloc's, so LeakSanitizer cannot see through
  # it: leaks are checked in the C tests and the eddy command instead.
  preload=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so)"
           "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

status=0
for t in "$BUILD"/tests/*_test; do
  [ -x "$t" ] || continue
  echo "# $t"
  # A test that crashes fails the run, even when its TAP looked fine.
  "$t" | tee -a "$log/all.tap"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "not ok - $t exited with status $rc" | tee -a "$log/all.tap"
    status=1
  fi
done

"${preload[@]}" busted --lua=luajit --lpath='./tests/?.lua' -o TAP tests/spec \
  > "$log/busted.tap" 2>&1
[ $? -eq 0 ] || status=1
cat "$log/busted.tap"
cat "$log/busted.tap" >> "$log/all.tap"

passed=$(grep -c '^ok ' "$log/all.tap")
failed=$(grep -c '^not ok ' "$log/all.tap")
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status

# bench/lib.sh: what the bench scripts share; sourced after they cd to the
# repository's root (`. bench/lib.sh`).

# The median of the numbers on standard input, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# a ÷ b with digits decimals (default 2); 0 when b is 0.
div() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {printf "%." d "f", b ? a / b : 0}'; }

# A process's CPU time so far, user + system, in clock ticks.
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Stops the server whose pid is in $pid, and lets its port go.
stop_server() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 0.3
}

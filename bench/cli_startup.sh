#!/usr/bin/env bash
# Wall time of one CLI call from exec to exit, N runs: prints each run's ms (sorted), then p50/p90/min
# and the load average. Usage: bench/cli_startup.sh [-n RUNS] [--] COMMAND... (default: bin/ballast volume list)
# Also the CPU time (user+sys) of each run, through GNU time (/usr/bin/time, Debian's package "time").
# The command's stdout goes to /dev/null; its stderr is kept in $TMPDIR/cli_startup.err (a warning
# there, e.g. from the JVM about its AOT cache, is counted and reported).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS=20
if [[ "${1:-}" == "-n" ]]; then RUNS=$2; shift 2; fi
[[ "${1:-}" == "--" ]] && shift
CMD=("$@")
((${#CMD[@]})) || CMD=("$ROOT/bin/ballast" volume list)
ERR="${TMPDIR:-/tmp}/cli_startup.err"
: > "$ERR"
times=()
cpus=()
fails=0
for ((i = 0; i < RUNS; i++)); do
  t0=$(date +%s%N)
  # GNU time adds the CPU time (user+sys, all threads) of the command: steadier than wall time on a busy host
  /usr/bin/time -o "$ERR.cpu" -f '%U %S' "${CMD[@]}" >/dev/null 2>>"$ERR" || fails=$((fails + 1))
  t1=$(date +%s%N)
  times+=($(((t1 - t0) / 1000000)))
  cpus+=("$(awk '{printf "%d", ($1 + $2) * 1000}' "$ERR.cpu")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
p90() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR * 9 + 9) / 10)]}'; }
mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
n=${#sorted[@]}
echo "runs (ms, sorted): ${sorted[*]}"
echo "p50 ${sorted[$(((n - 1) / 2))]} ms, p90 ${sorted[$(((n * 9 + 9) / 10 - 1))]} ms, min ${sorted[0]} ms; CPU (user+sys) p50 $(median "${cpus[@]}") ms, p90 $(p90 "${cpus[@]}") ms; failed runs: $fails, stderr lines: $(wc -l < "$ERR"), load: $(cut -d' ' -f1-3 /proc/loadavg)"

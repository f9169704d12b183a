#!/usr/bin/env bash
# Scale bench (docs/perf/scale.md): three real node processes (`bin/ballast node start`, voters, cordoned
# so that no storage is made) carry a fleet of simulated members (io.ballast.testing.Fleet, in the bench's
# JVM) and a growing number of volumes placed on them. Prints one markdown row per step, then the
# leader's snapshot lines and the host load.
#
#   bench/scale_bench.sh [--members 10,100,300,1000] [--volumes 1000,10000] [--clients 16] [--window-s 10]
#                        [--voters in-process|processes] [--base-port 7700] [--home DIR]
#
# Needs the classes and test classes built (mvn -o test-compile) and target/lib (mvn package once, or
# any earlier `bin/ballast` run). Node JVM options: BALLAST_NODE_JAVA_OPTS as for bin/ballast (the default
# heap is 96 MiB; 100k volumes need more, e.g. "-Xmx768m -XX:+UseSerialGC"). The in-process voters' JVM options:
# VOTER_JAVA_OPTS (default -Xmx1g). After the creates of a step it prints where their time went (the
# ballast_volume_create_step_seconds and ballast_raft_write_step_seconds histograms of the voters).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE=7700
HOME_DIR=""
VOTERS=in-process
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base-port) BASE="$2"; shift 2 ;;
    --home) HOME_DIR="$2"; shift 2 ;;
    --voters) VOTERS="$2"; shift 2 ;;  # in-process (default: one JVM, io.ballast.testing.VoterHost) or processes
    --members|--volumes|--clients|--window-s) ARGS+=("$1" "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
HOME_DIR="${HOME_DIR:-$(mktemp -d /tmp/ballast-scale.XXXXXX)}"
mkdir -p "$HOME_DIR"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
export BALLAST_NO_BUILD=1 BALLAST_AOT=0
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_node() { # i [join token]; a join that times out on a loaded host is tried again (it starts clean)
  local try
  for try in 1 2 3; do
    start_node_once "$@" && return 0
    echo "node n$1 did not start (try $try); see $HOME_DIR/n$1/daemon.out" >&2
  done
  exit 1
}

start_node_once() {
  local i="$1" d="$HOME_DIR/n$1"
  mkdir -p "$d"
  local cmd=("$ROOT/bin/ballast" node start --insecure --data-dir "$d" --node-id "n$i"
    --api-listen "127.0.0.1:$((BASE + i))" --nbd-listen "127.0.0.1:$((BASE + 10 + i))"
    --raft-listen "127.0.0.1:$((BASE + 20 + i))" --replication-listen "127.0.0.1:$((BASE + 30 + i))")
  if [[ -n "${2:-}" ]]; then
    BALLAST_CLUSTER_TOKEN="$2" setsid "${cmd[@]}" --join "127.0.0.1:$((BASE + 1))" >"$d/daemon.out" 2>&1 </dev/null &
  else
    setsid "${cmd[@]}" >"$d/daemon.out" 2>&1 </dev/null &
  fi
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 1 900); do
    curl -sf "http://127.0.0.1:$((BASE + i))/healthz" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# BALLAST_CLASSES: another build's classes (an A/B run of two builds against the same test classes)
CP="$ROOT/target/test-classes:${BALLAST_CLASSES:-$ROOT/target/classes}:$(sed "s#@LIB@#$ROOT/target/lib#g" "$ROOT/target/runtime-classpath.txt")"
if [[ "$VOTERS" == processes ]]; then
  start_node 1
  for _ in $(seq 1 300); do [[ -s "$HOME_DIR/n1/cluster-token" ]] && break; sleep 0.2; done
  TOKEN="$(cat "$HOME_DIR/n1/cluster-token")"
  ADMIN="$(cat "$HOME_DIR/n1/admin-token")"
  start_node 2 "$TOKEN"
  start_node 3 "$TOKEN"
  API="http://127.0.0.1:$((BASE + 1)),http://127.0.0.1:$((BASE + 2)),http://127.0.0.1:$((BASE + 3))"
else
  # one JVM with the three voters (io.ballast.testing.VoterHost): "leader" CPU and RSS are the three together
  "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow ${VOTER_JAVA_OPTS:--Xmx1g} \
    -cp "$CP" io.ballast.testing.VoterHost "$HOME_DIR" >"$HOME_DIR/voters.out" 2>&1 </dev/null &
  PIDS+=($!)
  for _ in $(seq 1 900); do [[ -f "$HOME_DIR/voters.env" ]] && break; sleep 0.2; done
  API="$(sed -n 's/^api=//p' "$HOME_DIR/voters.env")"
  ADMIN="$(sed -n 's/^admin=//p' "$HOME_DIR/voters.env")"
  TOKEN="$(sed -n 's/^token=//p' "$HOME_DIR/voters.env")"
fi

echo "host: $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ); $(git -C "$ROOT" rev-parse --short HEAD)"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -Xmx1g \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$CP" io.ballast.testing.ScaleBench \
  --api "$API" \
  --admin-token "$ADMIN" --cluster-token "$TOKEN" "${ARGS[@]}" 2>"$HOME_DIR/bench.err"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "metadata snapshots (node, index, bytes, serializeMs, totalMs):"
cat "$HOME_DIR"/n*/daemon.out "$HOME_DIR/voters.out" 2>/dev/null | grep -h '"metadata snapshot taken"' \
  | sed -E 's/.*"thread":"([^@"]+)[^"]*".*"index":"?([0-9]+)"?.*"bytes":"?([0-9]+)"?.*"serializeMs":"?([0-9]+)"?.*"totalMs":"?([0-9]+)"?.*/  \1 \2 \3 \4 \5/' | tail -9
echo "state in $HOME_DIR"

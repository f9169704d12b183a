#!/usr/bin/env bash
# CSI latency on a local 3-node cluster: CreateVolume, a fresh volume's publish+stage+publish, and the
# takeover after kill -9 (src/test/java/io/ballast/integrations/csi/CsiBench.java). Needs root.
# Usage: bench/csi_bench.sh [OUT.md] [creates] [fresh] [takeovers]   (default docs/perf/csi.md 100 10 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
export PATH="$JAVA_HOME/bin:$PATH"
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
mvn -B -ntp -q test-compile dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt >/dev/null
exec java --enable-native-access=ALL-UNNAMED -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" \
  io.ballast.integrations.csi.CsiBench "${1:-docs/perf/csi.md}" "${2:-100}" "${3:-10}" "${4:-5}"

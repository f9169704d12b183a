#!/usr/bin/env bash
# Builds the Ballast release from what `mvn package` put in target/ (the jar and target/lib):
#   target/release/ballast/                  the installed tree (/opt/ballast): bin/ballast (the
#                                            launcher), runtime/ (a jlink'ed Java runtime: no JDK
#                                            on the host), lib/ (the jar and its dependencies),
#                                            docs/install.md, aot/ (the JVM's ahead-of-time
#                                            caches of the CLI and the node)
#   target/release/ballast_VERSION_amd64.deb that tree in /opt/ballast, /usr/bin/ballast, the unit
#                                            ballast-node.service and /etc/ballast/node.env
# `mvn package` runs it (pom.xml, execution "release"; -Dballast.release.skip=true skips it).
#
# Usage: packaging/build-release.sh [--version MAVEN_VERSION] [--no-deb]
# Needs: a JDK 25 with jdeps and jlink (JAVA_HOME, default /usr/lib/jvm/temurin-25-jdk-amd64; its
# run-time image is linked, no jmods needed), dpkg-deb (Debian's dpkg) for the .deb.
#
# Why dpkg-deb and not jpackage: jpackage's native launcher fixes one set of JVM options per launcher
# and replaces `java` as the process command, but the node needs its own memory settings
# (bin/ballast) and `ballast up` starts nodes by re-running the current JVM with a class path
# (cli.LocalCluster). The shell launcher of the source tree runs unchanged on the jlink'ed runtime,
# and dpkg-deb (what jpackage itself calls for --type deb) packs the tree.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=""
DEB=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --version) VERSION=$2; shift 2 ;;
    --no-deb) DEB=0; shift ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build-release.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$VERSION" ]]; then
  VERSION="$(sed -n 's:^  <version>\(.*\)</version>:\1:p' "$ROOT/pom.xml" | head -1)"
fi
JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
JAR="$ROOT/target/ballast-$VERSION.jar"
[[ -f "$JAR" && -f "$ROOT/target/runtime-classpath.txt" ]] || {
  echo "build-release.sh: no $JAR or target/runtime-classpath.txt; run \`mvn -DskipTests package\` first" >&2; exit 1; }
# The build's own dependency jars (Maven's list): target/lib also keeps the jars of earlier builds.
IFS=: read -r -a DEPS <<< "$(sed "s#@LIB@#$ROOT/target/lib#g" "$ROOT/target/runtime-classpath.txt")"
[[ -x "$JAVA_HOME/bin/jlink" && -x "$JAVA_HOME/bin/jdeps" ]] || {
  echo "build-release.sh: no jlink/jdeps in JAVA_HOME=$JAVA_HOME (a JDK 25 is needed)" >&2; exit 1; }
if ((DEB)) && ! command -v dpkg-deb >/dev/null; then
  echo "build-release.sh: no dpkg-deb (apt-get install dpkg), or use --no-deb" >&2; exit 1
fi

OUT="$ROOT/target/release"
TREE="$OUT/ballast"
rm -rf "$OUT"
mkdir -p "$TREE/bin" "$TREE/lib" "$TREE/docs"

# --- the Java runtime: the modules the code and its libraries use -------------------------------------
CP="$JAR:$(IFS=:; echo "${DEPS[*]}")"
MODULES="$("$JAVA_HOME/bin/jdeps" --ignore-missing-deps --multi-release 25 --print-module-deps --class-path "$CP" "$JAR")"
# jdeps does not see reflective and service-loaded use: JMX for Ratis metrics, DNS naming, zip file
# systems, the management agent.
MODULES="$MODULES,java.logging,java.management,java.xml,jdk.management,jdk.naming.dns,jdk.zipfs"
"$JAVA_HOME/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
  --output "$TREE/runtime"

# --- the application -------------------------------------------------------------------------------
cp "$JAR" "$TREE/lib/"
cp "${DEPS[@]}" "$TREE/lib/"
install -m 0755 "$ROOT/bin/ballast" "$TREE/bin/ballast"
cp "$ROOT/docs/install.md" "$TREE/docs/"
echo "$VERSION" > "$TREE/VERSION"
# the release must start without a JDK: the launcher picks runtime/, and the CLI answers
BALLAST_AOT=0 "$TREE/bin/ballast" --version >/dev/null # (no cache yet: it would start a training of its own)
# The ahead-of-time caches of the CLI and the node (ROOT/aot; docs/perf/startup.md), made by a training
# run on the release's own runtime and jars, so an installed release starts warm. BALLAST_AOT=0 leaves
# them out (the launcher then makes them on first use where it may write).
if [[ "${BALLAST_AOT:-}" != 0 ]]; then
  # not fatal: without shipped caches the launcher makes them on first use where it may write
  "$TREE/bin/ballast" --aot-train || echo "build-release.sh: warning: no AOT caches (the training failed, see above)" >&2
  rm -f "$TREE"/aot/*/.train.lock
fi

if ((DEB)); then
  # Debian orders 0.1.0~SNAPSHOT before 0.1.0: a snapshot upgrades to its release
  DEB_VERSION="${VERSION//-/\~}"
  PKG="$OUT/deb"
  mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/lib/systemd/system" "$PKG/etc/ballast" \
    "$PKG/usr/share/doc/ballast"
  cp -a "$TREE" "$PKG/opt/ballast"
  ln -s /opt/ballast/bin/ballast "$PKG/usr/bin/ballast"
  install -m 0644 "$ROOT/packaging/ballast-node.service" "$PKG/lib/systemd/system/ballast-node.service"
  install -m 0644 "$ROOT/packaging/node.env" "$PKG/etc/ballast/node.env"
  install -m 0644 "$ROOT/docs/install.md" "$PKG/usr/share/doc/ballast/install.md"
  for s in postinst prerm postrm; do install -m 0755 "$ROOT/packaging/deb/$s" "$PKG/DEBIAN/$s"; done
  echo /etc/ballast/node.env > "$PKG/DEBIAN/conffiles"
  sed -e "s/@VERSION@/$DEB_VERSION/" -e "s/@INSTALLED_KIB@/$(du -sk "$PKG" | cut -f1)/" \
    "$ROOT/packaging/deb/control" > "$PKG/DEBIAN/control"
  # gzip -6: within 15% of xz here (the jars are compressed already), and many times faster
  dpkg-deb --root-owner-group -Zgzip -z6 --build "$PKG" "$OUT/ballast_${DEB_VERSION}_amd64.deb" >/dev/null
  rm -rf "$PKG"
  echo "build-release.sh: $OUT/ballast_${DEB_VERSION}_amd64.deb ($(du -h "$OUT/ballast_${DEB_VERSION}_amd64.deb" | cut -f1))"
fi
echo "build-release.sh: $TREE ($(du -sh "$TREE" | cut -f1), runtime modules: $MODULES)"

#!/usr/bin/env bash
# Builds the Ballast node image without a registry, the way the test suite builds its images
# (src/test/resources/io/ballast/integrations/docker/make-image.sh): a root file system assembled
# from this Debian host's binaries and the libraries they load, imported with `docker import`.
# Same contents and entrypoint as deploy/image/Dockerfile: a Java 25 runtime (jlink'ed from the
# JDK here instead of the eclipse-temurin image), the jar and target/lib, the tools the attach
# agent runs (nbdfuse, fusermount3, losetup, mount/umount, blkid, blockdev, mkfs.ext4, e2fsck,
# resize2fs, mkfs.xfs, xfs_growfs), busybox for a shell.
#
# Usage: deploy/image/build-offline.sh [--tag TAG] [--tar FILE]
#   --tag TAG   image name (default ballast:0.1.0); docker import needs a running dockerd
#               (DOCKER_HOST or -H via $DOCKER_ARGS picks one)
#   --tar FILE  only write the root file system as a tar (no Docker needed); import it later with
#               docker import --change 'ENTRYPOINT ["/usr/local/bin/ballast"]' ... FILE TAG
#               (the --change options this script uses are printed at the end)
# Needs (Debian packages): busybox-static libnbd-bin fuse3 e2fsprogs util-linux mount xfsprogs,
# a JDK 25 with jlink (JAVA_HOME, default /usr/lib/jvm/temurin-25-jdk-amd64), and maven when
# target/ has no jar yet.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAG=ballast:0.1.0
TAR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) TAG=$2; shift 2 ;;
    --tar) TAR=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build-offline.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
JAR="$ROOT/target/ballast-0.1.0-SNAPSHOT.jar"

# --- what the image needs from this host -------------------------------------------------------
# command -> Debian package that has it
declare -A TOOLS=(
  [busybox]=busybox-static [nbdfuse]=libnbd-bin [fusermount3]=fuse3
  [losetup]=util-linux [blkid]=util-linux [blockdev]=util-linux [mount]=mount [umount]=mount
  [mkfs.ext4]=e2fsprogs [e2fsck]=e2fsprogs [resize2fs]=e2fsprogs [tune2fs]=e2fsprogs
  [mkfs.xfs]=xfsprogs [xfs_growfs]=xfsprogs
)
missing=()
for t in "${!TOOLS[@]}"; do
  command -v "$t" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$t" >/dev/null 2>&1 || missing+=("${TOOLS[$t]}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "build-offline.sh: missing tools; install them with: apt-get install -y $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
  exit 1
fi
[[ -x "$JAVA_HOME/bin/jlink" ]] || { echo "build-offline.sh: no jlink in JAVA_HOME=$JAVA_HOME (a JDK 25 is needed)" >&2; exit 1; }
if [[ -z "$TAR" ]]; then
  DOCKER="${DOCKER:-docker}"
  # shellcheck disable=SC2086
  $DOCKER ${DOCKER_ARGS:-} version >/dev/null 2>&1 || {
    echo "build-offline.sh: no Docker daemon answers ($DOCKER ${DOCKER_ARGS:-} version failed); use --tar FILE to only build the file system" >&2
    exit 1
  }
fi

# --- the jar ---------------------------------------------------------------------------------------
if [[ ! -f "$JAR" || ! -d "$ROOT/target/lib" ]]; then
  echo "build-offline.sh: building the jar (mvn package)..." >&2
  (cd "$ROOT" && PATH="$JAVA_HOME/bin:$PATH" MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" \
    mvn -B -q -ntp -DskipTests package >&2)
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,run,proc,sys,dev,csi,var/lib/ballast,opt/ballast/lib,opt/java}

# --- Java runtime: only the modules Ballast and its libraries use ----------------------------------
CP="$JAR:$(find "$ROOT/target/lib" -name '*.jar' | sort | tr '\n' ':')"
MODULES="$("$JAVA_HOME/bin/jdeps" --ignore-missing-deps --multi-release 25 --print-module-deps \
  --class-path "$CP" "$JAR" 2>/dev/null || true)"
# jdeps does not see reflective and service-loaded use: add what the libraries load that way
# (JMX for Ratis metrics, jdk.unsupported for Netty/gRPC, naming/DNS, zipfs).
MODULES="${MODULES:+$MODULES,}java.base,java.logging,java.management,java.naming,java.net.http,java.sql,java.xml,jdk.unsupported,jdk.management,jdk.naming.dns,jdk.zipfs"
"$JAVA_HOME/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
  --output "$R/opt/java/openjdk"

# --- Ballast -----------------------------------------------------------------------------------------
cp "$JAR" "$R/opt/ballast/ballast.jar"
cp "$ROOT"/target/lib/*.jar "$R/opt/ballast/lib/"
install -m 0755 "$ROOT/deploy/image/ballast" "$R/usr/local/bin/ballast"

# --- tools and the libraries they load ------------------------------------------------------------
copy_with_libs() { # copies the binary to the same path in the root, plus what ldd lists
  local bin=$1
  mkdir -p "$R$(dirname "$bin")"
  cp -L "$bin" "$R$bin"
  ldd "$bin" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
    [[ -f "$lib" ]] || continue
    mkdir -p "$R$(dirname "$lib")"
    [[ -f "$R$lib" ]] || cp -L "$lib" "$R$lib"
  done
}
cp "$(command -v busybox)" "$R/bin/busybox"
for a in sh ls cat echo sleep df id ps true false kill grep wc sync mkdir rm ln cp mv env; do ln -sf busybox "$R/bin/$a"; done
for t in "${!TOOLS[@]}"; do
  [[ "$t" == busybox ]] && continue
  copy_with_libs "$(PATH="$PATH:/usr/sbin:/sbin" command -v "$t")"
done
# the JVM's own native libraries (libz etc.) come from the host too
find "$R/opt/java/openjdk" -name '*.so' -print0 | xargs -0 -n1 ldd 2>/dev/null \
  | awk '/=>/ {print $3}' | sort -u | while read -r lib; do
  [[ -f "$lib" && ! -f "$R$lib" ]] || continue
  mkdir -p "$R$(dirname "$lib")"
  cp -L "$lib" "$R$lib"
done
# mke2fs reads its defaults (ext4 features) from here; without it mkfs.ext4 uses older built-ins
[[ -f /etc/mke2fs.conf ]] && cp /etc/mke2fs.conf "$R/etc/mke2fs.conf"
echo 'root:x:0:0:root:/:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
echo 'hosts: files dns' > "$R/etc/nsswitch.conf"
chmod 1777 "$R/tmp"

CHANGES=(--change 'ENTRYPOINT ["/usr/local/bin/ballast"]' --change 'CMD ["--help"]'
  --change 'ENV JAVA_HOME=/opt/java/openjdk'
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'VOLUME /var/lib/ballast')
if [[ -n "$TAR" ]]; then
  tar -C "$R" -cf "$TAR" .
  echo "wrote $TAR ($(du -h "$TAR" | cut -f1)); import with:"
  printf 'docker import'; printf " %q" "${CHANGES[@]}"; printf ' %q %q\n' "$TAR" "$TAG"
else
  tar -C "$R" -cf "$WORK/rootfs.tar" .
  # shellcheck disable=SC2086
  $DOCKER ${DOCKER_ARGS:-} import "${CHANGES[@]}" "$WORK/rootfs.tar" "$TAG" >/dev/null
  echo "imported $TAG"
fi

#!/usr/bin/env bash
# Builds the Ballast node image without a registry, the way the test suite builds its images
# (src/test/resources/io/ballast/integrations/docker/make-image.sh): a root file system assembled
# from this Debian host's binaries and the libraries they load, imported with `docker import`.
# Same contents and entrypoint as deploy/image/Dockerfile: the release that `mvn package` built
# (target/release/ballast: bin/ballast, its jlink'ed Java runtime and the jars) in /opt/ballast, the
# tools the attach agent runs (nbdfuse, fusermount3, losetup, mount/umount, blkid, blockdev,
# mkfs.ext4, e2fsck, resize2fs, mkfs.xfs, xfs_growfs), bash for the launcher, busybox for a shell.
#
# Usage: deploy/image/build-offline.sh [--tag TAG] [--tar FILE]
#   --tag TAG   image name (default ballast:0.1.0); docker import needs a running dockerd
#               (DOCKER_HOST or -H via $DOCKER_ARGS picks one)
#   --tar FILE  only write the root file system as a tar (no Docker needed); import it later with
#               docker import --change 'ENTRYPOINT ["/usr/local/bin/ballast"]' ... FILE TAG
#               (the --change options this script uses are printed at the end)
# Needs (Debian packages): busybox-static libnbd-bin fuse3 e2fsprogs util-linux mount xfsprogs,
# and the release in target/release/ballast (`mvn -B -DskipTests package` builds it; a JDK 25 and
# maven when it is missing).
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

RELEASE="$ROOT/target/release/ballast"

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
if [[ -z "$TAR" ]]; then
  DOCKER="${DOCKER:-docker}"
  # shellcheck disable=SC2086
  $DOCKER ${DOCKER_ARGS:-} version >/dev/null 2>&1 || {
    echo "build-offline.sh: no Docker daemon answers ($DOCKER ${DOCKER_ARGS:-} version failed); use --tar FILE to only build the file system" >&2
    exit 1
  }
fi

# --- the release -----------------------------------------------------------------------------------
if [[ ! -x "$RELEASE/runtime/bin/java" ]]; then
  echo "build-offline.sh: no release in $RELEASE; building it (mvn package)..." >&2
  (cd "$ROOT" && export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}" && PATH="$JAVA_HOME/bin:$PATH" \
    MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" mvn -B -q -ntp -DskipTests package >&2)
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,run,proc,sys,dev,csi,var/lib/ballast,opt}
cp -a "$RELEASE" "$R/opt/ballast"
ln -s /opt/ballast/bin/ballast "$R/usr/local/bin/ballast"

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
for a in sh ls cat echo sleep df id ps true false kill grep wc sync mkdir rm ln cp mv env readlink dirname; do ln -sf busybox "$R/bin/$a"; done
ln -sf /bin/busybox "$R/usr/bin/env" # the launcher's #!/usr/bin/env bash
copy_with_libs /bin/bash              # the launcher is a bash script (arrays)
for t in "${!TOOLS[@]}"; do
  [[ "$t" == busybox ]] && continue
  copy_with_libs "$(PATH="$PATH:/usr/sbin:/sbin" command -v "$t")"
done
# the JVM's own native libraries (libz etc.) come from the host too
find "$R/opt/ballast/runtime" -name '*.so' -print0 | xargs -0 -n1 ldd 2>/dev/null \
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

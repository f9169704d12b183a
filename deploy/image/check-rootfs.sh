#!/usr/bin/env bash
# Checks a root file system made by `build-offline.sh --tar FILE` without Docker: runs it in a
# chroot inside new mount and PID namespaces (with /proc, /dev, /sys, /run and a data directory
# mounted the way a container runtime would), starts `ballast node start` from it on loopback
# ports, creates a 256 MiB volume, attaches and mounts it (nbdfuse + loop + mkfs.ext4 from the
# image), writes and reads a file, detaches, deletes, stops the node. Root only.
# Usage: deploy/image/check-rootfs.sh ROOTFS.tar [BASE_PORT]   (ports BASE..BASE+3, default 17491)
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,8p' "$0"; exit 2; }
TAR=$(realpath "$1")
PORT=${2:-17491}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/root" "$WORK/data"
tar -C "$WORK/root" -xf "$TAR"
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m -p -f --mount-proc="$WORK/root/proc" bash -euo pipefail -c '
R=$1 DATA=$2 P=$3
mount --make-rprivate /
mount --rbind "$R" "$R"                      # the root is a mount point, as in a container
mount --bind "$DATA" "$R/var/lib/ballast"    # the host-path data directory
mount --rbind /dev "$R/dev"
mount -t sysfs sysfs "$R/sys"
mount -t tmpfs tmpfs "$R/run"
in_image() { env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  BALLAST_SERVER="http://127.0.0.1:$P" BALLAST_TOKEN="$(cat "$DATA/admin-token" 2>/dev/null)" chroot "$R" "$@"; }
in_image ballast node start --insecure --data-dir /var/lib/ballast --api-listen 127.0.0.1:$P --nbd-listen 127.0.0.1:$((P+1)) \
  --raft-listen 127.0.0.1:$((P+2)) --replication-listen 127.0.0.1:$((P+3)) > "$DATA/stdout" 2>&1 &
node=$!
for _ in $(seq 1 90); do grep -q " running: " "$DATA/stdout" && break; sleep 1; done
grep " running: " "$DATA/stdout" || { cat "$DATA/stdout"; exit 1; }
in_image ballast volume create check --size 256MiB --repl 1
mkdir -p "$R/mnt/check"
in_image ballast volume attach check --mount /mnt/check
echo hello > "$R/mnt/check/f"; sync
[[ "$(cat "$R/mnt/check/f")" == hello ]] && echo "read back: hello"
in_image ballast volume detach check
in_image ballast volume delete check
kill -TERM "$node"; wait "$node" || true
echo "check-rootfs: ok"
' check "$WORK/root" "$WORK/data" "$PORT"

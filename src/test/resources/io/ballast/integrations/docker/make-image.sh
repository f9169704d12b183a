#!/usr/bin/env bash
# Builds a tiny image rootfs from this host's Debian binaries and imports it with `docker import`
# (no registry needed): busybox-static for a shell, plus redis-server and the libraries it loads.
# Usage: make-image.sh DOCKER_HOST_URI TAG WORKDIR
set -euo pipefail
host=$1 tag=$2 work=$3
root="$work/rootfs"
rm -rf "$root"
mkdir -p "$root"/{bin,usr/bin,etc,tmp,data,lib64}
cp /usr/bin/busybox "$root/bin/busybox"
for a in sh ls cat echo sleep df mount id ps true false kill grep wc sync; do ln -sf busybox "$root/bin/$a"; done
if [[ -x /usr/bin/redis-check-rdb ]]; then
  # redis-server is a symlink to redis-check-rdb; the binary picks its mode from argv[0]
  cp /usr/bin/redis-check-rdb "$root/usr/bin/redis-server"
  ldd /usr/bin/redis-check-rdb | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
    [[ -f "$lib" ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
fi
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
chmod 1777 "$root/tmp"
tar -C "$root" -cf "$work/rootfs.tar" .
"${DOCKER:-/usr/bin/docker}" -H "$host" import "$work/rootfs.tar" "$tag" >/dev/null
rm -rf "$root" "$work/rootfs.tar"

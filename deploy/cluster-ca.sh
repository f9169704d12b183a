#!/bin/sh
# Makes a cluster CA and the join token that pins it, before the cluster exists, for installs that
# hand both to the first node (Kubernetes Secrets, Nomad Variables; docs/security.md, "Bring your own CA"):
#
#   deploy/cluster-ca.sh DIR    ->  DIR/ca.key, DIR/ca.crt, DIR/join-token (SECRET.CA_SHA256), all 0600
#
# The first node starts with --ca-cert DIR/ca.crt --ca-key DIR/ca.key and the token; every other node
# joins with the token alone. Keep ca.key offline afterwards (the first node copies it into DATA/tls).
set -eu
dir=${1:?usage: deploy/cluster-ca.sh DIR}
umask 077
mkdir -p "$dir"
if [ -e "$dir/ca.key" ]; then
  echo "$dir/ca.key exists: not replacing a cluster CA" >&2
  exit 1
fi
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=Ballast cluster CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.crt"
fp=$(openssl x509 -in "$dir/ca.crt" -outform der | sha256sum | cut -d' ' -f1)
printf '%s.%s\n' "blt-$(openssl rand -hex 24)" "$fp" > "$dir/join-token"
echo "cluster CA sha256 $fp; join token in $dir/join-token"

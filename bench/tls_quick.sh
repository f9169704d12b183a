#!/bin/bash
# bench/tls_quick.sh: the quick TLS-vs-insecure comparison of docs/perf/tls.md (one run each, same host, back to back)
# same run: a 3-node local cluster with TLS, then --insecure; 3-replica volume; fio over the unix socket
cd "$(dirname "$0")/.."
export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 PATH=/usr/lib/jvm/temurin-25-jdk-amd64/bin:$PATH BALLAST_NO_BUILD=1
for mode in tls insecure; do
  export BALLAST_HOME=/tmp/tlsbench-$mode; rm -rf $BALLAST_HOME
  flag=""; [ $mode = insecure ] && flag="--insecure"
  bin/ballast up $flag --api-listen 127.0.0.1:0 --nbd-listen 127.0.0.1:0 --raft-listen 127.0.0.1:0 >/dev/null 2>&1 || { echo "$mode up failed"; continue; }
  bin/ballast volume create b --size 1GiB --repl 3 >/dev/null 2>&1
  uri=$(bin/ballast volume attach b -o json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["nbdUnixUri"])')
  for job in "randwrite 4k 32" "write 1M 8"; do set -- $job
    r=$(fio --name=j --ioengine=nbd --uri="$uri" --size=512M --rw=$1 --bs=$2 --iodepth=$3 --time_based --runtime=15 --ramp_time=2 --output-format=json 2>/dev/null | python3 -c 'import json,sys; d=sys.stdin.read(); j=json.loads(d[d.index("{"):])["jobs"][0]["write"]; print("iops=%.0f MiB/s=%.1f p99us=%.0f" % (j["iops"], j["bw_bytes"]/1048576, j["clat_ns"]["percentile"]["99.000000"]/1000))')
    echo "$mode $1 $2 QD$3: $r"
  done
  api=$(python3 -c "import json; print(json.load(open('$BALLAST_HOME/local.json'))['apiUrl'])")
  ca=""; [ $mode = tls ] && ca="--cacert $BALLAST_HOME/node-1/tls/ca.crt"
  token=$(cat $BALLAST_HOME/node-1/admin-token)
  python3 - "$api" "$ca" "$token" <<'PY'
import subprocess,sys,time
api,ca,token=sys.argv[1],sys.argv[2],sys.argv[3]
# REST latency: 200 GET /v1/volumes/b, each on a new connection (curl), as a CLI call makes one
lat=[]
for i in range(200):
    t=time.perf_counter(); subprocess.run(["curl","-sf","-o","/dev/null","-H","Authorization: Bearer "+token]+ca.split()+[api+"/v1/volumes/b"],check=True); lat.append((time.perf_counter()-t)*1000)
lat.sort(); print("REST GET /v1/volumes/b new connection each: p50 %.1f ms p99 %.1f ms" % (lat[100], lat[197]))
PY
  bin/ballast volume detach b >/dev/null 2>&1
  bin/ballast down >/dev/null 2>&1
done

#!/usr/bin/env bash
# quick latency sample: 30 creates and 100 inspects round-robin over 3 nodes, via curl (new connection each)
set -u
cd "$(dirname "$0")/.."  # this checkout (it used to cd to a fixed other worktree)
export BALLAST_HOME=$(mktemp -d /tmp/cluster-qb-XXXX)
trap 'bin/ballast down >/dev/null 2>&1' EXIT  # stop the nodes also on error or Ctrl-C
bin/ballast up --api-listen 127.0.0.1:0 --nbd-listen 127.0.0.1:0 --raft-listen 127.0.0.1:0 >/dev/null 2>&1
AUTH="Authorization: Bearer $(cat "$BALLAST_HOME/node-1/admin-token")"  # every API call needs a token (docs/security.md)
mapfile -t U < <(python3 -c "import json,os;[print(n['apiUrl']) for n in json.load(open(os.environ['BALLAST_HOME']+'/local.json'))['nodes']]")
for i in $(seq 0 29); do curl -s -H "$AUTH" -o /dev/null -w '%{time_total}\n' -X POST ${U[$((i%3))]}/v1/volumes -d "{\"name\":\"v$i\",\"size\":\"64MiB\"}"; done > /tmp/cqb-create.txt
for i in $(seq 0 99); do curl -s -H "$AUTH" -o /dev/null -w '%{time_total}\n' ${U[$((i%3))]}/v1/volumes/v$((i%30)); done > /tmp/cqb-inspect.txt
python3 - <<'P'
for f in ("create","inspect"):
    xs=sorted(float(x)*1000 for x in open(f"/tmp/cqb-{f}.txt"))
    print(f, "n=%d p50=%.1f ms p99=%.1f ms max=%.1f ms" % (len(xs), xs[len(xs)//2], xs[min(len(xs)-1,int(0.99*(len(xs)-1)))], xs[-1]))
P

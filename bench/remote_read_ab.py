#!/usr/bin/env python3
"""Remote reads against local ones on a 3-node cluster (issue 22): fio jobs on volumes attached on n1.

Volumes (VOLS, default r2,r3): rN has N replicas; an r2/r1 is created with n1 cordoned, so none is on
the attaching node and every read is remote; lN is created with preferNode n1 (reads local).
Usage: [ROOT=<source tree>] [VOLS=r2,r3] [RT=5] [REPS=1] bench/remote_read_ab.py PORT [rr32,rr1,rw32]
ROOT picks the build (its bin/ballast and target/classes): run it against two trees, interleaved, for
a before/after. KEEP=1 keeps the cluster up (pids in /tmp/rr/hold; delete that file to stop).
"""
import os, sys, tempfile, time, json, subprocess
ROOT = os.environ.get("ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import repl_bench
from repl_bench import Cluster, api, wait_all_up
from nbd_bench import fio
port = int(sys.argv[1]); jobs = sys.argv[2].split(",") if len(sys.argv) > 2 else ["rr32", "rr1"]
reps = int(os.environ.get("REPS", "1")); vols = os.environ.get("VOLS", "r2,r3").split(",")
JOB = {"rr32": ["--rw=randread", "--bs=4k", "--iodepth=32"], "rr1": ["--rw=randread", "--bs=4k", "--iodepth=1"],
       "rw32": ["--rw=randwrite", "--bs=4k", "--iodepth=32"]}
size = 256 << 20
os.makedirs("/tmp/rr", exist_ok=True)
work = tempfile.mkdtemp(prefix="rr-", dir="/tmp/rr")
c = Cluster(os.path.join(work, "cluster"), port)
try:
    c.start(); n1 = c.urls["n1"]; wait_all_up(n1, 3)
    uris = {}
    for v in vols:
        repl = int(v[1])
        if v.startswith("r") and repl < 3:
            api(n1 + "/v1/nodes/n1/cordon", "POST", {})
            for attempt in range(30):
                try:
                    api(n1 + "/v1/volumes", "POST", {"name": v, "size": size, "repl": repl}); break
                except RuntimeError as e:
                    print("retry create:", str(e)[:150], flush=True); time.sleep(3)
            api(n1 + "/v1/nodes/n1/uncordon", "POST", {})
        else:
            body = {"name": v, "size": size, "repl": repl}
            if v.startswith("l"): body["preferNode"] = "n1"
            for attempt in range(30):
                try:
                    api(n1 + "/v1/volumes", "POST", body); break
                except RuntimeError as e:
                    print("retry create:", str(e)[:150], flush=True); time.sleep(3)
        vol = api(n1 + "/v1/volumes/" + v)
        print(v, "replicas", [r["nodeId"] for r in vol["replicas"]], flush=True)
        uris[v] = api(n1 + "/v1/volumes/%s/attach" % v, "POST", {})["nbdUnixUri"]
        fio(uris[v], ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size, time_based=False)
    open("/tmp/rr/uris","w").write(json.dumps(uris))
    for rep in range(reps):
        for j in jobs:
            for v in vols:
                r = fio(uris[v], JOB[j], int(os.environ.get("RT", "5")), size)
                print("%s %s %s %.0f iops p99 %.0f us load %s" % (time.strftime("%H:%M:%S"), j, v, r["iops"], r["p99_us"], open("/proc/loadavg").read().split()[0]), flush=True)
finally:
    if os.environ.get("KEEP"):
        open("/tmp/rr/hold","w").write(json.dumps({k: p.pid for k, p in c.procs.items()}))
        while os.path.exists("/tmp/rr/hold"): time.sleep(1)
    c.stop()

#!/usr/bin/env python3
"""Write-path A/B on a loaded host: a 3-node cluster from ROOT's build, one 3-replica volume of 256 MiB
attached on n1, nbdkit's file plugin beside it; 4k randwrite QD32 (10 s, fio nbd engine) on both,
REPS times. Prints IOPS, the ratio to nbdkit and the CPU seconds the three node processes used per
write (utime+stime from /proc), which is steadier than IOPS when other work shares the CPUs.

Usage: bench/repl_write_cpu.py ROOT BASE_PORT LABEL [REPS]   (ROOT: a checkout with target/classes built)
Set SIZE_MIB to change the volume size (default 256). Set KEEP=1 to keep the cluster's directory (node logs) afterwards.
Set JOBS to a comma list of qd32, qd1, seq (4k randwrite QD32, 4k randwrite QD1, 1M write QD8; default qd32) and
WARMUP to the seconds of one unrecorded pass of each job on both sides first (default 0). QD1 also reports the
latency ratio (nbdkit's mean latency over Ballast's, i.e. the IOPS ratio at depth 1)."""
import os, sys, time, json, subprocess, tempfile, shutil
root, port, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 2
size = int(os.environ.get("SIZE_MIB", "256")) << 20
sys.path.insert(0, os.path.join(root, "bench"))
import repl_bench as rb
import metadata_bench as mb
import types, time as _t
# metadata_bench gives a node 90 s to start; on a loaded shared host allow four times that
mb.time = types.SimpleNamespace(time=lambda: _t.time() / 4, sleep=_t.sleep, strftime=_t.strftime, perf_counter=_t.perf_counter)
from nbd_bench import fio, start_nbdkit

def cpu_split(pids):
    """[(user s, system s)] per pid."""
    out = []
    for p in pids:
        try:
            f = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
            out.append((int(f[11]) / os.sysconf("SC_CLK_TCK"), int(f[12]) / os.sysconf("SC_CLK_TCK")))
        except OSError:
            out.append((0.0, 0.0))
    return out

def cpu(pids):
    return sum(u + s for u, s in cpu_split(pids))

work = tempfile.mkdtemp(prefix="cpubench-", dir="/tmp")
cl = rb.Cluster(os.path.join(work, "cluster"), port)
nbdkit = None
try:
    cl.start()
    n1 = cl.urls["n1"]
    rb.wait_all_up(n1, 3)
    rb.api(n1 + "/v1/volumes", "POST", {"name": "r3", "size": size, "repl": 3})
    att = rb.api(n1 + "/v1/volumes/r3/attach", "POST", {})

    def in_sync():
        """Replicas in sync now: a node that never joined (Raft under load) leaves a 2-replica volume."""
        return sum(1 for r in rb.api(n1 + "/v1/volumes/r3")["replicas"] if r.get("inSync"))

    deadline = time.time() + 120
    while in_sync() < 3:
        if time.time() > deadline:
            raise RuntimeError("volume r3 has %d of 3 replicas in sync; not measuring a degraded volume" % in_sync())
        time.sleep(1)
    uri = att["nbdUnixUri"]
    nbdkit, kuri = start_nbdkit(work, size)
    for u in (uri, kuri):
        fio(u, ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size, time_based=False)
    pids = [p.pid for p in cl.procs.values()]
    # java is exec'd by bin/ballast: the Popen pid is the JVM
    JOB_ARGS = {"qd32": ["--rw=randwrite", "--bs=4k", "--iodepth=32"], "qd1": ["--rw=randwrite", "--bs=4k", "--iodepth=1"],
                "seq": ["--rw=write", "--bs=1M", "--iodepth=8"]}
    jobs = os.environ.get("JOBS", "qd32").split(",")
    warm = int(os.environ.get("WARMUP", "0"))
    if warm:
        for j in jobs:
            fio(uri, JOB_ARGS[j], warm, size); fio(kuri, JOB_ARGS[j], warm, size)
    for i, job in ((i, j) for i in range(reps) for j in jobs):
        args = JOB_ARGS[job]
        la = open("/proc/loadavg").read().split()[0]
        s0 = cpu_split(pids); c0 = cpu(pids); t0 = time.time()
        r = fio(uri, args, 10, size)
        c1 = cpu(pids); t1 = time.time(); s1 = cpu_split(pids)
        per_io = lambda a, b: (b - a) * 1e6 / max(1, r["iops"] * (t1 - t0))
        print("   per node (engine first), user/system us per write: " + "  ".join(
            "%s %.0f/%.0f" % (n, per_io(a[0], b[0]), per_io(a[1], b[1])) for n, a, b in zip(cl.procs.keys(), s0, s1)), flush=True)
        k = fio(kuri, args, 10, size)
        la2 = open("/proc/loadavg").read().split()[0]
        if in_sync() < 3:
            raise RuntimeError("a replica left the in-sync set during %s rep%d: its numbers are not 3-replica numbers" % (job, i))
        print("%s %s %s rep%d load %s->%s repl3 %.0f iops %.0f MiB/s p99 %.0f us | nbdkit %.0f iops %.0f MiB/s | ratio %.3f | node cpu %.2f s over %.0f s = %.0f us/io"
              % (time.strftime("%H:%M:%S"), label, job, i, la, la2, r["iops"], r["bw"], r["p99_us"], k["iops"], k["bw"], r["iops"] / k["iops"],
                 c1 - c0, t1 - t0, (c1 - c0) * 1e6 / max(1, r["iops"] * (t1 - t0))), flush=True)
finally:
    if nbdkit:
        nbdkit.terminate()
    cl.stop()
    if os.environ.get("KEEP") is None: shutil.rmtree(work, ignore_errors=True)

#!/usr/bin/env python3
"""A shared volume over NFS against the same volume's file system mounted locally, in the same run.

Starts 3 node processes (bench/repl_bench.py's cluster), creates a 3-replica shared volume, waits for
its export, then alternates, --reps times: a sequential write of --file-size through NFS with libnfs's
nfs-cp (NFSv3, rpcbind; this kernel has no NFS client and fio no libnfs engine, so no 4k random job
over NFS here) and the same write with dd (1 MiB blocks, conv=fsync) into the file system the serving
node mounted (what ganesha exports); then the read back of each (nfs-cp to /dev/null's stand-in, and
dd after dropping the page cache). Reports median MiB/s per side and NFS/local. Writes a markdown report.

Usage: bench/shared_bench.py [--reps 3] [--file-size 256MiB] [--size 1GiB] [--base-port 7900] [--out FILE]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from nbd_bench import parse_size  # noqa: E402
import repl_bench  # noqa: E402
from repl_bench import api, load, log, wait_all_up  # noqa: E402


def timed(cmd):
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - t0


def drop_caches():
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass  # a container may not allow it: reads then come from the page cache on both sides alike


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--file-size", default="256MiB")
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--base-port", type=int, default=7900)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "shared-volumes.md"))
    opts = ap.parse_args()
    fbytes = parse_size(opts.file_size)
    mib = fbytes / (1 << 20)
    work = tempfile.mkdtemp(prefix="ballast-shared-bench-", dir=os.path.join(ROOT, "target"))
    cluster = repl_bench.Cluster(os.path.join(work, "cluster"), opts.base_port)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    served_by = None
    try:
        log("starting 3 nodes under " + work)
        cluster.start()
        n1 = cluster.urls["n1"]
        wait_all_up(n1, 3)
        api(n1 + "/v1/volumes?wait=ready", "POST", {"name": "sb", "size": parse_size(opts.size), "repl": 3, "shared": True})
        deadline = time.time() + 120
        while True:
            share = api(n1 + "/v1/volumes/sb").get("share") or {}
            if share.get("address") and subprocess.run(["nfs-ls", share["address"] + "/"], capture_output=True).returncode == 0:
                break
            if time.time() > deadline:
                raise RuntimeError("shared volume not exported within 120 s: %s" % share)
            time.sleep(0.5)
        address, served_by = share["address"], share["nodeId"]
        mount = os.path.join(cluster.home, served_by, "shares", "sb")
        log("exported at %s by %s (mounted at %s)" % (address, served_by, mount))
        src = os.path.join(work, "src.bin")
        with open(src, "wb") as f:
            for _ in range(int(mib)):
                f.write(os.urandom(1 << 20))
        got = {k: [] for k in ("nfs write", "local write", "nfs read", "local read")}
        loads = []
        for rep in range(opts.reps):
            s = timed(["nfs-cp", src, "%s/nfs-%d.bin" % (address, rep)])
            got["nfs write"].append(mib / s)
            s = timed(["dd", "if=" + src, "of=%s/local-%d.bin" % (mount, rep), "bs=1M", "conv=fsync"])
            got["local write"].append(mib / s)
            drop_caches()
            back = os.path.join(work, "back.bin")
            s = timed(["nfs-cp", "%s/local-%d.bin" % (address, rep), back])
            got["nfs read"].append(mib / s)
            os.remove(back)
            drop_caches()
            s = timed(["dd", "if=%s/nfs-%d.bin" % (mount, rep), "of=/dev/null", "bs=1M"])
            got["local read"].append(mib / s)
            loads.append(os.getloadavg()[0])
            log("rep %d: %s (load %s)" % (rep + 1, ", ".join("%s %.0f MiB/s" % (k, v[-1]) for k, v in got.items()), load()))
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        lines = ["# Shared volumes: NFS (nfs-ganesha) against the same file system mounted locally", "",
                 "Run %s at commit %s, on this project's 2-CPU test machine, shared with other engineers' builds and "
                 "tests (1-minute load average %.1f to %.1f): absolute numbers are low and noisy; the ratio of the two "
                 "sides, measured alternately in the same run on the same volume, is the result." % (
                     started, commit, min(loads), max(loads)), "",
                 "Command:", "", "    bench/shared_bench.py --reps %d --file-size %s --size %s" % (
                     opts.reps, opts.file_size, opts.size), "",
                 "3 node processes on one host, one shared volume of %s with 3 replicas, served by %s. NFS side: "
                 "libnfs 4.0's `nfs-cp` (NFSv3 over TCP to ganesha on 127.0.0.1; its writes end in an fsync on the "
                 "server); local side: `dd bs=1M conv=fsync` on the ext4 the serving node mounted (nbdfuse + loop) and "
                 "exports. Reads: a file the other side wrote, page cache dropped first. Median of %d runs of a %s "
                 "file. No 4k random job over NFS: fio has no libnfs engine in Debian's build and this kernel has no "
                 "NFS client." % (opts.size, served_by, opts.reps, opts.file_size), "",
                 "| job | NFS | local | NFS / local | runs (NFS; local) |", "|---|---|---|---|---|"]
        for job in ("write", "read"):
            n, l = got["nfs " + job], got["local " + job]
            mn, ml = statistics.median(n), statistics.median(l)
            lines.append("| sequential %s, %s | %.0f MiB/s | %.0f MiB/s | %.2f | %s; %s |" % (
                job, opts.file_size, mn, ml, mn / ml if ml else 0.0, ", ".join("%.0f" % x for x in n),
                ", ".join("%.0f" % x for x in l)))
        lines.append("")
        report = "\n".join(lines)
        print(report)
        if opts.out:
            with open(opts.out, "w") as f:
                f.write(report)
            log("wrote " + opts.out)
    finally:
        if served_by:
            try:
                api(cluster.urls[served_by] + "/v1/volumes/sb", "DELETE")  # unexports, unmounts, detaches
            except Exception as e:  # noqa: BLE001
                log("delete failed: %s" % e)
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Encrypted against unencrypted 3-replica volumes on one local 3-node cluster, in the same run.

Starts 3 node processes (as bench/repl_bench.py, with a cluster key file made here, 0600), creates
two 3-replica volumes of --size, one plain and one with "encrypted": true, attaches both on n1 and
fills both with 1 MiB writes. Then per job (4k randwrite QD32, 4k randread QD32 by default), after an
unrecorded warm-up on each side, --reps measured runs that alternate plain, encrypted, plain, ... so
both sides see the same drift in machine load. fio's nbd engine over n1's unix socket, as
bench/nbd_bench.py. Reports median IOPS per side and encrypted/plain. Writes a markdown report.

Usage: bench/encryption_bench.py [--reps 3] [--runtime 10] [--warmup 5] [--size 1GiB]
                                 [--jobs "randwrite QD32,randread QD32"] [--base-port 7800] [--out FILE]
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
from nbd_bench import JOBS, fio, parse_size  # noqa: E402
import repl_bench  # noqa: E402
from repl_bench import api, load, log, wait_all_up  # noqa: E402


class Cluster(repl_bench.Cluster):
    """repl_bench's cluster, every node started with the cluster key file."""

    def __init__(self, home, base_port, key_file):
        super().__init__(home, base_port)
        self.key_file = key_file

    def start_node(self, i, join=None, token=None):
        orig = subprocess.Popen
        key = self.key_file

        def popen(cmd, *a, **kw):
            return orig(cmd + ["--encryption-key-file", key], *a, **kw)

        subprocess.Popen = popen
        try:
            super().start_node(i, join, token)
        finally:
            subprocess.Popen = orig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--jobs", default="randwrite QD32,randread QD32")
    ap.add_argument("--base-port", type=int, default=7800)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "encryption.md"))
    opts = ap.parse_args()
    size = parse_size(opts.size)
    jobs = [j for j in JOBS if any(k in j[0] for k in opts.jobs.split(","))]
    work = tempfile.mkdtemp(prefix="ballast-enc-bench-", dir=os.path.join(ROOT, "target"))
    key = os.path.join(work, "cluster.key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    cluster = Cluster(os.path.join(work, "cluster"), opts.base_port, key)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        log("starting 3 nodes under " + work)
        cluster.start()
        n1 = cluster.urls["n1"]
        wait_all_up(n1, 3)
        sides = {}
        for name, enc in (("plain", False), ("encrypted", True)):
            body = {"name": name, "size": size, "repl": 3}
            if enc:
                body["encrypted"] = True
            v = api(n1 + "/v1/volumes?wait=ready", "POST", body)
            assert bool(v.get("encryption")) == enc, v
            att = api(n1 + "/v1/volumes/%s/attach" % name, "POST", {})
            sides[name] = att["nbdUnixUri"]
        for side, uri in sides.items():
            log("filling " + side)
            fio(uri, ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size, time_based=False)
        rows = []
        for label, args, metric in jobs:
            if opts.warmup > 0:
                for side, uri in sides.items():
                    log("%s warm-up on %s" % (label, side))
                    fio(uri, args, opts.warmup, size)
            got = {s: [] for s in sides}
            loads = []
            for rep in range(opts.reps):
                for side, uri in sides.items():
                    r = fio(uri, args, opts.runtime, size)
                    got[side].append(r[metric])
                    loads.append(os.getloadavg()[0])
                    log("%s %s rep %d: %.0f %s (load %s)" % (label, side, rep + 1, r[metric], metric, load()))
            p, e = statistics.median(got["plain"]), statistics.median(got["encrypted"])
            rows.append((label, p, e, e / p if p else 0.0, got, min(loads), max(loads)))
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        lines = ["# Encryption at rest: encrypted vs plain 3-replica volumes", "",
                 "Run %s at commit %s, on this project's 2-CPU test machine, **shared with other engineers' builds and "
                 "tests during the run** (1-minute load average %.1f to %.1f while measuring): absolute numbers are low "
                 "and noisy; the ratio of the two sides, measured alternately in the same run on the same cluster, is "
                 "the result." % (started, commit, min(r[5] for r in rows), max(r[6] for r in rows)), "",
                 "Command:", "", "    bench/encryption_bench.py --reps %d --runtime %d --warmup %d --size %s" % (
                     opts.reps, opts.runtime, opts.warmup, opts.size), "",
                 "3 node processes on one host, two volumes of %s with 3 replicas each (one `encrypted`), both attached on "
                 "n1, fio's nbd engine over n1's unix socket, volumes filled first; median of %d runs of %d s per side "
                 "(runs alternate plain, encrypted, ...). Every replica of the encrypted volume seals each 4 KiB block "
                 "with AES-256-GCM (JDK provider, AES-NI and CLMUL intrinsics) and syncs its tag table on flush; all "
                 "three replicas run on the same 2 CPUs, so a write is encrypted three times on this machine." % (
                     opts.size, opts.reps, opts.runtime), "",
                 "| job | plain | encrypted | encrypted / plain | runs (plain; encrypted) |",
                 "|---|---|---|---|---|"]
        for label, p, e, ratio, got, _, _ in rows:
            lines.append("| %s | %.0f IOPS | %.0f IOPS | %.2f | %s; %s |" % (
                label, p, e, ratio, ", ".join("%.0f" % x for x in got["plain"]),
                ", ".join("%.0f" % x for x in got["encrypted"])))
        lines.append("")
        report = "\n".join(lines)
        print(report)
        if opts.out:
            with open(opts.out, "w") as f:
                f.write(report)
            log("wrote " + opts.out)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

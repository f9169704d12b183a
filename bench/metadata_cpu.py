#!/usr/bin/env python3
"""Where a metadata operation's time goes: CPU of the node processes per create+inspect pair.

Starts metadata_bench's local 3-node cluster, then runs PHASES phases of N create+inspect pairs on the
leader over one keep-alive connection (each phase deletes its volumes afterwards, so the volume count
stays flat) and prints per phase: create and inspect p50/p99 and the CPU seconds the three node
processes spent per pair (utime+stime from /proc). When that CPU is close to the wall time per pair
times the host's CPUs, the latency is CPU-bound, not waiting on disks or timers.

Usage: bench/metadata_cpu.py [--phases 6] [--pairs 200] [--base-port 8700]"""
import argparse, http.client, json, os, shutil, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metadata_bench as mb  # noqa: E402
from nbd_bench import cpu_ticks  # noqa: E402


def node_cpu_s(pids):
    return sum(cpu_ticks(p) for p in pids) / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * (len(xs) - 1)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phases", type=int, default=6)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--base-port", type=int, default=8700)
    opts = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ballast-mcpu-")
    cluster = mb.Cluster(work, opts.base_port)
    try:
        cluster.start()
        pids = [p.pid for p in cluster.procs.values()]
        host, port = cluster.urls["n1"].replace("http://", "").split(":")
        conn = http.client.HTTPConnection(host, int(port))

        def call(method, path, body=None):
            conn.request(method, path, None if body is None else json.dumps(body), {"Content-Type": "application/json", **mb.AUTH})
            r = conn.getresponse()
            r.read()
            if r.status >= 300:
                raise RuntimeError("%s %s -> %d" % (method, path, r.status))

        for phase in range(opts.phases):
            creates, inspects = [], []
            cpu0, t0 = node_cpu_s(pids), time.time()
            for i in range(opts.pairs):
                s = time.perf_counter()
                call("POST", "/v1/volumes", {"name": "p%d-%d" % (phase, i), "size": "64MiB"})
                creates.append((time.perf_counter() - s) * 1000)
                s = time.perf_counter()
                call("GET", "/v1/volumes/p%d-%d" % (phase, i))
                inspects.append((time.perf_counter() - s) * 1000)
            cpu1, t1 = node_cpu_s(pids), time.time()
            print("phase %d: %d pairs; create p50 %.1f p99 %.1f ms; inspect p50 %.2f p99 %.2f ms; node CPU %.1f ms per pair,"
                  " wall %.1f ms per pair; load %s" % (phase, opts.pairs, pct(creates, .5), pct(creates, .99), pct(inspects, .5),
                                                      pct(inspects, .99), (cpu1 - cpu0) * 1000 / opts.pairs,
                                                      (t1 - t0) * 1000 / opts.pairs, open("/proc/loadavg").read().split()[0]),
                  flush=True)
            for i in range(opts.pairs):
                call("DELETE", "/v1/volumes/p%d-%d" % (phase, i))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

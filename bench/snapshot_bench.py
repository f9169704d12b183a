#!/usr/bin/env python3
"""Snapshots under load, on a local 3-node cluster (`ballast up`), 3-replica volumes attached on node 1.

1. Snapshot create latency: fio writes (4k randwrite QD16) to an attached volume while COUNT snapshots
   are cut one after another through the REST API; reports p50/p99/max of the create call (issue 21's
   target: p99 < 50 ms).
2. Reads through a deep chain: two volumes with the same fill, one with no snapshot ("flat") and one
   with 100 snapshots, each cut after rewriting 1 % of the blocks ("deep"); fio 4k randread QD32 on each,
   alternating, REPS times; reports the medians and deep/flat (target >= 0.9).

The result is written as markdown to docs/perf/snapshots.md (or --out).

Usage: bench/snapshot_bench.py [--size 256MiB] [--count 50] [--snapshots 100] [--reps 3] [--runtime 10]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().replace("IB", "").replace("B", "")
    return int(float(t[:-1]) * units[t[-1]]) if t[-1] in units else int(t)


def ballast(home, *args):
    env = dict(os.environ, BALLAST_HOME=home)
    r = subprocess.run([os.path.join(ROOT, "bin", "ballast"), *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("ballast %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


# the local cluster's TLS CA and token (`ballast up` writes them into the CLI's config.json, docs/security.md)
CONN = {"ssl": None, "headers": {"Content-Type": "application/json"}}


def use_cluster(home):
    import ssl
    with open(os.path.join(home, "config.json")) as f:
        ctx = json.load(f)["contexts"][0]
    if ctx.get("caFile"):
        CONN["ssl"] = ssl.create_default_context(cafile=ctx["caFile"])
    if ctx.get("token"):
        CONN["headers"]["Authorization"] = "Bearer " + ctx["token"]


def call(api, method, path, body=None, retries=0):
    """One REST call; with retries, a 409/503 (a node still joining right after `ballast up`) is retried every 2 s."""
    import urllib.error
    req = urllib.request.Request(api + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers=CONN["headers"])
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(req, timeout=300, context=CONN["ssl"]) as r:
                data = r.read()
                return json.loads(data) if data else None
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            if attempt == retries or e.code not in (409, 503):
                raise RuntimeError("%s %s: HTTP %d %s" % (method, path, e.code, text)) from None
            print("retrying %s %s after HTTP %d %s" % (method, path, e.code, text), file=sys.stderr)
            time.sleep(2)


def fio(uri, args, runtime=None):
    cmd = ["fio", "--name=bench", "--ioengine=nbd", "--uri=" + uri, "--output-format=json"] + args
    if runtime:
        cmd += ["--time_based", "--runtime=%d" % runtime]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{"):])["jobs"][0]


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def create_under_load(api, uri, size, count):
    load = {}

    def writer():
        load["job"] = fio(uri, ["--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=%d" % size], runtime=max(5, count // 2 + 10))
    t = threading.Thread(target=writer)
    t.start()
    time.sleep(3)  # fio connected and writing
    lat_ms = []
    for i in range(count):
        t0 = time.monotonic()
        call(api, "POST", "/v1/volumes/load/snapshots", {"name": "s%d" % i})
        lat_ms.append((time.monotonic() - t0) * 1000)
        time.sleep(0.2)
    t.join()
    return lat_ms, load["job"]["write"]["iops"]


def reads_through_chain(api, uris, size, a):
    for name in ("flat", "deep"):
        fio(uris[name], ["--rw=write", "--bs=1M", "--iodepth=8", "--size=%d" % size])
    blocks = size // 4096
    for i in range(a.snapshots):
        for name in ("flat", "deep"):
            # the same 1 % rewritten on both (same seed), so only the chain differs
            fio(uris[name], ["--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=%d" % size,
                             "--number_ios=%d" % max(1, blocks // 100), "--randseed=%d" % (100 + i)])
        call(api, "POST", "/v1/volumes/deep/snapshots", {"name": "d%d" % i})
    reads = {"flat": [], "deep": []}
    for _ in range(a.reps):
        for name in ("flat", "deep"):
            reads[name].append(fio(uris[name], ["--rw=randread", "--bs=4k", "--iodepth=32", "--size=%d" % size],
                                   runtime=a.runtime)["read"]["iops"])
    return statistics.median(reads["flat"]), statistics.median(reads["deep"]), reads


def breakdown(home):
    """Where a create's time went, from the nodes' logs: the REST node's barrier / engine cut / record, and each
    replica's flush and pool operation (close, new layer, volume.json, reopen). p50 / p99 / max in ms."""
    import glob
    phases = {}
    for path in glob.glob(os.path.join(home, "**", "ballast.log"), recursive=True):
        with open(path, errors="replace") as f:
            for line in f:
                if "snapshot created" not in line and "replica applied a snapshot operation" not in line:
                    continue
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("msg") == "snapshot created" and "cutMs" in e:
                    for k in ("barrierMs", "cutMs", "recordMs", "answerMs"):
                        if k in e:
                            phases.setdefault(k, []).append(int(e[k]))
                elif e.get("msg") == "snapshot created" and "metaMs" in e:
                    # the store's cut on each replica: wait for calls in progress, sync of dirty regions, new layer
                    # (a spare's header or three new files), volume.json
                    for k in ("waitMs", "cleanMs", "layerMs", "metaMs"):
                        phases.setdefault("store " + k, []).append(int(e[k]))
                    phases.setdefault("store cuts from a spare (1) or not (0)", []).append(1 if e.get("spare") else 0)
                elif e.get("msg") == "replica applied a snapshot operation" and e.get("action") == "CREATE":
                    for k in ("flushMs", "poolMs"):
                        phases.setdefault("replica " + k, []).append(int(e[k]))
    return {k: (percentile(v, 50), percentile(v, 99), max(v), len(v)) for k, v in phases.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="256MiB")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--snapshots", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--parts", default="create,reads", help="create, reads or both (comma separated)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "snapshots.md"))
    a = ap.parse_args()
    size = parse_size(a.size)
    home = tempfile.mkdtemp(prefix="ballast-snapbench-")
    ballast(home, "up", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0")
    try:
        with open(os.path.join(home, "local.json")) as f:
            api = json.load(f)["nodes"][0]["apiUrl"]
        use_cluster(home)
        uris = {}
        for name in ("load", "flat", "deep"):
            call(api, "POST", "/v1/volumes", {"name": name, "size": size, "repl": 3}, retries=30)
            uris[name] = call(api, "POST", "/v1/volumes/%s/attach" % name, {}, retries=30)["nbdUnixUri"]  # local: the unix socket (TCP wants TLS)

        parts = a.parts.split(",")
        lat_ms, idle_ms, write_iops, flat, deep, reads = [0], [0], 0, 1, 0, {"flat": [], "deep": []}
        # 1. snapshot create under write load (and, first, on the idle volume: the baseline)
        if "create" in parts:
            fio(uris["load"], ["--rw=write", "--bs=1M", "--iodepth=8", "--size=%d" % size])
            idle_ms = []
            for i in range(10):
                t0 = time.monotonic()
                call(api, "POST", "/v1/volumes/load/snapshots", {"name": "idle%d" % i})
                idle_ms.append((time.monotonic() - t0) * 1000)
            lat_ms, write_iops = create_under_load(api, uris["load"], size, a.count)
        if "reads" in parts:
            flat, deep, reads = reads_through_chain(api, uris, size, a)
    finally:
        ballast(home, "down", "--timeout", "10")
    phases = breakdown(home)


    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load1 = os.getloadavg()[0]
    lines = [
        "# Snapshot benchmarks",
        "",
        "`bench/snapshot_bench.py` (issue 21): a local 3-node cluster (`ballast up`, one machine), 3-replica",
        "volumes of %s attached on node 1, fio's nbd engine. Commit %s, %s, load average %.1f at the end"
        % (a.size, commit, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load1),
        "(the machine is shared: other builds and tests ran at the same time).",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        "| snapshot create on the idle attached volume (10 creates): p50 / p99 / max | %.0f / %.0f / %.0f ms | — |"
        % (percentile(idle_ms, 50), percentile(idle_ms, 99), max(idle_ms)),
        "| snapshot create under 4k randwrite QD16 (%d creates): p50 / p99 / max | %.0f / %.0f / %.0f ms | p99 < 50 ms |"
        % (a.count, percentile(lat_ms, 50), percentile(lat_ms, 99), max(lat_ms)),
        "| fio write IOPS during the creates | %.0f | — |" % write_iops,
        "| 4k randread QD32, no snapshot (median of %d) | %.0f IOPS | — |" % (a.reps, flat),
        "| 4k randread QD32, %d snapshots (median of %d) | %.0f IOPS | — |" % (a.snapshots, a.reps, deep),
        "| %d snapshots / none | %.2f | >= 0.9 |" % (a.snapshots, deep / flat if flat else 0),
        "",
        "Runs: flat %s, deep %s IOPS." % (", ".join("%.0f" % x for x in reads["flat"]),
                                          ", ".join("%.0f" % x for x in reads["deep"])),
        "Create latencies (ms, in order): %s." % ", ".join("%.0f" % x for x in lat_ms),
        "",
        "Where a create's time goes (all creates of the run, idle and under load; from the nodes' logs):",
        "",
        "| phase | p50 / p99 / max (ms) | samples |",
        "|---|---|---|",
    ] + ["| %s | %d / %d / %d | %d |" % (k, v[0], v[1], v[2], v[3]) for k, v in sorted(phases.items())] + [""]
    with open(a.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Replicated volumes on a local 3-node cluster, against nbdkit's file plugin, in one run.

Starts 3 node processes (bin/ballast node start, private directory, ports from --base-port),
creates volumes with 1, 2 and 3 replicas, attaches each on node n1 and drives it with fio's nbd
engine over n1's unix socket; nbdkit's file plugin on the same disk is the peer (same jobs as
bench/nbd_bench.py). For 4k randwrite QD32 also a reference for 3 replicas on one host: three nbdkit
exports on the same disk written at once by three fio jobs (per-export IOPS). Then, on a volume of
--rebuild-size:
  * full rebuild: a 2-replica volume is filled, its second node drained; the replacement replica
    is copied in full. Compared with fio's sequential write speed on the same disk (end_fsync), and
    with a copy within that disk (fio reading one file while writing another).
  * delta resync: a replica's node is killed (SIGKILL), 1% of the volume is rewritten, the node
    restarts; time and bytes until it is back in sync. Compared with the full rebuild time.
  * failover: the engine's node is killed (SIGKILL); time from the attach call on another node to
    the first completed NBD read.
Writes a markdown report (docs/perf/replication.md by default).

Usage: bench/repl_bench.py [--reps 1] [--runtime 10] [--size 1GiB] [--rebuild-size 4GiB]
                           [--jobs substr,...] [--skip-recovery] [--base-port 7700] [--out FILE]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from nbd_bench import JOBS, fio, parse_size, start_nbdkit  # noqa: E402
import metadata_bench  # noqa: E402

MIB = 1 << 20


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def api(url, method="GET", body=None, timeout=300):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": "application/json", **metadata_bench.AUTH})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raise RuntimeError("%s %s -> %d %s" % (method, url, e.code, e.read().decode(errors="replace")))


class Cluster(metadata_bench.Cluster):
    """metadata_bench's 3-process cluster, with unthrottled resync and restartable nodes."""

    def start_node(self, i, join=None, token=None):
        orig = subprocess.Popen

        def popen(cmd, *a, **kw):
            return orig(cmd + ["--resync-rate", "0"], *a, **kw)

        subprocess.Popen = popen
        try:
            super().start_node(i, join, token)
        finally:
            subprocess.Popen = orig

    def kill9(self, nid):
        p = self.procs[nid]
        p.send_signal(signal.SIGKILL)
        p.wait()

    def restart(self, nid):
        self.start_node(int(nid[1:]))


def wait_all_up(url, count, timeout_s=120):
    """Placement needs every node up (heartbeats), not only answering its API."""
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        nodes = api(url + "/v1/nodes")["nodes"]
        if len(nodes) == count and all(n.get("state") == "up" for n in nodes):
            return
        time.sleep(0.2)
    raise RuntimeError("nodes not all up after %d s: %s" % (timeout_s, api(url + "/v1/nodes")))


def in_sync(url, name):
    v = api(url + "/v1/volumes/" + name)
    return all(r.get("inSync", True) for r in v["replicas"]), v


def wait_in_sync(url, name, timeout_s=1800, phases=None):
    """Seconds until every replica is in sync. With a dict `phases`, also records 'copied': when the
    engine last reported a resync with every byte copied (the rest is the final flush and the join)."""
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        ok, v = in_sync(url, name)
        if ok:
            return time.time() - t0, v
        if phases is not None:
            rs = (((v.get("engine") or {}).get("status") or {}).get("resyncs")) or []
            if rs and all(r["bytesTotal"] > 0 and r["bytesDone"] >= r["bytesTotal"] for r in rs):
                phases.setdefault("copied", time.time() - t0)
        time.sleep(0.05)
    raise RuntimeError("%s not in sync after %d s" % (name, timeout_s))


def counters(v):
    st = ((v.get("engine") or {}).get("status") or {})
    return st.get("counters") or {}


def load():
    return "%.1f/%.1f/%.1f" % os.getloadavg()


def disk_seq_write_mibs(workdir, size_bytes):
    path = os.path.join(workdir, "fio-disk.img")
    out = subprocess.run(["fio", "--name=disk", "--filename=" + path, "--rw=write", "--bs=1M", "--iodepth=8",
                          "--ioengine=libaio", "--size=%d" % size_bytes, "--end_fsync=1", "--output-format=json"],
                         check=True, capture_output=True, text=True).stdout
    os.unlink(path)
    job = json.loads(out[out.index("{"):])["jobs"][0]["write"]
    return job["io_bytes"] / MIB / (job["runtime"] / 1000.0)


def disk_copy_mibs(workdir, size_bytes):
    """What a copy within this one disk reaches: fio reads one file (direct, not from the page cache)
    while it writes another (as the disk reference, end_fsync), both 1M QD8 at once; the volume size
    over the time until both are done. A rebuild on a single-disk host reads its source from the same
    disk it writes the copy to; across hosts the two are different disks."""
    src, dst = os.path.join(workdir, "fio-copy-src.img"), os.path.join(workdir, "fio-copy-dst.img")
    subprocess.run(["fio", "--name=prep", "--filename=" + src, "--rw=write", "--bs=1M", "--iodepth=8", "--ioengine=libaio",
                    "--direct=1", "--size=%d" % size_bytes, "--end_fsync=1"], check=True, capture_output=True)
    common = ["--bs=1M", "--iodepth=8", "--ioengine=libaio", "--size=%d" % size_bytes]
    out = subprocess.run(["fio", "--output-format=json",
                          "--name=src", "--filename=" + src, "--rw=read", "--direct=1"] + common
                         + ["--name=dst", "--filename=" + dst, "--rw=write", "--end_fsync=1"] + common,
                         check=True, capture_output=True, text=True).stdout
    for path in (src, dst):
        os.unlink(path)
    jobs = json.loads(out[out.index("{"):])["jobs"]
    seconds = max(j["job_runtime"] if "job_runtime" in j else max(j["read"]["runtime"], j["write"]["runtime"])
                  for j in jobs) / 1000.0
    return size_bytes / MIB / seconds


def three_way_reference(uris, args, runtime_s, size_bytes):
    """Three fio jobs at once, each on its own nbdkit export on the same disk: what one client stream
    gets when the host's CPUs and disk do three copies of every write, as a 3-replica volume on this
    one host does (its replicas share the disk and the two CPUs). Per-export IOPS, averaged."""
    results = [None] * len(uris)

    def one(i):
        results[i] = fio(uris[i], args, runtime_s, size_bytes)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(uris))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"iops": sum(r["iops"] for r in results) / len(results),
            "p99_us": max(r["p99_us"] for r in results)}


def nbd_first_read_ms(uri, t0):
    try:
        import nbd
    except ImportError:  # Debian's python3-nbd, when this python is not Debian's
        sys.path.append("/usr/lib/python3/dist-packages")
        import nbd
    h = nbd.NBD()
    h.connect_uri(uri)
    h.pread(4096, 0)
    ms = (time.perf_counter() - t0) * 1000
    h.shutdown()
    return ms


def recovery(cluster, workdir, size_bytes, lines, rebuild_only=False, fill=1.0):
    n1, n2, n3 = (cluster.urls[n] for n in ("n1", "n2", "n3"))
    disk = disk_seq_write_mibs(workdir, size_bytes)
    log("disk sequential write (fio, end_fsync): %.0f MiB/s; load %s" % (disk, load()))
    copy = disk_copy_mibs(workdir, size_bytes)
    log("disk copy within the disk (fio reads one file while writing another): %.0f MiB/s; load %s" % (copy, load()))
    # full rebuild: repl 2 on n1+n2, filled, then n2 drained -> full copy to n3
    v = api(n1 + "/v1/volumes", "POST", {"name": "rb", "size": size_bytes, "repl": 2})
    placed = [r["nodeId"] for r in v["replicas"]]
    att = api(n1 + "/v1/volumes/rb/attach", "POST", {})
    fill_bytes = int(size_bytes * fill) // MIB * MIB
    fio(att["nbdUnixUri"], ["--rw=write", "--bs=1M", "--iodepth=8"], 0,
        fill_bytes, time_based=False)
    victim = [n for n in placed if n != "n1"][0] if "n1" in placed else placed[1]
    log("filled; draining " + victim)
    t0 = time.time()
    api(n1 + "/v1/nodes/%s/drain" % victim, "POST", {})
    phases = {}
    rebuild_s, v = wait_in_sync(n1, "rb", phases=phases)
    rebuild_mibs = size_bytes / MIB / rebuild_s
    copied_s = phases.get("copied")
    # the copy's end is seen only when the final flush and join outlast one poll of volume inspect
    join = ("%.1f s" % (rebuild_s - copied_s)) if copied_s is not None else "shorter than one poll of volume inspect"
    log("full rebuild of %d MiB: %.1f s (%.0f MiB/s); flush and join %s; load %s"
        % (size_bytes // MIB, rebuild_s, rebuild_mibs, join, load()))
    api(n1 + "/v1/nodes/%s/uncordon" % victim, "POST", {})
    if rebuild_only:
        lines += ["", "### Rebuild (volume of %s, %d%% written, 2 replicas, resync unthrottled)"
                  % (fmt_size(size_bytes), round(100 * fill)), "",
                  "| measure | value | target |", "|---|---|---|",
                  "| disk sequential write, fio 1M QD8 end_fsync | %.0f MiB/s | |" % disk,
                  "| full rebuild (drain, replacement copied in full) | %.1f s, %.0f MiB/s = %.2f of disk | ≥ 0.8 of disk |"
                  % (rebuild_s, rebuild_mibs, rebuild_mibs / disk),
                  COPY_ROW % (copy, rebuild_mibs / copy),
                  "| of which final flush and join | %s | |" % join,
                  "| load average at the end of the rebuild | %s | |" % load()]
        return
    # steady state before the next failure: the engine checkpoints right after a replica joins; a replica
    # killed before that first checkpoint completes (tens of ms) is marked missed since the copy and is
    # copied in full again (docs/replication.md)
    time.sleep(2)
    # delta resync: kill a replica node (not n1), rewrite 1 %, restart
    holders = [r["nodeId"] for r in api(n1 + "/v1/volumes/rb")["replicas"] if r["nodeId"] != "n1"]
    target = holders[0]
    cluster.kill9(target)
    uri = att["nbdUnixUri"]
    changed = size_bytes // 100
    subprocess.run(["fio", "--name=delta", "--ioengine=nbd", "--uri=" + uri, "--rw=write", "--bs=1M", "--iodepth=8",
                    "--offset=%d" % (size_bytes // 3 // MIB * MIB), "--size=%d" % changed, "--end_fsync=1"],
                   check=True, capture_output=True)
    before = counters(api(n1 + "/v1/volumes/rb")).get("resyncBytes", 0)
    cluster.restart(target)
    t0 = time.time()
    delta_s, v = wait_in_sync(n1, "rb")
    copied = counters(v).get("resyncBytes", 0) - before
    log("delta resync after changing %d MiB: %.2f s, %d MiB copied" % (changed // MIB, delta_s, copied // MIB))
    # failover: kill the engine's node, attach on another, time to the first completed read
    time.sleep(2)
    cluster.kill9("n1")
    other = cluster.urls[target]
    t0 = time.perf_counter()
    att2 = api(other + "/v1/volumes/rb/attach", "POST", {})
    attach_ms = (time.perf_counter() - t0) * 1000
    first_ms = nbd_first_read_ms(att2["nbdUnixUri"], t0)
    log("failover: attach %.0f ms, first completed read %.0f ms after the attach call" % (attach_ms, first_ms))
    lines += [
        "",
        "### Recovery (volume of %s, 2 replicas, resync unthrottled)" % fmt_size(size_bytes),
        "",
        "| measure | value | target |",
        "|---|---|---|",
        "| disk sequential write, fio 1M QD8 end_fsync | %.0f MiB/s | |" % disk,
        "| full rebuild (drain, replacement copied in full) | %.1f s, %.0f MiB/s = %.2f of disk | ≥ 0.8 of disk |"
        % (rebuild_s, rebuild_mibs, rebuild_mibs / disk),
        COPY_ROW % (copy, rebuild_mibs / copy),
        "| delta resync after rewriting 1%% (%d MiB) while a replica was down | %.2f s = %.1f%% of full rebuild; %d MiB copied"
        " | ≤ 5%% of rebuild |" % (changed // MIB, delta_s, 100 * delta_s / rebuild_s, copied // MIB),
        "| failover: kill -9 of the engine's node, attach elsewhere to first completed read | %.0f ms (attach call %.0f ms)"
        " | < 2000 ms |" % (first_ms, attach_ms),
    ]


COPY_ROW = ("| reference: a copy within this one disk (fio reads one file while it writes another, 1M QD8) | %.0f MiB/s;"
            " the rebuild reached %.2f of it | (what the rebuild competes with on one disk) |")

# jobs that also get the three-exports-at-once reference (three_way_reference)
THREE_WAY_JOBS = ("4k randwrite QD32",)


def fmt_size(b):
    return "%d GiB" % (b >> 30) if b >= 1 << 30 else "%d MiB" % (b >> 20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=10,
                    help="seconds of each job run on every side, unrecorded, before its measured reps (0: none): "
                         "the node JVMs compile the job's path first, as in a daemon that has been serving a while")
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--rebuild-size", default="4GiB")
    ap.add_argument("--jobs", default="randwrite QD32,randread QD32,randwrite QD1,seq write")
    ap.add_argument("--skip-recovery", action="store_true")
    ap.add_argument("--recovery-only", action="store_true", help="skip the fio jobs; only the recovery section")
    ap.add_argument("--rebuild-only", action="store_true", help="skip the fio jobs, delta resync and failover")
    ap.add_argument("--rebuild-fill", type=float, default=1.0,
                    help="fraction of the rebuild volume written before the drain (the rest stays unallocated)")
    ap.add_argument("--base-port", type=int, default=7700)
    ap.add_argument("--out", default=None, help="report file (default docs/perf/replication.md for a full run;"
                    " none with --recovery-only/--rebuild-only)")
    opts = ap.parse_args()
    partial = opts.recovery_only or opts.rebuild_only
    if opts.out is None and not partial:
        opts.out = os.path.join(ROOT, "docs", "perf", "replication.md")
    size = parse_size(opts.size)
    jobs = [j for j in JOBS if any(k in j[0] for k in opts.jobs.split(","))] if opts.jobs else JOBS
    work = tempfile.mkdtemp(prefix="ballast-repl-bench-", dir=os.path.join(ROOT, "target"))
    cluster = Cluster(os.path.join(work, "cluster"), opts.base_port)
    nbdkit = None
    three_way = []  # (process, uri) of the three exports of the 3-replica reference
    lines = []
    try:
        log("starting 3 nodes under " + work)
        cluster.start()
        n1 = cluster.urls["n1"]
        wait_all_up(n1, 3)
        sides = {}
        for n in (() if partial else (1, 2, 3)):
            name = "r%d" % n
            api(n1 + "/v1/volumes", "POST", {"name": name, "size": size, "repl": n})
            att = api(n1 + "/v1/volumes/%s/attach" % name, "POST", {})
            sides["repl=%d" % n] = att["nbdUnixUri"]
        if not partial:
            nbdkit, sides["nbdkit"] = start_nbdkit(work, size)
            if any(j[0] in THREE_WAY_JOBS for j in jobs):
                for k in range(3):
                    d = os.path.join(work, "nbdkit3-%d" % k)
                    os.makedirs(d)
                    three_way.append(start_nbdkit(d, size))
        for side, uri in sides.items():
            log("filling " + side)
            fio(uri, ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size, time_based=False)
        for k, (_, uri) in enumerate(three_way):
            log("filling nbdkit x3 export %d" % (k + 1))
            fio(uri, ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size, time_based=False)
        results = {}
        for jname, args, metric in ([] if partial else jobs):
            if opts.warmup > 0:
                for side, uri in sides.items():
                    r = fio(uri, args, opts.warmup, size)
                    log("%-22s %-8s %10.1f %s  p99 %.0f us (warm-up, not counted)" % (jname, side, r[metric], metric, r["p99_us"]))
            for _ in range(opts.reps):
                for side, uri in sides.items():
                    r = fio(uri, args, opts.runtime, size)
                    results.setdefault((jname, side), []).append(r)
                    log("%-22s %-8s %10.1f %s  p99 %.0f us" % (jname, side, r[metric], metric, r["p99_us"]))
                if three_way and jname in THREE_WAY_JOBS:
                    r = three_way_reference([u for _, u in three_way], args, opts.runtime, size)
                    results.setdefault((jname, "nbdkit x3"), []).append(r)
                    log("%-22s %-8s %10.1f %s per export  p99 %.0f us" % (jname, "nbdkit x3", r[metric], metric, r["p99_us"]))
        peers = ["repl=1", "repl=2", "repl=3"]
        lines += [] if partial else ["| job | nbdkit | " + " | ".join(peers) + " | " + " | ".join("ratio " + p for p in peers)
                  + " | p99 µs nbdkit / 1 / 2 / 3 |", "|---" * (2 + 2 * len(peers) + 1) + "|"]
        for jname, _, metric in ([] if partial else jobs):
            med = {s: statistics.median(r[metric] for r in results[(jname, s)]) for s in sides}
            p99 = {s: statistics.median(r["p99_us"] for r in results[(jname, s)]) for s in sides}
            unit = "MiB/s" if metric == "bw" else "IOPS"
            lines.append("| %s (%s) | %.0f | %s | %s | %s |" % (
                jname, unit, med["nbdkit"], " | ".join("%.0f" % med[p] for p in peers),
                " | ".join("%.2f" % (med[p] / med["nbdkit"]) for p in peers),
                " / ".join("%.0f" % p99[s] for s in ["nbdkit"] + peers)))
        for jname, _, metric in ([] if partial else jobs):
            if (jname, "nbdkit x3") in results:
                ref = statistics.median(r[metric] for r in results[(jname, "nbdkit x3")])
                r3 = statistics.median(r[metric] for r in results[(jname, "repl=3")])
                lines += ["", "%s, reference for 3 replicas on one host: three nbdkit exports on the same disk, written"
                          " at once by three fio jobs (each the job above): %.0f IOPS per export; repl=3 reached %.2f of"
                          " that (and %.2f of one nbdkit alone, the target's measure)."
                          % (jname, ref, r3 / ref, r3 / statistics.median(r[metric] for r in results[(jname, "nbdkit")]))]
        for s in (() if partial else ("r1", "r2", "r3")):
            api(n1 + "/v1/volumes/%s/detach" % s, "POST", {})
        if not opts.skip_recovery:
            recovery(cluster, work, parse_size(opts.rebuild_size), lines, opts.rebuild_only, opts.rebuild_fill)
    finally:
        if nbdkit:
            nbdkit.terminate()
        for proc, _ in three_way:
            proc.terminate()
        cluster.stop()
    cmd = "bench/repl_bench.py " + " ".join(sys.argv[1:])
    report = ["# Replication benchmark", "",
              "Latest run: `%s` on %s (3 node processes on one host, loopback, one disk; engine on n1;"
              " fio nbd engine over n1's unix socket; per job an unrecorded %d-s warm-up on every side, then %d rep(s) × %d s,"
              " median)." % (cmd.strip(), time.strftime("%Y-%m-%d"), opts.warmup, opts.reps, opts.runtime), ""] + lines + [""]
    print("\n".join(report))
    if opts.out:
        with open(opts.out, "w") as f:
            f.write("\n".join(report))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""fio through NBD: a Ballast volume against nbdkit's file plugin on the same disk, in one run.

Both servers listen on unix sockets in the same work directory, so they share the disk, the
page cache and the transport. Each job runs on both sides, alternating, REPS times; the table
reports the median of each side, the ratio Ballast/nbdkit, p99 latency, and the Ballast daemon's
peak RSS (VmHWM). The result is written as markdown to docs/perf/README.md (or --out).

Usage: bench/nbd_bench.py [--reps 3] [--runtime 15] [--size 1GiB] [--workdir DIR] [--out FILE]
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
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, fio args, metric ("iops" or "bw")
JOBS = [
    ("seq write 1M QD8", ["--rw=write", "--bs=1M", "--iodepth=8"], "bw"),
    ("seq read 1M QD8", ["--rw=read", "--bs=1M", "--iodepth=8"], "bw"),
    ("4k randread QD1", ["--rw=randread", "--bs=4k", "--iodepth=1"], "iops"),
    ("4k randread QD32", ["--rw=randread", "--bs=4k", "--iodepth=32"], "iops"),
    ("4k randwrite QD1", ["--rw=randwrite", "--bs=4k", "--iodepth=1"], "iops"),
    ("4k randwrite QD32", ["--rw=randwrite", "--bs=4k", "--iodepth=32"], "iops"),
    ("4k randwrite fsync=1", ["--rw=randwrite", "--bs=4k", "--iodepth=1", "--fsync=1"], "iops"),
]


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().replace("IB", "").replace("B", "")
    return int(float(t[:-1]) * units[t[-1]]) if t[-1] in units else int(t)


def wait_for(predicate, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


def start_ballast(workdir, size_bytes):
    data = os.path.join(workdir, "ballast-data")
    os.makedirs(data, exist_ok=True)
    sock = os.path.join(workdir, "ballast.sock")
    log = open(os.path.join(workdir, "ballast-node.out"), "w")
    proc = subprocess.Popen(
        [os.path.join(ROOT, "bin", "ballast"), "node", "start", "--insecure", "--data-dir", data,
         "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0", "--nbd-socket", sock],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node_json = os.path.join(data, "node.json")
    wait_for(lambda: os.path.exists(node_json) and os.path.exists(sock), 120, "ballast node")
    with open(node_json) as f:
        node = json.load(f)
    api = node.get("apiUrl") or ("http://" + node["apiAddress"])
    with open(os.path.join(data, "admin-token")) as f:  # the bootstrap admin token (docs/security.md)
        auth = {"Authorization": "Bearer " + f.read().strip()}
    req = urllib.request.Request(api + "/v1/volumes", method="POST",
                                 data=json.dumps({"name": "bench", "size": size_bytes}).encode(),
                                 headers={"Content-Type": "application/json", **auth})
    urllib.request.urlopen(req).read()
    # exported over NBD only where attached (the engine serves it)
    urllib.request.urlopen(urllib.request.Request(api + "/v1/volumes/bench/attach", method="POST", data=b"{}",
                                                  headers={"Content-Type": "application/json", **auth})).read()
    return proc, "nbd+unix:///bench?socket=" + sock


def start_nbdkit(workdir, size_bytes):
    path = os.path.join(workdir, "nbdkit-disk.img")
    with open(path, "wb") as f:
        f.truncate(size_bytes)
    sock = os.path.join(workdir, "nbdkit.sock")
    proc = subprocess.Popen(["nbdkit", "--foreground", "-U", sock, "file", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: os.path.exists(sock), 30, "nbdkit")
    return proc, "nbd+unix:///?socket=" + sock


def fio(uri, args, runtime_s, size_bytes, time_based=True, prefix=(), cwd=None):
    """One fio run; prefix is put before the fio command (e.g. to run it as another user)."""
    cmd = list(prefix) + ["fio", "--name=job", "--ioengine=nbd", "--uri=" + uri, "--size=%d" % size_bytes,
           "--output-format=json", "--group_reporting"] + args
    if time_based:
        cmd += ["--time_based", "--runtime=%d" % runtime_s, "--ramp_time=2"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["write"] if job["write"]["io_bytes"] > 0 else job["read"]
    pct = side.get("clat_ns", {}).get("percentile", {})
    return {"iops": side["iops"], "bw": side["bw_bytes"] / (1 << 20),
            "p99_us": pct.get("99.000000", 0) / 1000.0}


def cpu_ticks(pid):
    """utime+stime of all threads of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def run_alternating(jobs, sides, pids, reps, runtime_s, size_bytes, run_fio=None):
    """Each job `reps` times per side, alternating sides, so drift in the machine hits both alike.
    sides: name -> NBD URI; pids: name -> server pid (for CPU per request). Returns
    {(job, side): [fio result with "cpu_us"]}."""
    run_fio = run_fio or fio
    results = {}
    for name, args, metric in jobs:
        for rep in range(reps):
            for side, uri in sides.items():
                pid = pids[side]
                t0 = cpu_ticks(pid)
                r = run_fio(uri, args, runtime_s, size_bytes)
                # Server CPU per request: fio counts ops after the 2 s ramp only, so estimate the
                # ops of the whole run (ramp included) from the measured rate.
                ops = r["iops"] * (runtime_s + 2)
                r["cpu_us"] = (cpu_ticks(pid) - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / ops if ops else 0
                results.setdefault((name, side), []).append(r)
                print("%-22s rep %d %-9s %10.1f %s  p99 %.0f us  cpu/op %.1f us" % (
                    name, rep + 1, side, r[metric], "IOPS" if metric == "iops" else "MiB/s", r["p99_us"],
                    r["cpu_us"]), flush=True)
    return results


def median_row(name, metric, mine, peer):
    """One markdown row: medians of both sides, their ratio, p99s, CPU per request and its ratio."""
    mm = statistics.median(r[metric] for r in mine)
    pm = statistics.median(r[metric] for r in peer)
    unit = "IOPS" if metric == "iops" else "MiB/s"
    mc = statistics.median(r["cpu_us"] for r in mine)
    pc = statistics.median(r["cpu_us"] for r in peer)
    return "| %s | %.0f %s | %.0f %s | %.2f | %.0f | %.0f | %.1f | %.1f | %.2f |" % (
        name, mm, unit, pm, unit, mm / pm if pm else 0,
        statistics.median(r["p99_us"] for r in mine), statistics.median(r["p99_us"] for r in peer),
        mc, pc, mc / pc if pc else 0)


def machine_line():
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    fio_version = subprocess.run(["fio", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {cpu}; {fio_version}; measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=15)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--workdir", default=None, help="directory on the disk under test")
    ap.add_argument("--jobs", default=None,
                    help="comma-separated substrings; only jobs whose name contains one run (quick A/B)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "README.md"))
    opts = ap.parse_args()
    size_bytes = parse_size(opts.size)
    jobs = JOBS
    if opts.jobs:
        jobs = [j for j in JOBS if any(k in j[0] for k in opts.jobs.split(","))]
    workdir = opts.workdir or tempfile.mkdtemp(prefix="ballast-bench-", dir=os.path.join(ROOT, "target"))
    os.makedirs(workdir, exist_ok=True)

    ballast, ballast_uri = start_ballast(workdir, size_bytes)
    nbdkit, nbdkit_uri = start_nbdkit(workdir, size_bytes)
    sides = {"ballast": ballast_uri, "nbdkit": nbdkit_uri}
    procs = {"ballast": ballast, "nbdkit": nbdkit}
    try:
        # Fill both devices once so reads hit real data, not holes.
        for uri in sides.values():
            fio(uri, ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size_bytes, time_based=False)
        results = run_alternating(jobs, sides, {k: p.pid for k, p in procs.items()}, opts.reps, opts.runtime,
                                  size_bytes)
        rss = peak_rss_mib(ballast.pid)
    finally:
        for p in (ballast, nbdkit):
            os.killpg(p.pid, signal.SIGTERM)
        for p in (ballast, nbdkit):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    rows = [median_row(name, metric, results[(name, "ballast")], results[(name, "nbdkit")])
            for name, _, metric in jobs]
    table = "\n".join([
        "| job | Ballast | nbdkit file | ratio | Ballast p99 (us) | nbdkit p99 (us) "
        "| Ballast CPU/op (us) | nbdkit CPU/op (us) | CPU/op ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ] + rows)
    body = f"""# Performance

Latest measured table (single node, no replication), produced by:

    bench/nbd_bench.py --reps {opts.reps} --runtime {opts.runtime} --size {opts.size}

fio's nbd engine over a unix socket against a Ballast volume and, in the same run, against
nbdkit's file plugin serving a preallocated file in the same directory (same disk, same page
cache). Each job runs {opts.reps} times per side, alternating sides; values are medians; the ratio
is Ballast/nbdkit (higher is better for Ballast). Both devices are filled first so reads hit data.
CPU/op is the server process's utime+stime (all threads, from /proc/PID/stat) over a fio run divided
by the requests of that run (rate x (runtime + 2 s ramp)); it is load-independent, lower is better,
and its ratio is Ballast/nbdkit (at most 1.0 means Ballast spends no more CPU per request).

Machine: {machine_line()}.

{table}

Ballast daemon peak RSS (VmHWM) over the whole run: {rss:.0f} MiB (target: under 256 MiB).

Targets (issue 2): every ratio at least 1.0, peak RSS under 256 MiB.
"""
    os.makedirs(os.path.dirname(opts.out), exist_ok=True)
    with open(opts.out, "w") as f:
        f.write(body)
    print(body)
    if not opts.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

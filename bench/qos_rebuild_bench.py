#!/usr/bin/env python3
"""Client I/O during a rebuild, with and without the node's background budget (docs/qos.md).

On a local 4-node cluster (node processes, loopback, one disk): a 3-replica volume of --size
(4 GiB) attached on n1 is filled, then fio 4k randwrite QD32 runs on it for --runtime s with no
rebuild (the baseline), then a replica node other than n1 is drained, so n1's engine copies the
volume in full to the fourth node, and the same fio runs while that rebuild copies. The rebuild's
rate while fio runs comes from the engine's resync progress (bytes done at fio's start and end).

Modes: "budget" starts the nodes with --background-bandwidth 200MiB (the default: a quarter, 50
MiB/s, while clients are busy), "no budget" with --background-bandwidth 0 (the rebuild is capped
only by the volume's --resync-rate, 200 MiB/s by default). Each mode needs its own cluster (the
budget is a start option); modes alternate within one run, --rounds times, so drift on a shared
host hits both; the report gives each measure's range over the rounds.

Targets (issue 23): with the budget, IOPS during the rebuild >= 0.7 of the no-rebuild IOPS, and the
rebuild still >= 50 MiB/s.

Usage: bench/qos_rebuild_bench.py [--rounds 2] [--runtime 15] [--size 4GiB] [--base-port 8600]
                                  [--out docs/perf/qos.md]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import metadata_bench  # noqa: E402
import repl_bench as rb  # noqa: E402
from nbd_bench import fio, parse_size  # noqa: E402

MIB = 1 << 20
CLIENT = ["--rw=randwrite", "--bs=4k", "--iodepth=32"]
MODES = (("budget", "200MiB"), ("no budget", "0"))


class Cluster(metadata_bench.Cluster):
    """metadata_bench's cluster with a fourth node (the rebuild's target) and a background budget."""

    def __init__(self, home, base_port, background):
        super().__init__(home, base_port)
        self.background = background

    def start_node(self, i, join=None, token=None):
        orig = subprocess.Popen

        def popen(cmd, *a, **kw):
            return orig(cmd + ["--background-bandwidth", self.background], *a, **kw)

        subprocess.Popen = popen
        try:
            super().start_node(i, join, token)
        finally:
            subprocess.Popen = orig

    def start(self):
        """n1 bootstraps; the others join one at a time, each once the last is up (a join during the last one's
        configuration change can time out on a loaded host)."""
        metadata_bench.AUTH.pop("Authorization", None)  # each cluster has its own admin token
        self.start_node(1)
        token_file = os.path.join(self.home, "n1", "cluster-token")
        deadline = time.time() + 60
        while not (os.path.exists(token_file) and os.path.getsize(token_file) > 0):
            if time.time() > deadline:
                raise RuntimeError("%s not written within 60 s" % token_file)
            time.sleep(0.1)
        token = open(token_file).read().strip()
        with open(os.path.join(self.home, "n1", "admin-token")) as f:
            metadata_bench.AUTH["Authorization"] = "Bearer " + f.read().strip()
        for i in (2, 3, 4):
            self.start_node(i, join=self.api(1), token=token)
            rb.wait_all_up(self.urls["n1"], i)


def resync_done(url, name):
    st = ((rb.api(url + "/v1/volumes/" + name).get("engine") or {}).get("status") or {})
    return sum(r.get("bytesDone", 0) for r in st.get("resyncs") or [])


def start_cluster(work, port, background):
    """A started cluster; on a loaded host a join can time out (the node exits): then a fresh cluster on other ports."""
    for attempt in range(3):
        cluster = Cluster(os.path.join(work, "c%d" % (port + 100 * attempt)), port + 100 * attempt, background)
        try:
            cluster.start()
            return cluster
        except RuntimeError as e:
            cluster.stop()
            if attempt == 2:
                raise
            rb.log("cluster start failed (%s); a fresh cluster on other ports" % e)
    raise AssertionError("unreachable")


def one_mode(work, port, background, size, runtime):
    cluster = start_cluster(work, port, background)
    try:
        n1 = cluster.urls["n1"]
        rb.wait_all_up(n1, 4)
        v = rb.api(n1 + "/v1/volumes", "POST", {"name": "qb", "size": size, "repl": 3, "preferNode": "n1"})
        placed = [r["nodeId"] for r in v["replicas"]]
        att = rb.api(n1 + "/v1/volumes/qb/attach", "POST", {})
        uri = att.get("nbdUnixUri") or att["unixUri"]
        fio(uri, ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size, time_based=False)
        rb.log("%s: filled %d MiB on %s; load %s" % (background, size // MIB, ",".join(placed), rb.load()))
        base = fio(uri, CLIENT, runtime, size)
        rb.log("%s: no rebuild: %.0f IOPS, p99 %.0f us" % (background, base["iops"], base["p99_us"]))
        victim = [n for n in placed if n != "n1"][0]
        t0 = time.time()
        rb.api(n1 + "/v1/nodes/%s/drain" % victim, "POST", {})
        deadline = time.time() + 60
        while resync_done(n1, "qb") <= 0:  # the copy has started
            if time.time() > deadline:
                raise RuntimeError("no rebuild progress 60 s after draining " + victim)
            time.sleep(0.05)
        sample = {}

        def mark_start():  # fio's numbers start after its 2-s ramp
            time.sleep(2)
            sample["t0"], sample["b0"] = time.time(), resync_done(n1, "qb")

        marker = threading.Thread(target=mark_start)
        marker.start()
        during = fio(uri, CLIENT, runtime, size)
        t1, b1 = time.time(), resync_done(n1, "qb")
        marker.join()
        if b1 < sample["b0"]:
            raise RuntimeError("the rebuild ended during fio's run: use a larger --size or a shorter --runtime")
        rebuild_mibs = (b1 - sample["b0"]) / MIB / (t1 - sample["t0"])
        rebuild_s, _ = rb.wait_in_sync(n1, "qb")
        total_s = time.time() - t0
        rb.log("%s: during rebuild: %.0f IOPS, p99 %.0f us, rebuild %.0f MiB/s (whole rebuild %.0f s); load %s"
               % (background, during["iops"], during["p99_us"], rebuild_mibs, total_s, rb.load()))
        return {"base_iops": base["iops"], "base_p99": base["p99_us"], "iops": during["iops"], "p99": during["p99_us"],
                "ratio": during["iops"] / base["iops"], "rebuild_mibs": rebuild_mibs, "rebuild_s": total_s}
    finally:
        cluster.stop()


def rng(values, fmt):
    lo, hi = min(values), max(values)
    return (fmt % lo) if fmt % lo == fmt % hi else (fmt % lo) + "–" + (fmt % hi)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runtime", type=int, default=15)
    ap.add_argument("--size", default="4GiB")
    ap.add_argument("--base-port", type=int, default=8600)
    ap.add_argument("--out")
    ap.add_argument("--modes", default="budget,no budget", help="which modes, comma-separated (default both)")
    opts = ap.parse_args()
    size = parse_size(opts.size)
    work = tempfile.mkdtemp(prefix="qos-bench-", dir=os.path.join(ROOT, "target"))
    modes = tuple(m for m in MODES if m[0] in opts.modes.split(","))
    results = {name: [] for name, _ in modes}
    load0 = rb.load()
    port = opts.base_port
    for rnd in range(opts.rounds):
        for name, background in (modes if rnd % 2 == 0 else modes[::-1]):
            try:
                results[name].append(one_mode(work, port, background, size, opts.runtime))
            except Exception:
                rb.log("failed; the nodes' logs are kept in %s" % work)
                raise
            for c in os.listdir(work):
                shutil.rmtree(os.path.join(work, c), ignore_errors=True)
            port += 50  # a fresh cluster on fresh ports: no lingering sockets from the last one
    shutil.rmtree(work, ignore_errors=True)
    cmd = "bench/qos_rebuild_bench.py " + " ".join(sys.argv[1:])
    lines = ["# QoS: client I/O during a rebuild", "",
             "Latest run: `%s` on %s: 4 node processes on one 2-core host (loopback, one disk), a 3-replica"
             " volume of %s attached on n1 and filled, fio 4k randwrite QD32 over n1's unix socket for %d s (after a"
             " 2-s ramp) first with no rebuild, then while a drain of a replica node has n1's engine copy the volume in"
             " full to the fourth node. Modes alternate within the run, a fresh cluster each; ranges over %d round(s)."
             " Load average at the start %s, at the end %s." % (cmd.strip(), time.strftime("%Y-%m-%d"),
                                                                 rb.fmt_size(size), opts.runtime, opts.rounds, load0, rb.load()),
             "",
             "| mode | IOPS, no rebuild | IOPS during rebuild | ratio | p99 µs, no rebuild | p99 µs during rebuild"
             " | rebuild MiB/s during fio | whole rebuild s | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, background in modes:
        rs = results[name]
        target = "ratio ≥ 0.7, rebuild ≥ 50 MiB/s" if name == "budget" else "(reference)"
        lines.append("| %s (`--background-bandwidth %s`) | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, background, rng([r["base_iops"] for r in rs], "%.0f"), rng([r["iops"] for r in rs], "%.0f"),
            rng([r["ratio"] for r in rs], "%.2f"), rng([r["base_p99"] for r in rs], "%.0f"),
            rng([r["p99"] for r in rs], "%.0f"), rng([r["rebuild_mibs"] for r in rs], "%.0f"),
            rng([r["rebuild_s"] for r in rs], "%.0f"), target))
    lines += ["", "Per round (in run order within each mode): " + "; ".join(
        "%s: %s" % (name, ", ".join("%.0f→%.0f IOPS at %.0f MiB/s" % (r["base_iops"], r["iops"], r["rebuild_mibs"])
                                    for r in results[name])) for name, _ in modes), ""]
    print("\n".join(lines))
    if opts.out:
        with open(opts.out, "w") as f:
            f.write("\n".join(lines))


if __name__ == "__main__":
    main()

"""Where a rebuild's CPU goes: a full rebuild on a local 3-node cluster, with CPU seconds per GiB
copied for each node and each busy thread (user and system), from /proc, and host steal.

Fills a 2-replica volume on n1 (+ one other node), drains the other node so that a replacement is
copied in full, and reads every node thread's CPU time before the drain and once the volume is back
in sync. Optionally (--perf) records `perf record -g` of n1 and n3 into /tmp/rebuild.perf, with JIT
symbols (run the nodes with -XX:+PreserveFramePointer through BALLAST_NODE_JAVA_OPTS).

Usage: bench/rebuild_profile.py [--size-gib 4] [--base-port 8400] [--perf]
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import repl_bench as rb  # noqa: E402

JCMD = "/usr/lib/jvm/temurin-25-jdk-amd64/bin/jcmd"


def thread_cpu():
    """(node, thread id, thread name) -> (user ticks, system ticks) of every node JVM thread."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open("/proc/%s/cmdline" % pid).read()
        except OSError:
            continue
        m = re.search(r"--data-dir\x00[^\x00]*/(n\d)", cmd)
        if "java" not in cmd or not m:
            continue
        for t in os.listdir("/proc/%s/task" % pid):
            try:
                s = open("/proc/%s/task/%s/stat" % (pid, t)).read()
            except OSError:
                continue
            fields = s[s.rindex(")") + 2:].split()
            out[(m.group(1), t, s[s.index("(") + 1:s.rindex(")")])] = (int(fields[11]), int(fields[12]))
    return out


def steal_and_total():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return v[7], sum(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-gib", type=int, default=4)
    ap.add_argument("--base-port", type=int, default=8400)
    ap.add_argument("--perf", action="store_true")
    opts = ap.parse_args()
    size = opts.size_gib << 30
    work = tempfile.mkdtemp(prefix="rebuild-profile-", dir=os.path.join(ROOT, "target"))
    cluster = rb.Cluster(os.path.join(work, "cluster"), opts.base_port)
    try:
        cluster.start()
        n1 = cluster.urls["n1"]
        rb.wait_all_up(n1, 3)
        v = rb.api(n1 + "/v1/volumes", "POST", {"name": "rb", "size": size, "repl": 2})
        att = rb.api(n1 + "/v1/volumes/rb/attach", "POST", {})
        rb.fio(att["nbdUnixUri"], ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size,
               time_based=False)
        victim = [r["nodeId"] for r in v["replicas"] if r["nodeId"] != "n1"][0]
        time.sleep(3)
        pids = {n: p.pid for n, p in cluster.procs.items()}
        perf = None
        if opts.perf:
            perf = subprocess.Popen(["perf", "record", "-F", "997", "-g", "-o", "/tmp/rebuild.perf", "-p",
                                     ",".join(str(pids[n]) for n in ("n1", "n3"))],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        before, steal0 = thread_cpu(), steal_and_total()
        rb.api(n1 + "/v1/nodes/%s/drain" % victim, "POST", {})
        seconds, _ = rb.wait_in_sync(n1, "rb")
        after, steal1 = thread_cpu(), steal_and_total()
        if perf:
            perf.send_signal(2)
            perf.wait()
            for n in ("n1", "n3"):  # JIT symbols for perf report
                subprocess.run([JCMD, str(pids[n]), "Compiler.perfmap"], capture_output=True)
        gib = size / float(1 << 30)
        print("rebuild of %d GiB: %.1f s, %.0f MiB/s; host steal %.0f%%" % (
            opts.size_gib, seconds, size / float(1 << 20) / seconds,
            100.0 * (steal1[0] - steal0[0]) / max(1, steal1[1] - steal0[1])))
        per_node, per_thread = collections.Counter(), collections.Counter()
        user, system = collections.Counter(), collections.Counter()
        for key, (u, s) in after.items():
            u0, s0 = before.get(key, (0, 0))
            name = (key[0], re.sub(r"\d+$", "#", key[2]))
            per_node[key[0]] += u + s - u0 - s0
            per_thread[name] += u + s - u0 - s0
            user[name] += u - u0
            system[name] += s - s0
        hz = float(os.sysconf("SC_CLK_TCK"))
        print("CPU s per GiB copied: " + ", ".join("%s %.2f" % (n, t / hz / gib) for n, t in sorted(per_node.items())))
        for name, t in per_thread.most_common(14):
            print("  %s %-26s %.2f s/GiB (user %.2f, system %.2f)" % (
                name[0], name[1], t / hz / gib, user[name] / hz / gib, system[name] / hz / gib))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

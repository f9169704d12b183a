#!/usr/bin/env python3
"""TLS vs --insecure in one run (docs/perf/tls.md): replication throughput and REST latency.

Starts one 3-node `ballast up` cluster per mode, all at once (tls and insecure from this tree; with
--old-root DIR also `tls-old`, TLS on another built tree, to compare two builds in the same run), a 1 GiB 3-replica volume
in each attached on its node 1, filled once. Then --reps rounds; each round runs every job on every
mode in turn (fio's nbd engine over node 1's unix socket), so load from other work on the host falls
on all modes alike. Then REST: per round and mode, --calls GET /v1/volumes/b with the admin token,
four ways: a new connection per call (curl), a new connection that resumes the TLS session (one
client process, like a long-lived tool), one keep-alive connection (the dashboard, the CSI driver,
node-to-node calls), and --calls/10 `ballast volume inspect` CLI calls (a JVM each). Prints medians, ranges and ratios to tls.

With --jdk-engine also `tls-jdk`: this tree with BALLAST_TLS_ENGINE=jdk (replication TLS on the JDK's
SSLEngine rather than OpenSSL).

Usage: bench/tls_bench.py [--reps 3] [--runtime 10] [--calls 200] [--old-root DIR] [--jdk-engine]
"""
import argparse
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = [("randwrite", "4k", 32), ("write", "1M", 8)]


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


class Cluster:
    def __init__(self, mode, root, extra_env=None):
        self.mode, self.root = mode, root
        self.home = "/tmp/tlsbench-" + mode
        self.env = dict(os.environ, BALLAST_HOME=self.home, BALLAST_NO_BUILD="1", BALLAST_AOT="0", **(extra_env or {}))

    def cli(self, *args):
        p = subprocess.run([os.path.join(self.root, "bin/ballast"), *args], env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("ballast %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()[-500:]))
        return p.stdout

    def up(self):
        flags = ["--insecure"] if self.mode == "insecure" else []
        for attempt in range(3):  # on a host loaded by others a join can time out: start over
            subprocess.run([os.path.join(self.root, "bin/ballast"), "down"], env=self.env, capture_output=True)
            subprocess.run(["rm", "-rf", self.home], check=True)
            try:
                self.cli("up", *flags, "--timeout", "600", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                         "--raft-listen", "127.0.0.1:0")
                break
            except RuntimeError as e:
                if attempt == 2:
                    raise
                log("%s: %s; again" % (self.mode, e))
        self.cli("volume", "create", "b", "--size", "1GiB", "--repl", "3")
        d = json.loads(self.cli("volume", "attach", "b", "-o", "json"))
        self.uri = d.get("unixUri") or d.get("nbdUnixUri") or d["uri"]
        self.api = json.load(open(self.home + "/local.json"))["apiUrl"]
        self.token = open(self.home + "/node-1/admin-token").read().strip()
        self.ca = None if self.mode == "insecure" else self.home + "/node-1/tls/ca.crt"
        fio(self.uri, "write", "1M", 8, None)  # fill once: every later write overwrites

    def down(self):
        subprocess.run([os.path.join(self.root, "bin/ballast"), "down"], env=self.env, capture_output=True)


def fio(uri, rw, bs, qd, runtime):
    args = ["fio", "--name=j", "--ioengine=nbd", "--uri=" + uri, "--size=512M", "--rw=" + rw, "--bs=" + bs,
            "--iodepth=" + str(qd), "--output-format=json"]
    if runtime:
        args += ["--time_based", "--runtime=" + str(runtime), "--ramp_time=2"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    j = json.loads(out[out.index("{"):])["jobs"][0]["write"]
    return {"iops": j["iops"], "mibs": j["bw_bytes"] / 1048576, "p99ms": j["clat_ns"]["percentile"]["99.000000"] / 1e6}


def rest_curl(c, calls):
    lat = []
    for _ in range(calls):
        t = time.perf_counter()
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-H", "Authorization: Bearer " + c.token]
                       + (["--cacert", c.ca] if c.ca else []) + [c.api + "/v1/volumes/b"], check=True)
        lat.append((time.perf_counter() - t) * 1000)
    return lat


def _conn(c):
    host, port = c.api.split("://")[1].rsplit(":", 1)
    if c.ca is None:
        return http.client.HTTPConnection(host, int(port), timeout=30)
    return http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=c.ca), timeout=30)


def _get(conn, c):
    conn.request("GET", "/v1/volumes/b", headers={"Authorization": "Bearer " + c.token})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        raise RuntimeError("GET -> %d" % r.status)


def rest_resumed(c, calls):
    """A new TCP connection per call; with TLS the session from the previous call is resumed."""
    host, port = c.api.split("://")[1].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=c.ca) if c.ca else None
    session, lat = None, []
    for _ in range(calls + 1):
        t = time.perf_counter()
        s = socket.create_connection((host, int(port)), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx:
            s = ctx.wrap_socket(s, server_hostname=host, session=session)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.sock = s
        _get(conn, c)
        if ctx:
            session = s.session  # TLS 1.3 tickets arrive after the handshake: take the latest
        conn.close()
        lat.append((time.perf_counter() - t) * 1000)
    return lat[1:]  # the first call's full handshake is not a resumption


def rest_cli(c, calls):
    """`ballast volume inspect b`: a JVM per call, which connects (and handshakes) once."""
    lat = []
    for _ in range(max(1, calls // 10)):
        t = time.perf_counter()
        c.cli("volume", "inspect", "b", "-o", "json")
        lat.append((time.perf_counter() - t) * 1000)
    return lat


def rest_keepalive(c, calls):
    conn = _conn(c)
    _get(conn, c)
    lat = []
    for _ in range(calls):
        t = time.perf_counter()
        _get(conn, c)
        lat.append((time.perf_counter() - t) * 1000)
    conn.close()
    return lat


def pct(lat, p):
    s = sorted(lat)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


WAYS = [("new connection (curl)", rest_curl), ("new connection, TLS session resumed", rest_resumed),
        ("keep-alive", rest_keepalive), ("CLI `volume inspect` (a JVM per call; calls/10 of them)", rest_cli)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--old-root", help="another source tree, built, run as mode tls-old")
    ap.add_argument("--skip-fio", action="store_true")
    ap.add_argument("--jdk-engine", action="store_true",
                    help="also mode tls-jdk: this tree with BALLAST_TLS_ENGINE=jdk (the JDK's SSLEngine, not OpenSSL)")
    a = ap.parse_args()
    clusters = [Cluster("tls", ROOT), Cluster("insecure", ROOT)]
    if a.old_root:
        clusters.insert(1, Cluster("tls-old", os.path.abspath(a.old_root)))
    if a.jdk_engine:
        clusters.insert(1, Cluster("tls-jdk", ROOT, {"BALLAST_TLS_ENGINE": "jdk"}))
    try:
        for c in clusters:
            log("starting " + c.mode)
            c.up()
        res = {}
        for rep in range(a.reps):
            if not a.skip_fio:
                for rw, bs, qd in JOBS:
                    for c in clusters:
                        r = fio(c.uri, rw, bs, qd, a.runtime)
                        res.setdefault((rw, bs, qd, c.mode), []).append(r)
                        log("rep %d %s %s %s QD%d: %.0f IOPS %.1f MiB/s p99 %.1f ms (load %s)" % (
                            rep, c.mode, rw, bs, qd, r["iops"], r["mibs"], r["p99ms"], open("/proc/loadavg").read().split()[0]))
            for how, fn in WAYS:
                for c in clusters:
                    lat = fn(c, a.calls)
                    res.setdefault(("rest", how, c.mode), []).append((pct(lat, 50), pct(lat, 99)))
                    log("rep %d %s REST %s: p50 %.2f ms p99 %.2f ms" % (rep, c.mode, how, pct(lat, 50), pct(lat, 99)))
        modes = [c.mode for c in clusters]
        print("\n| job | " + " | ".join(modes) + " | tls / insecure (median; per-round range) |")
        print("|---|" + "---|" * (len(modes) + 1))
        for rw, bs, qd in ([] if a.skip_fio else JOBS):
            key = "iops" if bs == "4k" else "mibs"
            unit = "IOPS" if bs == "4k" else "MiB/s"
            cells, rounds = [], {}
            for m in modes:
                v = [r[key] for r in res[(rw, bs, qd, m)]]
                rounds[m] = v
                cells.append("%.0f %s (%s; p99 %.0f ms)" % (statistics.median(v), unit, ", ".join("%.0f" % x for x in v),
                                                           statistics.median(r["p99ms"] for r in res[(rw, bs, qd, m)])))
            ratios = [t / i for t, i in zip(rounds["tls"], rounds["insecure"])]
            print("| %s %s QD%d, 3 replicas | %s | %.2f (%.2f-%.2f) |" % (bs, rw, qd, " | ".join(cells),
                                                                      statistics.median(ratios), min(ratios), max(ratios)))
        for how, _ in WAYS:
            cells, p99s = [], {}
            for m in modes:
                v = res[("rest", how, m)]
                p99s[m] = [x[1] for x in v]
                cells.append("p50 %.2f, p99 %.2f ms (p99s %s)" % (statistics.median(x[0] for x in v),
                                                                statistics.median(p99s[m]), ", ".join("%.1f" % x for x in p99s[m])))
            ratios = [t / i for t, i in zip(p99s["tls"], p99s["insecure"])]
            print("| REST GET, %s | %s | p99 %.2f× (%.2f-%.2f) |" % (how, " | ".join(cells), statistics.median(ratios),
                                                                   min(ratios), max(ratios)))
    finally:
        for c in clusters:
            c.down()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Control-plane metadata operations on a local 3-node cluster (`ballast up --nodes 3`).

Measures, through the REST API with keep-alive connections:
  * volume create (3 replicas placed, answered once every replica exists) latency, sequential;
  * volume inspect (linearizable read) latency, sequential;
  * throughput of both with concurrent clients.
Requests go round-robin to all three nodes, so two thirds of them arrive at followers (a write is
forwarded to the leader by the Ratis client; a read asks the leader for its read index).
Writes markdown to docs/perf/control-plane.md (or --out). Targets: create p99 < 50 ms, inspect p99 < 5 ms.

Usage: bench/metadata_bench.py [--creates 300] [--inspects 3000] [--threads 8] [--out FILE]
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Conn:
    def __init__(self, url):
        host, port = url.replace("http://", "").split(":")
        self.c = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        self.c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        payload = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
        return payload


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--creates", type=int, default=300)
    ap.add_argument("--inspects", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "control-plane.md"))
    a = ap.parse_args()

    home = tempfile.mkdtemp(prefix="ballast-mbench-")
    env = dict(os.environ, BALLAST_HOME=home)
    ballast = os.path.join(ROOT, "bin", "ballast")
    t0 = time.time()
    subprocess.run([ballast, "up", "--nodes", "3", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                    "--raft-listen", "127.0.0.1:0"], env=env, check=True, stdout=subprocess.DEVNULL)
    up_s = time.time() - t0
    try:
        nodes = [n["apiUrl"] for n in json.load(open(os.path.join(home, "local.json")))["nodes"]]
        conns = [Conn(u) for u in nodes]
        for c in conns:  # warm up
            c.call("GET", "/v1/volumes")
        create_ms = []
        for i in range(a.creates):
            c = conns[i % 3]
            create_ms.append(timed(lambda: c.call("POST", "/v1/volumes", {"name": f"v{i}", "size": "64MiB"})))
        inspect_ms = []
        for i in range(a.inspects):
            c = conns[i % 3]
            inspect_ms.append(timed(lambda: c.call("GET", f"/v1/volumes/v{i % a.creates}")))

        def throughput(op, n_per_thread):
            errors = []

            def worker(t):
                c = Conn(nodes[t % 3])
                try:
                    for j in range(n_per_thread):
                        op(c, t, j)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
            ts = [threading.Thread(target=worker, args=(t,)) for t in range(a.threads)]
            start = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            el = time.perf_counter() - start
            if errors:
                raise errors[0]
            return a.threads * n_per_thread / el

        per = max(1, a.creates // a.threads)
        create_tput = throughput(lambda c, t, j: c.call("POST", "/v1/volumes", {"name": f"t{t}-{j}", "size": "64MiB"}), per)
        inspect_tput = throughput(lambda c, t, j: c.call("GET", f"/v1/volumes/v{(t * 7 + j) % a.creates}"), per * 10)
    finally:
        subprocess.run([ballast, "down"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def row(name, xs, target):
        p99 = pct(xs, 99)
        return (f"| {name} | {len(xs)} | {statistics.median(xs):.2f} | {p99:.2f} | {max(xs):.2f} | {target} | "
                f"{'met' if p99 < float(target.split()[1]) else 'NOT met'} |")

    cpu = os.cpu_count()
    lines = [
        "# Control plane: metadata operations on a local 3-node cluster",
        "",
        f"Made by `bench/metadata_bench.py` on {time.strftime('%Y-%m-%d')} ({cpu} CPUs; three node JVMs and the",
        "client on the same machine, loopback). Requests round-robin over the three nodes (2/3 reach followers).",
        f"`ballast up --nodes 3` took {up_s:.1f} s (three JVM starts, first build excluded).",
        "",
        "| operation | n | p50 ms | p99 ms | max ms | target | |",
        "|---|---|---|---|---|---|---|",
        row("volume create (3 replicas, waits until all exist)", create_ms, "p99 50"),
        row("volume inspect (linearizable)", inspect_ms, "p99 5"),
        "",
        f"Throughput with {a.threads} concurrent clients: create {create_tput:.0f}/s, inspect {inspect_tput:.0f}/s.",
        "",
        "A create is one Raft commit (placement runs inside the state machine) plus, on each of the three",
        "nodes, the replica's storage creation and one more commit marking it ready; the call returns when",
        "all three are ready. An inspect is a ReadIndex round to the leader (leader lease) and a local read.",
    ]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

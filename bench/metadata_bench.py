#!/usr/bin/env python3
"""Control-plane metadata latency and throughput on a local 3-node cluster.

Starts three `bin/ballast node start` processes (node n1 bootstraps, n2 and n3 join it) on
127.0.0.1 with their own ports (--base-port, default 7600: API base+1..3, NBD base+11..13, Raft
base+21..23, replication base+31..33) and a private state directory, and measures through the REST API with keep-alive
connections:

  * volume create latency (POST /v1/volumes; answered once the volume is committed, see
    docs/control-plane.md for what the answer says about its replicas; with --wait-ready
    POST /v1/volumes?wait=ready, answered once every replica's storage exists), sequential;
  * volume inspect latency (GET /v1/volumes/NAME, a linearizable read), sequential;
  * throughput (ops/s) of both with --clients concurrent clients (one keep-alive connection each);

each against the Raft leader and against a follower. Every node it started is stopped in a
`finally` (also on Ctrl-C, SIGTERM or an error): SIGTERM, then SIGKILL after 10 s.

Writes the results as a markdown table (stdout, and --md FILE if given) and as JSON (--json FILE,
default a file in the state directory). Progress goes to stderr.

First --warmup unmeasured create+inspect+delete rounds (default 2400), alternating between the two
nodes measured, with the volume count kept flat: the numbers are of warmed-up nodes, not of the
JIT's first minutes. Three node JVMs on a 2-CPU host keep their JIT compilers busy for about three
minutes of this load (half of the nodes' CPU after 900 creates, docs/perf/control-plane.md); the
warm-up's own create latency per 300 rounds is reported as the "warm-up curve" (the first minutes
after a start; --warmup 0 measures a fresh cluster). Then --warmup-reads unmeasured sequential inspects
on each node measured (default 6000): those rounds hold only one inspect per create, so the inspect path
(and a follower's read barrier through the leader) was still being compiled by C2 in the measured
inspects (a third of the follower's CPU then, docs/perf/control-plane.md); their latency per 1000 is
the "read warm-up curve".

Usage: bench/metadata_bench.py [--creates 300] [--inspects 2000] [--clients 4] [--warmup 2400] [--warmup-reads 6000] [--base-port 7600]
                               [--size 64MiB] [--md FILE] [--json FILE] [--keep-state] [--wait-ready]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BALLAST = os.path.join(ROOT, "bin", "ballast")
TARGETS = {"create": 50.0, "inspect": 5.0}  # p99 ms
# Every API call carries a token (docs/security.md): $BALLAST_TOKEN, else the bootstrap admin token of n1
AUTH = {"Authorization": "Bearer " + os.environ["BALLAST_TOKEN"]} if os.environ.get("BALLAST_TOKEN") else {}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Conn:
    """One keep-alive HTTP connection; reconnects once when the server closed it."""

    def __init__(self, url, timeout=30):
        host, port = url.replace("http://", "").rstrip("/").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.c = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.c.request(method, path, body=data, headers={"Content-Type": "application/json", **AUTH})
                r = self.c.getresponse()
                payload = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 1 or method != "GET":
                    raise
                continue
            if r.status >= 300:
                raise RuntimeError(f"{method} {path} on {self.host}:{self.port}: HTTP {r.status} {payload[:300]!r}")
            return payload

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


class Cluster:
    def __init__(self, home, base_port):
        self.home = home
        self.base = base_port
        self.procs = {}  # node id -> Popen
        self.urls = {}

    def api(self, i):
        return f"127.0.0.1:{self.base + i}"

    def start_node(self, i, join=None, token=None):
        nid = f"n{i}"
        d = os.path.join(self.home, nid)
        os.makedirs(d, exist_ok=True)
        cmd = [BALLAST, "node", "start", "--insecure", "--data-dir", d, "--node-id", nid, "--api-listen", self.api(i),
               "--nbd-listen", f"127.0.0.1:{self.base + 10 + i}", "--raft-listen", f"127.0.0.1:{self.base + 20 + i}",
               "--replication-listen", f"127.0.0.1:{self.base + 30 + i}"]
        env = dict(os.environ, BALLAST_NO_BUILD="1")
        if join:
            cmd += ["--join", join]
            env["BALLAST_CLUSTER_TOKEN"] = token
        out = open(os.path.join(d, "daemon.out"), "ab")
        # own session: a Ctrl-C in the terminal reaches only this script, which then stops the nodes itself
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs[nid] = p
        self.urls[nid] = "http://" + self.api(i)
        deadline = time.time() + 90
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"node {nid} exited with {p.returncode}; see {d}/daemon.out")
            try:
                c = Conn(self.urls[nid], timeout=2)
                c.call("GET", "/healthz")
                c.close()
                return
            except (OSError, RuntimeError, http.client.HTTPException):
                time.sleep(0.2)
        raise RuntimeError(f"node {nid} did not answer within 90 s; see {d}/daemon.out")

    def start(self):
        self.start_node(1)
        token_file = os.path.join(self.home, "n1", "cluster-token")
        deadline = time.time() + 60
        while not (os.path.exists(token_file) and os.path.getsize(token_file) > 0):  # written once n1 bootstrapped
            if time.time() > deadline:
                raise RuntimeError(f"{token_file} not written within 60 s; see {self.home}/n1/daemon.out")
            time.sleep(0.1)
        with open(token_file) as f:
            token = f.read().strip()
        if "Authorization" not in AUTH:
            with open(os.path.join(self.home, "n1", "admin-token")) as f:  # written before cluster-token
                AUTH["Authorization"] = "Bearer " + f.read().strip()
        for i in (2, 3):
            self.start_node(i, join=self.api(1), token=token)

    def status(self, nid):
        c = Conn(self.urls[nid])
        try:
            return json.loads(c.call("GET", "/v1/cluster"))
        finally:
            c.close()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    p.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for nid, p in self.procs.items():
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                log(f"node {nid} (pid {p.pid}) ignored SIGTERM; killing it")
                p.kill()
                p.wait()


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def sequential(label, n, op):
    """n calls of op(i), latency of each; progress every 10%."""
    xs = []
    start = time.perf_counter()
    step = max(1, n // 10)
    for i in range(n):
        xs.append(timed(lambda: op(i)))
        if (i + 1) % step == 0 or i + 1 == n:
            el = time.perf_counter() - start
            log(f"  {label}: {i + 1}/{n} ({el:.1f} s, p50 so far {pct(xs, 50):.2f} ms)")
    return xs, n / (time.perf_counter() - start)


def concurrent(label, url, clients, n_total, op):
    """clients threads with a connection each share n_total calls of op(conn, t, j); latencies and ops/s."""
    per = max(1, n_total // clients)
    lat = [[] for _ in range(clients)]
    errors = []

    def worker(t):
        c = Conn(url)
        try:
            for j in range(per):
                lat[t].append(timed(lambda: op(c, t, j)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            c.close()

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(clients)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.perf_counter() - start
    if errors:
        raise errors[0]
    xs = [x for l in lat for x in l]
    log(f"  {label}: {len(xs)} ops in {el:.1f} s")
    return xs, len(xs) / el


def summary(xs, ops):
    return {"n": len(xs), "p50_ms": round(pct(xs, 50), 2), "p99_ms": round(pct(xs, 99), 2),
            "max_ms": round(max(xs), 2), "ops_per_s": round(ops, 1)}


WARMUP_CHUNK = 300


def warm_up(a, cluster, leader, follower):
    """a.warmup create+inspect+delete rounds, alternating between leader and follower (each node's JIT
    compiles what its role runs), the volume count kept flat; the create latency of every 300 rounds."""
    conns = {nid: Conn(cluster.urls[nid]) for nid in (leader, follower)}
    log(f"warm-up: {a.warmup} create+inspect+delete rounds via {leader} and {follower} (not measured as results)")
    curve, xs, start = [], [], time.perf_counter()
    for i in range(a.warmup):
        c = conns[leader if i % 2 == 0 else follower]
        name = f"warm{i}"
        xs.append(timed(lambda: c.call("POST", "/v1/volumes", {"name": name, "size": a.size})))
        c.call("GET", f"/v1/volumes/{name}")
        c.call("DELETE", f"/v1/volumes/{name}")
        if len(xs) == WARMUP_CHUNK or i + 1 == a.warmup:
            row = {"rounds": f"{i + 2 - len(xs)}-{i + 1}", "at_s": round(time.perf_counter() - start, 1),
                   "create_p50_ms": round(pct(xs, 50), 2), "create_p99_ms": round(pct(xs, 99), 2)}
            log(f"  warm-up rounds {row['rounds']}: create p50 {row['create_p50_ms']} ms, p99 {row['create_p99_ms']} ms"
                f" ({row['at_s']} s)")
            curve.append(row)
            xs = []
    for c in conns.values():
        c.close()
    return curve


READ_WARMUP_CHUNK = 1000
READ_WARMUP_VOLUMES = 200


def warm_up_reads(a, cluster, nodes):
    """a.warmup_reads sequential inspects on each node (of READ_WARMUP_VOLUMES volumes, deleted after);
    the latency of every 1000 per node."""
    setup = Conn(cluster.urls[nodes[0]])
    names = [f"rwarm{i}" for i in range(READ_WARMUP_VOLUMES)]
    for name in names:
        setup.call("POST", "/v1/volumes", {"name": name, "size": a.size})
    curve = []
    for nid in nodes:
        c = Conn(cluster.urls[nid])
        log(f"read warm-up: {a.warmup_reads} inspects via {nid} (not measured as results)")
        xs, start = [], time.perf_counter()
        for i in range(a.warmup_reads):
            xs.append(timed(lambda: c.call("GET", f"/v1/volumes/{names[i % len(names)]}")))
            if len(xs) == READ_WARMUP_CHUNK or i + 1 == a.warmup_reads:
                row = {"node": nid, "reads": f"{i + 2 - len(xs)}-{i + 1}", "at_s": round(time.perf_counter() - start, 1),
                       "inspect_p50_ms": round(pct(xs, 50), 2), "inspect_p99_ms": round(pct(xs, 99), 2)}
                log(f"  {nid} reads {row['reads']}: inspect p50 {row['inspect_p50_ms']} ms, p99 {row['inspect_p99_ms']} ms")
                curve.append(row)
                xs = []
        c.close()
    for name in names:
        setup.call("DELETE", f"/v1/volumes/{name}")
    setup.close()
    return curve


def run(a, cluster, results):
    t0 = time.time()
    log(f"starting 3 nodes in {cluster.home} (ports {a.base_port + 1}-{a.base_port + 23})")
    cluster.start()
    results["startup_s"] = round(time.time() - t0, 1)
    st = cluster.status("n1")
    deadline = time.time() + 30
    while (st.get("leaderNodeId") is None or len(st.get("voterNodeIds", [])) < 3) and time.time() < deadline:
        time.sleep(0.2)
        st = cluster.status("n1")
    leader = st["leaderNodeId"]
    follower = sorted(n for n in cluster.urls if n != leader)[0]
    log(f"cluster up in {results['startup_s']} s: leader {leader}, voters {st.get('voterNodeIds')}; follower used: {follower}")
    results["leader"], results["follower"] = leader, follower
    results["warmup"] = a.warmup
    if a.warmup > 0:
        results["warmup_curve"] = warm_up(a, cluster, leader, follower)
    results["warmup_reads"] = a.warmup_reads
    if a.warmup_reads > 0:
        results["read_warmup_curve"] = warm_up_reads(a, cluster, [leader, follower])
    for role, nid in (("leader", leader), ("follower", follower)):
        url = cluster.urls[nid]
        c = Conn(url)
        c.call("GET", "/v1/volumes")
        prefix = f"{role[0]}"
        create_path = "/v1/volumes?wait=ready" if a.wait_ready else "/v1/volumes"
        log(f"{role} {nid}: {a.creates} sequential creates")
        xs, ops = sequential(f"{role} create", a.creates,
                             lambda i: c.call("POST", create_path, {"name": f"{prefix}{i}", "size": a.size}))
        results["rows"].append({"op": "create", "via": role, "mode": "sequential", **summary(xs, ops)})
        log(f"{role} {nid}: {a.inspects} sequential inspects")
        xs, ops = sequential(f"{role} inspect", a.inspects,
                             lambda i: c.call("GET", f"/v1/volumes/{prefix}{i % a.creates}"))
        results["rows"].append({"op": "inspect", "via": role, "mode": "sequential", **summary(xs, ops)})
        c.close()
        if a.clients > 1:
            log(f"{role} {nid}: {a.creates} creates from {a.clients} concurrent clients")
            xs, ops = concurrent(f"{role} create x{a.clients}", url, a.clients, a.creates,
                                 lambda cc, t, j: cc.call("POST", create_path,
                                                          {"name": f"{prefix}c{t}-{j}", "size": a.size}))
            results["rows"].append({"op": "create", "via": role, "mode": f"{a.clients} clients", **summary(xs, ops)})
            log(f"{role} {nid}: {a.inspects} inspects from {a.clients} concurrent clients")
            xs, ops = concurrent(f"{role} inspect x{a.clients}", url, a.clients, a.inspects,
                                 lambda cc, t, j: cc.call("GET", f"/v1/volumes/{prefix}{(t * 7919 + j) % a.creates}"))
            results["rows"].append({"op": "inspect", "via": role, "mode": f"{a.clients} clients", **summary(xs, ops)})


def markdown(results):
    lines = ["| operation | via | mode | n | p50 ms | p99 ms | max ms | ops/s | p99 target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        target = TARGETS[r["op"]]
        met = "met" if r["p99_ms"] < target else "NOT met"
        if r["mode"] != "sequential":
            met = "(load)"
        lines.append(f"| volume {r['op']} | {r['via']} | {r['mode']} | {r['n']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['max_ms']:.2f} | {r['ops_per_s']:.0f} | < {target:.0f} ms: {met} |")
    if results.get("warmup_curve"):
        lines += ["", "Warm-up curve (not the results: creates while the JIT compiles, alternating leader/follower):", "",
                  "| rounds | ended at s | create p50 ms | create p99 ms |", "|---|---|---|---|"]
        for w in results["warmup_curve"]:
            lines.append(f"| {w['rounds']} | {w['at_s']} | {w['create_p50_ms']:.2f} | {w['create_p99_ms']:.2f} |")
    if results.get("read_warmup_curve"):
        lines += ["", "Read warm-up curve (not the results: sequential inspects while the JIT compiles the read path):", "",
                  "| node | reads | ended at s | inspect p50 ms | inspect p99 ms |", "|---|---|---|---|---|"]
        for w in results["read_warmup_curve"]:
            lines.append(f"| {w['node']} | {w['reads']} | {w['at_s']} | {w['inspect_p50_ms']:.2f} | {w['inspect_p99_ms']:.2f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--creates", type=int, default=300, help="creates per target node (default 300)")
    ap.add_argument("--inspects", type=int, default=2000, help="inspects per target node (default 2000)")
    ap.add_argument("--warmup", type=int, default=2400,
                    help="unmeasured create+inspect+delete rounds first, alternating leader/follower (0: none)")
    ap.add_argument("--warmup-reads", type=int, default=6000,
                    help="unmeasured sequential inspects on each measured node after the warm-up rounds (0: none)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients for the throughput phase (1: skip it)")
    ap.add_argument("--base-port", type=int, default=7600)
    ap.add_argument("--size", default="64MiB")
    ap.add_argument("--md", help="also write the markdown table to this file")
    ap.add_argument("--json", help="write the JSON results here (default: STATE_DIR/results.json)")
    ap.add_argument("--wait-ready", action="store_true",
                    help="create with ?wait=ready (answer once every replica's storage exists; the CLI's way)")
    ap.add_argument("--keep-state", action="store_true", help="keep the state directory (node logs) afterwards")
    a = ap.parse_args()

    home = tempfile.mkdtemp(prefix="ballast-mbench-")
    cluster = Cluster(home, a.base_port)
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
               "load_avg_at_start": os.getloadavg(), "args": vars(a), "rows": []}

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    failed = None
    try:
        run(a, cluster, results)
    except KeyboardInterrupt as e:
        failed = f"interrupted ({e or 'Ctrl-C'})"
    except Exception as e:  # noqa: BLE001 - reported, nodes still stopped
        failed = f"{type(e).__name__}: {e}"
    finally:
        log(f"stopping {len(cluster.procs)} node(s)")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        cluster.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    results["load_avg_at_end"] = os.getloadavg()
    if failed:
        results["error"] = failed
        log(f"FAILED: {failed} (node logs in {home}/n*/daemon.out)")
    json_path = a.json or os.path.join(home, "results.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=2)
    table = markdown(results)
    print(table)
    if a.md:
        with open(a.md, "w") as f:
            f.write(table + "\n")
    log(f"JSON: {json_path}")
    if not a.keep_state and not failed:
        for nid in cluster.procs:
            shutil.rmtree(os.path.join(home, nid), ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

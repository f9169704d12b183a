#!/usr/bin/env python3
"""fio through NBD over TCP: TLS (nbds://, client certificate) against plaintext (nbd://), on the
same Ballast node and volume, in one run; with --engines openssl,jdk, one node per TLS engine
(BALLAST_TLS_ENGINE=jdk for the JDK's SSLEngine, OpenSSL through netty-tcnative otherwise), so the
two engines are compared in the same run too.

The node starts with `--nbd-tls-dir DIR --nbd-tls-policy optional`, so one TCP listener serves
both: a client that sends NBD_OPT_STARTTLS gets TLS, one that does not stays in plaintext. Test
certificates (ECDSA P-256) are made with openssl. fio runs as user nobody with HOME pointing at a
directory holding .pki/libnbd (libnbd's default certificate directory for a non-root user; fio
cannot pass tls-certificates= in its URI). Each job runs on both sides, alternating, REPS times;
the table reports medians, the ratio TLS/plaintext, p99 latency and the node's CPU per request.
The result is written as markdown to docs/perf/nbd-tls.md (or --out).

Usage: bench/nbd_tls_bench.py [--reps 3] [--runtime 10] [--size 1GiB] [--engines openssl,jdk]
                              [--workdir DIR] [--out FILE]
"""
import argparse
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import nbd_bench  # noqa: E402
from nbd_bench import machine_line, median_row, parse_size, peak_rss_mib, run_alternating, wait_for  # noqa: E402

# name, fio args, metric ("iops" or "bw")
JOBS = [
    ("4k randread QD32", ["--rw=randread", "--bs=4k", "--iodepth=32"], "iops"),
    ("4k randwrite QD32", ["--rw=randwrite", "--bs=4k", "--iodepth=32"], "iops"),
    ("seq read 1M QD8", ["--rw=read", "--bs=1M", "--iodepth=8"], "bw"),
    ("seq write 1M QD8", ["--rw=write", "--bs=1M", "--iodepth=8"], "bw"),
]


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_certificates(workdir):
    """CA, server (localhost, 127.0.0.1) and client certificates: the server and libnbd layouts."""
    pki = os.path.join(workdir, "pki")
    os.makedirs(pki, exist_ok=True)
    p = lambda name: os.path.join(pki, name)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p("ca-key.pem"), "-out", p("ca-cert.pem"), "-days", "2",
            "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in (("server", ["subjectAltName=DNS:localhost,IP:127.0.0.1", "extendedKeyUsage=serverAuth"]),
                      ("client", ["extendedKeyUsage=clientAuth"])):
        openssl("req", *ec, "-keyout", p(name + "-key.pem"), "-out", p(name + ".csr"), "-subj", "/CN=bench " + name)
        extfile = p(name + ".ext")
        with open(extfile, "w") as f:
            f.write("\n".join(["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature"] + ext) + "\n")
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca-cert.pem"), "-CAkey", p("ca-key.pem"),
                "-CAcreateserial", "-days", "2", "-extfile", extfile, "-out", p(name + "-cert.pem"))
    server = os.path.join(workdir, "server-tls")
    os.makedirs(server, exist_ok=True)
    for src, dst in (("ca-cert.pem", "ca-cert.pem"), ("server-cert.pem", "server-cert.pem"),
                     ("server-key.pem", "server-key.pem")):
        shutil.copy(p(src), os.path.join(server, dst))
    os.chmod(os.path.join(server, "server-key.pem"), 0o600)
    home = os.path.join(workdir, "fio-home")
    client = os.path.join(home, ".pki", "libnbd")
    os.makedirs(client, exist_ok=True)
    for src, dst in (("ca-cert.pem", "ca-cert.pem"), ("client-cert.pem", "client-cert.pem"),
                     ("client-key.pem", "client-key.pem")):
        shutil.copy(p(src), os.path.join(client, dst))
    nobody = pwd.getpwnam("nobody")
    for d, _, files in os.walk(home):
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
        for f in files:
            os.chown(os.path.join(d, f), nobody.pw_uid, nobody.pw_gid)
    os.chmod(workdir, 0o711)
    return server, home


def start_node(workdir, tls_dir, size_bytes, engine="openssl"):
    data = os.path.join(workdir, "ballast-data-" + engine)
    os.makedirs(data, exist_ok=True)
    log = open(os.path.join(workdir, "ballast-node-" + engine + ".out"), "w")
    env = dict(os.environ)
    if engine == "jdk":
        env["BALLAST_TLS_ENGINE"] = "jdk"
    else:
        env.pop("BALLAST_TLS_ENGINE", None)
    proc = subprocess.Popen(
        [os.path.join(ROOT, "bin", "ballast"), "node", "start", "--insecure", "--data-dir", data,
         "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0",
         "--nbd-tls-dir", tls_dir, "--nbd-tls-policy", "optional"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    node_json = os.path.join(data, "node.json")
    wait_for(lambda: os.path.exists(node_json), 120, "ballast node")
    time.sleep(0.5)
    with open(node_json) as f:
        node = json.load(f)
    api = node.get("apiUrl") or ("http://" + node["apiAddress"])
    # --insecure: plain HTTP between the nodes and the API (NBD's own TLS is what is measured), but
    # the API still wants the bootstrap admin token (docs/security.md).
    with open(os.path.join(data, "admin-token")) as f:
        auth = {"Authorization": "Bearer " + f.read().strip()}
    post = lambda path, body: urllib.request.urlopen(urllib.request.Request(  # noqa: E731
        api + path, method="POST", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **auth})).read()
    post("/v1/volumes", {"name": "bench", "size": size_bytes})
    attach = json.loads(post("/v1/volumes/bench/attach", {}))
    tls_uri = attach["nbdUri"]
    assert tls_uri.startswith("nbds://"), tls_uri
    return proc, tls_uri, "nbd://" + tls_uri[len("nbds://"):]


def engine_logged(workdir, engine):
    """The node's own word on its TLS engine (`ballast_tls_engine_info` on /metrics), so the A/B is one."""
    data = os.path.join(workdir, "ballast-data-" + engine)
    with open(os.path.join(data, "node.json")) as f:
        node = json.load(f)
    api = node.get("apiUrl") or ("http://" + node["apiAddress"])
    with open(os.path.join(data, "admin-token")) as f:
        auth = {"Authorization": "Bearer " + f.read().strip()}
    text = urllib.request.urlopen(urllib.request.Request(api + "/metrics", headers=auth)).read().decode()
    return next((line for line in text.splitlines() if line.startswith("ballast_tls_engine_info")),
                "(no ballast_tls_engine_info on /metrics)")


def fio(home, uri, args, runtime_s, size_bytes, time_based=True):
    """fio as user nobody, HOME=home: libnbd then reads the client certificates from home/.pki/libnbd."""
    prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", "HOME=" + home]
    return nbd_bench.fio(uri, args, runtime_s, size_bytes, time_based, prefix=prefix, cwd=home)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf", "nbd-tls.md"))
    ap.add_argument("--engines", default="openssl,jdk",
                    help="TLS engines to compare, one node each (openssl, jdk); plaintext runs on the first")
    opts = ap.parse_args()
    engines = [e.strip() for e in opts.engines.split(",") if e.strip()]
    size_bytes = parse_size(opts.size)
    workdir = opts.workdir or tempfile.mkdtemp(prefix="ballast-tls-bench-", dir=os.path.join(ROOT, "target"))
    os.makedirs(workdir, exist_ok=True)
    tls_dir, home = make_certificates(workdir)
    nodes = {}
    sides, pids = {}, {}
    try:
        for engine in engines:
            proc, tls_uri, plain_uri = start_node(workdir, tls_dir, size_bytes, engine)
            nodes[engine] = proc
            if not sides:
                sides["plaintext"], pids["plaintext"] = plain_uri, proc.pid
            sides["tls-" + engine], pids["tls-" + engine] = tls_uri, proc.pid
            fio(home, plain_uri, ["--rw=write", "--bs=1M", "--iodepth=8"], 0, size_bytes, time_based=False)
        results = run_alternating(JOBS, sides, pids, opts.reps, opts.runtime,
                                  size_bytes, run_fio=lambda uri, args, rt, sz: fio(home, uri, args, rt, sz))
        rss = {engine: peak_rss_mib(proc.pid) for engine, proc in nodes.items()}
        logged = {engine: engine_logged(workdir, engine) for engine in nodes}
    finally:
        for proc in nodes.values():
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    header = ["| job | {a} | {b} | {a}/{b} | {a} p99 (us) | {b} p99 (us) "
              "| {a} CPU/op (us) | {b} CPU/op (us) | CPU/op ratio |",
              "|---|---|---|---|---|---|---|---|---|"]

    def table(mine, peer):
        rows = [median_row(name, metric, results[(name, mine)], results[(name, peer)]) for name, _, metric in JOBS]
        return "\n".join([h.format(a=mine, b=peer) for h in header] + rows)

    tables = []
    if "tls-openssl" in sides and "tls-jdk" in sides:
        tables.append("OpenSSL engine against the JDK's (both TLS):\n\n" + table("tls-openssl", "tls-jdk"))
    for side in sides:
        if side != "plaintext":
            tables.append(f"{side} against plaintext:\n\n" + table(side, "plaintext"))
    tables = "\n\n".join(tables)
    nodes_line = "; ".join(f"{e}: {rss[e]:.0f} MiB" for e in nodes)
    logged_lines = "\n".join(f"    {e}: {logged[e]}" for e in nodes)
    body = f"""# NBD over TLS: cost against plaintext, and OpenSSL's engine against the JDK's

Produced by:

    bench/nbd_tls_bench.py --reps {opts.reps} --runtime {opts.runtime} --size {opts.size} --engines {opts.engines}

One Ballast node per TLS engine ({", ".join(engines)}; `node start --nbd-tls-dir DIR --nbd-tls-policy
optional`, the JDK one with `BALLAST_TLS_ENGINE=jdk`), one volume of {opts.size} on each, fio's nbd
engine (libnbd, GnuTLS) over TCP on loopback: `nbds://` (STARTTLS, ECDSA P-256 client and server
certificates) on each node and `nbd://` (plaintext) on the first, alternating, {opts.reps} runs each;
values are medians. CPU/op is the serving node process's utime+stime over a run divided by its
requests (lower is better); fio's own TLS work is not in it.

Machine: {machine_line()}.

{tables}

Node peak RSS (VmHWM) over the run: {nodes_line}.

The nodes' own word on their engine:

{logged_lines}
"""
    os.makedirs(os.path.dirname(opts.out), exist_ok=True)
    with open(opts.out, "w") as f:
        f.write(body)
    print(body)
    if not opts.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

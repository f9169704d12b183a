#!/usr/bin/env python3
"""Backup upload and restore rate of Ballast against `aws s3 cp` of the same bytes, same S3Proxy, same run.

Starts S3Proxy (filesystem backend, its own process) and one Ballast node, fills a volume with SIZE bytes
of which half are random (1 MiB random, 1 MiB zero, ...) through nbdcopy, then per repetition:
  peer:    aws s3 cp FILE s3://... (upload), aws s3 cp s3://... FILE2 (download)
  ballast: backup create --target (full; each rep in a fresh prefix), backup restore --to NEW
and an incremental after changing 1 % of the volume. Writes a Markdown report.

Usage: bench/backup_bench.py [--size 1GiB] [--reps 3] [--out docs/perf/backup.md]
"""
import argparse, json, os, random, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAVA = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
MIB = 1 << 20
ID, SECRET = "bench-id", "bench-secret-0123456789"


def sizeof(s):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    s = s.lower().replace("ib", "").replace("b", "")
    return int(float(s[:-1]) * units[s[-1]]) if s[-1] in units else int(s)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_env():
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1",
               AWS_REQUEST_CHECKSUM_CALCULATION="when_required", AWS_RESPONSE_CHECKSUM_VALIDATION="when_required")
    env.pop("AWS_CA_BUNDLE", None)
    return env


def timed(cmd, **kw):
    t = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/perf/backup.md"))
    a = ap.parse_args()
    size = sizeof(a.size)
    work = tempfile.mkdtemp(prefix="backup-bench-", dir="/var/tmp")
    procs = []
    try:
        jhome = os.path.dirname(os.path.dirname(JAVA))
        # compile copies the runtime dependencies to target/lib and lists them; generate-test-resources copies S3Proxy's jar
        subprocess.run(["mvn", "-B", "-ntp", "-q", "-f", ROOT, "generate-test-resources"], check=True,
                       env=dict(os.environ, JAVA_HOME=jhome, PATH=jhome + "/bin:" + os.environ["PATH"],
                                MAVEN_OPTS="--sun-misc-unsafe-memory-access=allow"))
        # the build's own jars (target/lib also keeps those of earlier builds)
        with open(os.path.join(ROOT, "target/runtime-classpath.txt")) as f:
            deps = f.read().strip().replace("@LIB@", os.path.join(ROOT, "target/lib"))
        cp = os.path.join(ROOT, "target/classes") + ":" + deps
        port = free_port()
        s3dir = os.path.join(work, "s3")
        os.makedirs(os.path.join(s3dir, "bench"))
        with open(os.path.join(work, "s3proxy.conf"), "w") as f:
            f.write(f"s3proxy.endpoint=http://127.0.0.1:{port}\ns3proxy.authorization=aws-v2-or-v4\ns3proxy.identity={ID}\n"
                    f"s3proxy.credential={SECRET}\njclouds.provider=filesystem\njclouds.filesystem.basedir={s3dir}\n")
        procs.append(subprocess.Popen([JAVA, "-Xmx1g", "-jar", os.path.join(ROOT, "target/s3proxy/s3proxy.jar"), "--properties",
                                       os.path.join(work, "s3proxy.conf")], stdout=open(os.path.join(work, "s3proxy.log"), "w"),
                                      stderr=subprocess.STDOUT))
        endpoint = f"http://127.0.0.1:{port}"
        data = os.path.join(work, "node")
        procs.append(subprocess.Popen([JAVA, "--enable-native-access=ALL-UNNAMED", "-cp", cp, "io.ballast.cli.BallastCli", "node", "start", "--insecure",
                                       "--data-dir", data, "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                                       "--raft-listen", "127.0.0.1:0", "--replication-listen", "127.0.0.1:0"],
                                      stdout=open(os.path.join(work, "node.log"), "w"), stderr=subprocess.STDOUT))
        for _ in range(600):
            try:
                api = json.load(open(os.path.join(data, "node.json")))["apiUrl"]
                urllib.request.urlopen(api + "/healthz", timeout=2)
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except Exception:
                time.sleep(0.1)
        else:
            sys.exit("node or S3Proxy did not start; see " + work)

        def cli(*args):
            # the node's bootstrap admin token (docs/security.md), through the environment
            with open(os.path.join(data, "admin-token")) as f:
                env = dict(os.environ, BALLAST_TOKEN=f.read().strip())
            return subprocess.run([JAVA, "-cp", cp, "io.ballast.cli.BallastCli", *args, "--node", api], check=True,
                                  capture_output=True, text=True, env=env).stdout

        creds = os.path.join(work, "creds")
        open(creds, "w").write(f"aws_access_key_id={ID}\naws_secret_access_key={SECRET}\n")
        key = os.path.join(work, "key")
        open(key, "wb").write(os.urandom(32))
        # the same bytes as a file: 1 MiB random, 1 MiB zero, ...
        src = os.path.join(work, "data.bin")
        rnd = random.Random(1)
        with open(src, "wb") as f:
            for i in range(size // MIB):
                f.write(rnd.randbytes(MIB) if i % 2 == 0 else bytes(MIB))
        cli("volume", "create", "vol", "--size", str(size))
        uri = json.loads(cli("volume", "attach", "vol", "-o", "json"))["nbdUri"]
        subprocess.run(["nbdcopy", src, uri], check=True)
        cli("volume", "detach", "vol")

        rows = {"peer up": [], "peer down": [], "ballast backup": [], "ballast restore": []}
        for r in range(a.reps):
            rows["peer up"].append(timed(["aws", "--endpoint-url", endpoint, "s3", "cp", src, f"s3://bench/peer{r}/data.bin"], env=aws_env()))
            rows["peer down"].append(timed(["aws", "--endpoint-url", endpoint, "s3", "cp", f"s3://bench/peer{r}/data.bin",
                                            os.path.join(work, "down.bin")], env=aws_env()))
            os.remove(os.path.join(work, "down.bin"))
            cli("backup", "target", "add", f"t{r}", f"s3://bench/ballast{r}", "--endpoint", endpoint, "--credentials-file", creds,
                "--key-file", key)
            t = time.monotonic()
            bid = cli("backup", "create", "vol", "--target", f"t{r}", "--quiet").strip()
            rows["ballast backup"].append(time.monotonic() - t)
            t = time.monotonic()
            cli("backup", "restore", bid, "--target", f"t{r}", "--to", f"r{r}")
            rows["ballast restore"].append(time.monotonic() - t)
            cli("volume", "delete", f"r{r}")
        # incremental after changing 1 % (clustered: 1 MiB pieces at random offsets)
        uri = json.loads(cli("volume", "attach", "vol", "-o", "json"))["nbdUri"]
        changed = 0
        piece = os.path.join(work, "piece.bin")
        for off in rnd.sample(range(size // MIB), max(1, size // 100 // MIB)):
            open(piece, "wb").write(os.urandom(MIB))  # random: a constant pattern would compress to nothing
            subprocess.run(["qemu-io", "-f", "raw", "-c", f"write -s {piece} {off * MIB} {MIB}", uri], check=True,
                           stdout=subprocess.DEVNULL)
            changed += MIB
        cli("volume", "detach", "vol")
        t = time.monotonic()
        out = json.loads(cli("backup", "create", "vol", "--target", "t0", "--quiet", "-o", "json"))
        inc_s = time.monotonic() - t
        up = out["stats"]["bytesUploaded"]

        awsv = (subprocess.run(["aws", "--version"], capture_output=True, text=True).stdout or "awscli").split()[0]
        med = {k: statistics.median(v) for k, v in rows.items()}
        logical = size
        lines = [
            "# Backup and restore rate (bench/backup_bench.py)", "",
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this host ({os.cpu_count()} CPUs), S3Proxy 2.6.0 filesystem "
            f"backend on the same disk, one Ballast node, volume {size // MIB} MiB with 50 % random data (1 MiB random, 1 MiB zero, ...), "
            f"{a.reps} repetitions, medians. Peer: `aws s3 cp` ({awsv}) "
            "of the same bytes as one file to and from the same S3Proxy.", "",
            "| operation | median s | logical MiB/s | ratio to peer |", "|---|---|---|---|",
            f"| peer upload (`aws s3 cp` file → S3) | {med['peer up']:.2f} | {logical / MIB / med['peer up']:.0f} | 1 |",
            f"| Ballast full backup | {med['ballast backup']:.2f} | {logical / MIB / med['ballast backup']:.0f} | {med['peer up'] / med['ballast backup']:.2f} |",
            f"| peer download (`aws s3 cp` S3 → file) | {med['peer down']:.2f} | {logical / MIB / med['peer down']:.0f} | 1 |",
            f"| Ballast restore into a new volume | {med['ballast restore']:.2f} | {logical / MIB / med['ballast restore']:.0f} | {med['peer down'] / med['ballast restore']:.2f} |",
            "", f"Incremental after changing {changed // MIB} MiB (1 %, random data in 1 MiB pieces at random offsets, through NBD): "
            f"{inc_s:.2f} s, read {out['stats']['bytesRead'] / MIB:.0f} MiB, uploaded {out['stats']['chunksUploaded']} chunks, "
            f"{up / MIB:.2f} MiB = {up / changed:.2f} x the changed bytes.", "",
            "Ratio = peer time / Ballast time (above 1: Ballast faster). Logical rate = volume bytes / time. Ballast skips the "
            "all-zero half (the peer sends it), and also compresses, encrypts and names every chunk; the restore writes through "
            "the volume engine and checks every chunk. Raw seconds per repetition: " + json.dumps({k: [round(x, 2) for x in v] for k, v in rows.items()}),
        ]
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        open(a.out, "w").write("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

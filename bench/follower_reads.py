#!/usr/bin/env python3
"""Read latency on each node of a local 3-node cluster, and when the slow reads happen.

Starts metadata_bench's cluster (n1 bootstraps and leads), creates 200 volumes through n1, then
sends 1,500 `GET /v1/volumes/NAME` to each node in turn over one keep-alive connection and prints
p50/p99 and the first slow reads (> 50 ms) as (seconds into the loop, ms). Slow reads at a steady
rate point at something periodic (heartbeat commits, Raft heartbeats).

Usage: bench/follower_reads.py [BASE_PORT]   (nodes from this checkout's build: run
`mvn -DskipTests package` first; BALLAST_NO_BUILD=1 is set for the nodes)"""
import http.client, json, os, sys, tempfile, time, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["BALLAST_NO_BUILD"] = "1"
import metadata_bench as mb  # noqa: E402


def main():
    base = int(sys.argv[1]) if len(sys.argv) > 1 else 9200
    work = tempfile.mkdtemp(prefix="ballast-freads-")
    cluster = mb.Cluster(work, base)
    try:
        cluster.start()
        time.sleep(3)

        def conn(n):
            host, port = cluster.urls[n].replace("http://", "").split(":")
            return http.client.HTTPConnection(host, int(port))

        c = conn("n1")
        for i in range(200):
            c.request("POST", "/v1/volumes", json.dumps({"name": "v%d" % i, "size": "64MiB"}),
                      {"Content-Type": "application/json", **mb.AUTH})
            c.getresponse().read()
        time.sleep(2)
        print("leader:", cluster.status("n1").get("leaderNodeId"))
        for n in ("n1", "n2", "n3"):
            c, lat, slow, t0 = conn(n), [], [], time.time()
            for i in range(1500):
                s = time.perf_counter()
                c.request("GET", "/v1/volumes/v%d" % (i % 200), headers=mb.AUTH)
                c.getresponse().read()
                ms = (time.perf_counter() - s) * 1000
                lat.append(ms)
                if ms > 50:
                    slow.append((round(time.time() - t0, 3), round(ms, 1)))
            lat.sort()
            print("%s p50 %.2f p99 %.2f ms; %d slow reads, first: %s" % (
                n, lat[len(lat) // 2], lat[int(len(lat) * .99)], len(slow), slow[:12]), flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

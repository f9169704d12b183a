package io.ballast.testing;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.NodeClient;
import io.ballast.cluster.ClusterTimings;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The scale bench's driver (bench/scale_bench.sh starts three real node processes and runs this): grows a
 * {@link Fleet} of simulated members and the volume count step by step and, at each step, measures what
 * docs/perf/scale.md tabulates. Leader CPU and RSS come from /proc of the leader's process (its pid from {@code GET /v1/node}).
 *
 * <pre>
 * ScaleBench --api URL,URL,URL --admin-token T --cluster-token T
 *            --members 10,100,300,1000 --volumes 1000,10000 --clients 16 --window-s 10
 * </pre>
 */
public final class ScaleBench {
    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        List<String> urls = Arrays.asList(a.get("api").split(","));
        String admin = a.get("admin-token");
        Map<String, Long> pids = new HashMap<>(); // node id -> its process (the voters run on this host)
        for (String u : urls) {
            JsonNode info = new NodeClient(u, admin, Duration.ofSeconds(30)).get("/v1/node");
            pids.put(info.path("nodeId").asText(), info.path("pid").asLong());
        }
        int clients = Integer.parseInt(a.getOrDefault("clients", "16"));
        long windowS = Long.parseLong(a.getOrDefault("window-s", "10"));
        int[] memberSteps = Arrays.stream(a.getOrDefault("members", "10,100,300,1000").split(",")).mapToInt(Integer::parseInt).toArray();
        int[] volumeSteps = Arrays.stream(a.getOrDefault("volumes", "1000,10000").split(",")).mapToInt(Integer::parseInt).toArray();
        NodeClient api = new NodeClient(urls.getFirst(), admin, Duration.ofSeconds(60));
        for (JsonNode n : api.get("/v1/nodes").path("nodes")) {
            api.post("/v1/nodes/" + n.path("nodeId").asText() + "/cordon", Map.of()); // replicas go to the fleet only
        }
        System.out.println("| members | volumes | Raft entries/s (steady) | leases/s | leader CPU % of a core | leader RSS MiB"
                + " | creates/s (16 clients) | create p99 ms | list page 500 p99 ms | inspect p99 ms |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|");
        try (Fleet fleet = new Fleet(urls, admin, a.get("cluster-token"), ClusterTimings.defaults(),
                id -> Map.of("zone", "z" + Math.floorMod(id.hashCode(), 10)))) {
            int members = 0;
            int volumes = 0;
            for (int m : memberSteps) {
                fleet.start("sim" + m, m - members, 1L << 50, 16);
                members = m;
                boolean last = m == memberSteps[memberSteps.length - 1];
                int[] steps = last ? volumeSteps : new int[] {volumeSteps[0]};
                for (int v : steps) {
                    String createCells = "–";
                    if (v > volumes) {
                        Map<String, double[]> steps0 = createSteps(urls, admin, pids);
                        long[] lat = createVolumes(urls, admin, volumes, v, clients);
                        printCreateSteps(steps0, createSteps(urls, admin, pids), lat);
                        double secs = lat[lat.length - 1] / 1e9;
                        createCells = String.format("%.0f | %.1f", (v - volumes) / secs, pct(Arrays.copyOf(lat, lat.length - 1), 99) / 1e6);
                        volumes = v;
                    } else {
                        createCells = "– | –";
                    }
                    MiniCluster.await(Duration.ofMinutes(10), "replicas ready", () -> fleet.pendingReplicas() == 0);
                    String leader = api.get("/v1/cluster").path("leaderNodeId").asText();
                    NodeClient lead = api.at(urls.get(indexOf(urls, api, leader)));
                    Thread.sleep(2000); // let the last ready commits land
                    long idx0 = lead.get("/v1/cluster").path("raftCommitIndex").asLong();
                    long leases0 = fleet.leaseHeartbeats();
                    long cpu0 = cpuTicks(pids.get(leader));
                    long t0 = System.nanoTime();
                    Thread.sleep(windowS * 1000);
                    double el = (System.nanoTime() - t0) / 1e9;
                    double cpuPct = (cpuTicks(pids.get(leader)) - cpu0) / 100.0 / el * 100;
                    long idx1 = lead.get("/v1/cluster").path("raftCommitIndex").asLong();
                    double entries = (idx1 - idx0) / el;
                    double leases = (fleet.leaseHeartbeats() - leases0) / el;
                    double listP99 = listP99(lead, 50);
                    double inspectP99 = inspectP99(lead, volumes, 2000);
                    System.out.printf("| %d | %d | %.2f | %.0f | %.1f | %d | %s | %.1f | %.2f |%n", members, volumes, entries, leases,
                            cpuPct, rssMiB(pids.get(leader)), createCells, listP99, inspectP99);
                }
            }
            System.out.println("fleet counts: " + fleet.counts());
        }
    }

    private static int indexOf(List<String> urls, NodeClient api, String nodeId) {
        for (int i = 0; i < urls.size(); i++) {
            if (nodeId.equals(api.at(urls.get(i)).get("/v1/node").path("nodeId").asText())) {
                return i;
            }
        }
        return 0;
    }

    /** Creates vol-(from+1)..vol-to with {@code clients} clients; latencies in ns, the last element the wall time. */
    static long[] createVolumes(List<String> urls, String admin, int from, int to, int clients) throws InterruptedException {
        AtomicInteger next = new AtomicInteger(from + 1);
        List<Long> lat = Collections.synchronizedList(new ArrayList<>());
        List<Thread> ts = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int c = 0; c < clients; c++) {
            NodeClient api = new NodeClient(urls.get(c % urls.size()), admin, Duration.ofSeconds(60));
            ts.add(Thread.ofVirtual().start(() -> {
                for (int i = next.getAndIncrement(); i <= to; i = next.getAndIncrement()) {
                    String name = String.format("vol-%06d", i);
                    for (int attempt = 0; ; attempt++) {
                        long s = System.nanoTime();
                        try {
                            api.post("/v1/volumes", Map.of("name", name, "size", "1GiB", "repl", 3));
                            lat.add(System.nanoTime() - s);
                            break;
                        } catch (BallastException e) {
                            if (e.code() == ErrorCode.ALREADY_EXISTS && attempt > 0 || attempt > 5) {
                                break;
                            }
                        }
                    }
                }
            }));
        }
        for (Thread t : ts) {
            t.join();
        }
        long[] out = new long[lat.size() + 1];
        for (int i = 0; i < lat.size(); i++) {
            out[i] = lat.get(i);
        }
        out[lat.size()] = System.nanoTime() - t0;
        return out;
    }

    /**
     * The create step histograms of every voter process (ballast_volume_create_step_seconds and, for the
     * leader's side, ballast_raft_write_step_seconds of CreateVolume): series -> [count, sum, bucket counts...].
     * Three in-process voters share one registry, so each process is read once.
     */
    static Map<String, double[]> createSteps(List<String> urls, String admin, Map<String, Long> pids) throws Exception {
        Map<String, double[]> out = new java.util.TreeMap<>();
        java.util.Set<Long> seen = new java.util.HashSet<>();
        java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
        for (String u : urls) {
            long pid = new NodeClient(u, admin, Duration.ofSeconds(30)).get("/v1/node").path("pid").asLong();
            if (!seen.add(pid)) {
                continue;
            }
            String text = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(u + "/metrics"))
                    .header("Authorization", "Bearer " + admin).build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
            for (String line : text.split("\n")) {
                boolean create = line.startsWith("ballast_volume_create_step_seconds");
                boolean raft = line.startsWith("ballast_raft_write_step_seconds") && line.contains("command=\"CreateVolume\"");
                if (!create && !raft) {
                    continue;
                }
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("step=\"([^\"]+)\"").matcher(line);
                if (!m.find()) {
                    continue;
                }
                String key = (raft ? "leader: " : "") + m.group(1);
                double value = Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
                double[] h = out.computeIfAbsent(key, k -> new double[2 + STEP_BOUNDS.length]);
                if (line.contains("_count{")) {
                    h[0] += value;
                } else if (line.contains("_sum{")) {
                    h[1] += value;
                } else if (line.contains("_bucket{")) {
                    java.util.regex.Matcher le = java.util.regex.Pattern.compile("le=\"([^\"]+)\"").matcher(line);
                    if (le.find() && !le.group(1).equals("+Inf")) {
                        int i = Arrays.binarySearch(STEP_BOUNDS, Double.parseDouble(le.group(1)));
                        if (i >= 0) {
                            h[2 + i] += value;
                        }
                    }
                }
            }
        }
        return out;
    }

    private static final double[] STEP_BOUNDS = {0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};

    /** One line per step: creates it saw, mean and p50/p99 (bucket upper bounds, ms) over the create phase. */
    static void printCreateSteps(Map<String, double[]> before, Map<String, double[]> after, long[] lat) {
        long[] client = Arrays.copyOf(lat, lat.length - 1);
        System.out.printf("create steps (%d creates; client-side mean %.1f ms, p50 %.1f, p99 %.1f):%n", client.length,
                Arrays.stream(client).average().orElse(0) / 1e6, pct(client, 50) / 1e6, pct(client, 99) / 1e6);
        for (var e : after.entrySet()) {
            double[] a = e.getValue();
            double[] b = before.getOrDefault(e.getKey(), new double[a.length]);
            double n = a[0] - b[0];
            if (n <= 0) {
                continue;
            }
            System.out.printf("  %-34s n=%6.0f mean %8.2f ms  p50 <= %s  p99 <= %s%n", e.getKey(), n, (a[1] - b[1]) / n * 1e3,
                    bucketPct(a, b, n, 0.50), bucketPct(a, b, n, 0.99));
        }
    }

    private static String bucketPct(double[] a, double[] b, double n, double q) {
        for (int i = 0; i < STEP_BOUNDS.length; i++) {
            if (a[2 + i] - b[2 + i] >= q * n) {
                return STEP_BOUNDS[i] * 1e3 + " ms";
            }
        }
        return "> 10 s";
    }

    static double listP99(NodeClient api, int pages) {
        long[] lat = new long[pages];
        String cont = null;
        for (int i = 0; i < pages; i++) {
            long s = System.nanoTime();
            JsonNode p = api.get("/v1/volumes?limit=500" + (cont == null ? "" : "&continue=" + URLEncoder.encode(cont, StandardCharsets.UTF_8)));
            lat[i] = System.nanoTime() - s;
            cont = p.path("continue").asText(null);
        }
        return pct(lat, 99) / 1e6;
    }

    static double inspectP99(NodeClient api, int volumes, int n) {
        for (int i = 0; i < 500; i++) { // warm the read path first
            api.get(String.format("/v1/volumes/vol-%06d", 1 + ThreadLocalRandom.current().nextInt(volumes)));
        }
        long[] lat = new long[n];
        for (int i = 0; i < n; i++) {
            long s = System.nanoTime();
            api.get(String.format("/v1/volumes/vol-%06d", 1 + ThreadLocalRandom.current().nextInt(volumes)));
            lat[i] = System.nanoTime() - s;
        }
        return pct(lat, 99) / 1e6;
    }

    static double pct(long[] xs, double p) {
        if (xs.length == 0) {
            return 0;
        }
        long[] s = xs.clone();
        Arrays.sort(s);
        return s[Math.min(s.length - 1, (int) Math.ceil(p / 100 * s.length) - 1)];
    }

    /** utime + stime of a process, in clock ticks (100 a second on Linux). */
    static long cpuTicks(long pid) throws Exception {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    static long rssMiB(long pid) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D+", "")) / 1024;
            }
        }
        return -1;
    }
}

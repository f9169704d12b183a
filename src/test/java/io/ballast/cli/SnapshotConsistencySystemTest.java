package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.NbdBlockClient;
import io.ballast.testing.Requirements;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Issue 21's snapshot tests on one local 3-process cluster (one cluster start for all three):
 * <ol>
 * <li>snapshots, clones and revert through the CLI, the REST API and NBD: a snapshot of an attached
 * 3-replica volume keeps the bytes written before it while the volume is overwritten; a clone reads
 * exactly the snapshot's bytes (sha256); a revert of the detached volume brings them back; every node
 * lists the snapshot; bad input gets the documented exit codes and HTTP statuses (runs first: it counts
 * the cluster's snapshots);</li>
 * <li>fio (crc32c verify) and a writer of numbered records write to an attached 3-replica volume while a
 * snapshot is taken every second: every snapshot has the same SHA-256 on all three replicas
 * ({@code volume verify}), and holds a prefix of the records: all records acknowledged before it was
 * asked for, none past what was submitted before it completed, no gap (changed blocks and a clone's
 * bytes);</li>
 * <li>kill -9 of the engine's node while it cuts a snapshot: afterwards the snapshot is either listed
 * and identical on every node that holds it, or not listed at all; a retry on the new engine works,
 * and once the killed node is back every snapshot is identical on all its holders.</li>
 * </ol>
 */
@Tag("system")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SnapshotConsistencySystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final long MIB = 1L << 20;
    static final int BS = 4096;
    /** Records live in [0, 16 MiB); fio writes [16 MiB, 32 MiB). */
    static final int MAX_RECORDS = 4000;

    static Path home; // the shared cluster's (SharedLocalCluster)
    static String n1;
    static String n2;
    /** Trusts the cluster CA `ballast up` made (so made after it). */
    static HttpClient http;
    /** The bootstrap admin token `ballast up` wrote; the CLI calls use the `local` context it saved. */
    static String token;
    /** Its own threads: the common pool may have one thread on a 2-core machine, and fio would hold it. */
    static final java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();

    static Map<String, String> env() {
        return SharedLocalCluster.env();
    }

    @BeforeAll
    static void up() throws Exception {
        Requirements.require(hasFio(), "needs fio with the nbd engine");
        home = SharedLocalCluster.acquire();
        n1 = url(1);
        n2 = url(2);
        http = io.ballast.testing.LocalCa.httpClient(home);
        token = Files.readString(home.resolve("node-1/admin-token")).strip();
    }

    @AfterAll
    static void removeVolumes() throws Exception {
        try {
            SharedLocalCluster.up(); // the kill test's node-1, if that test failed before restarting it
            SharedLocalCluster.removeVolumes("sdb", "sclone", "scdb");
        } finally {
            SharedLocalCluster.release();
            if (http != null) {
                http.close();
            }
        }
    }

    static boolean hasFio() {
        try {
            Process p = new ProcessBuilder("fio", "--enghelp=nbd").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (Exception e) {
            return false;
        }
    }

    static String url(int i) throws Exception {
        return JSON.readTree(home.resolve("local.json").toFile()).path("nodes").get(i - 1).path("apiUrl").asText();
    }

    static LauncherTest.Run ok(String node, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--server");
        all.add(node);
        LauncherTest.Run r = LauncherTest.launch(env(), all.toArray(String[]::new));
        assertThat(r.exit()).as("ballast %s\nstdout: %s\nstderr: %s", String.join(" ", args), r.out(), r.err()).isZero();
        return r;
    }

    static HttpResponse<String> call(String node, String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(node + path)).timeout(Duration.ofSeconds(120))
                .header("Authorization", "Bearer " + token);
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            b.header("Content-Type", "application/json");
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode json(HttpResponse<String> r) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isBetween(200, 299);
        return JSON.readTree(r.body());
    }

    static LauncherTest.Run cli(String node, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--server");
        all.add(node);
        return LauncherTest.launch(env(), all.toArray(String[]::new));
    }

    static int status(String method, String node, String path, String body) throws Exception {
        return call(node, method, path, body).statusCode();
    }

    static String sha256(byte[] b) throws Exception {
        return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
    }

    static byte[] readVolume(String uri) throws Exception {
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            return ResizeSystemTest.readAll(c, 0, (int) c.sizeBytes());
        }
    }

    /** Record {@code i}: its number (1-based, never zero) then bytes derived from it. */
    static byte[] record(int i) {
        byte[] b = new byte[BS];
        new Random(i).nextBytes(b);
        ByteBuffer.wrap(b).putLong(0, i + 1L);
        return b;
    }

    /**
     * fio with verify over [16 MiB, 32 MiB), again and again until {@code stop}; {@code killed}: the
     * engine's node is killed under the last round, whose failure is then expected.
     */
    static CompletableFuture<Void> fioUntil(String uri, AtomicBoolean stop, AtomicBoolean killed) {
        return CompletableFuture.runAsync(() -> {
            int round = 0;
            while (!stop.get()) {
                List<String> cmd = List.of("fio", "--name=snapload", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite", "--bs=4k",
                        "--iodepth=16", "--offset=" + 16 * MIB, "--size=" + 16 * MIB, "--randseed=" + (11 + round++),
                        "--verify=crc32c", "--verify_fatal=1", "--do_verify=1");
                try {
                    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
                    String out = new String(p.getInputStream().readAllBytes());
                    assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
                    if (killed.get() && p.exitValue() != 0) {
                        return; // the engine's node was killed under it
                    }
                    assertThat(p.exitValue()).as("fio %s\n%s", String.join(" ", cmd), out).isZero();
                    assertThat(out).doesNotContain("verify: bad").contains("err= 0");
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }
        }, threads);
    }

    record Cut(String name, long ackedBefore, long submittedAfter) {}

    @Test
    @Order(1)
    void snapshotCloneAndRevertReadBackTheSnapshotsBytesOnEveryReplica() throws Exception {
        int size = (int) (16 * MIB);
        ok(n1, "volume", "create", "sdb", "--size", "16MiB", "--repl", "3");
        String uri = JSON.readTree(ok(n1, "volume", "attach", "sdb", "-o", "json").out()).path("nbdUnixUri").asText();
        byte[] pattern = ResizeSystemTest.pattern(size, 1);
        byte[] overwrite = ResizeSystemTest.pattern((int) (4 * MIB), 2);
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            ResizeSystemTest.writeAll(c, 0, pattern);
            // the snapshot is cut in the write stream of the attached volume
            JsonNode snap = JSON.readTree(ok(n1, "snapshot", "create", "sdb", "before", "-o", "json").out());
            assertThat(snap.path("nodeIds")).extracting(JsonNode::asText).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
            assertThat(snap.path("sizeBytes").asLong()).isEqualTo(size);
            ResizeSystemTest.writeAll(c, 4 * MIB, overwrite);
        }
        byte[] overwritten = pattern.clone();
        System.arraycopy(overwrite, 0, overwritten, (int) (4 * MIB), overwrite.length);

        // listed on every node, with the overwritten bytes as its exclusive space
        assertThat(JSON.readTree(ok(n1, "snapshot", "list", "sdb", "-o", "json").out())).hasSize(1);
        for (int i = 1; i <= 3; i++) {
            JsonNode list = json(call(url(i), "GET", "/v1/volumes/sdb/snapshots", null)).path("snapshots");
            assertThat(list).singleElement().satisfies(sn -> {
                assertThat(sn.path("name").asText()).isEqualTo("before");
                assertThat(sn.path("exclusiveBytes").asLong()).isEqualTo(4 * MIB);
            });
        }
        assertThat(json(call(url(2), "GET", "/v1/snapshots?volume=sdb", null)).path("snapshots")).hasSize(1);

        // bad input: a reused name, unknown volume or snapshot, revert while attached
        assertThat(cli(n1, "snapshot", "create", "sdb", "before").exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(cli(n1, "snapshot", "create", "nope", "s").exit()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(status("POST", n1, "/v1/volumes/sdb/snapshots", "{\"name\":\"-bad\"}")).isEqualTo(400);
        assertThat(status("POST", n1, "/v1/volumes", "{\"name\":\"c0\",\"fromSnapshot\":\"sdb@nope\"}")).isEqualTo(404);
        LauncherTest.Run attachedRevert = cli(n1, "volume", "revert", "sdb@before");
        assertThat(attachedRevert.exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(attachedRevert.err()).contains("detach it first");
        assertThat(status("POST", n1, "/v1/volumes/sdb/snapshots", "{\"name\":\"before\"}")).isEqualTo(409);
        assertThat(status("POST", n1, "/v1/volumes/nope/snapshots", "{\"name\":\"x\"}")).isEqualTo(404);
        assertThat(status("GET", n1, "/v1/volumes/sdb/snapshots/nope", null)).isEqualTo(404);
        assertThat(status("DELETE", n1, "/v1/volumes/sdb/snapshots/nope", null)).isEqualTo(404);
        assertThat(status("POST", n1, "/v1/volumes/sdb/revert", "{\"snapshot\":\"before\"}")).isEqualTo(409);
        assertThat(status("POST", n1, "/v1/volumes", "{\"name\":\"c1\",\"fromSnapshot\":\"sdb\"}")).isEqualTo(400);

        // a clone has the snapshot's bytes (and is thin: on the snapshot's nodes, in sync at once)
        ok(n1, "volume", "create", "sclone", "--from-snapshot", "sdb@before");
        String cloneUri = JSON.readTree(ok(n1, "volume", "attach", "sclone", "-o", "json").out()).path("nbdUnixUri").asText();
        assertThat(sha256(readVolume(cloneUri))).isEqualTo(sha256(pattern));
        assertThat(sha256(readVolume(uri))).isEqualTo(sha256(overwritten));
        ok(n1, "volume", "detach", "sclone");
        assertThat(cli(n1, "snapshot", "delete", "sdb", "before").exit()).isEqualTo(ExitCodes.CONFLICT); // the clone uses it

        // revert the detached volume: every replica reads the snapshot again
        ok(n1, "volume", "detach", "sdb");
        ok(n1, "volume", "revert", "sdb@before");
        String uri2 = JSON.readTree(ok(url(2), "volume", "attach", "sdb", "-o", "json").out()).path("nbdUnixUri").asText();
        assertThat(sha256(readVolume(uri2))).isEqualTo(sha256(pattern));
        JsonNode report = JSON.readTree(ok(url(2), "volume", "verify", "sdb", "-o", "json").out()).path("report");
        assertThat(report.path("differences")).isEmpty();
        assertThat(report.path("replicaNodeIds")).hasSize(3);
        ok(url(2), "volume", "detach", "sdb");

        // once the clone is gone, the snapshot can go; the volume keeps its bytes
        ok(n1, "volume", "delete", "sclone");
        ok(n1, "snapshot", "delete", "sdb", "before");
        assertThat(json(call(n1, "GET", "/v1/snapshots?volume=sdb", null)).path("snapshots")).isEmpty();
        String uri3 = JSON.readTree(ok(n1, "volume", "attach", "sdb", "-o", "json").out()).path("nbdUnixUri").asText();
        assertThat(sha256(readVolume(uri3))).isEqualTo(sha256(pattern));
        ok(n1, "volume", "detach", "sdb");
        ok(n1, "volume", "delete", "sdb");
    }

    @Test
    @Order(2)
    void everySnapshotUnderLoadIsIdenticalOnEveryReplicaAndAPrefixOfTheAcknowledgedWrites() throws Exception {
        ok(n1, "volume", "create", "scdb", "--size", "64MiB", "--repl", "3");
        String uri = JSON.readTree(ok(n1, "volume", "attach", "scdb", "-o", "json").out()).path("nbdUnixUri").asText();

        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong acked = new AtomicLong(); // records 0..acked-1 are acknowledged
        AtomicLong submitted = new AtomicLong(); // records 0..submitted-1 were sent
        CompletableFuture<Void> fio = fioUntil(uri, stop, new AtomicBoolean());
        CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
            try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
                for (int i = 0; i < MAX_RECORDS && !stop.get(); i++) {
                    submitted.set(i + 1);
                    c.write((long) i * BS, record(i));
                    acked.set(i + 1);
                }
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, threads);
        List<Cut> cuts = new ArrayList<>();
        try {
            for (int k = 0; k < 6; k++) {
                long t = System.nanoTime();
                long before = acked.get();
                json(call(n1, "POST", "/v1/volumes/scdb/snapshots", "{\"name\":\"s" + k + "\"}"));
                cuts.add(new Cut("s" + k, before, submitted.get()));
                long waitMs = 1000 - (System.nanoTime() - t) / 1_000_000;
                if (waitMs > 0) {
                    Thread.sleep(waitMs); // the cadence: one snapshot a second
                }
            }
        } finally {
            stop.set(true);
        }
        writer.get(120, TimeUnit.SECONDS);
        fio.get(300, TimeUnit.SECONDS);
        assertThat(cuts.getLast().ackedBefore()).as("the writer made progress between the snapshots").isGreaterThan(0);

        // identical on every replica: volume verify compares each snapshot's SHA-256 on all three
        JsonNode verify = JSON.readTree(ok(n1, "volume", "verify", "scdb", "-o", "json").out());
        assertThat(verify.path("identical").asBoolean()).as(verify.toString()).isTrue();
        assertThat(verify.path("snapshots")).hasSize(cuts.size());
        for (JsonNode s : verify.path("snapshots")) {
            assertThat(s.path("identical").asBoolean()).as(s.toString()).isTrue();
            assertThat(s.path("replicas")).hasSize(3).allSatisfy(c -> assertThat(c.path("sha256").asText()).hasSize(64));
        }

        // a prefix: the records' blocks holding data are exactly 0..n-1, with acked-before <= n <= submitted-after
        long[] counts = new long[cuts.size()];
        for (int k = 0; k < cuts.size(); k++) {
            Cut c = cuts.get(k);
            JsonNode page = json(call(n1, "GET", "/v1/volumes/scdb/snapshots/" + c.name() + "/changed-blocks?maxResults=10000", null));
            List<JsonNode> inRecords = new ArrayList<>();
            page.path("extents").forEach(e -> {
                if (e.path("offsetBytes").asLong() < 16 * MIB) {
                    inRecords.add(e);
                }
            });
            long n = inRecords.isEmpty() ? 0 : inRecords.getFirst().path("lengthBytes").asLong() / BS;
            assertThat(inRecords.size()).as("%s: one run of records from 0, no gap: %s", c, inRecords).isLessThanOrEqualTo(1);
            if (n > 0) {
                assertThat(inRecords.getFirst().path("offsetBytes").asLong()).isZero();
            }
            assertThat(n).as("%s holds records 0..%d", c, n - 1).isBetween(c.ackedBefore(), c.submittedAfter());
            counts[k] = n;
        }
        // and the bytes are the records: read two snapshots back through thin clones
        for (int k : new int[] {1, cuts.size() - 1}) {
            String clone = "scdb-s" + k;
            json(call(n1, "POST", "/v1/volumes", "{\"name\":\"" + clone + "\",\"fromSnapshot\":\"scdb@s" + k + "\",\"repl\":1}"));
            String cu = json(call(n1, "POST", "/v1/volumes/" + clone + "/attach", "{}")).path("nbdUnixUri").asText();
            try (NbdBlockClient c = NbdBlockClient.connect(cu)) {
                byte[] all = c.read(0, (int) (16 * MIB));
                for (int i = 0; i < MAX_RECORDS; i++) {
                    byte[] got = java.util.Arrays.copyOfRange(all, i * BS, (i + 1) * BS);
                    if (i < counts[k]) {
                        assertThat(got).as("record %d in s%d", i, k).isEqualTo(record(i));
                    } else {
                        assertThat(got).as("block %d in s%d (past the cut)", i, k).containsOnly(0);
                    }
                }
            }
            json(call(n1, "POST", "/v1/volumes/" + clone + "/detach", "{}"));
            assertThat(call(n1, "DELETE", "/v1/volumes/" + clone, null).statusCode()).isEqualTo(204);
        }
    }

    @Test
    @Order(3)
    void killingTheEnginesNodeDuringASnapshotLeavesItWholeOrAbsent() throws Exception {
        String uri = JSON.readTree(ok(n1, "volume", "inspect", "scdb", "-o", "json").out()).path("nbd").path("tcp").asText();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicBoolean killed = new AtomicBoolean();
        CompletableFuture<Void> fio = fioUntil(uri, stop, killed);
        // load first, so the cut has dirty regions to sync
        MiniCluster.await(Duration.ofSeconds(30), "fio connected", () -> fio.isDone() || loadStarted(n1));
        CompletableFuture<HttpResponse<String>> create = CompletableFuture.supplyAsync(() -> {
            try {
                return call(n1, "POST", "/v1/volumes/scdb/snapshots", "{\"name\":\"crash\"}");
            } catch (Exception e) {
                return null; // the node died under the request
            }
        }, threads);
        // a create takes tens to hundreds of ms here: the kill lands before, inside or after the cut (not a synchronisation)
        Thread.sleep(new Random().nextInt(5, 400));
        stop.set(true);
        killed.set(true);
        kill9(1);
        create.get(60, TimeUnit.SECONDS);
        fio.handle((v, e) -> null).get(120, TimeUnit.SECONDS);

        // the survivors elect a leader; the snapshot is listed whole on its holders, or not at all
        MiniCluster.await(Duration.ofSeconds(60), "node-2 answers", () -> {
            try {
                return call(n2, "GET", "/v1/volumes/scdb/snapshots", null).statusCode() == 200;
            } catch (Exception e) {
                return false;
            }
        });
        boolean recorded = call(n2, "GET", "/v1/volumes/scdb/snapshots/crash", null).statusCode() == 200;
        System.out.println("kill -9 during snapshot create: " + (recorded ? "recorded" : "not recorded"));
        String retry = recorded ? "after-crash" : "crash";
        if (recorded) {
            JsonNode v = json(call(n2, "GET", "/v1/volumes/scdb/snapshots/crash/verify", null));
            assertThat(v.path("identical").asBoolean()).as(v.toString()).isTrue();
        }
        // a retry on the new engine works
        ok(n2, "volume", "attach", "scdb");
        JsonNode again = json(call(n2, "POST", "/v1/volumes/scdb/snapshots", "{\"name\":\"" + retry + "\"}"));
        assertThat(again.path("nodeIds")).extracting(JsonNode::asText).containsExactlyInAnyOrder("node-2", "node-3");

        // the killed node returns and resyncs: every snapshot identical on every node that holds it
        SharedLocalCluster.up();
        ok(n2, "volume", "wait", "scdb", "--timeout", "3m");
        JsonNode verify = JSON.readTree(ok(n2, "volume", "verify", "scdb", "-o", "json").out());
        assertThat(verify.path("identical").asBoolean()).as(verify.toString()).isTrue();
        for (JsonNode s : verify.path("snapshots")) {
            assertThat(s.path("replicas")).allSatisfy(c -> assertThat(c.path("sha256").asText()).as(s.toString()).hasSize(64));
        }
    }

    static boolean loadStarted(String node) {
        try {
            JsonNode v = JSON.readTree(call(node, "GET", "/v1/volumes/scdb", null).body());
            return v.path("connections").asInt() > 0;
        } catch (Exception e) {
            return false;
        }
    }

    static void kill9(int i) throws Exception {
        long pid = Long.parseLong(Files.readString(home.resolve("node-" + i + "/ballast.pid")).strip());
        ProcessHandle p = ProcessHandle.of(pid).orElseThrow();
        p.destroyForcibly();
        p.onExit().get(30, TimeUnit.SECONDS);
    }
}

package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A replicated volume on a local 3-process cluster, driven through the CLI and fio's nbd engine with
 * verify on: kill -9 of a replica's node while fio writes, its delta resync when it comes back
 * (bytes copied bounded by what changed), kill -9 of the engine's node, attach on another node at
 * once, every acknowledged write read back and verified, and {@code volume verify} finding the
 * replicas identical.
 *
 * <p>One cluster serves both tests (a start of three node processes is the costliest step of each):
 * every test has a volume of its own and leaves the three nodes up and its volume in sync.
 */
@Tag("system")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ReplicationSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final long MIB = 1L << 20;
    static final long SIZE = 256 * MIB;

    static Path home; // the shared cluster's (SharedLocalCluster)

    Map<String, String> env() {
        return SharedLocalCluster.env();
    }

    @BeforeAll
    void startCluster() throws Exception {
        home = SharedLocalCluster.acquire();
    }

    @AfterAll
    void removeVolumes() throws Exception {
        try {
            SharedLocalCluster.up(); // a failed test may have left a node down
            SharedLocalCluster.removeVolumes("rdb", "rdelta");
        } finally {
            SharedLocalCluster.release();
        }
    }

    LauncherTest.Run cli(String node, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of(args));
        if (node != null) {
            all.add("--node");
            all.add(node);
        }
        return LauncherTest.launch(env(), all.toArray(String[]::new));
    }

    LauncherTest.Run ok(String node, String... args) throws Exception {
        LauncherTest.Run r = cli(node, args);
        assertThat(r.exit()).as("ballast %s\nstdout: %s\nstderr: %s", String.join(" ", args), r.out(), r.err()).isZero();
        return r;
    }

    void up() throws Exception {
        SharedLocalCluster.up();
    }

    String url(int i) throws Exception {
        JsonNode local = JSON.readTree(home.resolve("local.json").toFile());
        return local.path("nodes").get(i - 1).path("apiUrl").asText();
    }

    void kill9(int i) throws Exception {
        long pid = Long.parseLong(Files.readString(home.resolve("node-" + i + "/ballast.pid")).strip());
        ProcessHandle p = ProcessHandle.of(pid).orElseThrow();
        p.destroyForcibly();
        p.onExit().get(30, TimeUnit.SECONDS);
    }

    /** fio through NBD; {@code verifyOnly} re-reads what the same job wrote and checks every block. */
    static void fio(String uri, long offsetBytes, long sizeBytes, boolean verifyOnly) throws Exception {
        fio(uri, offsetBytes, sizeBytes, verifyOnly, "4k");
    }

    /** As {@link #fio(String, long, long, boolean)} in blocks of {@code blockSize} (a fio size, e.g. 1m). */
    static void fio(String uri, long offsetBytes, long sizeBytes, boolean verifyOnly, String blockSize) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=repl", "--ioengine=nbd", "--uri=" + uri,
                "--rw=randwrite", "--bs=" + blockSize, "--iodepth=16", "--offset=" + offsetBytes, "--size=" + sizeBytes,
                "--randseed=" + (7 + offsetBytes), "--verify=crc32c", "--verify_fatal=1", "--end_fsync=1"));
        cmd.add(verifyOnly ? "--verify_only" : "--do_verify=1");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("fio %s\n%s", String.join(" ", cmd), out).isZero();
        assertThat(out).doesNotContain("verify: bad").contains("err= 0");
    }

    JsonNode inspect(String node) throws Exception {
        return inspect(node, "rdb");
    }

    JsonNode inspect(String node, String volume) throws Exception {
        return JSON.readTree(ok(node, "volume", "inspect", volume, "-o", "json").out());
    }

    static List<String> inSync(JsonNode v) {
        List<String> out = new ArrayList<>();
        v.path("replicas").forEach(r -> {
            if (r.path("inSync").asBoolean()) {
                out.add(r.path("nodeId").asText());
            }
        });
        return out;
    }

    String get(String url) throws Exception {
        String token = java.nio.file.Files.readString(home.resolve("node-1/admin-token")).strip();
        try (java.net.http.HttpClient c = io.ballast.testing.LocalCa.httpClient(home)) {
            return c.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url)).header("Authorization", "Bearer " + token).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString()).body();
        }
    }

    /**
     * A node's pooled write payloads all freed once its writes are done (none leaked, none released
     * twice): the metrics fall to 0 within seconds of the last acknowledged write.
     */
    void assertPayloadsReleased(String node) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        String metrics = get(node + "/metrics");
        while (!metrics.contains("\nballast_write_payloads_live 0.0") && System.nanoTime() < deadline) {
            Thread.sleep(100); // polls the node's own gauge; nothing to wait on from outside
            metrics = get(node + "/metrics");
        }
        assertThat(metrics).contains("\nballast_write_payloads_live 0.0")
                .contains("\nballast_write_payload_over_releases_total 0.0");
    }

    @Test
    void replicaCrashEngineCrashFailoverAndResync() throws Exception {
        String n1 = url(1);
        String n2 = url(2);
        ok(n1, "volume", "create", "rdb", "--size", "256MiB", "--repl", "3");
        JsonNode attached = JSON.readTree(ok(n1, "volume", "attach", "rdb", "-o", "json").out());
        // over TCP a secure cluster wants TLS and a client certificate (NbdClusterTlsSystemTest); this
        // test's clients are local, on the unix socket
        assertThat(attached.path("nbdUri").asText()).startsWith("nbds://");
        String uri1 = attached.path("nbdUnixUri").asText();
        assertThat(uri1).startsWith("nbd+unix://");

        // 1. all three replicas in sync: write and verify 64 MiB
        fio(uri1, 0, 64 * MIB, false);
        assertThat(inSync(inspect(n1))).containsExactlyInAnyOrder("node-1", "node-2", "node-3");

        // 2. kill -9 a replica's node: writes go on (it leaves the in-sync set first)
        kill9(3);
        fio(uri1, 64 * MIB, 64 * MIB, false);
        JsonNode degraded = inspect(n1);
        assertThat(inSync(degraded)).containsExactlyInAnyOrder("node-1", "node-2");

        // 3. it comes back: delta resync copies what changed (64 MiB of 256), not the volume
        up();
        ok(n1, "volume", "wait", "rdb", "--timeout", "3m");
        JsonNode synced = inspect(n1);
        assertThat(inSync(synced)).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
        long resyncBytes = synced.path("engine").path("status").path("counters").path("resyncBytes").asLong();
        assertThat(resyncBytes).as("delta resync bytes").isPositive().isLessThanOrEqualTo(64 * MIB + 64 * MIB / 10 + 16 * MIB);
        String metrics = get(n1 + "/metrics");
        assertThat(metrics).contains("ballast_engine_state{state=\"serving\",volume=\"rdb\"} 1")
                .contains("ballast_engine_replicas_in_sync{volume=\"rdb\"} 3")
                .containsPattern("ballast_engine_resync_bytes_total\\{volume=\"rdb\"} [1-9]")
                .containsPattern("ballast_engine_replicas_removed_total\\{volume=\"rdb\"} [1-9]");
        // every write's pooled buffer went back, across a peer whose connection died under writes
        assertPayloadsReleased(n1);
        JsonNode report = JSON.readTree(ok(n1, "volume", "verify", "rdb", "-o", "json").out()).path("report");
        assertThat(report.path("differences")).isEmpty();
        assertThat(report.path("regionsCompared").asLong()).isEqualTo(SIZE / (4 * MIB));
        assertThat(report.path("replicaNodeIds")).hasSize(3);

        // 4. kill -9 the engine's node: attach on another node at once, every acknowledged write is there
        kill9(1);
        long t0 = System.nanoTime();
        JsonNode moved = JSON.readTree(ok(n2, "volume", "attach", "rdb", "-o", "json").out());
        String uri2 = moved.path("nbdUnixUri").asText();
        Process firstRead = new ProcessBuilder("nbdinfo", "--size", uri2).redirectErrorStream(true).start();
        assertThat(firstRead.waitFor(60, TimeUnit.SECONDS)).isTrue();
        long failoverMs = (System.nanoTime() - t0) / 1_000_000;
        System.out.println("failover: attach on node-2 to first completed NBD request: " + failoverMs + " ms");
        fio(uri2, 0, 64 * MIB, true);
        fio(uri2, 64 * MIB, 64 * MIB, true);
        assertPayloadsReleased(n2);
        JsonNode afterFailover = inspect(n2);
        assertThat(afterFailover.path("attachment").path("nodeId").asText()).isEqualTo("node-2");
        assertThat(inSync(afterFailover)).containsExactlyInAnyOrder("node-2", "node-3");
        report = JSON.readTree(ok(n2, "volume", "verify", "rdb", "-o", "json").out()).path("report");
        assertThat(report.path("differences")).isEmpty();

        // 5. the old engine node returns: it is fenced, resynced, and all three converge
        up();
        ok(n2, "volume", "wait", "rdb", "--timeout", "3m");
        report = JSON.readTree(ok(n2, "volume", "verify", "rdb", "-o", "json").out()).path("report");
        assertThat(report.path("replicaNodeIds")).hasSize(3);
        assertThat(report.path("differences")).isEmpty();
        fio(uri2, 0, 64 * MIB, true);
    }

    @Test
    void deltaResyncAfterChangingOnePercentCopiesLittle() throws Exception {
        String n1 = url(1);
        ok(n1, "volume", "create", "rdelta", "--size", "256MiB", "--repl", "3");
        String uri = JSON.readTree(ok(n1, "volume", "attach", "rdelta", "-o", "json").out()).path("nbdUnixUri").asText();
        // fill the whole volume (so that a full copy would be 256 MiB): large blocks, the fill's bytes are
        // what matters, not its pattern
        fio(uri, 0, SIZE, false, "1m");
        kill9(3);
        long changed = SIZE / 100; // 1 %, written sequentially in one place
        Process p = new ProcessBuilder("fio", "--name=one-percent", "--ioengine=nbd", "--uri=" + uri, "--rw=write",
                "--bs=64k", "--offset=" + 100 * MIB, "--size=" + changed, "--end_fsync=1").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        long before = inspect(n1, "rdelta").path("engine").path("status").path("counters").path("resyncBytes").asLong();
        up();
        ok(n1, "volume", "wait", "rdelta", "--timeout", "3m");
        long copied = inspect(n1, "rdelta").path("engine").path("status").path("counters").path("resyncBytes").asLong() - before;
        long regionBytes = 4 * MIB;
        // changed data + 10 % + a fixed overhead: the regions at both ends of the change and the unconfirmed tail
        long bound = changed + changed / 10 + 3 * regionBytes;
        System.out.println("delta resync after changing " + changed + " bytes copied " + copied + " bytes (bound " + bound + ")");
        assertThat(copied).isPositive().isLessThanOrEqualTo(bound);
        JsonNode report = JSON.readTree(ok(n1, "volume", "verify", "rdelta", "-o", "json").out()).path("report");
        assertThat(report.path("differences")).isEmpty();
    }
}

package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.testing.NetnsHost;
import io.ballast.testing.NodeProcess;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real network partition: one of three nodes runs in its own network namespace, joined to the
 * others by a veth pair, and the link goes down while fio writes through NBD to a 3-replica volume
 * attached on another node. The majority goes on: the cut-off replica leaves the in-sync set, the
 * node is marked down, writes complete. When the link comes back, the node rejoins, its replica is
 * delta-resynced, every acknowledged write reads back and the replicas are identical.
 */
@Tag("system")
class PartitionSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final ProcessCommandRunner SH = new ProcessCommandRunner();
    static final Path LAUNCHER = Path.of(System.getProperty("user.dir"), "bin", "ballast");
    static final long MIB = 1 << 20;
    static final long WAIT_SECONDS = 180;

    @TempDir
    Path dir;

    @Test
    void cutOffReplicaLeavesTheInSyncSetAndResyncsAfterTheLinkReturns() throws Exception {
        io.ballast.testing.Requirements.require("root".equals(System.getProperty("user.name")), "needs root: network namespaces and veth");
        io.ballast.testing.Requirements.require(SH.run(List.of("ip", "-V"), Duration.ofSeconds(10)).ok(), "ip (iproute2) missing: run bin/install-deps");
        io.ballast.testing.Requirements.require(Files.isExecutable(Path.of("/usr/bin/nsenter")), "nsenter missing: run bin/install-deps");
        List<AutoCloseable> cleanup = new ArrayList<>();
        try {
            NetnsHost far = NetnsHost.create();
            cleanup.add(far);
            String here = far.hereAddress;
            NodeProcess a = NodeProcess.start(dir.resolve("a"), List.of(), here,
                    List.of("--node-id", "node-a", "--raft-listen", here + ":0"));
            cleanup.add(a);
            adminToken = a.adminToken();
            String token = Files.readString(dir.resolve("a/cluster-token")).strip();
            String join = a.apiUrl().replace("http://", "");
            NodeProcess c = NodeProcess.start(dir.resolve("c"), List.of(), here,
                    List.of("--node-id", "node-c", "--raft-listen", here + ":0", "--join", join, "--token", token));
            cleanup.add(c);
            NodeProcess b = NodeProcess.start(dir.resolve("b"), far.prefix(), far.thereAddress,
                    List.of("--node-id", "node-b", "--raft-listen", far.thereAddress + ":0", "--join", join, "--token", token));
            cleanup.add(b);
            waitUntil("3 nodes up", () -> nodeStates(a.apiUrl()).stream().filter("up"::equals).count() == 3);

            ok(a.apiUrl(), "volume", "create", "p", "--size", "128MiB", "--repl", "3");
            String uri = JSON.readTree(ok(a.apiUrl(), "volume", "attach", "p", "-o", "json")).path("nbdUri").asText();
            fio(uri, 0, 32 * MIB, false);
            assertThat(inSync(volume(a.apiUrl(), "p"))).containsExactlyInAnyOrder("node-a", "node-b", "node-c");
            // the cut comes after a checkpoint covers these writes (one follows 100 ms after writes pause):
            // a cut before it would rightly resync them too, and the bound below is for the later writes
            long written = counters(volume(a.apiUrl(), "p")).path("writes").asLong();
            waitUntil("the first writes checkpointed", () -> writesCheckpointed(a.apiUrl(), "p") >= written);

            // 1. the link to node-b goes down while writes continue: they complete once node-b is out
            far.partition(true);
            long cutNs = System.nanoTime();
            fio(uri, 32 * MIB, 32 * MIB, false);
            System.out.printf("partition: 32 MiB written %d ms after the cut%n", (System.nanoTime() - cutNs) / 1_000_000);
            JsonNode during = volume(a.apiUrl(), "p");
            assertThat(inSync(during)).containsExactlyInAnyOrder("node-a", "node-c");
            waitUntil("node-b marked down", () -> nodeState(a.apiUrl(), "node-b").equals("down"));
            // the majority side still answers and decides (a write through the control plane)
            ok(c.apiUrl(), "volume", "create", "during-partition", "--size", "16MiB", "--repl", "2");

            // 2. the link returns: node-b rejoins, its replica is resynced (delta), all three identical
            far.partition(false);
            waitUntil("node-b up again", () -> nodeState(a.apiUrl(), "node-b").equals("up"));
            ok(a.apiUrl(), "volume", "wait", "p", "--timeout", "3m");
            JsonNode healed = volume(a.apiUrl(), "p");
            assertThat(inSync(healed)).containsExactlyInAnyOrder("node-a", "node-b", "node-c");
            long resyncBytes = counters(healed).path("resyncBytes").asLong();
            assertThat(resyncBytes).as("delta resync after the partition").isPositive().isLessThanOrEqualTo(32 * MIB + 16 * MIB);
            JsonNode report = JSON.readTree(ok(a.apiUrl(), "volume", "verify", "p", "-o", "json")).path("report");
            assertThat(report.path("replicaNodeIds")).hasSize(3);
            assertThat(report.path("differences")).isEmpty();
            fio(uri, 0, 32 * MIB, true);
            fio(uri, 32 * MIB, 32 * MIB, true);
            // node-b sees what the majority decided while it was cut off
            assertThat(volumeNames(b.apiUrl())).contains("during-partition");
        } finally {
            for (int i = cleanup.size() - 1; i >= 0; i--) {
                try {
                    cleanup.get(i).close();
                } catch (Exception e) {
                    System.err.println("cleanup: " + e);
                }
            }
        }
    }

    /** fio through NBD with crc32c verify; {@code verifyOnly} re-reads what the same job wrote. */
    static void fio(String uri, long offsetBytes, long sizeBytes, boolean verifyOnly) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=p" + offsetBytes, "--ioengine=nbd", "--uri=" + uri,
                "--rw=randwrite", "--bs=64k", "--iodepth=8", "--offset=" + offsetBytes, "--size=" + sizeBytes,
                "--randseed=" + (11 + offsetBytes), "--verify=crc32c", "--verify_fatal=1", "--end_fsync=1"));
        cmd.add(verifyOnly ? "--verify_only" : "--do_verify=1");
        CommandResult r = SH.run(cmd, Duration.ofSeconds(WAIT_SECONDS));
        assertThat(r.stdout() + r.stderr()).doesNotContain("verify: bad").contains("err= 0");
        assertThat(r.ok()).as(r.describe()).isTrue();
    }

    /** node-a's bootstrap admin token (node-a created the cluster). */
    static volatile String adminToken;

    static String ok(String apiUrl, String... args) {
        List<String> cmd = new ArrayList<>(List.of("env", "BALLAST_NO_BUILD=1", "BALLAST_TOKEN=" + adminToken, LAUNCHER.toString()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("--node", apiUrl));
        CommandResult r = SH.run(cmd, Duration.ofSeconds(WAIT_SECONDS));
        assertThat(r.ok()).as(r.describe()).isTrue();
        return r.stdout();
    }

    static JsonNode get(String url) throws Exception {
        try (HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()) {
            HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10))
                            .header("Authorization", "Bearer " + adminToken).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            return JSON.readTree(r.body());
        }
    }

    static JsonNode volume(String apiUrl, String name) throws Exception {
        return get(apiUrl + "/v1/volumes/" + name);
    }

    static List<String> volumeNames(String apiUrl) throws Exception {
        List<String> out = new ArrayList<>();
        JsonNode j = get(apiUrl + "/v1/volumes");
        (j.isArray() ? j : j.path("volumes")).forEach(v -> out.add(v.path("name").asText()));
        return out;
    }

    static List<String> inSync(JsonNode volume) {
        List<String> out = new ArrayList<>();
        volume.path("replicas").forEach(r -> {
            if (r.path("inSync").asBoolean()) {
                out.add(r.path("nodeId").asText());
            }
        });
        return out;
    }

    static List<String> nodeStates(String apiUrl) {
        List<String> out = new ArrayList<>();
        try {
            get(apiUrl + "/v1/nodes").path("nodes").forEach(n -> out.add(n.path("state").asText()));
        } catch (Exception | AssertionError e) {
            // not answering yet
        }
        return out;
    }

    /** The engine's counters in a volume inspect. */
    static JsonNode counters(JsonNode volume) {
        return volume.path("engine").path("status").path("counters");
    }

    static long writesCheckpointed(String apiUrl, String name) {
        try {
            return counters(volume(apiUrl, name)).path("writesCheckpointed").asLong(-1);
        } catch (Exception | AssertionError e) {
            return -1;
        }
    }

    static String nodeState(String apiUrl, String nodeId) {
        try {
            return get(apiUrl + "/v1/nodes/" + nodeId).path("state").asText();
        } catch (Exception | AssertionError e) {
            return "unknown";
        }
    }

    static void waitUntil(String what, BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(200);
        }
    }
}

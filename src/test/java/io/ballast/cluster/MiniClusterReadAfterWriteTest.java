package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.NodeClient;
import io.ballast.testing.MiniCluster;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Linearizable reads across nodes: a write acknowledged by node A is seen by an immediately
 * following read on every other node (reads go through the local Raft server's ReadIndex; a
 * follower must not answer from a state older than the leader's commit index).
 */
class MiniClusterReadAfterWriteTest {
    @TempDir
    Path dir;

    @Test
    void aWriteOnOneNodeIsSeenAtOnceByReadsOnTheOthers() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            c.awaitLeader();
            NodeClient[] api = new NodeClient[4];
            for (int i = 1; i <= 3; i++) {
                api[i] = c.client(i, Duration.ofSeconds(30));
            }
            // 200 metadata writes (cordon flips of node-3), each from a rotating node, read back at once on the two others
            for (int k = 0; k < 200; k++) {
                int a = 1 + k % 3;
                boolean cordoned = k % 2 == 0;
                api[a].post("/v1/nodes/node-3/" + (cordoned ? "cordon" : "uncordon"), Map.of());
                for (int b = 1; b <= 3; b++) {
                    if (b != a) {
                        JsonNode n = api[b].get("/v1/nodes/node-3");
                        assertThat(n.path("cordoned").asBoolean()).as("write %d on node-%d, read on node-%d", k, a, b)
                                .isEqualTo(cordoned);
                    }
                }
            }
            api[1].post("/v1/nodes/node-3/uncordon", Map.of());
            // volume create on A: inspect and list on B and C see it
            for (int k = 0; k < 15; k++) {
                int a = 1 + k % 3;
                String name = "raw" + k;
                JsonNode created = api[a].post("/v1/volumes", Map.of("name", name, "size", "1MiB"));
                // a follower answers with the record the leader applied, without waiting to apply it itself:
                // the answer must still be the whole volume, as an inspect on that node shows it right after
                JsonNode here = api[a].get("/v1/volumes/" + name);
                assertThat(created.path("sizeBytes").asLong()).as("create answer on node-%d", a).isEqualTo(1L << 20);
                assertThat(created.path("replicas").findValuesAsText("nodeId")).as("create answer on node-%d", a)
                        .hasSize(3).isEqualTo(here.path("replicas").findValuesAsText("nodeId"));
                assertThat(created.path("createdAt").asText()).isEqualTo(here.path("createdAt").asText()).isNotEmpty();
                assertThat(created.path("epoch").asLong()).isEqualTo(here.path("epoch").asLong());
                for (int b = 1; b <= 3; b++) {
                    if (b != a) {
                        JsonNode seen = api[b].get("/v1/volumes/" + name);
                        assertThat(seen.path("uuid").asText()).as("create %s on node-%d, inspect on node-%d", name, a, b)
                                .isEqualTo(created.path("uuid").asText());
                        assertThat(api[b].get("/v1/volumes").path("volumes").findValuesAsText("name")).contains(name);
                    }
                }
            }
        }
    }

    @Test
    void concurrentReadsOnFollowersShareRoundTripsAndStillSeeEveryEarlierWrite() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            int leader = c.awaitLeader();
            int[] followers = java.util.stream.IntStream.rangeClosed(1, 3).filter(i -> i != leader).toArray();
            c.client(leader).post("/v1/volumes", Map.of("name", "busy", "size", "1MiB"));
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(8);
            try {
                // readers keeping leader-index calls in flight on both followers, so that reads join them
                java.util.List<java.util.concurrent.Future<Integer>> readers = new java.util.ArrayList<>();
                for (int r = 0; r < 4; r++) {
                    NodeClient f = c.client(followers[r % 2], Duration.ofSeconds(30));
                    readers.add(pool.submit(() -> {
                        int n = 0;
                        while (!stop.get()) {
                            assertThat(f.get("/v1/volumes/busy").path("name").asText()).isEqualTo("busy");
                            n++;
                        }
                        return n;
                    }));
                }
                // writers: a create acknowledged by the leader is seen by the next read on either follower
                java.util.List<java.util.concurrent.Future<?>> writers = new java.util.ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    int thread = t;
                    writers.add(pool.submit(() -> {
                        NodeClient w = c.client(leader, Duration.ofSeconds(30));
                        for (int k = 0; k < 20; k++) {
                            String name = "c" + thread + "-" + k;
                            String uuid = w.post("/v1/volumes", Map.of("name", name, "size", "1MiB")).path("uuid").asText();
                            for (int f : followers) {
                                assertThat(c.client(f).get("/v1/volumes/" + name).path("uuid").asText())
                                        .as("%s created through the leader, read on node-%d", name, f).isEqualTo(uuid);
                            }
                        }
                        return null;
                    }));
                }
                for (var w : writers) {
                    w.get(120, java.util.concurrent.TimeUnit.SECONDS);
                }
                stop.set(true);
                int reads = 0;
                for (var r : readers) {
                    reads += r.get(30, java.util.concurrent.TimeUnit.SECONDS);
                }
                assertThat(reads).isPositive();
            } finally {
                stop.set(true);
                pool.shutdownNow();
            }
        }
    }
}

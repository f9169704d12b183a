package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.CliRunner;
import io.ballast.cli.NodeClient;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.NbdBlockClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With a majority of voters gone, a node says so at once: `ballast status` answers within 2 s with
 * its last known view and "quorum lost: 1 of 3 voters reachable", and a create fails fast with the
 * same reason, instead of each waiting out the request timeout (it took 21.8 s before).
 *
 * <p>Issue 23 item 5: a volume attached on the survivor (real engines) and written while the quorum is
 * lost serves again once it is back, with no detach: a new NBD connection reads what was written
 * before and writes again, the engine serves with every replica back in sync, health says healthy.
 */
class QuorumLossTest {
    @TempDir
    Path dir;

    @Test
    void statusAndCreatesAnswerFastWithTheReasonAndRecoverWhenAMajorityIsBack() throws Exception {
        try (MiniCluster c = new MiniCluster(dir, ClusterTimings.fast()).withRealEngines()) {
            for (int i = 1; i <= 3; i++) {
                c.add(Map.of("zone", "z" + i));
            }
            c.awaitLeader();
            MiniCluster.await(Duration.ofSeconds(30), "replication addresses registered", () -> c.member(1).state().nodes()
                    .stream().allMatch(n -> n.replicationAddress() != null));
            c.client(1, Duration.ofSeconds(30)).post("/v1/volumes?wait=ready", Map.of("name", "pg", "size", "1GiB"));

            // issue 23 item 4: a node of an incompatible cluster protocol is refused with what to do (a
            // version-less request is a node of an older build: 1.0, compatible)
            BallastException tooNew = null;
            try {
                c.client(1).post("/v1/cluster/join", Map.of("token", MiniCluster.TOKEN, "nodeId", "node-9", "apiUrl",
                        "http://127.0.0.1:1", "raftAddress", "127.0.0.1:1", "protocolVersion", "1.2"));
            } catch (BallastException e) {
                tooNew = e;
            }
            assertThat(tooNew).as("join of a node two minors ahead").isNotNull();
            assertThat(tooNew.code()).isEqualTo(ErrorCode.CONFLICT);
            assertThat(tooNew.getMessage()).isEqualTo("join refused: joining node node-9 speaks cluster protocol 1.2 and"
                    + " this cluster (node node-1) speaks 1.0: nodes work together only with the same major version and"
                    + " minor versions at most 1 apart; upgrade this cluster (node node-1) first, one minor version at a time"
                    + " (1.0 -> 1.1), following docs/operations.md \"Rolling upgrade\"; or start joining node node-9 with a"
                    + " release of cluster protocol 1.0 to 1.1");
            assertThat(c.member(1).state().node("node-9")).as("nothing registered").isEmpty();

            String nbdUri = c.node(1).volumes().attach("pg", null).nbdUri();
            NbdBlockClient nbd = NbdBlockClient.connect(nbdUri);
            byte[] before = block(1);
            nbd.write(0, before);
            nbd.flush();
            JsonNode ok = c.client(1).get("/v1/cluster").path("quorum");
            assertThat(ok.path("ok").asBoolean()).isTrue();
            assertThat(ok.path("voterCount").asInt()).isEqualTo(3);

            c.kill(2);
            c.kill(3);
            String url = c.url(1);
            CliRunner cli = new CliRunner().server(url, c.adminToken());
            CliRunner.Result[] lost = new CliRunner.Result[1];
            MiniCluster.await(Duration.ofSeconds(20), "status to report the lost quorum", () -> {
                lost[0] = cli.run("status", "--node", url);
                return lost[0].out().contains("Quorum:    LOST");
            });

            long t0 = System.nanoTime();
            CliRunner.Result status = cli.run("status", "--node", url);
            long statusMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(status.exit()).as(status.err()).isZero();
            assertThat(statusMs).as("status without quorum answers within 2 s").isLessThan(2000);
            assertThat(status.out()).contains("NO QUORUM: last known state");
            // the reachable voters are as the lost-quorum report saw them (a second status on a loaded machine
            // once printed NO QUORUM without the Quorum line: the lead has the output)
            assertThat(lost[0].out())
                    .contains("Quorum:    LOST, 1 of 3 voters reachable (node-1), a majority of 2 is needed; unreachable: node-2, node-3")
                    .contains("NO QUORUM: last known state")
                    .contains("pg"); // the last known volumes are still listed

            CliRunner.Result json = cli.run("status", "--node", url, "--output", "json");
            JsonNode q = io.ballast.common.Json.newMapper().readTree(json.out()).path("cluster").path("quorum");
            assertThat(q.path("ok").asBoolean()).isFalse();
            assertThat(q.path("reachableNodeIds")).extracting(JsonNode::asText).containsExactly("node-1");

            // a create fails fast, with the same reason
            t0 = System.nanoTime();
            BallastException refused = null;
            try {
                c.client(1, Duration.ofSeconds(30)).post("/v1/volumes", Map.of("name", "late", "size", "1GiB"));
            } catch (BallastException e) {
                refused = e;
            }
            long createMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(refused).as("create without quorum").isNotNull();
            assertThat(refused.code()).isEqualTo(ErrorCode.UNAVAILABLE);
            assertThat(refused.getMessage()).contains("quorum lost: 1 of 3 voters reachable");
            assertThat(createMs).isLessThan(2000);

            // a write while the quorum is lost: the replicas on node-2 and node-3 are gone, so the engine
            // must take them out of the in-sync set, which it cannot commit
            byte[] during = block(2);
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    nbd.write(4096, during);
                    nbd.flush();
                } catch (Exception e) {
                    // not acknowledged while the in-sync change cannot commit: the client times out
                }
            });
            // the write stays unacknowledged while the engine cannot commit taking the lost replicas out: let it be
            // in flight for a while (whether a removal committed before the quorum went varies from run to run)
            writer.join(Duration.ofSeconds(5));

            // a majority back: the same create works, and status says nothing about a lost quorum
            c.restart(2);
            MiniCluster.await(Duration.ofSeconds(30), "a create with the quorum back", () -> {
                try {
                    c.client(1, Duration.ofSeconds(30)).post("/v1/volumes", Map.of("name", "late", "size", "1GiB"));
                    return true;
                } catch (BallastException e) {
                    // an attempt that timed out while the quorum came back may have committed after all
                    return e.code() == ErrorCode.ALREADY_EXISTS;
                }
            });
            assertThat(cli.run("status", "--node", url).out()).doesNotContain("Quorum:").doesNotContain("NO QUORUM");
            c.restart(3);
            writer.join(Duration.ofSeconds(30));
            nbd.close();

            // the attached volume serves again with no detach: its engine was not fenced by the change
            // of its own that committed late, and resyncs the replicas that came back
            NodeClient api = c.client(1);
            MiniCluster.await(Duration.ofSeconds(60), "pg healthy again, its engine serving with every replica in sync", () -> {
                JsonNode v = api.get("/v1/volumes/pg");
                JsonNode st = v.path("engine").path("status");
                return "healthy".equals(v.path("health").asText()) && "serving".equals(st.path("state").asText())
                        && st.path("inSyncNodeIds").size() == 3 && st.path("resyncs").isEmpty();
            });
            byte[] after = block(3);
            try (NbdBlockClient again = NbdBlockClient.connect(nbdUri)) {
                again.write(8192, after);
                again.flush();
                assertThat(again.read(0, 4096)).as("written before the loss").isEqualTo(before);
                assertThat(again.read(8192, 4096)).as("written after the quorum came back").isEqualTo(after);
            }
            JsonNode v = api.get("/v1/volumes/pg");
            assertThat(v.path("engine").path("status").path("state").asText()).isEqualTo("serving");
            assertThat(api.get("/v1/volumes/pg/verify").path("identical").asBoolean()).as("replicas identical").isTrue();

            rollingRestart(c, nbdUri);
        }
    }

    /**
     * Issue 23 item 4, on the same cluster: every node restarted in turn (docs/operations.md "Rolling
     * upgrade") while a writer writes through pg's NBD export with no I/O error. node-2 and node-3 go
     * first while pg stays attached on node-1; pg's attachment then moves to node-2 (the documented
     * step for a node that holds attachments) and node-1 restarts. Every block reads back as written.
     */
    private static void rollingRestart(MiniCluster c, String nbdUriOnNode1) throws Exception {
        java.util.Map<Long, byte[]> written = new java.util.concurrent.ConcurrentHashMap<>();
        java.util.concurrent.atomic.AtomicLong next = new java.util.concurrent.atomic.AtomicLong(1 << 20);
        try (NbdBlockClient nbd = NbdBlockClient.connect(nbdUriOnNode1)) {
            for (int node : new int[] {2, 3}) {
                Writer w = Writer.start(nbd, written, next);
                c.restart(node);
                awaitHealthy(c, 1);
                w.stopAndCheck("while node-" + node + " restarted");
            }
            nbd.flush();
        }
        c.node(1).volumes().detach("pg");
        String nbdUriOnNode2 = c.node(2).volumes().attach("pg", null).nbdUri();
        try (NbdBlockClient nbd = NbdBlockClient.connect(nbdUriOnNode2)) {
            Writer w = Writer.start(nbd, written, next);
            c.restart(1);
            awaitHealthy(c, 2);
            w.stopAndCheck("while node-1 restarted");
            nbd.flush();
            for (var e : written.entrySet()) {
                assertThat(nbd.read(e.getKey(), 4096)).as("block at " + e.getKey()).isEqualTo(e.getValue());
            }
        }
        assertThat(written.size()).as("blocks written during the rolling restart").isGreaterThan(3);
    }

    private static void awaitHealthy(MiniCluster c, int holder) {
        NodeClient api = c.client(holder);
        MiniCluster.await(Duration.ofSeconds(60), "pg healthy with its engine on node-" + holder + " serving, every replica in sync",
                () -> {
                    JsonNode v = api.get("/v1/volumes/pg");
                    JsonNode st = v.path("engine").path("status");
                    return "healthy".equals(v.path("health").asText()) && "serving".equals(st.path("state").asText())
                            && st.path("inSyncNodeIds").size() == 3 && st.path("resyncs").isEmpty();
                });
    }

    /** Writes 4 KiB blocks one after another until stopped; the first I/O error ends it. */
    private record Writer(Thread thread, java.util.concurrent.atomic.AtomicBoolean stop,
            java.util.concurrent.atomic.AtomicReference<Exception> error) {
        static Writer start(NbdBlockClient nbd, java.util.Map<Long, byte[]> written, java.util.concurrent.atomic.AtomicLong next) {
            var stop = new java.util.concurrent.atomic.AtomicBoolean();
            var error = new java.util.concurrent.atomic.AtomicReference<Exception>();
            Thread t = Thread.ofVirtual().start(() -> {
                while (!stop.get()) {
                    long offset = next.getAndAdd(4096);
                    byte[] b = block((int) (offset >> 12));
                    try {
                        nbd.write(offset, b);
                        written.put(offset, b);
                    } catch (Exception e) {
                        error.set(e);
                        return;
                    }
                }
            });
            return new Writer(t, stop, error);
        }

        void stopAndCheck(String when) throws InterruptedException {
            stop.set(true);
            thread.join(Duration.ofSeconds(40));
            assertThat(error.get()).as("I/O error " + when).isNull();
        }
    }

    static byte[] block(int seed) {
        byte[] b = new byte[4096];
        new java.util.Random(seed).nextBytes(b);
        return b;
    }
}

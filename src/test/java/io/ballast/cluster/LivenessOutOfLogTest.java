package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cli.NodeClient;
import io.ballast.testing.MiniCluster;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Heartbeats keep the leader's failure detector fed without growing the Raft log: an idle 3-node
 * cluster (heartbeat every 200 ms, 15 a second in all) commits next to nothing, while a killed node is
 * still marked down and comes back up when it returns.
 */
class LivenessOutOfLogTest {
    @TempDir
    Path dir;

    @Test
    void anIdleClusterCommitsNoHeartbeatsYetDetectsAKilledNode() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            int leader = c.awaitLeader();
            for (int i = 1; i <= 3; i++) {
                c.awaitNodeState(leader, "node-" + i, NodeRecord.UP);
            }
            NodeClient api = c.client(2);
            // settle: the joins' registrations and replication addresses are committed
            MiniCluster.await(Duration.ofSeconds(20), "every node's lease heartbeats flowing",
                    () -> c.member(2).heartbeatCounts().get("lease") > 3 && c.member(3).heartbeatCounts().get("lease") > 3);

            long before = api.get("/v1/cluster").path("raftCommitIndex").asLong();
            long committedBefore = c.member(2).heartbeatCounts().get("committed");
            long leasesBefore = c.member(2).heartbeatCounts().get("lease");
            Thread.sleep(3000); // the measurement window itself: what an idle cluster commits in 3 s
            long after = api.get("/v1/cluster").path("raftCommitIndex").asLong();
            assertThat(before).isPositive();
            // 3 nodes x 5 heartbeats a second x 3 s = 45 entries when every heartbeat was one
            assertThat(after - before).as("log entries committed by an idle cluster in 3 s").isLessThanOrEqualTo(3);
            assertThat(c.member(2).heartbeatCounts().get("lease") - leasesBefore).isGreaterThanOrEqualTo(5);
            assertThat(c.member(2).heartbeatCounts().get("committed")).isEqualTo(committedBefore);

            String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(c.url(2) + "/metrics")).header("Authorization", "Bearer " + c.adminToken()).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            assertThat(metrics).contains("ballast_raft_commit_index ").contains("ballast_heartbeats_sent_total{kind=\"lease\"}");

            // failure detection still works from lease heartbeats alone
            Instant killedAt = Instant.now();
            c.kill(3);
            c.awaitNodeState(leader, "node-3", NodeRecord.DOWN);
            assertThat(Duration.between(killedAt, Instant.now())).isLessThan(Duration.ofSeconds(15));
            c.restart(3);
            c.awaitNodeState(leader, "node-3", NodeRecord.UP);
            // and a node that heartbeats only by lease is not marked suspect meanwhile
            assertThat(c.member(leader).state().node("node-2").orElseThrow().state()).isEqualTo(NodeRecord.UP);
        }
    }

    @Test
    void aNewLeaderJudgesNoOneBeforeOneDownAfterPeriodThenAsBefore() {
        ClusterTimings t = new ClusterTimings(500, 2000, 3000, 500, 8000, 500, 4096); // suspect 2 s, down 3 s
        // within one down-after period of taking over, a member whose first lease has not arrived yet (its
        // client still finding the new leader) is judged nothing: before, the new leader made it suspect at
        // 2 s, and members that never stopped heartbeating were suspect across a leader change
        assertThat(ClusterMember.verdict(NodeRecord.UP, 2500, false, t)).isNull();
        assertThat(ClusterMember.verdict(NodeRecord.UP, 2999, false, t)).isNull();
        assertThat(ClusterMember.verdict(NodeRecord.SUSPECT, 2999, false, t)).isNull();
        // a node not heard since the takeover is down when the period ends, as it was before
        assertThat(ClusterMember.verdict(NodeRecord.UP, 3000, true, t)).isEqualTo(NodeRecord.DOWN);
        assertThat(ClusterMember.verdict(NodeRecord.SUSPECT, 3000, true, t)).isEqualTo(NodeRecord.DOWN);
        // after it, the usual timeouts from each node's last lease
        assertThat(ClusterMember.verdict(NodeRecord.UP, 1999, true, t)).isNull();
        assertThat(ClusterMember.verdict(NodeRecord.UP, 2000, true, t)).isEqualTo(NodeRecord.SUSPECT);
        assertThat(ClusterMember.verdict(NodeRecord.SUSPECT, 2500, true, t)).isNull(); // already so: nothing to commit
        // down stays down until the node's own committed heartbeat brings it back
        assertThat(ClusterMember.verdict(NodeRecord.DOWN, 60_000, true, t)).isNull();
    }

    @Test
    void aHeartbeatIsCommittedOnlyForAStateOrCapacityChangeOrAStaleRecord() {
        Instant now = Instant.parse("2026-12-07T10:00:00Z");
        NodeRecord up = new NodeRecord("n", "http://a", "127.0.0.1:1", null, java.util.Map.of(), NodeRecord.UP, "up", false, false,
                null, 100L << 30, 50L << 30, "2026-12-07T09:00:00Z", "2026-12-07T09:59:00Z", null);
        assertThat(ClusterMember.mustCommitHeartbeat(up, 100L << 30, 50L << 30, now)).isFalse();
        // free space moved by 100 MiB of 100 GiB: below 1 % (1 GiB)
        assertThat(ClusterMember.mustCommitHeartbeat(up, 100L << 30, (50L << 30) - (100L << 20), now)).isFalse();
        // moved by 2 GiB: committed
        assertThat(ClusterMember.mustCommitHeartbeat(up, 100L << 30, 48L << 30, now)).isTrue();
        // marked suspect or down: only a committed heartbeat brings it back
        assertThat(ClusterMember.mustCommitHeartbeat(up.withState(NodeRecord.SUSPECT, "late"), 100L << 30, 50L << 30, now)).isTrue();
        // the record not refreshed for 5 minutes
        assertThat(ClusterMember.mustCommitHeartbeat(up, 100L << 30, 50L << 30, now.plusSeconds(301))).isTrue();
    }
}

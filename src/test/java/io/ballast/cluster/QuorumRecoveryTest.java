package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.CliRunner;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.NbdBlockClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 23, "Lost quorum": two of three nodes' data directories destroyed; `ballast cluster recover` on
 * the stopped survivor (docs/operations.md, "Lost quorum") brings it back as the only voter of the same
 * cluster (the admin token still works), with its volumes readable: pg (a replica on the survivor) reads
 * back the bytes written before, and regains a replica on a node that joins, after which it takes writes
 * again; gone (replicas only on the lost nodes, written) says it is lost instead of hanging. Real engines
 * and NBD, in-process nodes (stopped like a crash for Raft: what they acknowledged is on disk).
 */
class QuorumRecoveryTest {
    @TempDir
    Path dir;

    @Test
    void aSurvivorOfAMajorityLossGoesOnAloneWithItsVolumes() throws Exception {
        // TLS, as nodes run by default: the recovered node keeps its CA, certificates and tokens, and signs for the joiner
        try (MiniCluster c = new MiniCluster(dir, ClusterTimings.fast()).withTls(io.ballast.security.TlsSettings.secure())
                .withRealEngines()) {
            for (int i = 1; i <= 3; i++) {
                c.add(Map.of("zone", "z" + i));
            }
            c.awaitLeader();
            MiniCluster.await(Duration.ofSeconds(30), "replication addresses registered", () -> c.member(1).state().nodes()
                    .stream().allMatch(n -> n.replicationAddress() != null));
            String t = ClusterStateTest.T;
            c.node(1).volumes().create("pg", 64L << 20, 3, null, 0, true);
            // gone: two replicas, on node-2 and node-3 only (node-1 cordoned while it is placed), attached and written there
            c.member(1).raft().submit(new Command.SetCordon(t, "node-1", true));
            c.node(1).volumes().create("gone", 64L << 20, 2, null, 0, true);
            c.member(1).raft().submit(new Command.SetCordon(t, "node-1", false));
            try (NbdBlockClient nbd = NbdBlockClient.connect(c.node(2).volumes().attach("gone", null).nbdUnixUri())) {
                nbd.write(0, block(9));
                nbd.flush();
            }
            byte[] first = block(1);
            byte[] second = block(2);
            try (NbdBlockClient nbd = NbdBlockClient.connect(c.node(1).volumes().attach("pg", null).nbdUnixUri())) {
                nbd.write(0, first);
                nbd.write(1 << 20, second);
                nbd.flush();
            }
            c.node(1).volumes().detach("pg");

            Path survivor = c.dataDir(1).orElseThrow();
            CliRunner cli = new CliRunner();
            CliRunner.Result running = cli.run("cluster", "recover", "--data-dir", survivor.toString(), "--yes");
            assertThat(running.exit()).as(running.out() + running.err()).isEqualTo(4);
            assertThat(running.err()).contains("the node of " + survivor + " is running (pid ").contains("stop it first");
            Path notOurs = Files.createDirectories(dir.resolve("not-a-node"));
            CliRunner.Result wrongDir = cli.run("cluster", "recover", "--data-dir", notOurs.toString(), "--yes");
            assertThat(wrongDir.exit()).as(wrongDir.out() + wrongDir.err()).isEqualTo(5);
            assertThat(wrongDir.err()).contains(notOurs + " is not the data directory of a Ballast cluster member");

            String adminToken = c.adminToken();
            c.kill(2);
            c.kill(3);
            c.kill(1);
            for (int i = 2; i <= 3; i++) {
                deleteTree(c.dataDir(i).orElseThrow());
            }

            CliRunner.Result dry = cli.run("cluster", "recover", "--data-dir", survivor.toString());
            assertThat(dry.exit()).as(dry.out() + dry.err()).isEqualTo(4);
            assertThat(dry.out()).contains("Would recover node-1 as the only voter of its cluster, from its Raft log up to index ")
                    .contains("Removed:   node-2, node-3").contains("Degraded:  pg").contains("Lost:      gone")
                    .contains("Nothing was changed. To recover, run:\n  ballast cluster recover --data-dir " + survivor + " --yes");
            assertThat(survivor.resolve("raft")).as("nothing changed without --yes").isDirectory();
            CliRunner.Result json = cli.run("cluster", "recover", "--data-dir", survivor.toString(), "-o", "json");
            JsonNode plan = io.ballast.common.Json.newMapper().readTree(json.out());
            assertThat(plan.path("recovered").asBoolean()).isFalse();
            assertThat(plan.path("plan").path("lostVolumes")).extracting(JsonNode::asText).containsExactly("gone");
            assertThat(plan.path("plan").path("oldVoterNodeIds")).extracting(JsonNode::asText)
                    .containsExactly("node-1", "node-2", "node-3");
            // a stopped node has just taken a snapshot; without it, the same metadata comes from its log alone
            // (what a killed node's log tail goes through); the recovery below then uses the log only
            Path sm;
            try (var groups = Files.list(survivor.resolve("raft"))) {
                sm = groups.findFirst().orElseThrow().resolve("sm");
            }
            deleteTree(sm);
            JsonNode fromLog = io.ballast.common.Json.newMapper().readTree(cli.run("cluster", "recover", "--data-dir",
                    survivor.toString(), "-o", "json").out()).path("plan");
            assertThat(fromLog.path("snapshotIndex").asLong()).isEqualTo(-1);
            assertThat(fromLog.path("entriesReplayed").asInt()).isGreaterThan(20);
            for (String field : List.of("recoveredIndex", "recoveredTerm", "removedNodeIds", "lostVolumes", "degradedVolumes",
                    "untouchedVolumes", "oldVoterNodeIds")) {
                assertThat(fromLog.path(field)).as(field + " from the log alone").isEqualTo(plan.path("plan").path(field));
            }

            long t0 = System.nanoTime();
            CliRunner.Result done = cli.run("cluster", "recover", "--data-dir", survivor.toString(), "--yes");
            long recoverMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(done.exit()).as(done.out() + done.err()).isZero();
            Matcher m = Pattern.compile("Recovered node-1 as the only voter of its cluster, from its Raft log up to index (\\d+)"
                    + " \\(term (\\d+);").matcher(done.out());
            assertThat(m.find()).as(done.out()).isTrue();
            System.out.println(done.out());
            long index = Long.parseLong(m.group(1));
            long term = Long.parseLong(m.group(2));
            assertThat(done.out()).contains("Cost:      metadata changes the lost members may have committed after index " + index
                    + " are lost");

            long t1 = System.nanoTime();
            c.restart(1);
            long startMs = (System.nanoTime() - t1) / 1_000_000;
            System.out.printf("recover: %d ms offline, restart as the only voter %d ms (index %d, term %d)%n", recoverMs, startMs,
                    index, term);
            assertThat(survivor.resolve("recover")).as("the seed is dropped once the new group committed").doesNotExist();
            assertThat(c.member(1).raft().currentPeers()).extracting(p -> p.getId().toString()).containsExactly("node-1");
            assertThat(c.member(1).raft().commitIndex()).as("the log goes on after the recovered index").isGreaterThan(index);
            CliRunner admin = new CliRunner().server(c.url(1), adminToken)
                    .env("BALLAST_CA_FILE", survivor.resolve("tls").resolve("ca.crt").toString());
            CliRunner.Result nodes = admin.run("node", "list", "-o", "json");
            assertThat(nodes.exit()).as(nodes.err()).isZero();
            assertThat(nodes.out()).contains("node-1").doesNotContain("node-2").doesNotContain("node-3");
            assertThat(c.node(1).volumes().inspect("gone").health()).isEqualTo("unavailable");
            assertThat(c.node(1).volumes().inspect("pg").health()).isEqualTo("degraded");
            List<String> events = new ArrayList<>();
            for (ClusterEvent e : c.member(1).state().events(0, Integer.MAX_VALUE)) {
                events.add(e.type() + ": " + e.message());
            }
            assertThat(events).anyMatch(e -> e.startsWith("cluster-recovered: cluster recovered on node-1 alone from its Raft log"
                    + " at index " + index + " (term " + term + ","));
            assertThat(events).anyMatch(e -> e.startsWith("volume-lost: volume gone has no in-sync replica left"));

            // pg reads back what was written; node-4 joins and pg regains a replica there (rebuilt from node-1's)
            String uri = c.node(1).volumes().attach("pg", null).nbdUnixUri();
            try (NbdBlockClient nbd = NbdBlockClient.connect(uri)) {
                assertThat(nbd.read(0, 4096)).isEqualTo(first);
                assertThat(nbd.read(1 << 20, 4096)).isEqualTo(second);
            }
            c.add(Map.of("zone", "z4"));
            MiniCluster.await(Duration.ofSeconds(40), "pg with an in-sync replica on node-4", () -> {
                VolumeRecord v = c.member(1).state().volume("pg").orElseThrow();
                return v.inSyncNodes().contains("node-4") && v.inSyncNodes().contains("node-1");
            });
            byte[] third = block(3);
            try (NbdBlockClient nbd = NbdBlockClient.connect(uri)) {
                nbd.write(8192, third);
                nbd.flush();
                assertThat(nbd.read(0, 4096)).isEqualTo(first);
                assertThat(nbd.read(8192, 4096)).isEqualTo(third);
            }
            assertThat(c.member(1).state().volume("gone").orElseThrow().replicas())
                    .as("no empty replica placed for a lost volume").noneMatch(r -> r.nodeId().equals("node-4"));
        }
    }

    /** What the recovery does to the metadata, and that no Raft write can do it. */
    @Test
    void recoverClusterRemovesTheOthersAndSaysWhichVolumesAreLost() {
        String t = ClusterStateTest.T;
        ClusterState s = new ClusterState();
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(t, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i, null,
                    Map.of("zone", "z" + i), 100L << 30, 90L << 30));
        }
        s.apply(new Command.CreateVolume(t, "kept", "u1", 1L << 30, 3, null, 1.0));
        s.apply(new Command.Attach(t, "kept", ClusterStateTest.att("kept", "node-2")));
        s.apply(new Command.SetCordon(t, "node-1", true));
        s.apply(new Command.CreateVolume(t, "gone", "u2", 1L << 30, 2, null, 1.0));
        s.apply(new Command.CreateVolume(t, "fresh", "u3", 1L << 30, 2, null, 1.0));
        s.apply(new Command.SetCordon(t, "node-1", false));
        s.apply(new Command.Attach(t, "gone", ClusterStateTest.att("gone", "node-3")));
        s.apply(new Command.CreateVolume(t, "stale", "u4", 1L << 30, 3, null, 1.0));
        s.apply(new Command.Attach(t, "stale", ClusterStateTest.att("stale", "node-2")));
        long epoch = s.volume("stale").orElseThrow().epoch();
        s.apply(new Command.ChangeInSync(t, "stale", epoch, List.of("node-1"), List.of(), 7, "node-1 failed a write"));

        var r = (ClusterState.RecoveryResult) s.apply(new Command.RecoverCluster(t, "node-1", 120, 4, 118));
        assertThat(r.removedNodes()).containsExactly("node-2", "node-3");
        assertThat(r.degradedVolumes()).containsExactly("kept");
        assertThat(r.lostVolumes()).containsExactly("gone", "stale");
        assertThat(r.untouchedVolumes()).containsExactly("fresh");
        assertThat(s.nodes()).extracting(NodeRecord::id).containsExactly("node-1");
        assertThat(s.revokedCertificates()).containsOnlyKeys("node-2", "node-3");
        VolumeRecord kept = s.volume("kept").orElseThrow();
        assertThat(kept.inSyncNodes()).containsExactly("node-1");
        assertThat(kept.attachment()).as("attached on a lost node: released").isNull();
        assertThat(s.volume("stale").orElseThrow().replicas()).extracting(ReplicaRecord::nodeId).containsExactly("node-1");
        assertThat(s.volume("stale").orElseThrow().inSyncNodes()).isEmpty();
        assertThat(s.events(0, 1000)).anyMatch(e -> e.type().equals("volume-lost") && e.message().equals("volume stale has no"
                + " in-sync replica left: they were on nodes lost in the recovery on node-1; the replica on node-1 is not in"
                + " sync (it missed writes) and is kept, not served; restore it from a backup (`ballast backup list`) or"
                + " delete it (`ballast volume delete stale`)"));
        assertThat(s.events(0, 1000)).anyMatch(e -> e.type().equals("cluster-recovered") && e.message().equals("cluster"
                + " recovered on node-1 alone from its Raft log at index 120 (term 4, last known commit 118): metadata"
                + " changes the lost members may have committed after that are lost; removed node-2, node-3; 1 volume(s)"
                + " with a replica here go on degraded, 2 lost (no in-sync replica here)"));

        CommandGate gate = new CommandGate(CommandSeal.forToken(MiniCluster.TOKEN));
        byte[] sealed = CommandSeal.forToken(MiniCluster.TOKEN).seal(("{\"type\":\"RecoverCluster\",\"at\":\"" + t
                + "\",\"survivorNodeId\":\"node-1\"}").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertThatThrownBy(() -> gate.admit(sealed)).isInstanceOf(CommandSeal.Refused.class)
                .hasMessage("RecoverCluster is applied only offline, by `ballast cluster recover --data-dir DIR` on a stopped node");
    }

    private static byte[] block(int seed) {
        byte[] b = new byte[4096];
        new java.util.Random(seed).nextBytes(b);
        return b;
    }

    private static void deleteTree(Path p) throws java.io.IOException {
        try (var s = Files.walk(p)) {
            for (Path f : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(f);
            }
        }
    }
}

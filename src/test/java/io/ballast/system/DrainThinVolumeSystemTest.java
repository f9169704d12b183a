package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.NodeClient;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.NbdBlockClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 23 item 5: draining a node that holds a replica of a thin volume copies what the volume holds,
 * not its size. A 10 GiB volume with 64 MiB written (16 regions of 4 MiB spread over the whole size) is
 * rebuilt on a new node; the engine's copy counter says about 64 MiB, the rebuilt replica is identical
 * to the source (`volume verify`) and the data reads back. Issue 21: a second volume with a snapshot
 * (written A, snapshot s1, written B) is rebuilt by the same drain; the new replica holds s1 and is listed
 * as its holder, the snapshot's copies are identical, and after its last original holder is killed a
 * clone of s1 made from the new replica alone reads A. The snapshot copy's first attempt fails mid-copy
 * (injected through the node's peer-call seam): an event says so, the copy is retried from the other holder
 * (volume inspect on the copying node shows the second attempt) and completes before the replica is used.
 * Issue 23 item 6: a pool directory added to the
 * drained node while it runs, and its first pool removed: the replica there moves to another node (the
 * drain machinery) before the pool is let go, and the data reads back.
 */
class DrainThinVolumeSystemTest {
    static final long SIZE = 10L << 30;
    static final int PIECES = 16;
    /** A region (the unit of change tracking and of the rebuild's listing): FileStoragePool.REGION_BYTES. */
    static final int PIECE = (int) io.ballast.storage.FileStoragePool.REGION_BYTES;
    /** The volume whose snapshot is carried through the drain's rebuild. */
    static final long SNAPPED_SIZE = 4L * PIECE;

    @TempDir
    Path dir;

    @Test
    void drainOfAThinVolumeCopiesOnlyWhatWasWritten() throws Exception {
        try (MiniCluster c = new MiniCluster(dir.resolve("cluster"), io.ballast.cluster.ClusterTimings.fast()).withRealEngines()) {
            for (int i = 1; i <= 3; i++) {
                c.add(java.util.Map.of("zone", "z" + i));
            }
            c.awaitLeader();
            MiniCluster.await(Duration.ofSeconds(30), "replication addresses registered", () -> c.member(1).state().nodes()
                    .stream().allMatch(n -> n.replicationAddress() != null));
            c.node(1).volumes().create("thin", SIZE, 2, null, 2, true);
            c.node(1).volumes().create("snapped", SNAPPED_SIZE, 2, null, 2, true);
            NodeClient api = c.client(1);
            List<String> replicas = replicaNodes(api.get("/v1/volumes/thin"));
            assertThat(replicas).hasSize(2);
            List<String> snappedReplicas = replicaNodes(api.get("/v1/volumes/snapped"));
            // two 2-replica volumes on 3 nodes share a node: drain that one, so both are rebuilt elsewhere
            String drained = replicas.stream().filter(snappedReplicas::contains).findFirst().orElseThrow();
            int holder = index(replicas.stream().filter(n -> !n.equals(drained)).findFirst().orElseThrow());
            int snapHolder = index(snappedReplicas.stream().filter(n -> !n.equals(drained)).findFirst().orElseThrow());
            String newSnapNode = java.util.stream.IntStream.rangeClosed(1, 3).mapToObj(i -> "node-" + i)
                    .filter(n -> !snappedReplicas.contains(n)).findFirst().orElseThrow();
            NodeClient holderApi = c.client(holder);
            NodeClient snapApi = c.client(snapHolder);
            // issue 21: write A, snapshot s1, write B; s1 must survive the rebuild onto the new node
            byte[] a = new byte[(int) SNAPPED_SIZE];
            new Random(21).nextBytes(a);
            String snapUri = c.node(snapHolder).volumes().attach("snapped", null).nbdUri();
            try (NbdBlockClient nbd = NbdBlockClient.connect(snapUri)) {
                nbd.write(0, a);
                nbd.flush();
                c.node(snapHolder).volumes().createSnapshot("snapped", "s1");
                byte[] b = new byte[PIECE];
                new Random(22).nextBytes(b);
                nbd.write(PIECE, b); // B over the second region, and zeroes over the third (a zeroed block masks A there)
                nbd.write(2L * PIECE, new byte[PIECE]);
                nbd.flush();
            }
            String nbdUri = c.node(holder).volumes().attach("thin", null).nbdUri();
            long stride = SIZE / PIECES;
            List<byte[]> pieces = new ArrayList<>();
            try (NbdBlockClient nbd = NbdBlockClient.connect(nbdUri)) {
                Random random = new Random(23);
                for (int i = 0; i < PIECES; i++) {
                    byte[] b = new byte[PIECE];
                    random.nextBytes(b);
                    pieces.add(b);
                    nbd.write(i * stride, b);
                }
                nbd.flush();
            }
            long before = resyncBytes(holderApi);

            // the snapshot copy's first attempt loses its holder after 2 MiB (the seam: the node's peer calls); the
            // copy must be retried, from the other holder, and complete: the replica never goes on without s1
            int newIndex = index(newSnapNode);
            io.ballast.control.ClusterVolumeService newSvc = (io.ballast.control.ClusterVolumeService) c.node(newIndex).volumes();
            io.ballast.control.SnapshotSeeder.Peers realPeers = newSvc.snapshotPeers();
            List<String> readFrom = java.util.Collections.synchronizedList(new ArrayList<>());
            List<JsonNode> progressSeen = java.util.Collections.synchronizedList(new ArrayList<>());
            NodeClient newApi = c.client(newIndex);
            newSvc.snapshotPeers(new io.ballast.control.SnapshotSeeder.Peers() {
                @Override
                public io.ballast.control.SnapshotSeeder.Page changedBlocks(io.ballast.cluster.NodeRecord holderNode, String volume,
                        String snapshot, String base, long startOffsetBytes) {
                    if (!readFrom.isEmpty()) { // a later attempt: what volume inspect on the copying node shows now
                        progressSeen.add(newApi.get("/v1/volumes/" + volume).path("snapshotCopy"));
                    }
                    return realPeers.changedBlocks(holderNode, volume, snapshot, base, startOffsetBytes);
                }

                @Override
                public byte[] read(io.ballast.cluster.NodeRecord holderNode, String volume, String snapshot, long offsetBytes,
                        int lengthBytes) {
                    readFrom.add(holderNode.id());
                    if (readFrom.size() == 3) {
                        throw new io.ballast.common.BallastException(io.ballast.common.ErrorCode.UNAVAILABLE,
                                "injected: node " + holderNode.id() + " went away mid-copy");
                    }
                    return realPeers.read(holderNode, volume, snapshot, offsetBytes, lengthBytes);
                }
            });

            java.util.Set<String> copiedTo = java.util.concurrent.ConcurrentHashMap.newKeySet();
            long startNs = System.nanoTime();
            JsonNode drain = api.post("/v1/nodes/" + drained + "/drain", null);
            assertThat(drain.path("unplaced").isEmpty()).as(drain.toString()).isTrue();
            MiniCluster.await(Duration.ofMinutes(3), "the replacement replica in sync", () -> {
                JsonNode v = holderApi.get("/v1/volumes/thin");
                List<String> now = replicaNodes(v);
                JsonNode status = v.path("engine").path("status");
                status.path("resyncs").forEach(r -> copiedTo.add(r.path("nodeId").asText()));
                JsonNode sv = snapApi.get("/v1/volumes/snapped");
                JsonNode snapStatus = sv.path("engine").path("status");
                return !now.contains(drained) && now.size() == 2 && status.path("resyncs").isEmpty()
                        && status.path("inSyncNodeIds").size() == 2
                        && !replicaNodes(sv).contains(drained) && snapStatus.path("resyncs").isEmpty()
                        && snapStatus.path("inSyncNodeIds").size() == 2;
            });
            assertThat(copiedTo).as("the rebuild's progress names the new replica only").doesNotContain(drained);
            long copiedBytes = resyncBytes(holderApi) - before;
            long seconds = Duration.ofNanos(System.nanoTime() - startNs).toSeconds();
            // every written region, and only those (a client write meanwhile could add a region or two: there is none)
            assertThat(copiedBytes).as("bytes copied by the rebuild (%d s)", seconds).isEqualTo((long) PIECES * PIECE);
            System.out.printf("drain of a 10 GiB thin volume with 64 MiB written: %d MiB copied in %d s%n",
                    copiedBytes >> 20, seconds);

            // the drain left the node with no replica: `node list` says drained (docs/operations.md)
            JsonNode node = api.get("/v1/nodes/" + drained);
            assertThat(node.path("scheduling").asText()).as(node.toString()).isEqualTo("drained");

            JsonNode verify = holderApi.get("/v1/volumes/thin/verify");
            assertThat(verify.path("identical").asBoolean()).as(verify.toString()).isTrue();
            try (NbdBlockClient nbd = NbdBlockClient.connect(nbdUri)) {
                for (int i = 0; i < PIECES; i++) {
                    assertThat(nbd.read(i * stride, PIECE)).as("piece " + i).isEqualTo(pieces.get(i));
                }
            }

            // the rebuilt replica holds s1 (copied before the live data) and is listed as holding it; the drained node is not
            JsonNode s1 = snapApi.get("/v1/volumes/snapped/snapshots/s1");
            assertThat(s1.path("nodeIds")).extracting(JsonNode::asText).containsExactlyInAnyOrder("node-" + snapHolder, newSnapNode);
            JsonNode snapVerify = snapApi.get("/v1/volumes/snapped/verify");
            assertThat(snapVerify.path("identical").asBoolean()).as(snapVerify.toString()).isTrue();
            assertThat(snapVerify.path("snapshots").get(0).path("replicas")).extracting(r -> r.path("nodeId").asText())
                    .containsExactlyInAnyOrder("node-" + snapHolder, newSnapNode);
            List<io.ballast.cluster.ClusterEvent> events = c.member(1).state().events(0, 10_000);
            assertThat(events.stream().map(e -> e.type())).contains("snapshots-copied", "snapshot-copy-started");
            // the failed attempt: an event naming the failure, then the retry from the other holder (the drained node's
            // replica is still up while the drain copies, so both hold s1), which read the snapshot whole. (On a loaded
            // machine an attempt may also fail for real, e.g. the holder's metadata read timing out: retried the same way.)
            String firstSource = readFrom.get(0);
            assertThat(events).filteredOn(e -> e.type().equals("snapshot-copy-retrying"))
                    .anySatisfy(e -> assertThat(e.message()).contains("into the new replica on " + newSnapNode)
                            .contains("from " + firstSource).contains("injected: node " + firstSource + " went away mid-copy"));
            assertThat(readFrom.size()).as("reads: 3 of the failed attempt, then all of s1").isGreaterThanOrEqualTo(3 + 16);
            assertThat(readFrom.get(3)).as("the retry reads from the other holder").isNotEqualTo(firstSource);
            assertThat(progressSeen).as("volume inspect on the copying node during the retry").isNotEmpty().allSatisfy(p -> {
                assertThat(p.path("state").asText()).isEqualTo("copying");
                assertThat(p.path("attempt").asInt()).isGreaterThanOrEqualTo(2);
                assertThat(p.path("nodeId").asText()).isEqualTo(newSnapNode);
                assertThat(p.path("snapshotsTotal").asInt()).isEqualTo(1);
                assertThat(p.path("lastError").asText()).isNotEmpty();
            });
            assertThat(progressSeen.get(0).path("lastError").asText()).contains("went away mid-copy");

            // issue 21 item 2: a cut on the attached volume that was never recorded (what a kill -9 of the engine's
            // node between the cut and its CreateSnapshot leaves) is swept while the volume stays attached, through
            // its engine, from both replicas; the recorded s1 and the live data stay as they were
            c.node(snapHolder).engines().snapshot("snapped", io.ballast.replication.ReplicaRequest.SnapshotAction.CREATE, "orphan-cut");
            io.ballast.control.ClusterVolumeService holderSvc = (io.ballast.control.ClusterVolumeService) c.node(snapHolder).volumes();
            String s1Uuid = s1.path("uuid").asText();
            assertThat(holderSvc.localSnapshotLayers("snapped")).containsExactly(s1Uuid, "orphan-cut");
            assertThat(newSvc.localSnapshotLayers("snapped")).containsExactly(s1Uuid, "orphan-cut");
            holderSvc.layerSweepClock(java.time.Clock.offset(java.time.Clock.systemUTC(), Duration.ofMinutes(3))); // past the grace
            MiniCluster.await(Duration.ofSeconds(60), "the unrecorded layer swept from both replicas, and its event", () ->
                    holderSvc.localSnapshotLayers("snapped").equals(List.of(s1Uuid)) && newSvc.localSnapshotLayers("snapped").equals(List.of(s1Uuid))
                    && c.member(snapHolder).state().events(0, 10_000).stream().anyMatch(e -> e.type().equals("snapshot-layers-swept")));
            assertThat(c.member(snapHolder).state().events(0, 10_000)).filteredOn(e -> e.type().equals("snapshot-layers-swept"))
                    .singleElement().satisfies(e -> assertThat(e.message()).contains("orphan-cut").contains("node-" + snapHolder));
            assertThat(snapApi.get("/v1/volumes/snapped").path("attachment").path("nodeId").asText()).isEqualTo("node-" + snapHolder);
            JsonNode afterSweep = snapApi.get("/v1/volumes/snapped/verify");
            assertThat(afterSweep.path("identical").asBoolean()).as(afterSweep.toString()).isTrue();
            assertThat(afterSweep.path("snapshots").get(0).path("replicas").get(0).path("sha256").asText())
                    .isEqualTo(snapVerify.path("snapshots").get(0).path("replicas").get(0).path("sha256").asText());
            try (NbdBlockClient nbd = NbdBlockClient.connect(snapUri)) {
                assertThat(nbd.read(0, PIECE)).isEqualTo(java.util.Arrays.copyOfRange(a, 0, PIECE));
                assertThat(nbd.read(2L * PIECE, PIECE)).isEqualTo(new byte[PIECE]);
            }

            // kill the last original holder: a clone of s1, made from the new replica alone, reads A
            c.kill(snapHolder);
            c.awaitNodeState(newIndex, "node-" + snapHolder, "down");
            c.node(newIndex).volumes().createFromSnapshot("s1copy", "snapped", "s1", 1, null, 1);
            String cloneUri = c.node(newIndex).volumes().attach("s1copy", null).nbdUri();
            try (NbdBlockClient nbd = NbdBlockClient.connect(cloneUri)) {
                for (int off = 0; off < SNAPPED_SIZE; off += PIECE) {
                    assertThat(nbd.read(off, PIECE)).as("s1 at " + off).isEqualTo(java.util.Arrays.copyOfRange(a, off, off + PIECE));
                }
            }

            removingAPoolMovesItsReplicasFirst(c, index(drained), newIndex);
        }
    }

    /** Node {@code d} (empty, cordoned by the drain) gets a second pool, a replica in its first, and loses that pool. */
    private void removingAPoolMovesItsReplicasFirst(MiniCluster c, int d, int other) throws Exception {
        NodeClient dApi = c.client(d);
        NodeClient api = c.client(other);
        api.post("/v1/nodes/node-" + d + "/uncordon", null);
        api.post("/v1/volumes", java.util.Map.of("name", "pooled", "size", "16MiB", "repl", 1, "preferNode", "node-" + d));
        MiniCluster.await(Duration.ofSeconds(30), "pooled's replica ready on node-" + d,
                () -> api.get("/v1/volumes/pooled").path("health").asText().equals("healthy"));
        assertThat(replicaNodes(api.get("/v1/volumes/pooled"))).containsExactly("node-" + d);
        // a second disk added while the node runs (after the replica: it stays in the first pool)
        Path spare = java.nio.file.Files.createDirectories(dir.resolve("spare"));
        JsonNode added = dApi.post("/v1/node/pools", java.util.Map.of("dir", spare.toString()));
        assertThat(added.path("name").asText()).isEqualTo("spare");
        assertThat(dApi.get("/v1/node").path("pool").path("pools").findValuesAsText("name")).containsExactly("default", "spare");
        byte[] data = new byte[PIECE];
        new Random(61).nextBytes(data);
        String uri = c.node(other).volumes().attach("pooled", null).nbdUri();
        try (NbdBlockClient nbd = NbdBlockClient.connect(uri)) {
            nbd.write(PIECE, data);
            nbd.flush();
        }
        JsonNode removing = dApi.delete("/v1/node/pools/default");
        assertThat(removing.path("removed").asBoolean()).as(removing.toString()).isFalse();
        assertThat(removing.path("replacementNodeIds").path("pooled").asText()).isEqualTo("node-" + other);
        MiniCluster.await(Duration.ofMinutes(2), "pooled moved off node-" + d + " and its pool let go", () ->
                replicaNodes(api.get("/v1/volumes/pooled")).equals(List.of("node-" + other))
                        && dApi.get("/v1/node").path("pool").path("pools").findValuesAsText("name").equals(List.of("spare")));
        assertThat(java.nio.file.Files.readString(dir.resolve("cluster/node-" + d + "/pools.json")))
                .contains("spare").doesNotContain("\"default\"");
        try (NbdBlockClient nbd = NbdBlockClient.connect(uri)) {
            assertThat(nbd.read(PIECE, PIECE)).isEqualTo(data);
        }
        // a node's last pool is not removed: there would be nowhere for replicas
        assertThatThrownBy(() -> dApi.delete("/v1/node/pools/spare")).hasMessageContaining("this node's only pool");
    }

    static int index(String nodeId) {
        return Integer.parseInt(nodeId.substring("node-".length()));
    }

    static List<String> replicaNodes(JsonNode volume) {
        List<String> out = new ArrayList<>();
        volume.path("replicas").forEach(r -> out.add(r.path("nodeId").asText()));
        return out;
    }

    static long resyncBytes(NodeClient api) {
        return api.get("/v1/volumes/thin").path("engine").path("status").path("counters").path("resyncBytes").asLong();
    }
}

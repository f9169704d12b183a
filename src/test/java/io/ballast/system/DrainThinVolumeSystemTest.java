package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

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
 * clone of s1 made from the new replica alone reads A.
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
            assertThat(c.member(1).state().events(0, 10_000).stream().map(e -> e.type())).contains("snapshots-copied");

            // kill the last original holder: a clone of s1, made from the new replica alone, reads A
            c.kill(snapHolder);
            int newIndex = index(newSnapNode);
            c.awaitNodeState(newIndex, "node-" + snapHolder, "down");
            c.node(newIndex).volumes().createFromSnapshot("s1copy", "snapped", "s1", 1, null, 1);
            String cloneUri = c.node(newIndex).volumes().attach("s1copy", null).nbdUri();
            try (NbdBlockClient nbd = NbdBlockClient.connect(cloneUri)) {
                for (int off = 0; off < SNAPPED_SIZE; off += PIECE) {
                    assertThat(nbd.read(off, PIECE)).as("s1 at " + off).isEqualTo(java.util.Arrays.copyOfRange(a, off, off + PIECE));
                }
            }
        }
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

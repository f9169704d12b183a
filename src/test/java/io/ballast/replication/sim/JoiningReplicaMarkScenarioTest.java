package io.ballast.replication.sim;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.replication.EngineConfig;
import io.ballast.replication.MetadataClient;
import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.VerifyReport;
import io.ballast.replication.VolumeEngine;
import io.ballast.replication.VolumeLayout;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Scripted simulator scenarios (no seed): the real engine, {@link ReplicaLogic} over {@link SimDisk}s and a
 * compare-and-set control plane like {@link Simulation}'s, with every message delivered when the script
 * says. They drive a replica that is joining the in-sync set through a checkpoint it never completed, then
 * lose it in a crash, and check that its recorded mark still makes the next delta resync copy what it lost.
 *
 * <p>The sequence: replica c finishes its resync (final flush answered) and its add is sent; while the add
 * is in flight, write W is answered Done by a, b and c (c only in its cache) and acknowledged; a checkpoint
 * round completes on a and b (the in-sync set the engine knows), but c crashes before it applies the
 * checkpoint's flush, losing W. Then c's add is settled and c removed. W is tagged below the new checkpoint
 * on a and b, so if c were marked "missed since" that checkpoint, its delta resync would not list W's region
 * and c would rejoin without W.
 */
class JoiningReplicaMarkScenarioTest {
    static final int SIZE_BYTES = 16 * 1024;
    static final long REGION_BYTES = 4096;
    static final String UUID = "vol-uuid";
    /** Timeouts far beyond the script's clock: only the script fails a replica. */
    static final EngineConfig CONFIG = new EngineConfig(60_000, 1_000, 0, 0, 16, 100, 50, 4);

    /** How c's add is settled before c is removed. */
    enum AddOutcome {
        /** The add commits and the engine hears it after c failed: c joins, abandoned, and leaves at once. */
        COMMITTED_AFTER_CRASH,
        /** The add commits but its answer is lost: the engine learns it from the refusal of its next change. */
        COMMITTED_REPLY_LOST,
        /** The add commits while c is healthy (its checkpoint flush still unanswered); c crashes right after. */
        COMMITTED_BEFORE_CRASH
    }

    private final Map<String, SimDisk> disks = new LinkedHashMap<>();
    private final Map<String, ReplicaLogic> logic = new HashMap<>();
    private final Map<String, ArrayDeque<ReplicaRequest>> queued = new HashMap<>();
    /** Nodes whose requests wait in their queue (the script delivers them later, or they are lost in a crash). */
    private final Set<String> held = new HashSet<>();
    /** Crashed nodes: every request is answered Failed UNAVAILABLE until the script restarts them. */
    private final Set<String> down = new HashSet<>();
    private final List<PendingChange> pendingChanges = new ArrayList<>();
    /** missedSinceGeneration recorded for each in-sync replica the control plane removed. */
    private final List<Long> removalMarks = new ArrayList<>();
    private final byte[] model = new byte[SIZE_BYTES];
    private VolumeLayout cp;
    private VolumeEngine engine;
    private long nowMs = 1_000;

    private record PendingChange(MetadataClient.InSyncChange change, Consumer<MetadataClient.Result> done) {}

    @ParameterizedTest
    @EnumSource(AddOutcome.class)
    void crashedJoiningReplicaIsResyncedFromWhatItCompleted(AddOutcome outcome) {
        for (String n : List.of("a", "b", "c")) {
            SimDisk d = new SimDisk(UUID, SIZE_BYTES, REGION_BYTES, () -> false);
            disks.put(n, d);
            logic.put(n, new ReplicaLogic(uuid -> uuid.equals(UUID) ? Optional.of(d) : Optional.empty()));
            queued.put(n, new ArrayDeque<>());
        }
        cp = new VolumeLayout("vol", UUID, SIZE_BYTES, 5, 5, "a", 1, List.of(new VolumeLayout.Replica("a", true, 0, true),
                new VolumeLayout.Replica("b", true, 0, true), new VolumeLayout.Replica("c", false, 0, true)));
        engine = new VolumeEngine(cp, "a", CONFIG, this::send, (change, done) -> pendingChanges.add(new PendingChange(change, done)));
        boolean[] opened = {false};
        engine.open(nowMs, e -> opened[0] = e == null);
        deliverAll();
        assertThat(opened[0]).isTrue();
        write(0, 3000, (byte) 0x11); // data c's full resync copies

        // c is probed and resynced; its add goes to the control plane and stays there.
        for (int i = 0; i < 50 && pendingChanges.isEmpty(); i++) {
            tick(10);
        }
        assertThat(pendingChanges).hasSize(1);
        PendingChange add = pendingChanges.removeFirst();
        assertThat(add.change().add()).containsExactly("c");

        // W: answered by a, b and c (c only in its cache), acknowledged while the add is in flight.
        write(8192, 1000, (byte) 0x5A);

        // A checkpoint completes on a and b; c gets its flush and checkpoint but does not apply them yet.
        held.add("c");
        tick(200);
        assertThat(queued.get("c")).hasSize(2).allMatch(r -> r instanceof ReplicaRequest.Flush
                || r instanceof ReplicaRequest.Checkpoint);

        switch (outcome) {
            case COMMITTED_AFTER_CRASH -> {
                crash("c");
                commit(add, false);
            }
            case COMMITTED_REPLY_LOST -> {
                crash("c");
                commit(add, true);
            }
            case COMMITTED_BEFORE_CRASH -> {
                commit(add, false);
                assertThat(engine.layout().inSyncNodes()).contains("c");
                crash("c");
            }
        }
        // While c is down, the engine settles the add and removes c; then c comes back and is resynced from
        // the mark that removal recorded.
        held.remove("c");
        for (int i = 0; i < 100 && removalMarks.isEmpty(); i++) {
            answerMetadata();
            tick(10);
        }
        assertThat(removalMarks).hasSize(1);
        assertThat(removalMarks.getFirst()).as("c's mark keeps its next resync a delta").isPositive();
        down.remove("c");
        for (int i = 0; i < 200 && !(engine.idle() && cp.inSyncNodes().size() == 3); i++) {
            answerMetadata();
            tick(10);
        }
        assertThat(cp.inSyncNodes()).containsExactlyInAnyOrder("a", "b", "c");
        assertThat(engine.idle()).isTrue();

        // Every in-sync replica returns every acknowledged write, and the engine's verify finds them identical.
        for (String n : cp.inSyncNodes()) {
            ReplicaReply r = logic.get(n).handle(new ReplicaRequest.Read(0, UUID, cp.epoch(), 0, SIZE_BYTES));
            assertThat(firstDifference(((ReplicaReply.Data) r).data()))
                    .as("first byte of replica %s that lacks an acknowledged write (marks on removal %s)", n,
                            removalMarks.stream().map(Long::toHexString).toList())
                    .isEqualTo(-1);
        }
        VerifyReport[] report = {null};
        engine.verify(rep -> report[0] = rep, e -> {
            throw e;
        });
        deliverAll();
        assertThat(report[0].differences()).isEmpty();
    }

    /** The first offset where {@code image} differs from the acknowledged writes, or -1. */
    private int firstDifference(byte[] image) {
        for (int i = 0; i < SIZE_BYTES; i++) {
            if (image[i] != model[i]) {
                return i;
            }
        }
        return -1;
    }

    // ---------------------------------------------------------------- script steps

    private void write(int offsetBytes, int lengthBytes, byte value) {
        byte[] data = new byte[lengthBytes];
        Arrays.fill(data, value);
        BallastException[] error = {null};
        boolean[] acked = {false};
        engine.write(offsetBytes, data, false, (d, e) -> {
            acked[0] = true;
            error[0] = e;
        });
        deliverAll();
        assertThat(acked[0]).as("write at %d acknowledged", offsetBytes).isTrue();
        assertThat(error[0]).isNull();
        System.arraycopy(data, 0, model, offsetBytes, lengthBytes);
    }

    private void tick(long elapsedMs) {
        nowMs += elapsedMs;
        engine.tick(nowMs);
        deliverAll();
    }

    /** The node loses its cache and every request sent to it (the transport fails them), and stays down. */
    private void crash(String node) {
        disks.get(node).crash();
        down.add(node);
        List<ReplicaRequest> lost = new ArrayList<>(queued.get(node));
        queued.get(node).clear();
        for (ReplicaRequest r : lost) {
            engine.onReply(node, new ReplicaReply.Failed(r.requestId(), ErrorCode.UNAVAILABLE, "connection lost", -1));
        }
        deliverAll();
    }

    private void commit(PendingChange p, boolean replyLost) {
        MetadataClient.Result result = apply(p.change());
        p.done().accept(replyLost ? new MetadataClient.Result.Unavailable("reply lost (scripted)") : result);
        deliverAll();
    }

    /** Answers every change the engine asked for (in order), as the control plane would. */
    private void answerMetadata() {
        while (!pendingChanges.isEmpty()) {
            PendingChange p = pendingChanges.removeFirst();
            p.done().accept(apply(p.change()));
            deliverAll();
        }
    }

    /** Compare-and-set on the epoch; a replica already out of sync keeps its older mark (as ClusterState). */
    private MetadataClient.Result apply(MetadataClient.InSyncChange change) {
        if (change.expectedEpoch() != cp.epoch()) {
            return new MetadataClient.Result.Fenced(cp);
        }
        List<VolumeLayout.Replica> next = new ArrayList<>();
        for (VolumeLayout.Replica r : cp.replicas()) {
            if (change.remove().contains(r.nodeId())) {
                if (r.inSync()) {
                    removalMarks.add(change.missedSinceGeneration());
                }
                next.add(new VolumeLayout.Replica(r.nodeId(), false, r.inSync() ? change.missedSinceGeneration()
                        : r.missedSinceGeneration(), r.ready()));
            } else if (change.add().contains(r.nodeId())) {
                next.add(new VolumeLayout.Replica(r.nodeId(), true, 0, r.ready()));
            } else {
                next.add(r);
            }
        }
        cp = new VolumeLayout(cp.volumeName(), UUID, SIZE_BYTES, cp.epoch() + 1, cp.attachEpoch(), cp.attachedNodeId(),
                cp.minInSync(), next);
        return new MetadataClient.Result.Committed(cp);
    }

    // ---------------------------------------------------------------- network: one FIFO per node, delivered on demand

    private void send(String node, ReplicaRequest request) {
        queued.get(node).add(request); // never delivered from inside the engine's call
    }

    /** Applies queued requests of every node not held, one at a time, until none is left. */
    private void deliverAll() {
        boolean progress = true;
        while (progress) {
            progress = false;
            for (String n : disks.keySet()) {
                ArrayDeque<ReplicaRequest> q = queued.get(n);
                if (!held.contains(n) && !q.isEmpty()) {
                    ReplicaRequest r = q.poll();
                    engine.onReply(n, down.contains(n)
                            ? new ReplicaReply.Failed(r.requestId(), ErrorCode.UNAVAILABLE, "node down", -1)
                            : logic.get(n).handle(r));
                    progress = true;
                }
            }
        }
    }
}

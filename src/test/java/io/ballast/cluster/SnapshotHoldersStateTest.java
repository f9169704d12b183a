package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Issue 21: who the metadata lists as holding a snapshot. A node whose replica is replaced is dropped
 * from the holders; the new replica's node is added once its copy is recorded (AddSnapshotHolder);
 * refusals change nothing; a sweep of unrecorded layers is an event only.
 */
class SnapshotHoldersStateTest {
    static final String AT = "2026-12-07T09:00:00Z";

    @Test
    void aReplacedReplicasNodeIsDroppedAndTheNewOneAddedOnceItsCopyIsRecorded() throws Exception {
        ClusterState s = new ClusterState();
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(AT, "n" + i, "http://127.0.0.1:" + i, "127.0.0.1:1" + i, null, Map.of(), 1L << 40, 1L << 40));
        }
        s.apply(new Command.CreateVolume(AT, "v", "uuid-v", 1L << 30, 2, null, 1.0));
        List<String> placed = s.volume("v").orElseThrow().replicas().stream().map(ReplicaRecord::nodeId).toList();
        String third = List.of("n1", "n2", "n3").stream().filter(n -> !placed.contains(n)).findFirst().orElseThrow();
        s.apply(new Command.CreateSnapshot(AT, "v", "uuid-v", "s1", "snap-1", 1L << 30, 1, placed));

        s.apply(new Command.ReplaceReplica(AT, "v", placed.get(0), 1.0, "drained"));
        assertThat(s.snapshot("v", "s1").orElseThrow().nodes()).containsExactly(placed.get(1));
        assertThat(s.volume("v").orElseThrow().hasReplicaOn(third)).isTrue();

        byte[] before = s.toBytes();
        assertThatThrownBy(() -> s.apply(new Command.AddSnapshotHolder(AT, "v", "uuid-other", third, placed.get(1), List.of("snap-1"))))
                .hasMessageContaining("deleted");
        assertThatThrownBy(() -> s.apply(new Command.AddSnapshotHolder(AT, "v", "uuid-v", placed.get(0), placed.get(1), List.of("snap-1"))))
                .hasMessageContaining("has no replica");
        assertThat(s.toBytes()).isEqualTo(before);

        s.apply(new Command.AddSnapshotHolder(AT, "v", "uuid-v", third, placed.get(1), List.of("snap-1", "snap-gone")));
        assertThat(s.snapshot("v", "s1").orElseThrow().nodes()).containsExactlyInAnyOrder(placed.get(1), third);
        assertThat(s.events(0, 100)).anySatisfy(e -> assertThat(e.type() + " " + e.message()).isEqualTo("snapshots-copied snapshot s1 of v"
                + " copied to the new replica on " + third + " from " + placed.get(1)));

        s.apply(new Command.RecordSweptSnapshotLayers(AT, "v", third, List.of("snap-gone")));
        assertThat(s.events(0, 100)).anySatisfy(e -> assertThat(e.type() + " " + e.message()).contains("snapshot-layers-swept")
                .contains(third).contains("snap-gone"));
        assertThat(s.snapshot("v", "s1").orElseThrow().nodes()).containsExactlyInAnyOrder(placed.get(1), third);
    }

    @Test
    void aSnapshotCopysAttemptsAreEventsOnly() throws Exception {
        ClusterState s = new ClusterState();
        s.apply(new Command.RecordSnapshotCopy(AT, "v", "n3", "n1", Command.COPY_STARTED, 1, 0, 2, 0, null, 0));
        s.apply(new Command.RecordSnapshotCopy(AT, "v", "n3", "n1", Command.COPY_RETRYING, 1, 1, 2, 3L << 20,
                "connection refused", 2_000));
        s.apply(new Command.RecordSnapshotCopy(AT, "v", "n3", "n2", Command.COPY_ABANDONED, 8, 1, 2, 3L << 20, "no up node", 0));
        assertThat(s.events(0, 100)).extracting(e -> e.type() + " " + e.message()).containsExactly(
                "snapshot-copy-started copying snapshots of v into the new replica on n3 from n1 (attempt 1, 2 snapshots)",
                "snapshot-copy-retrying copy of snapshots of v into the new replica on n3 from n1 failed (attempt 1, 1 of 2"
                        + " snapshots, 3145728 bytes copied): connection refused; retrying in 2 s",
                "snapshot-copy-abandoned copy of snapshots of v into the new replica on n3 from n2 given up after 8 attempts"
                        + " (no up node); the replica is rebuilt without them, their other holders keep them");
        assertThat(s.snapshots(null)).isEmpty();
        assertThatThrownBy(() -> CommandGate.validate(new Command.RecordSnapshotCopy(AT, "v", "n3", "n1", "done", 1, 0, 2, 0, null, 0)))
                .hasMessageContaining("outcome must be started, retrying or abandoned");
        assertThatThrownBy(() -> CommandGate.validate(new Command.RecordSnapshotCopy(AT, null, "n3", "n1", "started", 1, 0, 2, 0, null, 0)))
                .hasMessageContaining("volume is missing");
    }
}

package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import io.ballast.control.Attachment;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ClusterStateTest {
    static final String T = "2026-11-21T00:00:00Z";
    ClusterState s;

    @BeforeEach
    void cluster() {
        s = new ClusterState();
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(T, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i,
                    "127.0.0.1:1080" + i, Map.of("zone", "z" + i), 100 * Sizes.GIB, 90 * Sizes.GIB));
        }
    }

    Command.CreateVolume create(String name, long size, int repl) {
        return new Command.CreateVolume(T, name, "uuid-" + name, size, repl, null, 1.0);
    }

    /** A refused command leaves the metadata byte-for-byte unchanged. */
    void refusedUnchanged(Command c, ErrorCode code, String message) throws Exception {
        byte[] before = s.toBytes();
        assertThatThrownBy(() -> s.apply(c)).isInstanceOf(BallastException.class)
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(code)).hasMessageContaining(message);
        assertThat(Arrays.equals(before, s.toBytes())).as("metadata unchanged").isTrue();
    }

    @Test
    void createPlacesReplicasInDistinctZones() {
        VolumeRecord v = (VolumeRecord) s.apply(create("pg", 10 * Sizes.GIB, 0));
        assertThat(v.repl()).isEqualTo(3);
        assertThat(v.replicas()).extracting(ReplicaRecord::nodeId).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
        assertThat(v.replicas()).allMatch(r -> r.state().equals(ReplicaRecord.PENDING));
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("volume-created") && e.message().contains("node-1: chosen"));
    }

    @Test
    void badInputIsRefusedAndChangesNothing() throws Exception {
        s.apply(create("pg", Sizes.GIB, 2));
        refusedUnchanged(create("pg", Sizes.GIB, 1), ErrorCode.ALREADY_EXISTS, "already exists");
        refusedUnchanged(create("big", 1000 * Sizes.GIB, 1), ErrorCode.NO_SPACE, "100 GiB free, 1000 GiB asked");
        refusedUnchanged(create("many", Sizes.GIB, 4), ErrorCode.INVALID_ARGUMENT, "the cluster has 3 zones");
        refusedUnchanged(create("bad name!", Sizes.GIB, 1), ErrorCode.INVALID_ARGUMENT, "");
        refusedUnchanged(create("odd", 1000, 1), ErrorCode.INVALID_ARGUMENT, "multiple of 512");
        refusedUnchanged(new Command.DeleteVolume(T, "nope"), ErrorCode.NOT_FOUND, "not found");
        refusedUnchanged(new Command.RegisterNode(T, "node-1", "http://x", "10.0.0.9:7410", null, Map.of(), 1, 1),
                ErrorCode.ALREADY_EXISTS, "node id node-1 is already a member");
        refusedUnchanged(new Command.RegisterNode(T, "node-9", "http://x", "10.0.0.9:7410", null, Map.of("Zone!", "a"), 1, 1),
                ErrorCode.INVALID_ARGUMENT, "malformed label key");
        refusedUnchanged(new Command.SetCordon(T, "node-9", true), ErrorCode.NOT_FOUND, "node node-9 not found");
    }

    @Test
    void attachBumpsTheEpochAndBlocksDelete() throws Exception {
        s.apply(create("pg", Sizes.GIB, 1));
        String holder = s.volume("pg").orElseThrow().replicas().getFirst().nodeId();
        String other = holder.equals("node-1") ? "node-2" : "node-1";
        refusedUnchanged(new Command.Attach(T, "pg", att("pg", other)), ErrorCode.CONFLICT, "has no replica on node " + other);
        s.apply(new Command.Attach(T, "pg", att("pg", holder)));
        assertThat(s.volume("pg").orElseThrow().epoch()).isEqualTo(1);
        refusedUnchanged(new Command.DeleteVolume(T, "pg"), ErrorCode.CONFLICT, "detach it first");
        refusedUnchanged(new Command.Detach(T, "pg", other), ErrorCode.CONFLICT, "detach it there");
        s.apply(new Command.Detach(T, "pg", holder));
        s.apply(new Command.Attach(T, "pg", att("pg", holder)));
        assertThat(s.volume("pg").orElseThrow().epoch()).isEqualTo(2);
    }

    static Attachment att(String v, String node) {
        return new Attachment(v, node, "nbd://x/" + v, null, Attachment.METHOD_NONE, null, null, null, null, T);
    }

    @Test
    void failureDetectionDecisionsAreLoggedAndHeartbeatsBringNodesBack() {
        String hb = s.node("node-2").orElseThrow().lastHeartbeatAt();
        s.apply(new Command.MarkNodeState(T, "node-2", NodeRecord.DOWN, "no heartbeat for 6.1 s", hb));
        assertThat(s.node("node-2").orElseThrow().state()).isEqualTo(NodeRecord.DOWN);
        assertThat(s.events(0, 100).getLast().message()).contains("node-2 marked down: no heartbeat for 6.1 s");
        // a stale decision (the node heartbeated after the detector looked) is ignored
        s.apply(new Command.Heartbeat("2026-11-21T00:00:09Z", "node-3", 100, 90));
        s.apply(new Command.MarkNodeState(T, "node-3", NodeRecord.DOWN, "late", hb));
        assertThat(s.node("node-3").orElseThrow().state()).isEqualTo(NodeRecord.UP);
        s.apply(new Command.Heartbeat("2026-11-21T00:00:10Z", "node-2", 100, 90));
        assertThat(s.node("node-2").orElseThrow().state()).isEqualTo(NodeRecord.UP);
        assertThat(s.events(0, 100).getLast().type()).isEqualTo("node-up");
    }

    @Test
    void cordonedAndDownNodesGetNoReplicas() {
        s.apply(new Command.SetCordon(T, "node-1", true));
        s.apply(new Command.MarkNodeState(T, "node-2", NodeRecord.DOWN, "test", s.node("node-2").orElseThrow().lastHeartbeatAt()));
        VolumeRecord v = (VolumeRecord) s.apply(create("v", Sizes.GIB, 0));
        assertThat(v.replicas()).extracting(ReplicaRecord::nodeId).containsExactly("node-3");
        assertThatThrownBy(() -> s.apply(create("w", Sizes.GIB, 2)))
                .hasMessageContaining("node-1: cordoned").hasMessageContaining("node-2: node is down");
    }

    @Test
    void drainPlacesReplacementsAndRemoveNeedsForceWhileHolding() {
        s.apply(new Command.RegisterNode(T, "node-4", "http://4", "127.0.0.1:7414", null, Map.of("zone", "z4"), 100 * Sizes.GIB, 1));
        s.apply(create("pg", Sizes.GIB, 3));
        String victim = s.volume("pg").orElseThrow().replicas().getFirst().nodeId();
        ClusterState.DrainResult d = (ClusterState.DrainResult) s.apply(new Command.DrainNode(T, victim, 1.0));
        assertThat(d.replacements()).containsKey("pg");
        assertThat(s.node(victim).orElseThrow().cordoned()).isTrue();
        assertThatThrownBy(() -> s.apply(new Command.RemoveNode(T, victim, false))).hasMessageContaining("drain it first");
        s.apply(new Command.RemoveNode(T, victim, true));
        assertThat(s.node(victim)).isEmpty();
        assertThat(s.volume("pg").orElseThrow().replicas()).extracting(ReplicaRecord::nodeId).doesNotContain(victim).hasSize(3);
    }

    @Test
    void snapshotRoundTrip() throws Exception {
        s.apply(create("pg", Sizes.GIB, 2));
        s.apply(new Command.SetCordon(T, "node-3", true));
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.image()).isEqualTo(s.image());
        assertThat(copy.apply(create("again", Sizes.GIB, 1))).isEqualTo(s.apply(create("again", Sizes.GIB, 1)));
    }

    @Test
    void commandsSurviveJson() throws Exception {
        Command c = create("pg", Sizes.GIB, 2);
        byte[] bytes = ClusterState.JSON.writeValueAsBytes(c);
        assertThat(new String(bytes)).contains("\"type\":\"CreateVolume\"");
        assertThat(ClusterState.JSON.readValue(bytes, Command.class)).isEqualTo(c);
    }
}

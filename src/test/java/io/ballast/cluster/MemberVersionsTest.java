package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.ProtocolVersion;
import io.ballast.common.Sizes;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Members' versions in the metadata: recorded on change, checked at a restart and by the leader's gate. */
class MemberVersionsTest {
    static final String T = "2026-12-07T21:00:00Z";
    static final String TOKEN = "blt-versions-test";
    ClusterState s;

    @BeforeEach
    void cluster() {
        s = new ClusterState();
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(T, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i,
                    "127.0.0.1:1080" + i, Map.of(), 100 * Sizes.GIB, 90 * Sizes.GIB, null, "0.1.0", "1.0"));
        }
    }

    @Test
    void aHeartbeatRecordsANewVersionOnceAndAnOldNodesHeartbeatKeepsIt() {
        assertThat(s.node("node-1").orElseThrow().protocolVersion()).isEqualTo("1.0");
        long revision = s.revision();
        s.apply(new Command.Heartbeat(T, "node-1", 100 * Sizes.GIB, 90 * Sizes.GIB, null, "0.2.0", "1.1"));
        NodeRecord n = s.node("node-1").orElseThrow();
        assertThat(n.buildVersion()).isEqualTo("0.2.0");
        assertThat(n.protocol()).isEqualTo(new ProtocolVersion(1, 1));
        assertThat(s.revision()).as("a version change is a change watchers see").isGreaterThan(revision);
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("node-version") && e.message().equals(
                "node-1 runs Ballast 0.2.0, cluster protocol 1.1 (was Ballast 0.1.0, cluster protocol 1.0)"));
        // a heartbeat without versions (a node of a build from before versions were recorded) keeps them
        s.apply(new Command.Heartbeat(T, "node-1", 100 * Sizes.GIB, 90 * Sizes.GIB, null));
        assertThat(s.node("node-1").orElseThrow().protocolVersion()).isEqualTo("1.1");
        // as does a re-registration without them
        s.apply(new Command.RegisterNode(T, "node-1", "http://127.0.0.1:7501", "127.0.0.1:7411", "127.0.0.1:10801", Map.of(),
                100 * Sizes.GIB, 90 * Sizes.GIB, null));
        assertThat(s.node("node-1").orElseThrow().buildVersion()).isEqualTo("0.2.0");
        assertThat(ClusterMember.versionsRecorded(s.node("node-2").orElseThrow())).isFalse(); // 0.1.0 is not this build
    }

    @Test
    void aRestartedNodeTwoMinorsAheadOfAMemberIsRefusedWithWhatToDo() {
        s.apply(new Command.Heartbeat(T, "node-1", 100 * Sizes.GIB, 90 * Sizes.GIB, null, "0.2.0", "1.1"));
        assertThat(ClusterMember.membersIncompatibility(s, "node-1", new ProtocolVersion(1, 1))).isNull();
        assertThat(ClusterMember.membersIncompatibility(s, "node-1", new ProtocolVersion(1, 2))).isEqualTo(
                "this node (node-1) speaks cluster protocol 1.2 and the cluster (members node-2, node-3, as the cluster metadata"
                        + " records) speaks 1.0: nodes work together only with the same major version and minor versions at most 1"
                        + " apart; upgrade the cluster (members node-2, node-3, as the cluster metadata records) first, one minor"
                        + " version at a time (1.0 -> 1.1), following docs/operations.md \"Rolling upgrade\"; or start this node"
                        + " (node-1) with a release of cluster protocol 1.0 to 1.1");
        // a member that recorded no version counts as 1.0
        ClusterState old = new ClusterState();
        old.apply(new Command.RegisterNode(T, "node-1", "http://a", "127.0.0.1:1", null, Map.of(), 1, 1));
        old.apply(new Command.RegisterNode(T, "node-2", "http://b", "127.0.0.1:2", null, Map.of(), 1, 1));
        assertThat(ClusterMember.membersIncompatibility(old, "node-1", new ProtocolVersion(1, 2)))
                .contains("the cluster (member node-2, as the cluster metadata records) speaks 1.0");
        assertThat(ClusterMember.membersIncompatibility(old, "node-1", new ProtocolVersion(2, 0)))
                .contains("a cluster runs one major version");
    }

    @Test
    void theLeaderRefusesACommandOfAMinorNotEveryMemberSpeaks() throws Exception {
        CommandSeal seal = CommandSeal.forToken(TOKEN);
        // a command as if introduced by cluster protocol 1.1 (this build's commands are all 1.0)
        CommandGate gate = new CommandGate(seal, () -> s, Map.of(Command.SetCordon.class, new ProtocolVersion(1, 1)));
        byte[] cordon = seal.seal(("{\"type\":\"SetCordon\",\"at\":\"" + T + "\",\"nodeId\":\"node-2\",\"cordoned\":true}")
                .getBytes(StandardCharsets.UTF_8));
        assertThatThrownBy(() -> gate.admit(cordon)).isInstanceOf(CommandSeal.Refused.class).hasMessage(
                "SetCordon needs cluster protocol 1.1 on every member and node-1 (1.0), node-2 (1.0), node-3 (1.0) run an older"
                        + " one: finish the rolling upgrade first (docs/operations.md \"Rolling upgrade\"; `ballast node list` shows"
                        + " each member's protocolVersion)");
        s.apply(new Command.Heartbeat(T, "node-1", 100 * Sizes.GIB, 90 * Sizes.GIB, null, "0.2.0", "1.1"));
        s.apply(new Command.Heartbeat(T, "node-2", 100 * Sizes.GIB, 90 * Sizes.GIB, null, "0.2.0", "1.1"));
        assertThatThrownBy(() -> gate.admit(cordon)).hasMessageStartingWith(
                "SetCordon needs cluster protocol 1.1 on every member and node-3 (1.0) runs an older one");
        s.apply(new Command.Heartbeat(T, "node-3", 100 * Sizes.GIB, 90 * Sizes.GIB, null, "0.2.0", "1.1"));
        assertThat(gate.admit(cordon)).isNotEmpty(); // every member speaks 1.1: admitted
        // a command of 1.0 passes whatever the members run
        byte[] heartbeat = seal.seal(("{\"type\":\"Heartbeat\",\"at\":\"" + T + "\",\"nodeId\":\"node-2\"}").getBytes(StandardCharsets.UTF_8));
        assertThat(new CommandGate(seal, () -> s, CommandGate.INTRODUCED_IN).admit(heartbeat)).isNotEmpty();
    }
}

package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class LabelsAndVotersTest {

    @Test
    void labelsParse() {
        assertThat(Labels.parse("zone=a,rack=r1")).containsExactlyInAnyOrderEntriesOf(Map.of("zone", "a", "rack", "r1"));
        assertThat(Labels.parse("")).isEmpty();
        assertThat(Labels.format(Labels.parse("zone=a,rack=r1"))).isEqualTo("rack=r1,zone=a");
    }

    @Test
    void malformedLabelsAreRefusedWithTheBadItem() {
        assertThatThrownBy(() -> Labels.parse("zone")).hasMessageContaining("malformed label 'zone'");
        assertThatThrownBy(() -> Labels.parse("zone=a,zone=b")).hasMessageContaining("given twice");
        assertThatThrownBy(() -> Labels.parse("Zone=a")).hasMessageContaining("malformed label key 'Zone'");
        assertThatThrownBy(() -> Labels.parse("zone=")).hasMessageContaining("malformed value ''");
        assertThatThrownBy(() -> Labels.parse("zone=a b")).hasMessageContaining("malformed value 'a b'");
    }

    static NodeRecord n(String id, String zone, int order) {
        return new NodeRecord(id, "http://" + id, id + ":1", null, zone == null ? Map.of() : Map.of("zone", zone),
                NodeRecord.UP, null, false, false, null, 1, 1, "2026-01-01T00:00:0" + order + "Z", null);
    }

    @Test
    void votersAreAtMostFiveSpreadAcrossZonesAndStable() {
        List<NodeRecord> nodes = new ArrayList<>();
        String[] zones = {"a", "a", "a", "b", "b", "c", "a"};
        for (int i = 0; i < zones.length; i++) {
            nodes.add(n("n" + i, zones[i], i));
        }
        Set<String> v = VoterSelection.choose(nodes, Set.of(), 5);
        assertThat(v).hasSize(5).contains("n3", "n5"); // b and c are represented
        long inA = v.stream().filter(id -> List.of("n0", "n1", "n2", "n6").contains(id)).count();
        assertThat(inA).isEqualTo(2);
        // current voters stay
        assertThat(VoterSelection.choose(nodes, Set.of("n0", "n1", "n2"), 5)).contains("n0", "n1", "n2", "n3", "n5");
        assertThat(VoterSelection.choose(nodes.subList(0, 2), Set.of(), 5)).containsExactlyInAnyOrder("n0", "n1");
    }

    @Test
    void aGoneVoterGivesItsSeatOnlyToAnUpListenerPreferablyFromItsZone() {
        List<NodeRecord> nodes = new ArrayList<>(List.of(n("n0", "a", 0), n("n1", "b", 1), n("n2", "c", 2), n("n3", "a", 3),
                n("n4", "c", 4)));
        Set<String> current = Set.of("n0", "n1", "n2");
        // n2 (zone c) is gone: n4 (zone c, up) takes the seat, not n3 (zone a already has a voter)
        assertThat(VoterSelection.choose(nodes, current, Set.of("n2"), 3)).containsExactlyInAnyOrder("n0", "n1", "n4");
        // nobody to take it: the gone voter keeps its seat
        assertThat(VoterSelection.choose(nodes.subList(0, 3), current, Set.of("n2"), 3)).containsExactlyInAnyOrder("n0", "n1", "n2");
        // a down listener cannot take a seat either
        nodes.set(4, nodes.get(4).withState(NodeRecord.DOWN, "test"));
        nodes.set(3, nodes.get(3).withState(NodeRecord.DOWN, "test"));
        assertThat(VoterSelection.choose(nodes, current, Set.of("n2"), 3)).containsExactlyInAnyOrder("n0", "n1", "n2");
    }

    @Test
    void aNodeStillStartingAnswersUnavailableNotAnInternalError() {
        ClusterMember m = new ClusterMember(java.nio.file.Path.of("/nonexistent"), "n1", ClusterConfig.standalone("127.0.0.1:0"),
                () -> null);
        assertThatThrownBy(m::raft).isInstanceOf(io.ballast.common.BallastException.class)
                .hasMessageContaining("n1 is starting")
                .satisfies(e -> assertThat(((io.ballast.common.BallastException) e).code()).isEqualTo(io.ballast.common.ErrorCode.UNAVAILABLE));
        assertThat(m.raftIfStarted()).isEmpty();
    }
}
